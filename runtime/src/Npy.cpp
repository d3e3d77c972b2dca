//===- Npy.cpp - strict .npy reader and numpy-compatible writer -----------===//
//
// File layout (numpy/lib/format.py, "NPY format"): magic "\x93NUMPY", major and minor version bytes, header
// length (uint16 LE for 1.0, uint32 LE for 2.0 and 3.0), then the header: an ASCII (3.0: UTF-8) Python dict
// literal padded with spaces and ending in '\n', then the raw array bytes.
//
// The header is parsed with a small recursive-descent parser for the subset numpy writes rather than anything
// like a Python evaluator: a dict with exactly the three keys, string/bool/tuple-of-int values, whitespace
// anywhere a Python tokenizer allows it, and an optional trailing comma.
//
//===----------------------------------------------------------------------===//
#include "Npy.h"
#include "ReadFile.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

namespace qrt {

namespace {

struct DTypeInfo {
  const char *name;
  char kind; // numpy kind character: f, i, u, b
  size_t size;
};

const DTypeInfo kDTypes[] = {
    {"float32", 'f', 4}, {"float64", 'f', 8}, {"float16", 'f', 2}, {"int64", 'i', 8},
    {"int32", 'i', 4},   {"int16", 'i', 2},   {"int8", 'i', 1},    {"uint64", 'u', 8},
    {"uint32", 'u', 4},  {"uint16", 'u', 2},  {"uint8", 'u', 1},   {"bool", 'b', 1},
};

const DTypeInfo *findByName(const std::string &name) {
  for (const DTypeInfo &d : kDTypes)
    if (name == d.name)
      return &d;
  return nullptr;
}

// Maps a numpy descr ("<f4", "|u1", ...) to a dtype, or explains why it cannot.
const DTypeInfo *findByDescr(const std::string &descr, std::string &error) {
  if (descr.size() < 3) {
    error = "unsupported dtype descr '" + descr + "'";
    return nullptr;
  }
  char order = descr[0], kind = descr[1];
  std::string digits = descr.substr(2);
  size_t size = 0;
  for (char c : digits) {
    if (c < '0' || c > '9' || size > 64) {
      error =
          "unsupported dtype descr '" + descr + "' (structured, string, datetime and object dtypes are not supported)";
      return nullptr;
    }
    size = size * 10 + static_cast<size_t>(c - '0');
  }
  const DTypeInfo *found = nullptr;
  for (const DTypeInfo &d : kDTypes)
    if (d.kind == kind && d.size == size)
      found = &d;
  if (!found || (order != '<' && order != '>' && order != '|' && order != '=')) {
    error = "unsupported dtype descr '" + descr +
            "' (supported: <f2 <f4 <f8 <i2 <i4 <i8 <u2 <u4 <u8 and one-byte |i1 |u1 |b1)";
    return nullptr;
  }
  if (found->size > 1) {
    // Byte order matters: only explicit little-endian is accepted. '=' (native) and '|' (not applicable) are never
    // written by numpy for multi-byte types, so their presence means a hand-made or foreign file.
    if (order == '>') {
      error = "big-endian dtype '" + descr + "' is not supported; convert with arr.astype('<" + kind +
              std::to_string(size) + "')";
      return nullptr;
    }
    if (order != '<') {
      error = "dtype '" + descr + "' has no explicit byte order; expected '<" + kind + std::to_string(size) + "'";
      return nullptr;
    }
  }
  return found;
}

class HeaderParser {
public:
  HeaderParser(const char *p, size_t n) : p(p), end(p + n) {}

