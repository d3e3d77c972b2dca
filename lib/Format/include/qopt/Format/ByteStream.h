//===- ByteStream.h - bounds-checked little-endian encoding ----------------===//
//
// The section payloads of model.bin are written with ByteWriter and read with ByteReader. The reader never reads
// past its buffer: every read checks the remaining size and latches a failure, so a loader can decode a whole
// record and test ok() once. Counts read from a file are checked against the bytes left before anything is sized
// from them.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_FORMAT_BYTESTREAM_H
#define QOPT_FORMAT_BYTESTREAM_H

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace qopt::format {

class ByteWriter {
public:
  void u8(uint8_t v) { bytes.push_back(v); }
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void i64(int64_t v) { raw(&v, 8); }
  void f64(double v) { raw(&v, 8); }
  void str(const std::string &s) {
    u32(static_cast<uint32_t>(s.size()));
    raw(s.data(), s.size());
  }
  void raw(const void *p, size_t n) {
    const auto *b = static_cast<const uint8_t *>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
  std::vector<uint8_t> bytes;
};

class ByteReader {
public:
  ByteReader(const uint8_t *data, uint64_t size) : p(data), left(size) {}
  bool ok() const { return !failed; }
  uint64_t remaining() const { return left; }
  uint8_t u8() { uint8_t v = 0; raw(&v, 1); return v; }
  uint32_t u32() { uint32_t v = 0; raw(&v, 4); return v; }
  uint64_t u64() { uint64_t v = 0; raw(&v, 8); return v; }
  int64_t i64() { int64_t v = 0; raw(&v, 8); return v; }
  double f64() { double v = 0; raw(&v, 8); return v; }
  std::string str() {
    uint32_t n = u32();
    if (failed || n > left) { failed = true; return {}; }
    std::string s(reinterpret_cast<const char *>(p), n);
    p += n;
    left -= n;
    return s;
  }
  // A count of records that each take at least `minRecordBytes`; fails if the buffer cannot hold them.
  uint32_t count(uint64_t minRecordBytes) {
    uint32_t n = u32();
    if (failed || (minRecordBytes && n > left / minRecordBytes)) { failed = true; return 0; }
    return n;
  }
  // The next n bytes in place (null, and a latched failure, if fewer remain).
  const uint8_t *take(uint64_t n) {
    if (failed || n > left) { failed = true; return nullptr; }
    const uint8_t *at = p;
    p += n;
    left -= n;
    return at;
  }
  void raw(void *out, uint64_t n) {
    if (failed || n > left) { failed = true; std::memset(out, 0, n); return; }
    std::memcpy(out, p, n);
    p += n;
    left -= n;
  }

private:
  const uint8_t *p;
  uint64_t left;
  bool failed = false;
};

} // namespace qopt::format

#endif // QOPT_FORMAT_BYTESTREAM_H
