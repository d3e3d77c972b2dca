//===- Tensor.h - MLIR-free tensors, dtypes and kernel attributes ----------===//
//
// The vocabulary shared by the CPU kernels, the runtime and the compiler's planner: element types (numbered as
// ONNX's TensorProto.DataType so mapping is the identity), shapes, non-owning tensor views and the small attribute
// dictionary a kernel launch carries. Nothing here depends on MLIR.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_NUMERICS_TENSOR_H
#define QOPT_NUMERICS_TENSOR_H

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace qopt::num {

// memcpy that accepts empty ranges, whose pointers may be null (an empty tensor has no buffer); memcpy itself
// must not be given null even for 0 bytes.
inline void copyBytes(void *dst, const void *src, size_t bytes) {
  if (bytes)
    std::memcpy(dst, src, bytes);
}

enum class DType : uint8_t {
  Undefined = 0,
  F32 = 1,
  U8 = 2,
  I8 = 3,
  U16 = 4,
  I16 = 5,
  I32 = 6,
  I64 = 7,
  Bool = 9,
  F16 = 10,
  F64 = 11,
  U32 = 12,
  U64 = 13,
  BF16 = 16,
  F8E4M3FN = 17, // FP8 weight codes (Fp8.h): storage only, read by the kernels that take them
  F8E5M2 = 19,
};

// Bytes per element, 0 for Undefined or an unknown code (callers reject those).
size_t dtypeSize(DType t);
const char *dtypeName(DType t);
bool isValidDType(int code);
bool isFloat(DType t);

using Shape = std::vector<int64_t>;

// Element count of `shape`; -1 if any dim is negative or the product overflows int64.
int64_t numElements(const Shape &shape);

// The most elements one tensor may have: its byte size (8-byte elements at most) then stays below 2^62, so sizes
// computed from it cannot overflow. Every kernel's inferred result is checked against it (inferShapes).
constexpr int64_t kMaxElements = int64_t(1) << 59;
// Whether every dim is non-negative and the product of the non-zero dims is at most kMaxElements: the bound the
// runtime's loader applies to every value, so an empty [0, 2^40, 2^40] is refused too (kernels compute strides
// and row products from the non-zero dims).
bool withinElementLimit(const Shape &shape);

// Overflow-checked int64 arithmetic for shape functions, whose operands (pads, starts, repeats, shape tensors)
// come from model files: false when the exact result does not fit.
inline bool checkedAdd(int64_t a, int64_t b, int64_t &out) { return !__builtin_add_overflow(a, b, &out); }
inline bool checkedSub(int64_t a, int64_t b, int64_t &out) { return !__builtin_sub_overflow(a, b, &out); }
inline bool checkedMul(int64_t a, int64_t b, int64_t &out) { return !__builtin_mul_overflow(a, b, &out); }
std::string shapeStr(const Shape &shape);

// A non-owning view. `data` is null during shape-only evaluation (the planner's dry run).
struct Tensor {
  DType dtype = DType::Undefined;
  Shape shape;
  void *data = nullptr;

  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  int64_t numel() const { return numElements(shape); }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtypeSize(dtype); }
  template <typename T> T *as() const { return static_cast<T *>(data); }
};

// IEEE binary16 bit patterns <-> float (exact one way, round to nearest even the other).
float halfToFloat(uint16_t h);
uint16_t floatToHalf(float f);
// bfloat16 bit patterns <-> float (exact one way, round to nearest even the other; overflow gives infinity, NaN
// stays NaN).
float bf16ToFloat(uint16_t h);
uint16_t floatToBf16(float f);
// dst[i] = bf16ToFloat(src[i]) for i < n (bfloat16 weights and KV caches read on the CPU).
void bf16ToFloatRow(const uint16_t *src, int64_t n, float *dst);
// dst[i] = halfToFloat(src[i]) for i < n, bit for bit, 16 at a time by the hardware conversion where the CPU has
// AVX-512 (float16 weights and KV caches read on the CPU).
void halfToFloatRow(const uint16_t *src, int64_t n, float *dst);
// Whether this CPU runs the numerics' AVX-512 paths (AVX-512 F, BW and VL, with AVX2 and F16C): checked once.
bool cpuHasAvx512();

// Reads element i of an integer tensor (any integer or bool dtype) as int64.
int64_t loadInt(const Tensor &t, int64_t i);
// All elements of an integer tensor as int64.
std::vector<int64_t> readInts(const Tensor &t);
// Reads element i of any numeric tensor as double.
double loadDouble(const Tensor &t, int64_t i);

enum class AttrKind : uint8_t { Int = 1, Float = 2, String = 3, Ints = 4, Floats = 5 };

struct Attr {
  std::string key;
  AttrKind kind = AttrKind::Int;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<double> floats;
};

class Attrs {
public:
  void add(Attr a) { list.push_back(std::move(a)); } // as read (find and the getters see a key's first entry)
  // The setters replace a key's entry, or add one.
  void setInt(std::string key, int64_t v);
  void setFloat(std::string key, double v);
  void setString(std::string key, std::string v);
  void setInts(std::string key, std::vector<int64_t> v);
  void setFloats(std::string key, std::vector<double> v);

  const Attr *find(std::string_view key) const;
  int64_t getInt(std::string_view key, int64_t dflt) const;
  double getFloat(std::string_view key, double dflt) const;
  std::string_view getString(std::string_view key, std::string_view dflt) const;
  // Returns false if absent; `out` untouched then.
  bool getInts(std::string_view key, std::vector<int64_t> &out) const;
  bool getFloats(std::string_view key, std::vector<double> &out) const;
  const std::vector<Attr> &all() const { return list; }

private:
  void set(Attr a);
  std::vector<Attr> list;
};

} // namespace qopt::num

#endif // QOPT_NUMERICS_TENSOR_H