  bool parse(std::string &descr, bool &fortran, std::vector<int64_t> &shape, std::string &error) {
    skipSpace();
    if (!eat('{'))
      return fail("header is not a Python dict (expected '{')", error);
    bool haveDescr = false, haveFortran = false, haveShape = false;
    for (;;) {
      skipSpace();
      if (eat('}'))
        break;
      std::string key;
      if (!parseString(key, error))
        return fail("header dict key: " + error, error);
      skipSpace();
      if (!eat(':'))
        return fail("expected ':' after key '" + key + "'", error);
      skipSpace();
      if (key == "descr") {
        if (haveDescr)
          return fail("duplicate key 'descr'", error);
        haveDescr = true;
        if (peek() == '[')
          return fail("structured dtypes (descr is a list) are not supported", error);
        if (!parseString(descr, error))
          return fail("'descr': " + error, error);
      } else if (key == "fortran_order") {
        if (haveFortran)
          return fail("duplicate key 'fortran_order'", error);
        haveFortran = true;
        if (!parseBool(fortran, error))
          return fail("'fortran_order': " + error, error);
      } else if (key == "shape") {
        if (haveShape)
          return fail("duplicate key 'shape'", error);
        haveShape = true;
        if (!parseShape(shape, error))
          return fail("'shape': " + error, error);
      } else {
        return fail("unexpected key '" + key + "' (a .npy header has exactly 'descr', 'fortran_order', 'shape')",
                    error);
      }
      skipSpace();
      if (eat(','))
        continue;
      skipSpace();
      if (eat('}'))
        break;
      return fail("expected ',' or '}' in header dict", error);
    }
    skipSpace();
    if (p != end)
      return fail("unexpected characters after the header dict", error);
    if (!haveDescr || !haveFortran || !haveShape) {
      std::string missing = !haveDescr ? "descr" : !haveFortran ? "fortran_order" : "shape";
      return fail("header is missing key '" + missing + "'", error);
    }
    return true;
  }

private:
  static bool fail(const std::string &msg, std::string &error) {
    error = msg;
    return false;
  }
  char peek() const { return p < end ? *p : '\0'; }
  bool eat(char c) {
    if (p < end && *p == c) {
      ++p;
      return true;
    }
    return false;
  }
  void skipSpace() {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v'))
      ++p;
  }

  bool parseString(std::string &out, std::string &error) {
    char quote = peek();
    if (quote != '\'' && quote != '"')
      return fail("expected a quoted string", error);
    ++p;
    out.clear();
    while (p < end && *p != quote) {
      if (*p == '\n') // a Python string literal cannot span lines
        break;
      // Escapes never occur in what numpy writes; refusing them keeps the parser trivial.
      if (*p == '\\')
        return fail("escape sequences in strings are not supported", error);
      out.push_back(*p++);
    }
    if (!eat(quote))
      return fail("unterminated string", error);
    return true;
  }

  bool parseBool(bool &out, std::string &error) {
    if (static_cast<size_t>(end - p) >= 4 && std::memcmp(p, "True", 4) == 0) {
      p += 4;
      out = true;
    } else if (static_cast<size_t>(end - p) >= 5 && std::memcmp(p, "False", 5) == 0) {
      p += 5;
      out = false;
    } else {
      return fail("expected True or False", error);
    }
    if (p < end && (std::isalnum(static_cast<unsigned char>(*p)) || *p == '_'))
      return fail("expected True or False", error);
    return true;
  }

  bool parseInt(int64_t &out, std::string &error) {
    if (peek() == '-')
      return fail("negative dimension", error);
    if (peek() < '0' || peek() > '9')
      return fail("expected a non-negative integer dimension", error);
    const char *start = p;
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
      uint64_t d = static_cast<uint64_t>(*p - '0');
      if (v > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - d) / 10)
        return fail("dimension does not fit in int64", error);
      v = v * 10 + d;
      ++p;
    }
    if (p - start > 1 && *start == '0')
      return fail("dimension with a leading zero", error); // not a valid Python 3 integer literal
    if (p < end && (std::isalpha(static_cast<unsigned char>(*p)) || *p == '_' || *p == '.'))
      return fail("dimension is not a plain integer", error);
    out = static_cast<int64_t>(v);
    return true;
  }

