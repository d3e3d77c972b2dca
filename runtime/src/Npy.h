//===- Npy.h - read and write NumPy .npy arrays ----------------------------===//
//
// The runtime exchanges tensors with Python (reference activations, golden outputs, calibration data) as .npy
// files. The reader is strict, because these files come from outside: format versions 1.0/2.0/3.0, a header
// that must be exactly the dict numpy writes ('descr', 'fortran_order', 'shape'), little-endian or byte-sized
// dtypes only, C order only, and a data size that must equal shape x itemsize (computed without overflow).
// Anything else gives a message naming the problem. The writer produces version 1.0 files (2.0 when the header
// would not fit in 64 KiB) padded to 64 bytes, as numpy.save does.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_RUNTIME_NPY_H
#define QOPT_RUNTIME_NPY_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qrt {

struct NpyArray {
  // Canonical element type name: float32, float64, float16, int64, int32, int16, int8, uint64, uint32, uint16,
  // uint8 or bool.
  std::string dtype;
  std::vector<int64_t> shape; // empty: a 0-d array holding one element
  std::vector<uint8_t> data;  // little-endian elements in C (row-major) order

  // Element count (1 for 0-d), or -1 if a dimension is negative or the product overflows.
  int64_t numel() const;
};

// Bytes per element of a canonical dtype name, 0 if the name is unknown.
size_t npyItemSize(const std::string &dtype);

// On failure these return false with `error` set and leave `out` unchanged.
bool readNpy(const std::string &path, NpyArray &out, std::string &error);
bool parseNpy(const uint8_t *data, size_t size, NpyArray &out, std::string &error);

// Checks that dtype is known, dims are non-negative and data.size() == numel * itemsize before writing.
bool writeNpy(const std::string &path, const NpyArray &array, std::string &error);
bool serializeNpy(const NpyArray &array, std::vector<uint8_t> &out, std::string &error);

} // namespace qrt

#endif // QOPT_RUNTIME_NPY_H
