//===- ReadFile.h - read a whole file into memory --------------------------===//
#ifndef QRT_READFILE_H
#define QRT_READFILE_H

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace qrt {

// Reads `path` into `bytes`; on failure returns false with a message naming the file.
inline bool readWholeFile(const std::string &path, std::vector<uint8_t> &bytes, std::string &error) {
  std::FILE *f = std::fopen(path.c_str(), "rb");
  if (!f) {
    error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  bytes.clear();
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0)
    bytes.insert(bytes.end(), buf, buf + n);
  bool readError = std::ferror(f) != 0;
  std::fclose(f);
  if (readError) {
    error = "read error on " + path;
    return false;
  }
  return true;
}

} // namespace qrt

#endif // QRT_READFILE_H
