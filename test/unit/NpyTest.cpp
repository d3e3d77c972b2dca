//===- NpyTest.cpp - qrt::readNpy/parseNpy/writeNpy ------------------------===//
//
// Reads the fixtures numpy wrote (test/unit/data/npy, made by data/make_npy.py; values follow the formulas
// repeated here), round-trips every dtype through writeNpy/readNpy, and feeds a list of malformed files, each
// of which must be refused with its own message. Links with gtest_main.
//
//===----------------------------------------------------------------------===//
#include "Npy.h"
#include "TestDataDir.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>

using qopt::test::testDataPath;
using qrt::NpyArray;

namespace {

std::string fixture(const std::string &name) { return testDataPath("npy/" + name); }

NpyArray mustRead(const std::string &name) {
  NpyArray a;
  std::string error;
  EXPECT_TRUE(qrt::readNpy(fixture(name), a, error)) << name << ": " << error;
  return a;
}

template <typename T> std::vector<T> values(const NpyArray &a) {
  std::vector<T> v(a.data.size() / sizeof(T));
  if (!v.empty())
    std::memcpy(v.data(), a.data.data(), v.size() * sizeof(T));
  return v;
}

using Shape = std::vector<int64_t>;

TEST(Npy, ReadsNumpyFixtures) {
  NpyArray a = mustRead("f32_2x3.npy");
  EXPECT_EQ(a.dtype, "float32");
  EXPECT_EQ(a.shape, (Shape{2, 3}));
  EXPECT_EQ(values<float>(a), (std::vector<float>{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f}));

  a = mustRead("f64_scalar.npy");
  EXPECT_EQ(a.dtype, "float64");
  EXPECT_EQ(a.shape, Shape{});
  EXPECT_EQ(a.numel(), 1);
  EXPECT_EQ(values<double>(a), std::vector<double>{3.25});

  a = mustRead("f16_4.npy");
  EXPECT_EQ(a.dtype, "float16");
  EXPECT_EQ(a.shape, Shape{4});
  EXPECT_EQ(values<uint16_t>(a), (std::vector<uint16_t>{0x0000, 0x3C00, 0xC100, 0x7BFF})); // 0, 1, -2.5, 65504

  a = mustRead("i64_3x1x2.npy");
  EXPECT_EQ(a.dtype, "int64");
  EXPECT_EQ(a.shape, (Shape{3, 1, 2}));
  std::vector<int64_t> i64 = values<int64_t>(a);
  ASSERT_EQ(i64.size(), 6u);
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(i64[i], int64_t(i) * -1000000000007LL);

  a = mustRead("i32_5.npy");
  EXPECT_EQ(a.dtype, "int32");
  EXPECT_EQ(values<int32_t>(a), (std::vector<int32_t>{INT32_MIN, -1, 0, 1, INT32_MAX}));
  a = mustRead("i16_2x2.npy");
  EXPECT_EQ(a.dtype, "int16");
  EXPECT_EQ(a.shape, (Shape{2, 2}));
  EXPECT_EQ(values<int16_t>(a), (std::vector<int16_t>{-32768, -1, 1, 32767}));
  a = mustRead("i8_4.npy");
  EXPECT_EQ(a.dtype, "int8");
  EXPECT_EQ(values<int8_t>(a), (std::vector<int8_t>{-128, -1, 0, 127}));
  a = mustRead("u8_3.npy");
  EXPECT_EQ(a.dtype, "uint8");
  EXPECT_EQ(a.data, (std::vector<uint8_t>{0, 128, 255}));
  a = mustRead("u16_2.npy");
  EXPECT_EQ(a.dtype, "uint16");
  EXPECT_EQ(values<uint16_t>(a), (std::vector<uint16_t>{0, 65535}));
  a = mustRead("u32_2.npy");
  EXPECT_EQ(a.dtype, "uint32");
  EXPECT_EQ(values<uint32_t>(a), (std::vector<uint32_t>{0, 4294967295u}));
  a = mustRead("u64_2.npy");
  EXPECT_EQ(a.dtype, "uint64");
  EXPECT_EQ(values<uint64_t>(a), (std::vector<uint64_t>{0, UINT64_MAX}));
  a = mustRead("bool_5.npy");
  EXPECT_EQ(a.dtype, "bool");
  EXPECT_EQ(a.data, (std::vector<uint8_t>{1, 0, 0, 1, 1}));

  a = mustRead("f32_empty_0x3.npy");
  EXPECT_EQ(a.dtype, "float32");
  EXPECT_EQ(a.shape, (Shape{0, 3}));
  EXPECT_EQ(a.numel(), 0);
  EXPECT_TRUE(a.data.empty());
}

TEST(Npy, ReadsFormatVersions2And3) {
  NpyArray v1 = mustRead("f32_2x3.npy");
  for (const char *name : {"f32_2x3_v2.npy", "f32_2x3_v3.npy"}) {
    NpyArray v = mustRead(name);
    EXPECT_EQ(v.dtype, v1.dtype) << name;
    EXPECT_EQ(v.shape, v1.shape) << name;
    EXPECT_EQ(v.data, v1.data) << name;
  }
}

TEST(Npy, RefusesWhatNumpyWritesButWeDoNotSupport) {
  struct {
    const char *file, *message;
  } cases[] = {{"bad_bigendian_f4.npy", "big-endian"},
               {"bad_fortran_2x3.npy", "fortran_order=True"},
               {"bad_structured.npy", "structured dtypes"}};
  for (const auto &c : cases) {
    NpyArray a;
    a.dtype = "untouched";
    std::string error;
    EXPECT_FALSE(qrt::readNpy(fixture(c.file), a, error)) << c.file;
    EXPECT_NE(error.find(c.message), std::string::npos) << c.file << ": " << error;
    EXPECT_NE(error.find(c.file), std::string::npos) << "readNpy errors name the file: " << error;
    EXPECT_EQ(a.dtype, "untouched");
  }
}

TEST(Npy, RoundTripsEveryFixtureThroughWriteAndRead) {
  const char *names[] = {"f32_2x3.npy", "f64_scalar.npy", "f16_4.npy",        "i64_3x1x2.npy", "i32_5.npy",
                         "i16_2x2.npy", "i8_4.npy",       "u8_3.npy",         "u16_2.npy",     "u32_2.npy",
                         "u64_2.npy",   "bool_5.npy",     "f32_empty_0x3.npy"};
  std::string dir = ::testing::TempDir();
  for (const char *name : names) {
    NpyArray a = mustRead(name);
    std::string path = dir + "/roundtrip_" + name, error;
    ASSERT_TRUE(qrt::writeNpy(path, a, error)) << error;
    NpyArray b;
    ASSERT_TRUE(qrt::readNpy(path, b, error)) << error;
    EXPECT_EQ(a.dtype, b.dtype);
    EXPECT_EQ(a.shape, b.shape);
    EXPECT_EQ(a.data, b.data);
    // numpy's layout: version 1.0, data offset a multiple of 64, header ends in '\n'.
    std::vector<uint8_t> bytes;
    ASSERT_TRUE(qrt::serializeNpy(a, bytes, error));
    ASSERT_GE(bytes.size(), 10u);
    EXPECT_EQ(bytes[6], 1);
    EXPECT_EQ(bytes[7], 0);
    size_t offset = 10 + (bytes[8] | (bytes[9] << 8));
    EXPECT_EQ(offset % 64, 0u) << name;
    EXPECT_EQ(bytes[offset - 1], '\n');
    EXPECT_EQ(offset + a.data.size(), bytes.size());
    std::remove(path.c_str());
  }
}

TEST(Npy, RoundTripsRandomArraysInMemory) {
  std::mt19937 rng(3);
  const char *dtypes[] = {"float32", "float64", "float16", "int64",  "int32", "int16",
                          "int8",    "uint64",  "uint32",  "uint16", "uint8", "bool"};
  for (int trial = 0; trial < 200; ++trial) {
    NpyArray a;
    a.dtype = dtypes[rng() % 12];
    int rank = static_cast<int>(rng() % 5);
    for (int d = 0; d < rank; ++d)
      a.shape.push_back(static_cast<int64_t>(rng() % 4)); // includes zero-size dims
    a.data.resize(static_cast<size_t>(a.numel()) * qrt::npyItemSize(a.dtype));
    for (uint8_t &b : a.data)
      b = static_cast<uint8_t>(rng());
    std::vector<uint8_t> bytes;
    std::string error;
    ASSERT_TRUE(qrt::serializeNpy(a, bytes, error)) << error;
    NpyArray b;
    ASSERT_TRUE(qrt::parseNpy(bytes.data(), bytes.size(), b, error)) << error;
    EXPECT_EQ(a.dtype, b.dtype);
    EXPECT_EQ(a.shape, b.shape);
    EXPECT_EQ(a.data, b.data);
  }
}

TEST(Npy, WriterRejectsInconsistentArrays) {
  std::string error;
  std::vector<uint8_t> out;
  NpyArray a;
  a.dtype = "complex64";
  EXPECT_FALSE(qrt::serializeNpy(a, out, error));
  EXPECT_NE(error.find("cannot write dtype 'complex64'"), std::string::npos) << error;
  a.dtype = "float32";
  a.shape = {2, 3};
  a.data.resize(20);
  EXPECT_FALSE(qrt::serializeNpy(a, out, error));
  EXPECT_NE(error.find("needs 24 bytes but the array holds 20"), std::string::npos) << error;
  a.shape = {-1};
  EXPECT_FALSE(qrt::serializeNpy(a, out, error));
  EXPECT_NE(error.find("invalid shape"), std::string::npos) << error;
  a.shape = {5};
  EXPECT_FALSE(qrt::writeNpy("/nonexistent-dir/x.npy", a, error));
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(qrt::writeNpy(::testing::TempDir() + "/never.npy", NpyArray{"float32", {2}, {1, 2, 3}}, error));
}

// --- malformed files ---------------------------------------------------------------------------------------

// Builds a .npy image with the given version and header text (padded like numpy) followed by `dataBytes` zeros.
std::vector<uint8_t> makeNpy(const std::string &dict, size_t dataBytes, int major = 1, int minor = 0) {
  std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), static_cast<uint8_t>(minor)};
  size_t lenBytes = major == 1 ? 2 : 4;
  std::string header = dict;
  size_t total = 8 + lenBytes + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  for (size_t i = 0; i < lenBytes; ++i)
    b.push_back(static_cast<uint8_t>(header.size() >> (8 * i)));
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), dataBytes, 0);
  return b;
}

