//===- Crc32.cpp - CRC-32 (IEEE 802.3) for model.bin checksums -------------===//
//
// Slicing-by-8 so that checksumming a multi-GB weights section at load time costs about as much as reading it.
//
//===----------------------------------------------------------------------===//
#include "qopt/Format/ModelBin.h"

#include <cstring>

namespace qopt::format {
namespace {
struct Tables {
  uint32_t t[8][256];
  Tables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k)
        c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s)
        t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
};
const Tables &tables() {
  static const Tables tb;
  return tb;
}
} // namespace

uint32_t crc32(const void *data, uint64_t size, uint32_t seed) {
  const auto &t = tables().t;
  const auto *p = static_cast<const uint8_t *>(data);
  uint32_t c = ~seed;
  while (size >= 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
        t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    p += 8;
    size -= 8;
  }
  while (size--)
    c = t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

} // namespace qopt::format
