//===- FuzzNpy.cpp - fuzz qrun's .npy reader --------------------------------===//
//
// Any bytes go to parseNpy. An accepted array must be self-consistent (data size = elements x item size) and
// survive a round trip: serializing it and parsing the result gives the same dtype, shape and bytes.
//
//===----------------------------------------------------------------------===//
#include "Npy.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  qrt::NpyArray a;
  std::string error;
  if (!qrt::parseNpy(data, size, a, error)) {
    if (error.empty())
      std::abort(); // every rejection names its reason
    return 0;
  }
  int64_t n = a.numel();
  if (n < 0 || a.data.size() != static_cast<uint64_t>(n) * qrt::npyItemSize(a.dtype))
    std::abort();
  std::vector<uint8_t> bytes;
  if (!qrt::serializeNpy(a, bytes, error))
    std::abort();
  qrt::NpyArray b;
  if (!qrt::parseNpy(bytes.data(), bytes.size(), b, error) || b.dtype != a.dtype || b.shape != a.shape ||
      b.data != a.data)
    std::abort();
  return 0;
}