std::string dictWith(const std::string &descr, const std::string &fortran, const std::string &shape) {
  return "{'descr': " + descr + ", 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
}

std::string parseError(const std::vector<uint8_t> &bytes) {
  NpyArray a;
  std::string error;
  EXPECT_FALSE(qrt::parseNpy(bytes.data(), bytes.size(), a, error));
  EXPECT_TRUE(a.dtype.empty() && a.shape.empty() && a.data.empty()) << "output touched on failure";
  return error;
}

TEST(Npy, AcceptsHandWrittenVariantsNumpyAccepts) {
  // Key order, double quotes, no trailing comma, odd whitespace, 1-byte types with any byte order.
  for (const std::string &dict :
       {std::string("{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}"),
        std::string("{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(2,)}"),
        std::string("{ 'descr' : '<f4' ,\n 'fortran_order' : False , 'shape' : ( 2 , ) , }")}) {
    NpyArray a;
    std::string error;
    std::vector<uint8_t> b = makeNpy(dict, 8);
    EXPECT_TRUE(qrt::parseNpy(b.data(), b.size(), a, error)) << dict << ": " << error;
    EXPECT_EQ(a.shape, Shape{2});
  }
  for (const char *descr : {"'|u1'", "'<u1'", "'>i1'", "'|b1'"}) {
    NpyArray a;
    std::string error;
    std::vector<uint8_t> b = makeNpy(dictWith(descr, "False", "(3, 1)"), 3);
    EXPECT_TRUE(qrt::parseNpy(b.data(), b.size(), a, error)) << descr << ": " << error;
  }
}