  bool parseShape(std::vector<int64_t> &shape, std::string &error) {
    if (!eat('('))
      return fail("expected a tuple", error);
    shape.clear();
    skipSpace();
    if (eat(')'))
      return true; // () : 0-d array
    bool trailingComma = false;
    for (;;) {
      int64_t d;
      if (!parseInt(d, error))
        return false;
      if (shape.size() >= 64)
        return fail("more than 64 dimensions", error);
      shape.push_back(d);
      skipSpace();
      trailingComma = eat(',');
      skipSpace();
      if (eat(')'))
        break;
      if (!trailingComma)
        return fail("expected ',' or ')' in shape tuple", error);
    }
    // In Python "(3)" is the int 3, not a tuple: numpy rejects it, and so do we.
    if (shape.size() == 1 && !trailingComma)
      return fail("'(n)' is not a tuple; a 1-d shape is written '(n,)'", error);
    return true;
  }

  const char *p;
  const char *end;
};

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1)
    s += ",";
  return s + ")";
}

int64_t product(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n))
      return -1;
  }
  return n;
}

uint32_t readLE(const uint8_t *p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

const uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

// Parses everything up to the array bytes. On success `dataOffset` is where they start and `dataBytes` their
// exact size (already checked against `size`).
bool parseHeader(const uint8_t *data, size_t size, NpyArray &meta, size_t &dataOffset, size_t &dataBytes,
                 std::string &error) {
  if (!data && size > 0) {
    error = "null buffer";
    return false;
  }
  if (size < 10 || std::memcmp(data, kMagic, 6) != 0) {
    error = size < 6 || std::memcmp(data, kMagic, 6) != 0 ? "not a .npy file (bad magic)" : "truncated .npy preamble";
    return false;
  }
  uint8_t major = data[6], minor = data[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    error = "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
            " (supported: 1.0, 2.0, 3.0)";
    return false;
  }
  size_t lenBytes = major == 1 ? 2 : 4;
  size_t prefix = 8 + lenBytes;
  if (size < prefix) {
    error = "truncated .npy preamble";
    return false;
  }
  uint64_t headerLen = readLE(data + 8, static_cast<int>(lenBytes));
  if (headerLen > size - prefix) {
    error = "header length " + std::to_string(headerLen) + " runs past the end of the file (" + std::to_string(size) +
            " bytes)";
    return false;
  }
  const char *header = reinterpret_cast<const char *>(data + prefix);
  std::string descr;
  bool fortran = false;
  std::vector<int64_t> shape;
  HeaderParser parser(header, static_cast<size_t>(headerLen));
  if (!parser.parse(descr, fortran, shape, error)) {
    error = "bad .npy header: " + error;
    return false;
  }
  const DTypeInfo *dt = findByDescr(descr, error);
  if (!dt)
    return false;
  if (fortran) {
    error = "fortran_order=True (column-major) arrays are not supported; save np.ascontiguousarray(arr) instead";
    return false;
  }
  int64_t numel = product(shape);
  if (numel < 0) {
    error = "shape " + shapeString(shape) + " has too many elements";
    return false;
  }
  uint64_t bytes;
  if (__builtin_mul_overflow(static_cast<uint64_t>(numel), static_cast<uint64_t>(dt->size), &bytes) ||
      bytes > std::numeric_limits<size_t>::max()) {
    error = "shape " + shapeString(shape) + " of " + dt->name + " is too large";
    return false;
  }
  size_t offset = prefix + static_cast<size_t>(headerLen);
  size_t have = size - offset;
  if (bytes != have) {
    error = "shape " + shapeString(shape) + " of " + dt->name + " needs " + std::to_string(bytes) +
            " data bytes but the file has " + std::to_string(have) +
            (bytes > have ? " (truncated file)" : " (trailing bytes)");
    return false;
  }
  meta.dtype = dt->name;
  meta.shape = std::move(shape);
  dataOffset = offset;
  dataBytes = static_cast<size_t>(bytes);
  return true;
}

} // namespace

