//===- TokenizerTest.cpp - qrt::Tokenizer against llama2.c's run.c ---------===//
//
// Expected ids come from test/unit/data/tokenizer_cases.txt, written by data/make_tokenizer_cases.py with a
// literal Python transcription of run.c's encode (scripts/llama2c.py). Also: decode round trips, a C++ naive
// merge loop cross-checked on random byte strings, and rejection of malformed tokenizer files.
//
// Tokenizers: test/unit/data/{tok512.bin, stories15M_tokenizer.bin} (copies of the stories260K and stories15M
// tokenizers), or, when QOPT_MODELS_DIR is set, $QOPT_MODELS_DIR/stories260K/tok512.bin and
// $QOPT_MODELS_DIR/stories15M/tokenizer.bin. Links with gtest_main.
//
//===----------------------------------------------------------------------===//
#include "Tokenizer.h"
#include "TestDataDir.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

using qopt::test::testDataPath;
using qrt::Tokenizer;

namespace {

std::string tokenizerPath(const std::string &dataName) {
  if (const char *models = std::getenv("QOPT_MODELS_DIR"))
    if (*models) {
      if (dataName == "tok512.bin")
        return std::string(models) + "/stories260K/tok512.bin";
      if (dataName == "stories15M_tokenizer.bin")
        return std::string(models) + "/stories15M/tokenizer.bin";
    }
  return testDataPath(dataName);
}

int32_t vocabOf(const std::string &dataName) { return dataName == "tok512.bin" ? 512 : 32000; }

std::vector<uint8_t> readBytes(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Tokenizers are loaded once per process.
const Tokenizer &tok(const std::string &dataName) {
  static std::map<std::string, Tokenizer> cache;
  auto it = cache.find(dataName);
  if (it == cache.end()) {
    Tokenizer t;
    std::string error;
    bool ok = Tokenizer::loadFile(tokenizerPath(dataName), vocabOf(dataName), t, error);
    EXPECT_TRUE(ok) << error;
    it = cache.emplace(dataName, std::move(t)).first;
  }
  return it->second;
}

std::string fromHex(const std::string &hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

struct EncodeCase {
  std::string file;
  bool bos, eos;
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<EncodeCase> loadCases() {
  std::vector<EncodeCase> cases;
  std::ifstream f(testDataPath("tokenizer_cases.txt"));
  std::string line;
  while (std::getline(f, line)) {
    std::vector<std::string> cols;
    std::stringstream ss(line);
    std::string col;
    while (std::getline(ss, col, '\t'))
      cols.push_back(col);
    while (cols.size() < 5)
      cols.push_back(""); // empty trailing columns (empty text and/or no ids)
    EncodeCase c{cols[0], cols[1] == "1", cols[2] == "1", fromHex(cols[3]), {}};
    std::stringstream ids(cols[4]);
    int32_t id;
    while (ids >> id)
      c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  return cases;
}

std::string str(const std::vector<int32_t> &v) {
  std::string s;
  for (int32_t x : v)
    s += std::to_string(x) + " ";
  return s;
}

// Concatenated decode of everything after the first token, as run.c's generation loop prints it.
std::string decodeAll(const Tokenizer &t, const std::vector<int32_t> &ids) {
  std::string out;
  for (size_t i = 1; i < ids.size(); ++i)
    out += t.decode(ids[i - 1], ids[i]);
  return out;
}

// Literal run.c encode (O(n^2) merge rescans), written against the public lookup API, to cross-check the heap.
std::vector<int32_t> naiveEncode(const Tokenizer &t, const std::string &textIn, bool bos, bool eos) {
  std::string text(textIn.c_str());
  std::vector<int32_t> tokens;
  if (bos)
    tokens.push_back(1);
  if (!text.empty())
    tokens.push_back(t.lookup(" "));
  std::string buf;
  for (size_t c = 0; c < text.size(); ++c) {
    if ((static_cast<unsigned char>(text[c]) & 0xC0) != 0x80)
      buf.clear();
    buf.push_back(text[c]);
    unsigned char next = c + 1 < text.size() ? static_cast<unsigned char>(text[c + 1]) : 0;
    if ((next & 0xC0) == 0x80 && buf.size() < 4)
      continue;
    int32_t id = t.lookup(buf);
    if (id != -1)
      tokens.push_back(id);
    else
      for (unsigned char b : buf)
        tokens.push_back(b + 3);
    buf.clear();
  }
  for (;;) {
    float bestScore = -1e10f;
    int32_t bestId = -1, bestIdx = -1;
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      int32_t id = t.lookup(t.piece(tokens[i]) + t.piece(tokens[i + 1]));
      if (id != -1 && t.score(id) > bestScore) {
        bestScore = t.score(id);
        bestId = id;
        bestIdx = static_cast<int32_t>(i);
      }
    }
    if (bestIdx == -1)
      break;
    tokens[bestIdx] = bestId;
    tokens.erase(tokens.begin() + bestIdx + 1);
  }
  if (eos)
    tokens.push_back(2);
  return tokens;
}

TEST(Tokenizer, LoadsBothTokenizers) {
  const Tokenizer &small = tok("tok512.bin");
  EXPECT_EQ(small.vocabSize(), 512);
  EXPECT_EQ(small.maxTokenLength(), 7);
  const Tokenizer &big = tok("stories15M_tokenizer.bin");
  EXPECT_EQ(big.vocabSize(), 32000);
  EXPECT_EQ(big.maxTokenLength(), 27);
  EXPECT_EQ(big.piece(1), "\n<s>\n");
  EXPECT_EQ(big.piece(3 + 0x41), "<0x41>");
  EXPECT_EQ(big.lookup(" Hello"), 15043);
  EXPECT_EQ(big.lookup("no such piece"), -1);
}

TEST(Tokenizer, EncodeMatchesPythonRunC) {
  std::vector<EncodeCase> cases = loadCases();
  ASSERT_GE(cases.size(), 100u) << "tokenizer_cases.txt missing or short in " << testDataPath("");
  for (const EncodeCase &c : cases) {
    std::vector<int32_t> got = tok(c.file).encode(c.text, c.bos, c.eos);
    EXPECT_EQ(got, c.ids) << c.file << " bos=" << c.bos << " eos=" << c.eos << " text=\"" << c.text << "\"\n got  "
                          << str(got) << "\n want " << str(c.ids);
  }
}

TEST(Tokenizer, KnownIdsFromLlama2c) {
  // llama2.c's own test (test_all.py / runq) expects these for the Llama 2 tokenizer.
  EXPECT_EQ(tok("stories15M_tokenizer.bin").encode("Hello world", true, false), (std::vector<int32_t>{1, 15043, 3186}));
  EXPECT_EQ(tok("stories15M_tokenizer.bin").encode("", true, true), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(tok("stories15M_tokenizer.bin").encode("", false, false), (std::vector<int32_t>{}));
}

TEST(Tokenizer, DecodeRoundTripsEveryCase) {
  for (const EncodeCase &c : loadCases()) {
    if (!c.bos || c.eos)
      continue;
    const Tokenizer &t = tok(c.file);
    std::string expected(c.text.c_str()); // encode stops at NUL
    EXPECT_EQ(decodeAll(t, t.encode(c.text, true, false)), expected) << c.file << " \"" << c.text << "\"";
  }
}

TEST(Tokenizer, DecodeRules) {
  const Tokenizer &t = tok("stories15M_tokenizer.bin");
  int32_t hello = t.lookup(" Hello");
  EXPECT_EQ(t.decode(1, hello), "Hello");  // leading space dropped after BOS
  EXPECT_EQ(t.decode(5, hello), " Hello"); // kept otherwise
  EXPECT_EQ(t.decode(7, 3 + 0x41), "A");   // <0x41>
  EXPECT_EQ(t.decode(7, 3 + 0x0A), "\n");
  EXPECT_EQ(t.decode(7, 3 + 0xE6), "\xE6");
  EXPECT_EQ(t.decode(7, 3), std::string(1, '\0'));
  EXPECT_EQ(t.decode(7, 1), "\n<s>\n");
  EXPECT_EQ(t.decode(7, -1), "");
  EXPECT_EQ(t.decode(7, 32000), "");
}

TEST(Tokenizer, SafePiece) {
  EXPECT_EQ(Tokenizer::safePiece("abc"), "abc");
  EXPECT_EQ(Tokenizer::safePiece("a"), "a");
  EXPECT_EQ(Tokenizer::safePiece("\n"), "\n");
  EXPECT_EQ(Tokenizer::safePiece("\t"), "\t");
  EXPECT_EQ(Tokenizer::safePiece(" "), " ");
  EXPECT_EQ(Tokenizer::safePiece(std::string(1, '\0')), "");
  EXPECT_EQ(Tokenizer::safePiece("\x01"), "");
  EXPECT_EQ(Tokenizer::safePiece("\x7f"), "");
  EXPECT_EQ(Tokenizer::safePiece("\xE6"), ""); // a lone byte of a UTF-8 sequence
  EXPECT_EQ(Tokenizer::safePiece("\xE6\x97\xA5"), "\xE6\x97\xA5");
  EXPECT_EQ(Tokenizer::safePiece(""), "");
}

TEST(Tokenizer, HeapMergeEqualsNaiveOnRandomText) {
  std::mt19937 rng(12345);
  const char *alphabet[] = {"a", "e",  "t",    "h",    " ",    "  ",   "the",  "ing", "\n", ".",
                            "é", "日", "\xff", "\x80", "Lily", " was", "🙂", "\t",  "0",  "Z"};
  for (const char *file : {"tok512.bin", "stories15M_tokenizer.bin"}) {
    const Tokenizer &t = tok(file);
    for (int trial = 0; trial < 300; ++trial) {
      std::string text;
      int len = static_cast<int>(rng() % 40);
      for (int i = 0; i < len; ++i)
        text += alphabet[rng() % (sizeof(alphabet) / sizeof(alphabet[0]))];
      bool bos = rng() & 1, eos = rng() & 1;
      std::vector<int32_t> got = t.encode(text, bos, eos);
      ASSERT_EQ(got, naiveEncode(t, text, bos, eos)) << file << " \"" << text << "\"";
      if (bos)
        ASSERT_EQ(decodeAll(t, eos ? std::vector<int32_t>(got.begin(), got.end() - 1) : got), text);
    }
  }
}

TEST(Tokenizer, LongInputIsFast) {
  std::string text;
  for (int i = 0; i < 2000; ++i)
    text += "Once upon a time, there was a little girl named Lily. ";
  const Tokenizer &t = tok("stories15M_tokenizer.bin");
  std::vector<int32_t> ids = t.encode(text, true, false); // 110 KB: quadratic merging would take minutes
  EXPECT_GT(ids.size(), 20000u);
  EXPECT_EQ(decodeAll(t, ids), text);
}

// --- malformed files -------------------------------------------------------------------------------------

void put32(std::vector<uint8_t> &b, size_t off, int32_t v) { std::memcpy(b.data() + off, &v, 4); }

std::string loadError(const std::vector<uint8_t> &bytes, int32_t vocab) {
  Tokenizer t;
  std::string error;
  EXPECT_FALSE(Tokenizer::load(bytes.data(), bytes.size(), vocab, t, error));
  EXPECT_EQ(t.vocabSize(), 0) << "output touched on failure";
  return error;
}

TEST(Tokenizer, RejectsBadFiles) {
  std::vector<uint8_t> good = readBytes(tokenizerPath("tok512.bin"));
  ASSERT_EQ(good.size(), 6227u);
  {
    Tokenizer t;
    std::string error;
    ASSERT_TRUE(Tokenizer::load(good.data(), good.size(), 512, t, error)) << error;
  }
  // Every truncation point fails cleanly.
  for (size_t n = 0; n < good.size(); ++n) {
    Tokenizer t;
    std::string error;
    ASSERT_FALSE(Tokenizer::load(good.data(), n, 512, t, error)) << n;
    ASSERT_FALSE(error.empty());
  }
  EXPECT_NE(loadError(std::vector<uint8_t>(good.begin(), good.begin() + 2), 512).find("too short"), std::string::npos);
  EXPECT_NE(loadError(std::vector<uint8_t>(good.begin(), good.end() - 3), 512).find("truncated"), std::string::npos);
  // Vocab size mismatch both ways.
  EXPECT_NE(loadError(good, 511).find("vocab size mismatch"), std::string::npos);
  EXPECT_NE(loadError(good, 513).find("vocab size does not match"), std::string::npos);
  EXPECT_NE(loadError(good, 100).find("too small"), std::string::npos);
  // First token record starts at byte 4: score at 4, length at 8.
  std::vector<uint8_t> bad = good;
  put32(bad, 8, -1);
  EXPECT_NE(loadError(bad, 512).find("length -1"), std::string::npos);
  bad = good;
  put32(bad, 8, 0x7fffffff);
  EXPECT_NE(loadError(bad, 512).find("length 2147483647"), std::string::npos);
  bad = good;
  put32(bad, 8, 8); // > max_token_length (7)
  EXPECT_NE(loadError(bad, 512).find("max_token_length=7"), std::string::npos);
  bad = good;
  put32(bad, 0, 0);
  EXPECT_NE(loadError(bad, 512).find("max_token_length 0"), std::string::npos);
  bad = good;
  put32(bad, 0, -5);
  EXPECT_NE(loadError(bad, 512).find("max_token_length -5"), std::string::npos);
  bad = good;
  bad.push_back(0);
  EXPECT_NE(loadError(bad, 512).find("1 bytes remain"), std::string::npos);
  {
    Tokenizer t;
    std::string error;
    EXPECT_FALSE(Tokenizer::load(nullptr, 10, 512, t, error));
    EXPECT_FALSE(Tokenizer::loadFile(testDataPath("does_not_exist.bin"), 512, t, error));
    EXPECT_NE(error.find("cannot open"), std::string::npos);
  }
}

TEST(Tokenizer, UnloadedTokenizerIsHarmless) {
  Tokenizer t;
  EXPECT_TRUE(t.encode("abc", true, true).empty());
  EXPECT_EQ(t.decode(1, 5), "");
  EXPECT_EQ(t.lookup("a"), -1);
}

} // namespace