TEST(Npy, RejectsMalformedFilesWithSpecificMessages) {
  const std::string okDict = dictWith("'<f4'", "False", "(2, 3)");
  struct Case {
    const char *what;
    std::vector<uint8_t> bytes;
    const char *message;
  };
  std::vector<uint8_t> badMagic = makeNpy(okDict, 24);
  badMagic[1] = 'X';
  std::vector<uint8_t> pastEnd = makeNpy(okDict, 24);
  pastEnd[8] = 0xFF;
  pastEnd[9] = 0xFF;
  std::vector<Case> cases = {
      {"empty file", {}, "bad magic"},
      {"bad magic", badMagic, "bad magic"},
      {"preamble cut", std::vector<uint8_t>(badMagic.begin(), badMagic.begin() + 3), "bad magic"},
      {"no header length", {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}, "truncated .npy preamble"},
      {"v2 length cut", {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0, 0}, "truncated .npy preamble"},
      {"version 4.0", makeNpy(okDict, 24, 4, 0), "unsupported .npy format version 4.0"},
      {"version 1.1", makeNpy(okDict, 24, 1, 1), "unsupported .npy format version 1.1"},
      {"header past end", pastEnd, "runs past the end"},
      {"not a dict", makeNpy("[1, 2]", 0), "not a Python dict"},
      {"missing shape", makeNpy("{'descr': '<f4', 'fortran_order': False}", 4), "missing key 'shape'"},
      {"missing descr", makeNpy("{'fortran_order': False, 'shape': (1,)}", 4), "missing key 'descr'"},
      {"extra key", makeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4),
       "unexpected key 'x'"},
      {"duplicate key", makeNpy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 4),
       "duplicate key 'descr'"},
      {"unquoted key", makeNpy("{descr: '<f4'}", 4), "expected a quoted string"},
      {"missing colon", makeNpy("{'descr' '<f4'}", 4), "expected ':' after key 'descr'"},
      {"missing comma", makeNpy("{'descr': '<f4' 'fortran_order': False}", 4), "expected ',' or '}'"},
      {"unterminated string", makeNpy("{'descr': '<f4", 4), "unterminated string"},
      {"escape in string", makeNpy("{'descr': '<f\\x34'}", 4), "escape sequences"},
      {"text after dict", makeNpy(okDict + " 42", 24), "unexpected characters after the header dict"},
      {"complex dtype", makeNpy(dictWith("'<c8'", "False", "(2, 3)"), 48), "unsupported dtype descr '<c8'"},
      {"unicode dtype", makeNpy(dictWith("'<U4'", "False", "(2, 3)"), 96), "unsupported dtype descr '<U4'"},
      {"object dtype", makeNpy(dictWith("'|O'", "False", "(2, 3)"), 48), "unsupported dtype descr '|O'"},
      {"name not descr", makeNpy(dictWith("'float32'", "False", "(2, 3)"), 24), "unsupported dtype descr"},
      {"big-endian int", makeNpy(dictWith("'>i4'", "False", "(2, 3)"), 24), "big-endian dtype '>i4'"},
      {"native order", makeNpy(dictWith("'=f4'", "False", "(2, 3)"), 24), "no explicit byte order"},
      {"fortran order", makeNpy(dictWith("'<f4'", "True", "(2, 3)"), 24), "fortran_order=True"},
      {"fortran not bool", makeNpy(dictWith("'<f4'", "'no'", "(2, 3)"), 24), "expected True or False"},
      {"fortran lowercase", makeNpy(dictWith("'<f4'", "false", "(2, 3)"), 24), "expected True or False"},
      {"fortran Truex", makeNpy(dictWith("'<f4'", "Truex", "(2, 3)"), 24), "expected True or False"},
      {"shape list", makeNpy(dictWith("'<f4'", "False", "[2, 3]"), 24), "'shape': expected a tuple"},
      {"negative dim", makeNpy(dictWith("'<f4'", "False", "(2, -3)"), 24), "negative dimension"},
      {"paren int", makeNpy(dictWith("'<f4'", "False", "(3)"), 12), "is not a tuple"},
      {"unclosed tuple", makeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3", 24),
       "expected ',' or ')' in shape tuple"},
      {"float dim", makeNpy(dictWith("'<f4'", "False", "(2.5,)"), 24), "not a plain integer"},
      {"leading zero", makeNpy(dictWith("'<f4'", "False", "(02,)"), 8), "leading zero"},
      {"dim overflow", makeNpy(dictWith("'<f4'", "False", "(99999999999999999999,)"), 0), "does not fit in int64"},
      {"element overflow", makeNpy(dictWith("'<f4'", "False", "(9223372036854775807, 2)"), 0), "too many elements"},
      {"byte overflow", makeNpy(dictWith("'<f8'", "False", "(4611686018427387904,)"), 0), "is too large"},
      {"data truncated", makeNpy(okDict, 23), "needs 24 data bytes but the file has 23 (truncated file)"},
      {"trailing data", makeNpy(okDict, 25), "needs 24 data bytes but the file has 25 (trailing bytes)"},
      {"huge shape tiny file", makeNpy(dictWith("'<f4'", "False", "(1000000, 1000000)"), 8),
       "needs 4000000000000 data bytes"},
  };
  for (const Case &c : cases) {
    std::string error = parseError(c.bytes);
    EXPECT_NE(error.find(c.message), std::string::npos)
        << c.what << ": got \"" << error << "\", want it to contain \"" << c.message << "\"";
  }
  NpyArray a;
  std::string error;
  EXPECT_FALSE(qrt::parseNpy(nullptr, 5, a, error));
  EXPECT_FALSE(qrt::readNpy(testDataPath("npy/does_not_exist.npy"), a, error));
  EXPECT_NE(error.find("cannot open"), std::string::npos);
}

TEST(Npy, EveryTruncationAndRandomCorruptionFailsCleanly) {
  std::ifstream f(fixture("i64_3x1x2.npy"), std::ios::binary);
  std::vector<uint8_t> good((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_GT(good.size(), 100u);
  for (size_t n = 0; n < good.size(); ++n) {
    NpyArray a;
    std::string error;
    ASSERT_FALSE(qrt::parseNpy(good.data(), n, a, error)) << n;
    ASSERT_FALSE(error.empty());
  }
  // Random byte flips anywhere in the preamble/header: must never crash; a success must be self-consistent.
  std::mt19937 rng(99);
  for (int trial = 0; trial < 5000; ++trial) {
    std::vector<uint8_t> b = good;
    int flips = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < flips; ++i)
      b[rng() % 128] = static_cast<uint8_t>(rng());
    NpyArray a;
    std::string error;
    if (qrt::parseNpy(b.data(), b.size(), a, error))
      EXPECT_EQ(a.data.size(), static_cast<size_t>(a.numel()) * qrt::npyItemSize(a.dtype));
    else
      EXPECT_FALSE(error.empty());
  }
}

} // namespace
