//===- Tensor.cpp - dtypes, shapes and attributes --------------------------===//
#include "qopt/Numerics/Tensor.h"

#include "qopt/Numerics/Fp8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace qopt::num {

size_t dtypeSize(DType t) {
  switch (t) {
  case DType::F32: case DType::I32: case DType::U32: return 4;
  case DType::U8: case DType::I8: case DType::Bool: case DType::F8E4M3FN: case DType::F8E5M2: return 1;
  case DType::U16: case DType::I16: case DType::F16: case DType::BF16: return 2;
  case DType::I64: case DType::F64: case DType::U64: return 8;
  case DType::Undefined: return 0;
  }
  return 0;
}

const char *dtypeName(DType t) {
  switch (t) {
  case DType::F32: return "float32";
  case DType::U8: return "uint8";
  case DType::I8: return "int8";
  case DType::U16: return "uint16";
  case DType::I16: return "int16";
  case DType::I32: return "int32";
  case DType::I64: return "int64";
  case DType::Bool: return "bool";
  case DType::F16: return "float16";
  case DType::F64: return "float64";
  case DType::U32: return "uint32";
  case DType::U64: return "uint64";
  case DType::BF16: return "bfloat16";
  case DType::F8E4M3FN: return "float8e4m3fn";
  case DType::F8E5M2: return "float8e5m2";
  case DType::Undefined: return "undefined";
  }
  return "unknown";
}

bool isValidDType(int code) {
  return code >= 0 && code <= 255 && code != 0 && dtypeSize(static_cast<DType>(code)) != 0;
}

bool isFloat(DType t) {
  return t == DType::F32 || t == DType::F64 || t == DType::F16 || t == DType::BF16;
}

int64_t numElements(const Shape &shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0)
      return -1;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      return -1;
    n *= d;
  }
  return n;
}

bool withinElementLimit(const Shape &shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d && n > kMaxElements / d))
      return false;
    n *= d ? d : 1;
  }
  return true;
}

std::string shapeStr(const Shape &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += shape[i] < 0 ? std::string("?") : std::to_string(shape[i]);
  }
  return s + "]";
}

// double -> int64 truncating toward zero; NaN gives 0 and out-of-range values saturate (a plain cast is UB).
static int64_t doubleToInt(double d) {
  if (std::isnan(d))
    return 0;
  if (d >= 9.2233720368547758e18)
    return std::numeric_limits<int64_t>::max();
  if (d <= -9.2233720368547758e18)
    return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(d);
}

float halfToFloat(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else { // subnormal: renormalize
      exp = 127 - 15 + 1;
      while (!(man & 0x400)) { man <<= 1; --exp; }
      bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

#if defined(__x86_64__) || defined(_M_X64)
// 16 values per vcvtph2ps, which converts every finite value and infinity exactly, as halfToFloat does; a block
// holding a NaN goes through halfToFloat (the instruction would set a signalling NaN's quiet bit).
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void halfToFloatRowAvx512(const uint16_t *src, int64_t n,
                                                                             float *dst) {
  const __m256i expMask = _mm256_set1_epi16(0x7c00), manMask = _mm256_set1_epi16(0x03ff);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(src + i));
    const __mmask16 nan = _mm256_cmpeq_epi16_mask(_mm256_and_si256(h, expMask), expMask) &
                          _mm256_test_epi16_mask(h, manMask);
    if (nan) {
      for (int j = 0; j < 16; ++j)
        dst[i + j] = halfToFloat(src[i + j]);
      continue;
    }
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h));
  }
  for (; i < n; ++i)
    dst[i] = halfToFloat(src[i]);
}
#endif

bool cpuHasAvx512() {
#if defined(__x86_64__) || defined(_M_X64)
  static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
                             __builtin_cpu_supports("f16c");
  return avx512;
#else
  return false;
#endif
}

void halfToFloatRow(const uint16_t *src, int64_t n, float *dst) {
#if defined(__x86_64__) || defined(_M_X64)
  if (cpuHasAvx512()) {
    halfToFloatRowAvx512(src, n, dst);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i)
    dst[i] = halfToFloat(src[i]);
}

float bf16ToFloat(uint16_t h) {
  const uint32_t x = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

void bf16ToFloatRow(const uint16_t *src, int64_t n, float *dst) {
  for (int64_t i = 0; i < n; ++i)
    dst[i] = bf16ToFloat(src[i]);
}

uint16_t floatToBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) // NaN: quiet, the sign and top payload kept
    return static_cast<uint16_t>((x >> 16) | 0x40);
  x += 0x7fffu + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