int64_t NpyArray::numel() const { return product(shape); }

size_t npyItemSize(const std::string &dtype) {
  const DTypeInfo *d = findByName(dtype);
  return d ? d->size : 0;
}

bool parseNpy(const uint8_t *data, size_t size, NpyArray &out, std::string &error) {
  NpyArray a;
  size_t offset = 0, bytes = 0;
  if (!parseHeader(data, size, a, offset, bytes, error))
    return false;
  a.data.assign(data + offset, data + offset + bytes);
  out = std::move(a);
  return true;
}

bool readNpy(const std::string &path, NpyArray &out, std::string &error) {
  std::vector<uint8_t> bytes;
  if (!readWholeFile(path, bytes, error))
    return false;
  NpyArray a;
  size_t offset = 0, dataBytes = 0;
  if (!parseHeader(bytes.data(), bytes.size(), a, offset, dataBytes, error)) {
    error = path + ": " + error;
    return false;
  }
  // Reuse the file buffer for the data instead of copying it (halves peak memory for large arrays).
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(offset));
  a.data = std::move(bytes);
  out = std::move(a);
  return true;
}

bool serializeNpy(const NpyArray &array, std::vector<uint8_t> &out, std::string &error) {
  const DTypeInfo *dt = findByName(array.dtype);
  if (!dt) {
    error = "cannot write dtype '" + array.dtype + "'";
    return false;
  }
  if (array.shape.size() > 64) {
    error = "more than 64 dimensions"; // the reader's limit (numpy's is 32 or 64 depending on version)
    return false;
  }
  int64_t numel = array.numel();
  uint64_t bytes;
  if (numel < 0 || __builtin_mul_overflow(static_cast<uint64_t>(numel), static_cast<uint64_t>(dt->size), &bytes)) {
    error = "invalid shape " + shapeString(array.shape);
    return false;
  }
  if (bytes != array.data.size()) {
    error = "shape " + shapeString(array.shape) + " of " + dt->name + " needs " + std::to_string(bytes) +
            " bytes but the array holds " + std::to_string(array.data.size());
    return false;
  }
  std::string descr = std::string(dt->size == 1 ? "|" : "<") + dt->kind + std::to_string(dt->size);
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shapeString(array.shape) + ", }";
  // Pad with spaces so that preamble + header (ending in '\n') is a multiple of 64: aligned data, as numpy does.
  auto padded = [&](size_t prefix) {
    size_t total = prefix + dict.size() + 1;
    return dict + std::string((64 - total % 64) % 64, ' ') + "\n";
  };
  size_t prefix = 10; // version 1.0: uint16 header length
  std::string header = padded(prefix);
  if (header.size() > 65535) {
    prefix = 12; // version 2.0: uint32 header length
    header = padded(prefix);
  }
  size_t headerLen = header.size();
  out.clear();
  out.reserve(prefix + headerLen + array.data.size());
  out.insert(out.end(), kMagic, kMagic + 6);
  out.push_back(prefix == 10 ? 1 : 2);
  out.push_back(0);
  for (size_t i = 0; i < prefix - 8; ++i)
    out.push_back(static_cast<uint8_t>(headerLen >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), array.data.begin(), array.data.end());
  return true;
}

bool writeNpy(const std::string &path, const NpyArray &array, std::string &error) {
  std::vector<uint8_t> bytes;
  if (!serializeNpy(array, bytes, error))
    return false;
  std::FILE *f = std::fopen(path.c_str(), "wb");
  if (!f) {
    error = "cannot create " + path + ": " + std::strerror(errno);
    return false;
  }
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok) {
    std::remove(path.c_str()); // do not leave a truncated file that a later read would half-trust
    error = "write error on " + path;
    return false;
  }
  return true;
}

} // namespace qrt