// Round to nearest even; overflow gives infinity, NaN stays NaN.
uint16_t floatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t man = x & 0x7fffffu;
  if (((x >> 23) & 0xff) == 0xff) // inf / nan
    return static_cast<uint16_t>(sign | 0x7c00u | (man ? 0x200u : 0u));
  if (exp >= 31)
    return static_cast<uint16_t>(sign | 0x7c00u);
  if (exp <= 0) {
    if (exp < -10)
      return static_cast<uint16_t>(sign);
    man |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - exp);
    uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1)))
      ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = (static_cast<uint32_t>(exp) << 10) | (man >> 13), rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
    ++h; // may carry into the exponent, which is the correct rounding
  return static_cast<uint16_t>(sign | h);
}

int64_t loadInt(const Tensor &t, int64_t i) {
  switch (t.dtype) {
  case DType::I64: return t.as<int64_t>()[i];
  case DType::I32: return t.as<int32_t>()[i];
  case DType::I16: return t.as<int16_t>()[i];
  case DType::I8: return t.as<int8_t>()[i];
  case DType::U8: case DType::Bool: return t.as<uint8_t>()[i];
  case DType::U16: return t.as<uint16_t>()[i];
  case DType::U32: return t.as<uint32_t>()[i];
  case DType::U64: return static_cast<int64_t>(t.as<uint64_t>()[i]);
  default: return doubleToInt(loadDouble(t, i));
  }
}

std::vector<int64_t> readInts(const Tensor &t) {
  std::vector<int64_t> v(static_cast<size_t>(std::max<int64_t>(t.numel(), 0)));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = loadInt(t, static_cast<int64_t>(i));
  return v;
}

double loadDouble(const Tensor &t, int64_t i) {
  switch (t.dtype) {
  case DType::F32: return t.as<float>()[i];
  case DType::F64: return t.as<double>()[i];
  case DType::F16: return halfToFloat(t.as<uint16_t>()[i]);
  case DType::F8E4M3FN: return fp8ToFloat(t.as<uint8_t>()[i], Fp8Format::E4M3FN);
  case DType::F8E5M2: return fp8ToFloat(t.as<uint8_t>()[i], Fp8Format::E5M2);
  case DType::BF16: return bf16ToFloat(t.as<uint16_t>()[i]);
  default: return static_cast<double>(loadInt(t, i));
  }
}

void Attrs::set(Attr a) {
  for (Attr &old : list)
    if (old.key == a.key) {
      old = std::move(a);
      return;
    }
  list.push_back(std::move(a));
}
void Attrs::setInt(std::string key, int64_t v) {
  Attr a; a.key = std::move(key); a.kind = AttrKind::Int; a.i = v; set(std::move(a));
}
void Attrs::setFloat(std::string key, double v) {
  Attr a; a.key = std::move(key); a.kind = AttrKind::Float; a.f = v; set(std::move(a));
}
void Attrs::setString(std::string key, std::string v) {
  Attr a; a.key = std::move(key); a.kind = AttrKind::String; a.s = std::move(v); set(std::move(a));
}
void Attrs::setInts(std::string key, std::vector<int64_t> v) {
  Attr a; a.key = std::move(key); a.kind = AttrKind::Ints; a.ints = std::move(v); set(std::move(a));
}
void Attrs::setFloats(std::string key, std::vector<double> v) {
  Attr a; a.key = std::move(key); a.kind = AttrKind::Floats; a.floats = std::move(v); set(std::move(a));
}

const Attr *Attrs::find(std::string_view key) const {
  for (const Attr &a : list)
    if (a.key == key)
      return &a;
  return nullptr;
}
int64_t Attrs::getInt(std::string_view key, int64_t dflt) const {
  const Attr *a = find(key);
  if (!a) return dflt;
  return a->kind == AttrKind::Float ? doubleToInt(a->f) : a->i;
}
double Attrs::getFloat(std::string_view key, double dflt) const {
  const Attr *a = find(key);
  if (!a) return dflt;
  return a->kind == AttrKind::Int ? static_cast<double>(a->i) : a->f;
}
std::string_view Attrs::getString(std::string_view key, std::string_view dflt) const {
  const Attr *a = find(key);
  return a && a->kind == AttrKind::String ? std::string_view(a->s) : dflt;
}
bool Attrs::getInts(std::string_view key, std::vector<int64_t> &out) const {
  const Attr *a = find(key);
  if (!a || a->kind != AttrKind::Ints) return false;
  out = a->ints;
  return true;
}
bool Attrs::getFloats(std::string_view key, std::vector<double> &out) const {
  const Attr *a = find(key);
  if (!a || a->kind != AttrKind::Floats) return false;
  out = a->floats;
  return true;
}

} // namespace qopt::num
