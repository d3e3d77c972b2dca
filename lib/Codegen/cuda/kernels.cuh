// qopt CUDA kernel templates. CudaKernels.cpp instantiates them per launch, with the launch's attributes as
// compile-time constants, in `extern "C"` wrappers named by the instantiation. Each template documents its operands
// (indices into QParams::t, inputs first) and the geometry it expects. They compute in float32 with the CPU
// reference kernels' formulas (lib/Numerics/Kernels); sums run in another order, so results agree to rounding.

//===-- element copies: gather, transpose, kv_append, kv_advance -----------===//

// gather: t0 data [..., V (dim AXIS), ...], t1 indices (int64 or int32, negative ones from the end), t2 out
// [data dims before AXIS, indices..., data dims after AXIS]. Flat over t2.
template <typename E, typename I, int AXIS> __device__ void qGather(const QParams &p) {
  const QTensor &data = p.t[0], &ind = p.t[1], &out = p.t[2];
  const i64 n = qNumel(out), i = qFlatIndex();
  if (i >= n)
    return;
  i64 inner = 1;
  for (int d = AXIS + 1; d < data.rank; ++d)
    inner *= data.shape[d];
  const i64 V = data.shape[AXIS], ids = qNumel(ind);
  const i64 col = i % inner, j = (i / inner) % ids, outer = i / (inner * ids);
  i64 id = static_cast<i64>(qPtr<const I>(ind)[j]);
  if (id < 0)
    id += V;
  if (id < 0 || id >= V) {
    qFail(p, QOPT_STATUS_INDEX_RANGE);
    qPtr<E>(out)[i] = E(0);
    return;
  }
  qPtr<E>(out)[i] = qPtr<const E>(data)[(outer * V + id) * inner + col];
}

// Element i of `out` (out = in with dims permuted by PERM): its offset in `in`, in index type I (unsigned 32-bit
// when the tensor allows: a 64-bit division is a long instruction sequence, and this runs once per element). VEC:
// both tensors seen with their last dim in units of VEC elements (a permutation that keeps the last dim).
template <typename I, int RANK, int VEC = 1>
__device__ __forceinline__ I qTransposeSource(const QTensor &in, const QTensor &out, const int (&perm)[RANK], I i) {
  I inStride[RANK];
  I s = 1;
  for (int d = RANK - 1; d >= 0; --d) {
    inStride[d] = s;
    s *= static_cast<I>(d == RANK - 1 ? in.shape[d] / VEC : in.shape[d]);
  }
  I rem = i, src = 0;
  for (int d = RANK - 1; d >= 0; --d) {
    const I size = static_cast<I>(d == RANK - 1 ? out.shape[d] / VEC : out.shape[d]), idx = rem % size;
    rem /= size;
    src += idx * inStride[perm[d]];
  }
  return src;
}

// transpose: t0 in, t1 out = in with dims permuted by PERM. Flat over t1.
template <typename E, int RANK> __device__ void qTranspose(const QParams &p, const int (&perm)[RANK]) {
  const QTensor &in = p.t[0], &out = p.t[1];
  const i64 n = qNumel(out), i = qFlatIndex();
  if (i >= n)
    return;
  const i64 src = n <= 0xffffffffLL
                      ? static_cast<i64>(qTransposeSource<unsigned>(in, out, perm, static_cast<unsigned>(i)))
                      : qTransposeSource<i64>(in, out, perm, i);
  qPtr<E>(out)[i] = qPtr<const E>(in)[src];
}

// transpose with PERM keeping the last dim, whose bytes are a multiple of 16: 16-byte vectors copied whole (a
// prompt's heads split and merged around attention: [B, S, H, D] <-> [B, H, S, D]; per element, qTranspose moved
// them at about a quarter of the memory bandwidth). Flat over t1's vectors.
template <typename E, int RANK> __device__ void qTransposeRows(const QParams &p, const int (&perm)[RANK]) {
  constexpr int V = 16 / sizeof(E);
  const QTensor &in = p.t[0], &out = p.t[1];
  const i64 n = qNumel(out) / V, i = qFlatIndex();
  if (i >= n)
    return;
  const i64 src = n <= 0xffffffffLL
                      ? static_cast<i64>(qTransposeSource<unsigned, RANK, V>(in, out, perm, static_cast<unsigned>(i)))
                      : qTransposeSource<i64, RANK, V>(in, out, perm, i);
  reinterpret_cast<uint4 *>(qPtr<E>(out))[i] = reinterpret_cast<const uint4 *>(qPtr<const E>(in))[src];
}

// float16 bits -> float32 (exact), without cuda_fp16.h.
__device__ __forceinline__ float qHalfToFloat(unsigned short h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}

// A product's scales (operand 2) read as floats: float32, or float16 (HS 1) where an int3/int4 weight's scales are
// all float16 values (QuantFormat.h).
template <int HS> struct QScales {
  const void *data;
  __device__ __forceinline__ float operator[](i64 i) const {
    return HS ? qHalfToFloat(static_cast<const unsigned short *>(data)[i]) : static_cast<const float *>(data)[i];
  }
  __device__ __forceinline__ QScales operator+(i64 i) const {
    return {HS ? static_cast<const void *>(static_cast<const unsigned short *>(data) + i)
               : static_cast<const void *>(static_cast<const float *>(data) + i)};
  }
};

// FP8 codes (FP8 1: E4M3FN, 2: E5M2) in the high bytes of a float16 pair (low bytes zero) as the float16s of their
// values without a conversion instruction (sm_80 has none): an E5M2 code is the top byte of its float16 as it is;
// an E4M3 code's exponent and mantissa moved into a float16's give its value times 2^-8 (subnormals included). NaN
// codes (which weights and caches hold only for NaN inputs) become finite values.
template <int FP8> __device__ __forceinline__ unsigned qFp8HighBytesToHalf2(unsigned b) {
  return FP8 == 2 ? b : (b & 0x80008000u) | ((b >> 1) & 0x3F803F80u);
}

// An FP8 code's value (FP8 1: E4M3FN, 2: E5M2), exact.
template <int FP8> __device__ __forceinline__ float qFp8ToFloat(u8 c) {
  return qHalfToFloat(static_cast<unsigned short>(qFp8HighBytesToHalf2<FP8>(static_cast<unsigned>(c) << 8))) *
         (FP8 == 1 ? 256.0f : 1.0f);
}

// float32 -> an FP8 code (FP8 1: E4M3FN, 2: E5M2), rounded to nearest even and saturated to the format's largest
// finite value (infinities too; NaN becomes the NaN code): lib/Numerics/Fp8.cpp's floatToFp8 with saturation, bit
// for bit. sm_89 and later: the conversion instruction (cvt.rn.satfinite, which rounds and saturates so; NaN, whose
// sign it need not keep, takes the path below). sm_80 has none: integer and exact float steps, the value in units
// of its exponent's last mantissa place, a * 2^(MAN - e), a power-of-two scaling (exact), rounded to even by rintf.
template <int FP8> __device__ __forceinline__ u8 qFloatToFp8(float v) {
#if __CUDA_ARCH__ >= 890
  if (v == v) {
    unsigned short pair;
    if constexpr (FP8 == 2)
      asm("cvt.rn.satfinite.e5m2x2.f32 %0, %1, %2;" : "=h"(pair) : "f"(0.0f), "f"(v));
    else
      asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(pair) : "f"(0.0f), "f"(v));
    return static_cast<u8>(pair & 0xFFu); // the second source's code is the low byte
  }
#endif
  constexpr int MAN = FP8 == 2 ? 2 : 3, BIAS = FP8 == 2 ? 15 : 7, EMIN = 1 - BIAS, EMAX_FIELD = FP8 == 2 ? 31 : 15;
  constexpr int MAX_CODE = FP8 == 2 ? 0x7B : 0x7E;
  const unsigned bits = __float_as_uint(v), sign = (bits >> 24) & 0x80u;
  const float a = fabsf(v);
  if (a != a)
    return static_cast<u8>(sign | 0x7Fu);
  if (a == 0.0f)
    return static_cast<u8>(sign);
  int e = static_cast<int>((bits >> 23) & 0xFFu) - 127; // a's leading bit (a float subnormal: below EMIN anyway)
  e = e < EMIN ? EMIN : e;
  if (a > 3.0e38f) // infinity (and the largest floats, far above every format's range): saturated
    return static_cast<u8>(sign | MAX_CODE);
  int units = static_cast<int>(rintf(a * __uint_as_float(static_cast<unsigned>(127 + MAN - e) << 23)));
  if (units == 2 << MAN) { // rounded up to the next binade
    units = 1 << MAN;
    ++e;
  }
  if (units < (1 << MAN)) // subnormal, or zero after rounding
    return static_cast<u8>(sign | static_cast<unsigned>(units));
  const int field = e + BIAS, code = (field << MAN) | (units - (1 << MAN));
  return static_cast<u8>(sign | static_cast<unsigned>(field > EMAX_FIELD || code > MAX_CODE ? MAX_CODE : code));
}

// W8A8's activation formats (matmul_q's act_fp8 and act_int8): 1 FP8 E4M3FN, 2 FP8 E5M2 (the weights' format), and
// kActInt8, int8 (symmetric, [-127, 127]).
constexpr int kActInt8 = 3;
// The format's largest value: what max |row| is divided by for a row's scale.
template <int F> __device__ __forceinline__ float qActTop() {
  return F == kActInt8 ? 127.0f : F == 2 ? 57344.0f : 448.0f;
}
// v / scale rounded to the format and back, times scale: the reference's expression, so the same float. int8 as
// quant::roundToInt8, to nearest even and clamped (NaN to 0). qActCode: the code's value alone (exact in float16;
// the products take it and multiply by the scale at the end).
template <int F> __device__ __forceinline__ float qActCode(float v, float scale) {
  if (F == kActInt8) {
    const float r = rintf(v / scale);
    return r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r == r ? r : 0.0f;
  }
  const u8 c = qFloatToFp8<F == kActInt8 ? 1 : F>(v / scale);
  return (c & 0x7F) == 0x7F ? __int_as_float(0x7fffffff) : qFp8ToFloat<F == kActInt8 ? 1 : F>(c);
}
template <int F> __device__ __forceinline__ float qActRound(float v, float scale) {
  return qActCode<F>(v, scale) * scale;
}

// float32 -> float16, rounded to nearest even, saturated to the largest finite half (NaN stays NaN).
__device__ __forceinline__ unsigned short qFloatToHalf(float f) {
  if (!(fabsf(f) <= 65504.0f) && f == f)
    f = copysignf(65504.0f, f);
  unsigned short h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

// The module's 16-bit float, the type of the tensor cores' operands, of 16-bit weights (matmul_q's bits 16, the
// embedding tables) and of a 16-bit KV cache: float16, or bfloat16 in a module compiled for `--act-dtype=bf16`
// (QOPT_BF16 1: float32's range, 8 significant bits). qFloatToOp rounds to nearest even; float16 saturates to its
// largest finite value (as the CPU rounds a float16 cache), bfloat16 has float32's range.
#ifndef QOPT_BF16
#define QOPT_BF16 0
#endif
__device__ __forceinline__ float qOpToFloat(unsigned short h) {
#if QOPT_BF16
  return __uint_as_float(static_cast<unsigned>(h) << 16);
#else
  return qHalfToFloat(h);
#endif
}
__device__ __forceinline__ unsigned short qFloatToOp(float f) {
#if QOPT_BF16
  unsigned short h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
#else
  return qFloatToHalf(f);
#endif
}
// The largest finite value of the module's 16-bit float.
constexpr float kOpMax = QOPT_BF16 ? 3.3895313892515355e38f : 65504.0f;

// A KV cache's elements as float32 and back: float32 itself, or the module's 16-bit float (--kv-cache=f16 or bf16;
// stored rounded to nearest even, float16 saturated, as the CPU reference stores them).
__device__ __forceinline__ float qToFloat(float v) { return v; }
__device__ __forceinline__ float qToFloat(unsigned short h) { return qOpToFloat(h); }
__device__ __forceinline__ void qStoreFloat(float *p, float v) { *p = v; }
__device__ __forceinline__ void qStoreFloat(unsigned short *p, float v) { *p = qFloatToOp(v); }
__device__ __forceinline__ float4 qLoadFloat4(const float *p) { return *reinterpret_cast<const float4 *>(p); }
__device__ __forceinline__ float4 qLoadFloat4(const unsigned short *p) {
  const uint2 w = *reinterpret_cast<const uint2 *>(p);
  return make_float4(qOpToFloat(static_cast<unsigned short>(w.x & 0xFFFFu)),
                     qOpToFloat(static_cast<unsigned short>(w.x >> 16)),
                     qOpToFloat(static_cast<unsigned short>(w.y & 0xFFFFu)),
                     qOpToFloat(static_cast<unsigned short>(w.y >> 16)));
}

// Two consecutive FP8 codes (the low 16 bits of `pair`; FP8 1: E4M3FN, 2: E5M2) as the float16 pair of their values
// (the first in the low half), exact: the hardware conversion on sm_89 and later; elsewhere the bits moved
// (qFp8HighBytesToHalf2; E4M3's times 256 after). NaN codes may read as finite values.
template <int FP8> __device__ __forceinline__ unsigned qFp8PairToHalf2(unsigned pair) {
  unsigned h;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  const unsigned short b = static_cast<unsigned short>(pair);
  if (FP8 == 2)
    asm("cvt.rn.f16x2.e5m2x2 %0, %1;" : "=r"(h) : "h"(b));
  else
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h) : "h"(b));
#else
  h = qFp8HighBytesToHalf2<FP8>((pair & 0xFFu) << 8 | (pair & 0xFF00u) << 16); // code i in the high byte of half i
  if (FP8 == 1)
    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(h) : "r"(h), "r"(0x5C005C00u)); // x 256, exact
#endif
  return h;
}

// FP8 KV cache codes (--kv-cache=fp8, fp8_e5m2; F 1: E4M3FN, 2: E5M2) as an element type of the attention
// kernels: a load gives the codes' values, and the kernels multiply the scores and the outputs by the kv head's key
// and value scales (operands of the launch).
template <int F> struct QFp8 {
  u8 code;
};
template <int F> __device__ __forceinline__ float qToFloat(QFp8<F> c) { return qFp8ToFloat<F>(c.code); }
template <int F> __device__ __forceinline__ float4 qLoadFloat4(const QFp8<F> *p) {
  const unsigned w = *reinterpret_cast<const unsigned *>(p);
  const unsigned lo = qFp8PairToHalf2<F>(w), hi = qFp8PairToHalf2<F>(w >> 16);
  return make_float4(qHalfToFloat(static_cast<unsigned short>(lo & 0xFFFFu)),
                     qHalfToFloat(static_cast<unsigned short>(lo >> 16)),
                     qHalfToFloat(static_cast<unsigned short>(hi & 0xFFFFu)),
                     qHalfToFloat(static_cast<unsigned short>(hi >> 16)));
}
template <typename T> struct QIsFp8 {
  static constexpr int format = 0;
};
template <int F> struct QIsFp8<QFp8<F>> {
  static constexpr int format = F;
};
// kv_append: t0 cache, t1 new entries, t2 length (int64 [1]), the cache (same memory as t0) at t[OUT]. Flat over
// t1. HALF: float32 entries into a float16 cache (E unsigned short). FP8 (1 E4M3FN, 2 E5M2): float32 entries into
// an FP8 cache [batch, kv heads, capacity, head dim] (AXIS 2, E u8) as the codes of x * (1 / sc[kv head]) (the
// reference's product with the inverse of the head's scale, an IEEE float division here as there); with `off`
// (centered keys: [kv heads, head dim]) of (x - off[kv head, d]) * (1 / sc[kv head]). The length is checked only
// before the store: the entry, its scale and offset do not depend on it, so their loads are in flight with the
// length's (a branch on the length first would wait for it, then for them).
template <typename E, int AXIS, bool HALF = false, int FP8 = 0, int OUT = 3>
__device__ void qKvAppend(const QParams &p, const float *sc = nullptr, const float *off = nullptr) {
  const QTensor &cache = p.t[0], &x = p.t[1];
  const i64 n = qNumel(x), i = qFlatIndex();
  if (i >= n)
    return;
  const i64 len = *qPtr<const i64>(p.t[2]), cap = cache.shape[AXIS], S = x.shape[AXIS];
  i64 inner = 1;
  for (int d = AXIS + 1; d < x.rank; ++d)
    inner *= x.shape[d];
  i64 o, s, in, h = 0; // h: the kv head (FP8)
  if (n <= 0xffffffffLL) { // 32-bit divisions (see qTransposeSource)
    const unsigned u = static_cast<unsigned>(i), un = static_cast<unsigned>(inner), row = u / un;
    const unsigned ou = row / static_cast<unsigned>(S);
    o = ou, s = row % static_cast<unsigned>(S), in = u % un;
    if constexpr (FP8 != 0)
      h = ou % static_cast<unsigned>(cache.shape[1]);
  } else {
    o = i / (S * inner), s = i / inner % S, in = i % inner;
    if constexpr (FP8 != 0)
      h = o % cache.shape[1];
  }
  E code;
  float v = 0.0f;
  if constexpr (FP8 != 0) {
    v = qPtr<const float>(x)[i];
    code = qFloatToFp8<FP8>((off ? v - off[h * inner + in] : v) * (1.0f / sc[h]));
  } else if constexpr (HALF) {
    v = qPtr<const float>(x)[i];
  } else {
    code = qPtr<const E>(x)[i];
  }
  if (len < 0 || len > cap || S > cap - len || x.shape[0] > cache.shape[0]) {
    qFail(p, QOPT_STATUS_CACHE_FULL);
    return;
  }
  E *dst = qPtr<E>(p.t[OUT]) + (o * cap + len + s) * inner + in;
  if constexpr (HALF && FP8 == 0)
    qStoreFloat(dst, v);
  else
    *dst = code;
}

// kv_advance: t0 length (int64 [1]), t1 sizes (int64 [rank]), t2 the length (same memory). One thread.
template <int AXIS> __device__ void qKvAdvance(const QParams &p) {
  if (blockIdx.x != 0 || threadIdx.x != 0)
    return;
  i64 *len = qPtr<i64>(p.t[2]);
  const i64 add = qPtr<const i64>(p.t[1])[AXIS];
  if (add < 0 || *len < 0) {
    qFail(p, QOPT_STATUS_CACHE_FULL);
    return;
  }
  *len += add;
}

// cast of the module's 16-bit float (an embedding table's rows) -> float32: t0 in, t1 out. Flat over t1.
__device__ void qCastHalfToFloat(const QParams &p) {
  const i64 n = qNumel(p.t[1]), i = qFlatIndex();
  if (i < n)
    qPtr<float>(p.t[1])[i] = qOpToFloat(qPtr<const unsigned short>(p.t[0])[i]);
}

//===-- elementwise float: binary (broadcasting), gated activation ---------===//

__device__ __forceinline__ float qSilu(float x) { return x * (1.0f / (1.0f + expf(-x))); }
__device__ __forceinline__ float qGelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f)); }
__device__ __forceinline__ float qGeluTanh(float x) {
  return 0.5f * x * (1.0f + tanhf(0.79788456080286535588f * (x + 0.044715f * x * x * x)));
}
template <int ACT> __device__ __forceinline__ float qActivation(float x) {
  return ACT == 0 ? qSilu(x) : ACT == 1 ? qGelu(x) : qGeluTanh(x);
}

// gated_act: t0 gate, t1 up, t2 out = act(gate) * up (out may be gate's or up's memory: each thread reads its
// elements before it writes them). VEC 4: a thread per 4 elements, 16-byte loads and stores (the element count a
// multiple of 4). Flat over t2 (in units of VEC).
template <int ACT, int VEC = 1> __device__ void qGatedAct(const QParams &p) {
  const i64 n = qNumel(p.t[2]) / VEC, i = qFlatIndex();
  if (i >= n)
    return;
  if constexpr (VEC == 4) {
    const float4 g = reinterpret_cast<const float4 *>(qPtr<const float>(p.t[0]))[i];
    const float4 u = reinterpret_cast<const float4 *>(qPtr<const float>(p.t[1]))[i];
    reinterpret_cast<float4 *>(qPtr<float>(p.t[2]))[i] =
        make_float4(qActivation<ACT>(g.x) * u.x, qActivation<ACT>(g.y) * u.y, qActivation<ACT>(g.z) * u.z,
                    qActivation<ACT>(g.w) * u.w);
  } else {
    qPtr<float>(p.t[2])[i] = qActivation<ACT>(qPtr<const float>(p.t[0])[i]) * qPtr<const float>(p.t[1])[i];
  }
}

// gelu: t0 x, t1 out. APPROX 0 erf, 1 tanh. Flat over t1.
template <int APPROX> __device__ void qGeluKernel(const QParams &p) {
  const i64 n = qNumel(p.t[1]), i = qFlatIndex();
  if (i < n) {
    const float x = qPtr<const float>(p.t[0])[i];
    qPtr<float>(p.t[1])[i] = APPROX == 0 ? qGelu(x) : qGeluTanh(x);
  }
}

// Element i of y, read from an operand broadcast to y's shape (numpy rules): its offset in that operand.
__device__ __forceinline__ i64 qBroadcastOffset(i64 i, const QTensor &y, const QTensor &a) {
  i64 rem = i, off = 0, stride = 1;
  for (int d = y.rank - 1; d >= 0; --d) {
    const i64 idx = rem % y.shape[d];
    rem /= y.shape[d];
    const int da = d - (y.rank - a.rank);
    if (da >= 0) {
      if (a.shape[da] != 1)
        off += idx * stride;
      stride *= a.shape[da];
    }
  }
  return off;
}

// binary: t0 a, t1 b, t2 out = a OP b, numpy broadcasting, elements of type T (float, or i64 for add/sub/mul).
// OP: 0 add, 1 sub, 2 mul, 3 div. Flat over t2.
template <int OP, typename T = float> __device__ void qBinary(const QParams &p) {
  const QTensor &y = p.t[2];
  const i64 i = qFlatIndex();
  if (i >= qNumel(y))
    return;
  const T x = qPtr<const T>(p.t[0])[qBroadcastOffset(i, y, p.t[0])];
  const T z = qPtr<const T>(p.t[1])[qBroadcastOffset(i, y, p.t[1])];
  qPtr<T>(y)[i] = OP == 0 ? x + z : OP == 1 ? x - z : OP == 2 ? x * z : x / z;
}

// Comparisons to bool: t0 a, t1 b (of type T), t2 out (bool). OP: 0 equal, 1 less, 2 less_equal, 3 greater,
// 4 greater_equal. Flat over t2.
template <int OP, typename T> __device__ void qCompare(const QParams &p) {
  const QTensor &y = p.t[2];
  const i64 i = qFlatIndex();
  if (i >= qNumel(y))
    return;
  const T x = qPtr<const T>(p.t[0])[qBroadcastOffset(i, y, p.t[0])];
  const T z = qPtr<const T>(p.t[1])[qBroadcastOffset(i, y, p.t[1])];
  const bool r = OP == 0 ? x == z : OP == 1 ? x < z : OP == 2 ? x <= z : OP == 3 ? x > z : x >= z;
  qPtr<u8>(y)[i] = r ? 1 : 0;
}

// Logic on bools: t0 a, t1 b, t2 out. OP: 0 and, 1 or, 2 xor. Flat over t2.
template <int OP> __device__ void qLogic(const QParams &p) {
  const QTensor &y = p.t[2];
  const i64 i = qFlatIndex();
  if (i >= qNumel(y))
    return;
  const bool x = qPtr<const u8>(p.t[0])[qBroadcastOffset(i, y, p.t[0])] != 0;
  const bool z = qPtr<const u8>(p.t[1])[qBroadcastOffset(i, y, p.t[1])] != 0;
  qPtr<u8>(y)[i] = (OP == 0 ? x && z : OP == 1 ? x || z : x != z) ? 1 : 0;
}

// where: t0 condition (bool), t1 a, t2 b (elements of E), t3 out = cond ? a : b, broadcasting. Flat over t3.
template <typename E> __device__ void qWhere(const QParams &p) {
  const QTensor &y = p.t[3];
  const i64 i = qFlatIndex();
  if (i >= qNumel(y))
    return;
  const bool c = qPtr<const u8>(p.t[0])[qBroadcastOffset(i, y, p.t[0])] != 0;
  qPtr<E>(y)[i] = c ? qPtr<const E>(p.t[1])[qBroadcastOffset(i, y, p.t[1])]
                    : qPtr<const E>(p.t[2])[qBroadcastOffset(i, y, p.t[2])];
}

//===-- norms --------------------------------------------------------------===//

// 1 / sqrt(mean + eps) of a row of n values whose squares sum to ss, in double as the reference kernels take it.
__device__ __forceinline__ float qInvRms(double ss, i64 n, double eps) {
  return static_cast<float>(1.0 / sqrt(ss / static_cast<double>(n) + eps));
}

// One row: y = g * (x / sqrt(mean(x^2) + eps)), the sum of squares in double as the reference. With a residual
// `b`, x + b is normalized and also written to `sum` (add_rms_norm).
__device__ void qRmsNormRow(const float *x, const float *b, float *sum, const float *g, i64 gn, float *y, i64 C,
                            double eps) {
  __shared__ double scratch[32];
  // Rows up to 16 values per thread stay in registers, their loads all in flight at once (a loop that waits for
  // each load made this one-block kernel latency-bound); longer rows are read twice.
  constexpr int kHeld = 16;
  auto aligned = [](const void *q) { return (reinterpret_cast<unsigned long long>(q) & 15) == 0; };
  if (C % (4 * static_cast<i64>(blockDim.x)) == 0 && C <= kHeld * static_cast<i64>(blockDim.x) && aligned(x) &&
      (!b || (aligned(b) && aligned(sum))) && aligned(y) && (gn == 1 || aligned(g))) {
    // The same with 16-byte loads and stores: rows of whole float4s per thread (a prompt's 4096-wide rows).
    const int n4 = static_cast<int>(C / (4 * static_cast<i64>(blockDim.x)));
    float4 v[kHeld / 4];
    double ss = 0;
#pragma unroll
    for (int t = 0; t < kHeld / 4; ++t) {
      if (t >= n4)
        break;
      const i64 k = threadIdx.x + t * static_cast<i64>(blockDim.x);
      v[t] = reinterpret_cast<const float4 *>(x)[k];
      if (b) {
        const float4 c = reinterpret_cast<const float4 *>(b)[k];
        v[t].x += c.x, v[t].y += c.y, v[t].z += c.z, v[t].w += c.w;
      }
    }
#pragma unroll
    for (int t = 0; t < kHeld / 4; ++t)
      if (t < n4)
        ss += static_cast<double>(v[t].x) * v[t].x + static_cast<double>(v[t].y) * v[t].y +
              static_cast<double>(v[t].z) * v[t].z + static_cast<double>(v[t].w) * v[t].w;
    ss = qBlockSum(ss, scratch);
    const float inv = qInvRms(ss, C, eps);
#pragma unroll
    for (int t = 0; t < kHeld / 4; ++t) {
      if (t >= n4)
        break;
      const i64 k = threadIdx.x + t * static_cast<i64>(blockDim.x);
      if (b)
        reinterpret_cast<float4 *>(sum)[k] = v[t];
      const float4 gv = gn == 1 ? make_float4(g[0], g[0], g[0], g[0]) : reinterpret_cast<const float4 *>(g)[k];
      reinterpret_cast<float4 *>(y)[k] =
          make_float4(gv.x * (v[t].x * inv), gv.y * (v[t].y * inv), gv.z * (v[t].z * inv), gv.w * (v[t].w * inv));
    }
    return;
  }
  if (C <= kHeld * static_cast<i64>(blockDim.x)) {
    float v[kHeld];
    double ss = 0;
#pragma unroll
    for (int t = 0; t < kHeld; ++t) {
      const i64 k = threadIdx.x + t * static_cast<i64>(blockDim.x);
      v[t] = k < C ? (b ? x[k] + b[k] : x[k]) : 0.0f;
    }
#pragma unroll
    for (int t = 0; t < kHeld; ++t)
      ss += static_cast<double>(v[t]) * v[t];
    ss = qBlockSum(ss, scratch);
    const float inv = qInvRms(ss, C, eps);
#pragma unroll
    for (int t = 0; t < kHeld; ++t) {
      const i64 k = threadIdx.x + t * static_cast<i64>(blockDim.x);
      if (k < C) {
        if (b)
          sum[k] = v[t];
        y[k] = g[gn == 1 ? 0 : k] * (v[t] * inv);
      }
    }
    return;
  }
  if (b) { // each thread reads back only the sums it wrote
    for (i64 k = threadIdx.x; k < C; k += blockDim.x)
      sum[k] = x[k] + b[k];
    x = sum;
  }
  double ss = 0;
  for (i64 k = threadIdx.x; k < C; k += blockDim.x) {
    const double v = x[k];
    ss += v * v;
  }
  ss = qBlockSum(ss, scratch);
  const float inv = qInvRms(ss, C, eps);
  for (i64 k = threadIdx.x; k < C; k += blockDim.x)
    y[k] = g[gn == 1 ? 0 : k] * (x[k] * inv);
}

// rms_norm: t0 x [.., C], t1 scale [C] or [1], t2 out. One block per row.
__device__ void qRmsNorm(const QParams &p, double eps) {
  const i64 C = qLast(p.t[0]), r = blockIdx.x;
  qRmsNormRow(qPtr<const float>(p.t[0]) + r * C, nullptr, nullptr, qPtr<const float>(p.t[1]), qNumel(p.t[1]),
              qPtr<float>(p.t[2]) + r * C, C, eps);
}

// add_rms_norm (same-shaped a and b): t0 a, t1 b, t2 scale, t3 sum = a + b, t4 rms_norm(sum). One block per row.
__device__ void qAddRmsNorm(const QParams &p, double eps) {
  bool same = p.t[0].rank == p.t[1].rank;
  for (int d = 0; same && d < p.t[0].rank; ++d)
    same = p.t[0].shape[d] == p.t[1].shape[d];
  if (!same) { // compiled for operands of one shape; a broadcast at run time is not this kernel's
    qFail(p, QOPT_STATUS_SHAPE);
    return;
  }
  const i64 C = qLast(p.t[0]), r = blockIdx.x;
  qRmsNormRow(qPtr<const float>(p.t[0]) + r * C, qPtr<const float>(p.t[1]) + r * C, qPtr<float>(p.t[3]) + r * C,
              qPtr<const float>(p.t[2]), qNumel(p.t[2]), qPtr<float>(p.t[4]) + r * C, C, eps);
}

// One row of layer_norm over the last dim: y = (x - mean) * (1 / sqrt(var + eps)) * g + b, mean and variance summed
// in double.
__device__ void qLayerNormRow(const float *x, const float *g, i64 gn, const float *b, i64 bn, float *y, i64 C,
                              double eps) {
  __shared__ double scratch[32];
  double sum = 0;
  for (i64 k = threadIdx.x; k < C; k += blockDim.x)
    sum += x[k];
  const double mean = qBlockSum(sum, scratch) / static_cast<double>(C);
  double var = 0;
  for (i64 k = threadIdx.x; k < C; k += blockDim.x) {
    const double d = x[k] - mean;
    var += d * d;
  }
  var = qBlockSum(var, scratch) / static_cast<double>(C);
  const float inv = static_cast<float>(1.0 / sqrt(var + eps)), m = static_cast<float>(mean);
  for (i64 k = threadIdx.x; k < C; k += blockDim.x) {
    const float v = (x[k] - m) * inv * g[gn == 1 ? 0 : k];
    y[k] = b ? v + b[bn == 1 ? 0 : k] : v;
  }
}

// layer_norm over the last dim: t0 x, t1 scale, t2 bias (or absent), then the result at t[OUT]. One block per row.
template <int OUT> __device__ void qLayerNorm(const QParams &p, double eps) {
  const i64 C = qLast(p.t[0]), r = blockIdx.x;
  const bool bias = OUT > 2 && p.t[2].rank >= 0;
  qLayerNormRow(qPtr<const float>(p.t[0]) + r * C, qPtr<const float>(p.t[1]), qNumel(p.t[1]),
                bias ? qPtr<const float>(p.t[2]) : nullptr, bias ? qNumel(p.t[2]) : 1, qPtr<float>(p.t[OUT]) + r * C,
                C, eps);
}

// add_layer_norm (same-shaped a and b): t0 a, t1 b, t2 scale, t3 bias (or absent), then sum and norm at t[OUT],
// t[OUT + 1]. One block per row.
template <int OUT> __device__ void qAddLayerNorm(const QParams &p, double eps) {
  bool same = p.t[0].rank == p.t[1].rank;
  for (int d = 0; same && d < p.t[0].rank; ++d)
    same = p.t[0].shape[d] == p.t[1].shape[d];
  if (!same) {
    qFail(p, QOPT_STATUS_SHAPE);
    return;
  }
  const i64 C = qLast(p.t[0]), r = blockIdx.x;
  const float *a = qPtr<const float>(p.t[0]) + r * C, *b = qPtr<const float>(p.t[1]) + r * C;
  float *s = qPtr<float>(p.t[OUT]) + r * C;
  for (i64 k = threadIdx.x; k < C; k += blockDim.x)
    s[k] = a[k] + b[k];
  __syncthreads(); // the row's sums, written by every thread, are read by every thread below
  const bool bias = OUT > 3 && p.t[3].rank >= 0;
  qLayerNormRow(s, qPtr<const float>(p.t[2]), qNumel(p.t[2]), bias ? qPtr<const float>(p.t[3]) : nullptr,
                bias ? qNumel(p.t[3]) : 1, qPtr<float>(p.t[OUT + 1]) + r * C, C, eps);
}

//===-- linear layers ------------------------------------------------------===//

// The outputs of a layer whose columns are split into NSPLIT results (one for matmul).
template <int NSPLIT> struct QSplits {
  i64 size[NSPLIT];
};

// Output channel n of a layer split into NSPLIT results: which result (from t[OUT]) holds it, at which column.
template <int NSPLIT, int OUT> struct QSplitColumn {
  float *y;   // that result
  i64 col;    // n's column in it
  i64 width;  // its columns
  __device__ QSplitColumn(const QParams &p, const QSplits<NSPLIT> &splits, i64 n) {
    i64 off = 0;
    int s = 0;
    while (s + 1 < NSPLIT && n >= off + splits.size[s])
      off += splits.size[s++];
    y = qPtr<float>(p.t[OUT + s]);
    col = n - off;
    width = splits.size[s];
  }
};

// Rows m0 .. m0 + ROWS of x [M, K], columns k0 .. k0 + kn, into shared memory (zeros past the ends), between
// barriers so that the previous chunk's readers are done and the next chunk's see every write. With a norm scale
// `g` ([K]), row r is normalized as rms_norm does, with its 1 / rms in inv[r].
// AF (W8A8, an activation format: 1 E4M3FN, 2 E5M2, kActInt8): each value then rounded to it under its row's scale
// xscale[r] (qActRound).
template <int ROWS, int KCHUNK, int AF = 0>
__device__ __forceinline__ void qStageRows(float (&xs)[ROWS][KCHUNK], const float *x, i64 M, i64 K, i64 m0, i64 k0,
                                           int kn, const float *g = nullptr, const float *inv = nullptr,
                                           const float *xscale = nullptr) {
  __syncthreads();
  for (int e = threadIdx.x; e < ROWS * KCHUNK; e += blockDim.x) {
    const int r = e / KCHUNK, k = e % KCHUNK;
    float v = m0 + r < M && k < kn ? x[(m0 + r) * K + k0 + k] : 0.0f;
    if (g && m0 + r < M && k < kn)
      v = g[k0 + k] * (v * inv[r]);
    if (AF)
      v = qActRound<AF ? AF : 1>(v, xscale[r]);
    xs[r][k] = v;
  }
  __syncthreads();
}

// 1 / sqrt(mean(x^2) + eps) of one row of K floats, the sum of squares in double over the block as qRmsNormRow
// takes it (a product's norm prologue, qopt-fuse-norm-product). Every thread of the block calls it and gets it.
__device__ float qBlockInvRms(const float *x, i64 K, double eps) {
  __shared__ double scratch[32];
  double ss = 0;
  for (i64 k = threadIdx.x; k < K; k += blockDim.x)
    ss += static_cast<double>(x[k]) * x[k];
  ss = qBlockSum(ss, scratch);
  return qInvRms(ss, K, eps);
}

// One row's factors before a W8A8 product quantizes it (matmul_q's act_fp8 and act_int8; the whole block calls it,
// every thread gets both): with NORM its 1 / rms (g its norm scale), and the scale of activation format AF, ACT 1
// the static `actScale`, 2 max |x| (of x normalized as qStageRows does it) / the format's largest value, 1 for a
// row of zeros, as the reference.
template <int AF, int ACT, int NORM>
__device__ void qRowActScale(const float *x, const float *g, i64 K, double eps, float actScale, float &inv,
                             float &scale) {
  __shared__ float red[32];
  inv = NORM ? qBlockInvRms(x, K, eps) : 1.0f;
  scale = actScale;
  if (ACT != 2)
    return;
  float m = 0.0f;
  for (i64 k = threadIdx.x; k < K; k += blockDim.x)
    m = fmaxf(m, fabsf(NORM ? g[k] * (x[k] * inv) : x[k]));
  m = qBlockMax(m, red);
  scale = m > 0.0f ? m / qActTop<AF>() : 1.0f;
}

// x [M, K] (rows of t0) times w [K, N] (t1), plus bias (t2 when BIAS), into the NSPLIT results from t[OUT]: a
// block computes ROWS rows for blockDim.x consecutive columns; x is staged through shared memory in chunks of
// KCHUNK. Geometry: rows of t0, cols N, tiles ROWS x blockDim.x.
template <int ROWS, int KCHUNK, int NSPLIT, int OUT, bool BIAS>
__device__ void qLinear(const QParams &p, const QSplits<NSPLIT> &splits) {
  __shared__ float xs[ROWS][KCHUNK];
  const QTensor &xt = p.t[0], &wt = p.t[1];
  const i64 K = wt.shape[0], N = wt.shape[1], M = K ? qNumel(xt) / K : 0;
  i64 rowTile, colTile;
  qTile(N, blockDim.x, rowTile, colTile);
  const i64 m0 = rowTile * ROWS, n = colTile * blockDim.x + threadIdx.x;
  const float *x = qPtr<const float>(xt), *w = qPtr<const float>(wt);
  float acc[ROWS];
  for (int r = 0; r < ROWS; ++r)
    acc[r] = 0.0f;
  for (i64 k0 = 0; k0 < K; k0 += KCHUNK) {
    const int kn = static_cast<int>(K - k0 < KCHUNK ? K - k0 : KCHUNK);
    qStageRows<ROWS, KCHUNK>(xs, x, M, K, m0, k0, kn);
    if (n < N)
      for (int k = 0; k < kn; ++k) {
        const float wv = w[(k0 + k) * N + n];
#pragma unroll
        for (int r = 0; r < ROWS; ++r)
          acc[r] += xs[r][k] * wv;
      }
  }
  if (n >= N)
    return;
  const QSplitColumn<NSPLIT, OUT> out(p, splits, n);
  const float b = BIAS ? qPtr<const float>(p.t[2])[n] : 0.0f;
  for (int r = 0; r < ROWS; ++r)
    if (m0 + r < M)
      out.y[(m0 + r) * out.width + out.col] = BIAS ? acc[r] + b : acc[r];
}

// Quantized weights (QuantFormat.h): t0 x [M, K], t1 packed [N, K/2] uint8 (BITS 3, 4), [N, K] int8 (BITS 8) or
// [N, K] float16 (BITS 16, no scales or zeros), t2 scales [N, K/GROUP] (or [1, 1] per tensor), t3 zeros like the
// scales (asymmetric nibbles; else absent or missing), then the NSPLIT results from t[OUT]. A warp computes one
// output channel for ROWS rows: lanes stride along the weight's row (coalesced), then reduce. NORM: x is normalized
// as rms_norm does (t4 its scale [K], eps) as it is staged; RESID: t5 (shaped like the one result) is added to it
// (qopt-fuse-norm-product). ACT (8-bit weights; W8A8, matmul_q's act_fp8 and act_int8): x rounded to the weights'
// format (FP8, or int8) as it is staged, ACT 1 under the static `actScale`, 2 under a scale per row
// (qRowActScale). GATED (matmul_q_gated; an activation, qActivation's): the stacked gate and up layers, N / 2 each:
// the warp's channel n reads gate row n and up row N / 2 + n, and the one result [M, N / 2] is act(gate) * up.
// Geometry: rows of t0, cols N (GATED: N / 2), tiles ROWS x (blockDim.x / 32).
template <int BITS, int ROWS, int KCHUNK, int NSPLIT, int OUT, bool ZEROS, bool PER_TENSOR, int FP8 = 0,
          int NORM = 0, int RESID = 0, int ACT = 0, int GATED = -1, int HS = 0>
__device__ void qLinearQ(const QParams &p, const QSplits<NSPLIT> &splits, i64 group, double eps = 0.0,
                         float actScale = 0.0f) {
  static_assert(!ACT || BITS == 8, "8-bit activations go with 8-bit weights of their format");
  static_assert(GATED < 0 || (NSPLIT == 1 && !RESID), "a gated product has one result and no residual");
  constexpr int AF = FP8 ? FP8 : kActInt8, H = GATED >= 0 ? 2 : 1; // H: weight rows per channel
  __shared__ float xs[ROWS][KCHUNK];
  __shared__ float inv[ROWS], xscale[ROWS];
  const QTensor &xt = p.t[0], &wt = p.t[1];
  const i64 K = qLast(xt), N = wt.shape[0], M = K ? qNumel(xt) / K : 0, groups = K / group;
  const i64 C = GATED >= 0 ? N / 2 : N; // the result's channels
  const int warps = blockDim.x >> 5, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  i64 rowTile, colTile;
  qTile(C, warps, rowTile, colTile);
  const i64 m0 = rowTile * ROWS, n = colTile * warps + warp;
  // float16 weights have no scales: operand 2 is then the first result.
  const float *x = qPtr<const float>(xt);
  const QScales<HS> scales{BITS == 16 ? nullptr : p.t[2].data};
  const u8 *zeros = ZEROS ? qPtr<const u8>(p.t[3]) : nullptr;
  const int symZero = BITS == 8 ? 0 : 1 << (BITS - 1);
  const i64 rowBytes = wt.shape[1] * (BITS == 16 ? 2 : 1);
  float acc[H][ROWS];
#pragma unroll
  for (int h = 0; h < H; ++h)
#pragma unroll
    for (int r = 0; r < ROWS; ++r)
      acc[h][r] = 0.0f;
  const float *g = NORM ? qPtr<const float>(p.t[4]) : nullptr;
  if (NORM || ACT)
    for (int r = 0; r < ROWS; ++r) {
      float v = 1.0f, sc = 1.0f;
      if (m0 + r < M)
        qRowActScale<AF, ACT, NORM>(x + (m0 + r) * K, g, K, eps, actScale, v, sc);
      if (threadIdx.x == 0)
        inv[r] = v, xscale[r] = sc;
    }
  for (i64 k0 = 0; k0 < K; k0 += KCHUNK) {
    const int kn = static_cast<int>(K - k0 < KCHUNK ? K - k0 : KCHUNK);
    qStageRows<ROWS, KCHUNK, ACT ? AF : 0>(xs, x, M, K, m0, k0, kn, g, inv, xscale);
    if (n >= C)
      continue;
#pragma unroll
    for (int h = 0; h < H; ++h) {
      const i64 row = n + h * C; // the weight row: the channel, or (GATED) its gate and up rows
      const u8 *wrow = qPtr<const u8>(wt) + row * rowBytes;
      if (BITS == 16) {
        const unsigned short *hrow = reinterpret_cast<const unsigned short *>(wrow);
        for (int k = lane; k < kn; k += 32) {
          const float wv = qOpToFloat(hrow[k0 + k]);
#pragma unroll
          for (int r = 0; r < ROWS; ++r)
            acc[h][r] += xs[r][k] * wv;
        }
      } else if (BITS == 8) {
        for (int k = lane; k < kn; k += 32) {
          const i64 kk = k0 + k, gi = PER_TENSOR ? 0 : row * groups + kk / group;
          const float code = FP8 ? qFp8ToFloat<FP8 ? FP8 : 1>(wrow[kk])
                                 : static_cast<float>(static_cast<int>(reinterpret_cast<const i8 *>(wrow)[kk]));
          const float wv = code * scales[gi];
#pragma unroll
          for (int r = 0; r < ROWS; ++r)
            acc[h][r] += xs[r][k] * wv;
        }
      } else {
        // Two elements per byte: lane handles bytes k0/2 + lane, + 32, ... (KCHUNK even keeps pairs in one chunk).
        for (int k = 2 * lane; k < kn; k += 64) {
          const i64 kk = k0 + k;
          const u8 byte = wrow[kk >> 1];
          const i64 gi = PER_TENSOR ? 0 : row * groups + kk / group;
          const float sc = scales[gi];
          const int z = ZEROS ? zeros[gi] : symZero;
          const float w0 = static_cast<float>((byte & 0xF) - z) * sc;
          float w1 = 0.0f;
          if (k + 1 < kn) {
            const i64 g1 = PER_TENSOR ? 0 : row * groups + (kk + 1) / group;
            w1 = static_cast<float>((byte >> 4) - (ZEROS ? zeros[g1] : symZero)) * scales[g1];
          }
#pragma unroll
          for (int r = 0; r < ROWS; ++r)
            acc[h][r] += xs[r][k] * w0 + (k + 1 < kn ? xs[r][k + 1] * w1 : 0.0f);
        }
      }
    }
  }
  if (n >= C)
    return;
  if (GATED >= 0) {
    float *y = qPtr<float>(p.t[OUT]);
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      const float gate = qWarpSum(acc[0][r]), up = qWarpSum(acc[H - 1][r]);
      if (lane == 0 && m0 + r < M)
        y[(m0 + r) * C + n] = qActivation<GATED < 0 ? 0 : GATED>(gate) * up;
    }
    return;
  }
  const QSplitColumn<NSPLIT, OUT> out(p, splits, n);
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    const float v = qWarpSum(acc[0][r]);
    if (lane == 0 && m0 + r < M) {
      const i64 o = (m0 + r) * out.width + out.col;
      out.y[o] = RESID ? qPtr<const float>(p.t[5])[o] + v : v;
    }
  }
}

// Tensor-core pieces shared by qGemvMma and qFlashAttention: one m16n8k16 product (the module's 16-bit float in,
// float32 accumulation) and pairs of 16-bit floats (qOpToFloat's type).
#if QOPT_BF16
#define QOPT_OP "bf16"
#else
#define QOPT_OP "f16"
#endif
__device__ __forceinline__ void qMma16816(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." QOPT_OP "." QOPT_OP ".f32 {%0, %1, %2, %3}, {%4, %5, %6, "
               "%7}, {%8, %9}, {%0, %1, %2, %3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ unsigned qOp2(float lo, float hi) { // lo in the low half, each rounded to nearest even
  unsigned r;
  asm("cvt.rn." QOPT_OP "x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}
// Helpers of qGemvMma: pairs' arithmetic, in PTX (no CUDA header is included). bfloat16 pairs have sub and mul
// from sm_90; sm_80 takes them as fused multiply-adds (a - b = b * -1 + a, a * b = a * b + -0, each rounded once).
__device__ __forceinline__ unsigned qOpFma2(unsigned a, unsigned b, unsigned c) {
  unsigned r;
  asm("fma.rn." QOPT_OP "x2 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c));
  return r;
}
__device__ __forceinline__ unsigned qOpSub2(unsigned a, unsigned b) {
#if QOPT_BF16 && (!defined(__CUDA_ARCH__) || __CUDA_ARCH__ < 900)
  return qOpFma2(b, 0xBF80BF80u, a);
#else
  unsigned r;
  asm("sub." QOPT_OP "x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
  return r;
#endif
}
__device__ __forceinline__ unsigned qOpMul2(unsigned a, unsigned b) {
#if QOPT_BF16 && (!defined(__CUDA_ARCH__) || __CUDA_ARCH__ < 900)
  return qOpFma2(a, b, 0x80008000u);
#else
  unsigned r;
  asm("mul." QOPT_OP "x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
  return r;
#endif
}
// FP8 codes in the high bytes of a pair (low bytes zero) as the module's 16-bit floats: float16 as
// qFp8HighBytesToHalf2 makes them (E4M3 at its value times 2^-8: the caller's scale is multiplied by
// qFp8MmaFactor); bfloat16 exact, the code's exponent and mantissa moved into a bfloat16's (E4M3 at its value
// times 2^-120, E5M2 at 2^-112, subnormals included) and multiplied back by that power of two (exact; a factor
// of 2^120 in the scale would leave the float32 products near float32's smallest normal values).
template <int FP8> __device__ __forceinline__ unsigned qFp8HighBytesToOp2(unsigned b) {
#if QOPT_BF16
  return FP8 == 2 ? qOpMul2((b & 0x80008000u) | ((b >> 3) & 0x0FE00FE0u), 0x77807780u /* 2^112 */)
                  : qOpMul2((b & 0x80008000u) | ((b >> 4) & 0x07F007F0u), 0x7B807B80u /* 2^120 */);
#else
  return qFp8HighBytesToHalf2<FP8>(b);
#endif
}
// The few-row products' FP8 codes converted by the hardware (CVT asked for, FP8 codes, sm_89 and later: one
// cvt.rn.f16x2.e4m3x2 / e5m2x2 per pair of consecutive codes, qFp8PairToOp2) rather than by qFp8HighBytesToOp2's
// bit moves (three to four instructions per pair).
template <int FP8, bool CVT> constexpr bool qFp8Hw() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  return CVT && FP8 != 0;
#else
  return false;
#endif
}
// The factor of an FP8 weight scale that undoes qMmaWeights' conversion (bit moves make E4M3 its value / 256).
template <int FP8, bool HW = false> constexpr float qFp8MmaFactor() {
  return FP8 == 1 && !QOPT_BF16 && !HW ? 256.0f : 1.0f;
}
// Two consecutive FP8 codes (the low 16 bits of `pair`) as a pair of the module's 16-bit floats, exact (the first
// in the low half): qFp8PairToHalf2, or for bfloat16 the codes moved to the pair's high bytes and converted so.
template <int FP8> __device__ __forceinline__ unsigned qFp8PairToOp2(unsigned pair) {
#if QOPT_BF16
  return qFp8HighBytesToOp2<FP8>((pair & 0xFFu) << 8 | (pair & 0xFF00u) << 16);
#else
  return qFp8PairToHalf2<FP8>(pair);
#endif
}
// 16 bytes read once (weights): not kept in L1, where x's rows stay.
__device__ __forceinline__ uint4 qLoadStream(const void *p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

__device__ __forceinline__ unsigned qSharedAddress(const void *p) {
  unsigned a;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
  return a;
}
// 16 bytes from global to shared memory without registers (cp.async, sm_80 and later); `valid` false fills zeros.
// The destination as a shared-window address (qSharedAddress) or a pointer.
__device__ __forceinline__ void qCopyAsync16(unsigned dst, const void *src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void qCopyAsync16(void *dst, const void *src, bool valid) {
  qCopyAsync16(qSharedAddress(dst), src, valid);
}
__device__ __forceinline__ void qCopyAsyncCommit() { asm volatile("cp.async.commit_group;"); }
template <int N> __device__ __forceinline__ void qCopyAsyncWait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }

// A 16-byte word of weights (WK consecutive k of one row) as the A fragments (float16 pairs) of its WK / 4 mma
// k-steps: step st takes the float16 pairs a0 = (w[p0], w[p1]) and a2 = (w[p2], w[p3]) at offsets `qMmaOffsets`
// of the word, the same offsets at which x's pairs are formed, so the product sums the same k as the math (the
// order of k inside a word is free). The offsets make the dequantization two instructions per pair: nibbles pair
// with the nibble four places up (an and-or with 0x000F000F | 0x64006400 gives float16 1024 + code twice, from
// which 1024 + zero is subtracted; the next nibble up is taken in place, as 1024 + 16 code, and scaled by 1/16
// in the same fused step), int8 codes with the byte two places up (one byte permutation). Codes minus zero are
// small integers, exact in float16. `z` holds the zero as float16x2 (1024 + zero; int8: 1152 + zero) and z16 as
// -(64 + zero); SCALED multiplies by `sc` (the scale twice), else the caller scales the products. bfloat16 (7
// bits after the leading one): nibbles as 128 + code (0x4300), the one four places up shifted down first (three
// instructions a pair), `z` 128 + zero; int8 codes through float32 (2^23 + byte, `z` the float32 2^23 + 128 + zero).
template <int BITS, bool HW = false> __device__ __forceinline__ void qMmaOffsets(int st, int (&o)[4]) {
  if (BITS == 16 || HW) // HW: FP8 codes in consecutive pairs (qFp8Hw)
    o[0] = 4 * st, o[1] = 4 * st + 1, o[2] = 4 * st + 2, o[3] = 4 * st + 3;
  else if (BITS == 8)
    o[0] = 4 * st, o[1] = 4 * st + 2, o[2] = 4 * st + 1, o[3] = 4 * st + 3;
  else
    o[0] = 8 * (st >> 1) + 2 * (st & 1), o[1] = o[0] + 4, o[2] = o[0] + 1, o[3] = o[0] + 5;
}
struct QZero {
  unsigned z, z16;
};
// SHORT (qMmaZero, qMmaWeights): the forms of fewest instructions. qGemvMma keeps the longer ones (float
// conversions of the zero, an AND and an OR per nibble pair): with the short ones ptxas issued its 4-tile warps'
// last weight loads after their first mma (H100, int4 g128, 4 rows, K=4096 N=14336: 17.7 -> 20.2 us).
template <int BITS, bool SHORT = true> __device__ __forceinline__ QZero qMmaZero(int zero) {
#if QOPT_BF16
  if (BITS == 8) // the float32 2^23 + 128 + zero
    return {__float_as_uint(static_cast<float>(8388608 + 128 + zero)), 0u};
  const float z = static_cast<float>(zero + 128);
  return {qOp2(z, z), 0u};
#else // 1024 + zero or 1152 + zero by its bits (an ulp of 1 up to 2048), -(64 + zero) as 960 - (1024 + zero)
  if (!SHORT) {
    const float z = static_cast<float>(zero + (BITS == 8 ? 1152 : 1024)), z16 = -static_cast<float>(zero + 64);
    return {qOp2(z, z), qOp2(z16, z16)};
  }
  const unsigned z = ((BITS == 8 ? 0x6480u : 0x6400u) + static_cast<unsigned>(zero)) * 0x10001u; // zero < 256
  return {z, BITS == 8 ? 0u : qOpFma2(z, 0xBC00BC00u /* -1 */, 0x63806380u /* 960 */)};
#endif
}
// (a & mask) | bits in one instruction (written in C with two constants, it compiles to an AND and an OR).
__device__ __forceinline__ unsigned qAndOr(unsigned a, unsigned mask, unsigned bits) {
  unsigned r;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(r) : "r"(a), "r"(mask), "r"(bits));
  return r;
}
// FP8 codes (FP8 1: E4M3FN, 2: E5M2; BITS 8, no zero) take the int8 offsets and become float16 by moving bits
// (qFp8HighBytesToHalf2: E4M3 at its value times 2^-8, which the caller's scale undoes, x 256), or, HW (qFp8Hw),
// consecutive pairs converted by the hardware at their values (qMmaOffsets<8, true>).
template <int BITS, bool SCALED, int FP8 = 0, bool SHORT = true, bool HW = false>
__device__ __forceinline__ void qMmaWeights(const uint4 &w, int st, const QZero &z, unsigned sc, unsigned &a0,
                                            unsigned &a2) {
  const unsigned u[4] = {w.x, w.y, w.z, w.w};
  if (BITS == 16) {
    a0 = u[(2 * st) & 3], a2 = u[(2 * st + 1) & 3];
    return;
  }
  if (BITS == 8 && FP8 && HW) { // codes 4 st, 4 st + 1 and 4 st + 2, 4 st + 3 at their values (qMmaOffsets<8, true>)
    a0 = qFp8PairToOp2<FP8>(u[st & 3] & 0xFFFFu), a2 = qFp8PairToOp2<FP8>(u[st & 3] >> 16);
  } else if (BITS == 8 && FP8) {
    const unsigned b02 = __byte_perm(u[st & 3], 0u, 0x2404), b13 = __byte_perm(u[st & 3], 0u, 0x3414);
    a0 = qFp8HighBytesToOp2<FP8>(b02), a2 = qFp8HighBytesToOp2<FP8>(b13);
  } else if (BITS == 8) {
    const unsigned b = u[st & 3] ^ 0x80808080u; // int8 c -> unsigned c + 128
#if QOPT_BF16
    // bfloat16 holds 7 bits after the leading one: byte i as the float32 2^23 + byte (one permutation), minus
    // 2^23 + 128 + zero (exact), the pair rounded to bfloat16 (exact: |code - zero| <= 255).
    const float base = __uint_as_float(z.z);
    auto f = [&](unsigned i) { return __uint_as_float(__byte_perm(b, 0x4B000000u, 0x7540u | i)) - base; };
    a0 = qOp2(f(0), f(2)), a2 = qOp2(f(1), f(3));
#else
    a0 = qOpSub2(__byte_perm(b, 0x64646464u, 0x4240), z.z);
    a2 = qOpSub2(__byte_perm(b, 0x64646464u, 0x4341), z.z);
#endif
  } else {
    const unsigned v = u[(st >> 1) & 3] >> (8 * (st & 1));
#if QOPT_BF16 // 128 + code (0x4300 is bfloat16 128); the nibble four places up shifted down first
    a0 = qOpSub2(SHORT ? qAndOr(v, 0x000F000Fu, 0x43004300u) : (v & 0x000F000Fu) | 0x43004300u, z.z);
    a2 = qOpSub2(SHORT ? qAndOr(v >> 4, 0x000F000Fu, 0x43004300u) : ((v >> 4) & 0x000F000Fu) | 0x43004300u, z.z);
#else
    a0 = qOpSub2(SHORT ? qAndOr(v, 0x000F000Fu, 0x64006400u) : (v & 0x000F000Fu) | 0x64006400u, z.z);
    a2 = qOpFma2(SHORT ? qAndOr(v, 0x00F000F0u, 0x64006400u) : (v & 0x00F000F0u) | 0x64006400u,
                 0x2C002C00u /* 1/16 */, z.z16);
#endif
  }
  if (SCALED)
    a0 = qOpMul2(a0, sc), a2 = qOpMul2(a2, sc);
}

// The two weight rows the lanes of row group g multiply in column tile `colTile` of a matrix-vector kernel: rows
// 16 colTile + g and + g + 8 (clamped to N), or, with a gated epilogue (matmul_q_gated: gate and up layers stacked,
// N / 2 each), gate channel c = 8 colTile + g and its up channel N / 2 + c, so one thread holds both.
template <bool GATED> __device__ __forceinline__ void qGemvRowPair(i64 N, i64 colTile, int g, i64 (&nr)[2]) {
  if (GATED) {
    const i64 c = colTile * 8 + g < N / 2 ? colTile * 8 + g : N / 2 - 1;
    nr[0] = c, nr[1] = N / 2 + c;
  } else {
    const i64 n0 = colTile * 16;
    nr[0] = n0 + g < N ? n0 + g : N - 1, nr[1] = n0 + g + 8 < N ? n0 + g + 8 : N - 1;
  }
}

// The weight rows lane group g of a few-row product's warp reads in its RT tiles from `firstTile` (qGemvMma,
// qGemvStaged): row h of tile t is row0 + t tStride + h hStride, rows 16 tile + g + 8 h, or (GATED) gate channel
// 8 tile + g and its up channel N / 2 + 8 tile + g. Rows past the matrix are skipped (bit 2 t + h of `valid`);
// addresses are formed per load from one base, not kept per row (registers bound how many tiles a warp holds).
template <int RT, bool GATED> struct QTileRows {
  i64 row0, tStride, hStride;
  unsigned valid = 0;
  __device__ __forceinline__ QTileRows(i64 firstTile, i64 N, int g)
      : row0(GATED ? firstTile * 8 + g : firstTile * 16 + g), tStride(GATED ? 8 : 16), hStride(GATED ? N / 2 : 8) {
#pragma unroll
    for (int t = 0; t < RT; ++t)
#pragma unroll
      for (int h = 0; h < 2; ++h)
        if (GATED ? row0 + t * tStride < N / 2 : row0 + t * tStride + h * hStride < N)
          valid |= 1u << (2 * t + h);
  }
};

// Weights in a tile layout (matmul_q's weight_layout, QuantFormat.h; LAYOUT in the few-row products): the word
// lane 4 g + q of a warp takes from row (g, h) of tile `tile` in chunk c (of `chunks` per row) is at
// ((tile chunks + c) 64 + 32 h + lane) 16 bytes, so each of a warp's loads reads 512 contiguous bytes and a tile's
// chunks follow one another. A kernel whose tiles pair rows as the layout does (layout 1: 16 consecutive rows;
// 2: rows n and N / 2 + n, a gated product's) reads its tile's words so; others find each row's words
// (qTiledRowWord: word q of chunk c of row n).
__device__ __forceinline__ const u8 *qTileWord(const u8 *w, i64 tile, i64 chunks, i64 c, int h, int lane) {
  return w + (((tile * chunks + c) * 64 + 32 * h + lane) << 4);
}
__device__ __forceinline__ const u8 *qTiledRowWord(int layout, const u8 *w, i64 n, i64 N, i64 chunks, i64 c, int q) {
  const bool upper = layout == 2 && n >= N / 2;
  const i64 m = upper ? n - N / 2 : n;
  return layout == 2 ? qTileWord(w, m >> 3, chunks, c, upper ? 1 : 0, static_cast<int>(m & 7) * 4 + q)
                     : qTileWord(w, n >> 4, chunks, c, static_cast<int>(n >> 3 & 1), static_cast<int>(n & 7) * 4 + q);
}
// The word lane 4 g + q of a few-row product's warp takes from tile row (t, h) in chunk c: its own tile's, where
// the kernel pairs rows as the layout does (a gated kernel, layout 2; else 1), else row n's.
template <int LAYOUT, bool GATED>
__device__ __forceinline__ const u8 *qTiledWord(const u8 *w, i64 tile, int h, i64 n, i64 N, i64 chunks, i64 c,
                                                int lane) {
  return (LAYOUT == 2) == GATED ? qTileWord(w, tile, chunks, c, h, lane)
                                : qTiledRowWord(LAYOUT, w, n, N, chunks, c, lane & 3);
}
// The words of a few-row product's warp from its tiles firstTile + t: qTiledWord, or where the kernel pairs rows as
// the layout does (OWN), one add from the lane's first word (a tile's rows are `chunks` chunks of 1 KB, h at 512
// bytes in each), rather than the word's index arithmetic per load.
template <int LAYOUT, bool GATED> struct QTileWords {
  static constexpr bool OWN = LAYOUT != 0 && (LAYOUT == 2) == GATED;
  const u8 *w, *first;
  i64 N, chunks, tileBytes;
  int lane;
  __device__ __forceinline__ QTileWords(const u8 *w_, i64 firstTile, i64 N_, i64 chunks_, int lane_)
      : w(w_), first(OWN ? qTileWord(w_, firstTile, chunks_, 0, 0, lane_) : nullptr), N(N_), chunks(chunks_),
        tileBytes(chunks_ * 1024), lane(lane_) {}
  // Row (t, h) of the warp's tiles, weight row n, chunk c.
  __device__ __forceinline__ const u8 *at(int t, int h, i64 n, i64 c, i64 firstTile) const {
    return OWN ? first + t * tileBytes + h * 512 + (c << 10)
               : qTiledWord<LAYOUT, GATED>(w, firstTile + t, h, n, N, chunks, c, lane);
  }
};

// acc += a chunk's products scaled per weight row (SCALE_AFTER): C rows g (entries 0, 1) of tile t by s[t][0], rows
// g + 8 (2, 3) by s[t][1]; `part` has a tile dimension of RT (or 1 where the scales went into the weights: unused).
template <int RT, int MT, int P>
__device__ __forceinline__ void qAddScaledParts(float (&acc)[RT][MT][4], const float (&part)[P][MT][4],
                                                const float (&s)[RT][2]) {
#pragma unroll
  for (int t = 0; t < RT; ++t)
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      const int pt = P == 1 ? 0 : t;
      acc[t][mt][0] += part[pt][mt][0] * s[t][0], acc[t][mt][1] += part[pt][mt][1] * s[t][0];
      acc[t][mt][2] += part[pt][mt][2] * s[t][1], acc[t][mt][3] += part[pt][mt][3] * s[t][1];
    }
}

// A warp's results of a few-row product (qGemvMma, qGemvStaged): acc[t][mt] = C[weight row g, g + 8][x row 2q,
// 2q + 1] of weight tile firstTile + t and x tile mt (rows m0 + 8 mt ..), stored by the warp's lanes: plain or
// split (NSPLIT results), a residual added (RESID), or act(gate) * up (GATED).
template <int RT, int MT, int NSPLIT, int OUT, int GATED, int RESID>
__device__ __forceinline__ void qGemvMmaStore(const QParams &p, const QSplits<NSPLIT> &splits,
                                              const float (&acc)[RT][MT][4], i64 firstTile, i64 m0, i64 M, i64 N,
                                              int g, int q) {
#pragma unroll
  for (int t = 0; t < RT; ++t) {
    const i64 tile = firstTile + t;
    if (GATED >= 0) {
      const i64 c = tile * 8 + g, width = N / 2;
      if (c < width)
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const i64 m = m0 + 8 * mt + 2 * q + e;
            if (m < M)
              qPtr<float>(p.t[OUT])[m * width + c] =
                  qActivation<GATED < 0 ? 0 : GATED>(acc[t][mt][e]) * acc[t][mt][2 + e];
          }
    } else {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const i64 n = tile * 16 + g + 8 * h;
        if (n >= N)
          continue;
        const QSplitColumn<NSPLIT, OUT> out(p, splits, n);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const i64 m = m0 + 8 * mt + 2 * q + e, o = m * out.width + out.col;
            if (m < M)
              out.y[o] = RESID ? qPtr<const float>(p.t[5])[o] + acc[t][mt][2 * h + e] : acc[t][mt][2 * h + e];
          }
      }
    }
  }
}

// matmul_q / matmul_q_split for a few rows of x (decode; M up to 16 per block), streaming the weights through the
// tensor cores: y^T = W x^T with W's rows as the mma's A operand (16 weight rows per tile) and up to 8 * MT rows
// of x as its B operand (mma.m16n8k16, float16 in, float32 accumulation). A lane (g, q) = (lane / 4, lane % 4)
// loads 16-byte words of weight rows g and g + 8 of each tile at k = chunk * 4 WK + q WK (lanes 4g .. 4g + 3 read
// 64 consecutive bytes of a row), dequantizes them in registers to float16 (code - zero, then the scale, or, when a
// chunk lies in one scale group (SCALE_AFTER), the scale applied to the chunk's float32 products), and forms x's
// matching pairs from float4 loads of its row g of x (rows past M are zeros). A warp takes RT tiles over the same x
// pairs: x's loads and conversions, MT * WK floats per lane and chunk, are shared by RT * 32 bytes of weights
// (at RT = 1 and 16 rows of x the kernel is bound by x's loads from L1). The block's warps split K; their partial
// sums meet in shared memory. Weights: as qLinearQ (rows 16-byte aligned: K a multiple of WK; scale groups
// multiples of WK). NORM (qopt-fuse-norm-product; t4 the rms_norm scale [K], eps): x enters as g * x, its rows'
// sums of squares are taken from the same loads (the block's warps read each row once), and each result is
// multiplied by its row's 1 / rms at the end, the products being linear in x. RESID: t5, shaped like the one
// result, is added to it. CVT: as qGemvRow. Geometry: rows of t0 in tiles of 8 * MT, cols N in tiles of 16 RT, warps
// chosen by the compiler.
template <int BITS, int MT, int NSPLIT, int OUT, bool ZEROS, bool PER_TENSOR, bool SCALE_AFTER, int GATED = -1,
          int FP8 = 0, int NORM = 0, int RESID = 0, int RT = 1, int HS = 0, int LAYOUT = 0, int CVT = 1>
__device__ void qGemvMma(const QParams &p, const QSplits<NSPLIT> &splits, i64 group, double eps = 0.0) {
  constexpr bool HW = qFp8Hw<FP8, CVT != 0>();
  constexpr int WK = BITS == 16 ? 8 : BITS == 8 ? 16 : 32; // k per 16-byte word
  constexpr int CHUNK = 4 * WK, U = RT >= 4 ? 1 : 4 / RT;   // k per chunk; chunks per batch (4 tiles' words)
  constexpr int BYTES_PER_K2 = BITS == 16 ? 4 : BITS == 8 ? 2 : 1; // bytes per 2 k
  constexpr int SLOTS = RT * MT * 4 + (NORM ? MT : 0);              // a lane's values reduced over the warps
  // The warps' partial sums meet in halving rounds (warps a power of two), each round's upper half writing: up to
  // 2 HALF warps, the compiler's bound (qGemvMmaMaxWarps), within 48 KB of static shared memory.
  constexpr int HALF = SLOTS * 32 * 4 * 8 <= 40960 ? 8 : SLOTS * 32 * 4 * 4 <= 40960 ? 4 : 2;
  __shared__ float red[HALF][SLOTS][32];
  const QTensor &xt = p.t[0], &wt = p.t[1];
  const i64 K = qLast(xt), N = wt.shape[0], M = K ? qNumel(xt) / K : 0;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5, g = lane >> 2, q = lane & 3;
  i64 rowTile, colTile;
  qTile(N, 16 * RT, rowTile, colTile);
  const i64 m0 = rowTile * (8 * MT);
  const i64 rowBytes = wt.shape[1] * (BITS == 16 ? 2 : 1), groups = PER_TENSOR ? 1 : K / group;
  const QTileRows<RT, (GATED >= 0)> rows(colTile * RT, N, g);
  const i64 row0 = rows.row0, tStride = rows.tStride, hStride = rows.hStride;
  const unsigned valid = rows.valid;
  const u8 *wbase = qPtr<const u8>(wt) + row0 * rowBytes;
  const QScales<HS> scales{BITS == 16 ? nullptr : p.t[2].data};
  const u8 *zeros = ZEROS ? qPtr<const u8>(p.t[3]) : nullptr;
  constexpr int symZero = BITS == 8 || BITS == 16 ? 0 : 1 << (BITS - 1);
  const float *xrow[MT];
  bool xok[MT];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    const i64 m = m0 + 8 * mt + g;
    xok[mt] = m < M;
    xrow[mt] = qPtr<const float>(xt) + (xok[mt] ? m : 0) * K;
  }
  const i64 chunks = (K + CHUNK - 1) / CHUNK;
  const i64 c0 = chunks * warp / warps, c1 = chunks * (warp + 1) / warps;
  const float *gs = NORM ? qPtr<const float>(p.t[4]) : nullptr;
  float acc[RT][MT][4], ss[MT];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    ss[mt] = 0.0f;
#pragma unroll
    for (int t = 0; t < RT; ++t)
      acc[t][mt][0] = acc[t][mt][1] = acc[t][mt][2] = acc[t][mt][3] = 0.0f;
  }
  // A batch's loads (U chunks of RT tiles: words, then their scales and zero points, all issued before the math;
  // zeros past the warp's chunks and K), then its products. Measured (H100, int4 g128, 4 rows, weights from DRAM):
  // the scales loaded with the words rather than in the math took K=14336 N=4096 (2 tiles a warp) 19.6 -> 17.7 us;
  // the next batch loaded before this one's math (two buffers) was slower: 17.5 -> 19.6 us at K=4096 (17.5 with
  // the short forms), 25.4 at K=14336 (16 warps: registers capped at 128).
  uint4 wa[U][RT][2];
  float sa[U][RT][2];
  int za[U][RT][2];
  auto load = [&](uint4 (&w)[U][RT][2], float (&sv)[U][RT][2], int (&zv)[U][RT][2], i64 c) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const i64 k = (c + u) * CHUNK + q * WK;
#pragma unroll
      for (int t = 0; t < RT; ++t)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const bool ok = c + u < c1 && k < K && (valid >> (2 * t + h) & 1);
          w[u][t][h] = ok ? qLoadStream(LAYOUT ? qTiledWord<LAYOUT, (GATED >= 0)>(
                                                     qPtr<const u8>(wt), colTile * RT + t, h,
                                                     row0 + t * tStride + h * hStride, N, rowBytes / 64, c + u, lane)
                                               : wbase + (t * tStride + h * hStride) * rowBytes + k / 2 * BYTES_PER_K2)
                          : make_uint4(0, 0, 0, 0);
          // The row's scale and zero point also for words past K (SCALE_AFTER: the chunk's products, which every
          // lane of the row group scales by its own copy, include the words before K).
          sv[u][t][h] = 1.0f, zv[u][t][h] = symZero;
          if (BITS != 16 && c + u < c1) {
            const bool row = valid >> (2 * t + h) & 1;
            const i64 gi =
                PER_TENSOR || !row ? 0 : (row0 + t * tStride + h * hStride) * groups + (k < K ? k : 0) / group;
            sv[u][t][h] = scales[gi] * qFp8MmaFactor<FP8, HW>();
            zv[u][t][h] = ZEROS ? zeros[gi] : symZero;
          }
        }
    }
  };
  auto multiply = [&](const uint4 (&w)[U][RT][2], const float (&sv)[U][RT][2], const int (&zv)[U][RT][2], i64 c) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const i64 k = (c + u) * CHUNK + q * WK;
      if (c + u >= c1)
        break;
      QZero zz[RT][2] = {};
      unsigned sc[RT][2] = {};
      float sf[RT][2];
#pragma unroll
      for (int t = 0; t < RT; ++t)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          sf[t][h] = sv[u][t][h];
          if (BITS != 16) {
            zz[t][h] = qMmaZero<BITS, false>(zv[u][t][h]);
            sc[t][h] = qOp2(sf[t][h], sf[t][h]);
          }
        }
      float part[SCALE_AFTER ? RT : 1][MT][4];
#pragma unroll
      for (int t = 0; t < (SCALE_AFTER ? RT : 1); ++t)
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
          part[t][mt][0] = part[t][mt][1] = part[t][mt][2] = part[t][mt][3] = 0.0f;
      // x in runs of XG floats (zeros past K and for rows past M), each the pairs of XG / 4 k-steps.
      constexpr int XG = BITS < 8 ? 8 : 4;
#pragma unroll
      for (int j = 0; j < WK / XG; ++j) {
        float xf[MT][XG];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int f = 0; f < XG / 4; ++f) {
            float4 v = xok[mt] && k < K ? *reinterpret_cast<const float4 *>(xrow[mt] + k + XG * j + 4 * f)
                                        : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (NORM) { // predicated like x's load (a branch here would hold back the loads that follow)
              const float4 gv = xok[mt] && k < K ? *reinterpret_cast<const float4 *>(gs + k + XG * j + 4 * f)
                                                 : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
              ss[mt] += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
              v.x *= gv.x, v.y *= gv.y, v.z *= gv.z, v.w *= gv.w;
            }
            xf[mt][4 * f] = v.x, xf[mt][4 * f + 1] = v.y, xf[mt][4 * f + 2] = v.z, xf[mt][4 * f + 3] = v.w;
          }
#pragma unroll
        for (int sj = 0; sj < XG / 4; ++sj) {
          const int st = j * (XG / 4) + sj;
          int o[4];
          qMmaOffsets<BITS, HW>(st, o);
          unsigned b[MT][2]; // the offsets within the run
#pragma unroll
          for (int mt = 0; mt < MT; ++mt)
            b[mt][0] = qOp2(xf[mt][o[0] - XG * j], xf[mt][o[1] - XG * j]),
            b[mt][1] = qOp2(xf[mt][o[2] - XG * j], xf[mt][o[3] - XG * j]);
#pragma unroll
          for (int t = 0; t < RT; ++t) {
            unsigned a[4];
            qMmaWeights<BITS, !SCALE_AFTER, FP8, false, HW>(w[u][t][0], st, zz[t][0], sc[t][0], a[0], a[2]);
            qMmaWeights<BITS, !SCALE_AFTER, FP8, false, HW>(w[u][t][1], st, zz[t][1], sc[t][1], a[1], a[3]);
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
              qMma16816(SCALE_AFTER ? part[SCALE_AFTER ? t : 0][mt] : acc[t][mt], a, b[mt][0], b[mt][1]);
          }
        }
      }
      if (SCALE_AFTER)
        qAddScaledParts(acc, part, sf);
    }
  };
  for (i64 c = c0; c < c1; c += U) {
    load(wa, sa, za, c);
    multiply(wa, sa, za, c);
  }
  if (NORM) // row g's sum of squares over this warp's k: its 4 lanes' loads
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      ss[mt] += __shfl_xor_sync(0xffffffffu, ss[mt], 1);
      ss[mt] += __shfl_xor_sync(0xffffffffu, ss[mt], 2);
    }
  for (int half = warps / 2; half >= 1; half /= 2) {
    if (warp >= half && warp < 2 * half)
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int t = 0; t < RT; ++t)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            red[warp - half][(t * MT + mt) * 4 + e][lane] = acc[t][mt][e];
        if (NORM)
          red[warp - half][RT * MT * 4 + mt][lane] = ss[mt];
      }
    __syncthreads();
    if (warp < half)
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int t = 0; t < RT; ++t)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            acc[t][mt][e] += red[warp][(t * MT + mt) * 4 + e][lane];
        if (NORM)
          ss[mt] += red[warp][RT * MT * 4 + mt][lane];
      }
    if (half > 1)
      __syncthreads();
  }
  if (warp > 0)
    return;
  if (NORM) // x row 2q + e's 1 / rms, from the lanes of row group 2q + e
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      const float inv = qInvRms(ss[mt], K, eps);
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float r = __shfl_sync(0xffffffffu, inv, 4 * (2 * q + e));
#pragma unroll
        for (int t = 0; t < RT; ++t)
          acc[t][mt][e] *= r, acc[t][mt][2 + e] *= r;
      }
    }
  qGemvMmaStore<RT, MT, NSPLIT, OUT, GATED, RESID>(p, splits, acc, colTile * RT, m0, M, N, g, q);
}

// matmul_q / matmul_q_split / matmul_q_gated for a few rows of x (decode at batch 2-16), x staged once per block in
// shared memory: qGemvMma's products (a lane (g, q) takes word q of each 4-word chunk of weight rows g and g + 8 of
// its tiles and dequantizes it in registers to the mma's A fragments), but the block's W warps each take RT tiles of
// their own over the same x, which the block splits once into float16 B fragments (its K slice, all its rows): x
// crosses L2 once per 16 W RT weight rows instead of once per warp, and the loop reads only weights from memory. The
// weights stream through a ring of S chunks per warp in shared memory (cp.async: S - 1 chunks in flight while one is
// multiplied, without holding registers; the first S are issued before x is split), their scales and zero points in
// registers S chunks ahead. K is split in KS slices, one a block of grid y, whose partial sums meet in one of two
// ways, added in slice order either way (the same bits): on sm_90 (SPLIT 0) the blocks of a cluster read each
// other's through distributed shared memory, warp w's results summed and stored by the block of rank w % KS;
// elsewhere, or with SPLIT 1, through the launch's scratch (a module global: `blocksCap` arrival counts, then per
// block of grid x its KS slices' partial sums and sums of squares), the last block of a column to arrive adding
// every slice's and resetting the count for the next launch. Without either (no scratch, or more blocks of grid x
// than it covers) block y 0 takes the slices one after the other and the others return.
// x's fragments in shared memory: [chunk][k-step] planes of [x row][q] pairs of float16 pairs (b0, b1) and 32 bytes
// of padding, a warp's read of one (chunk, step, x tile) 256 contiguous bytes. Rows of x past M are zeros, as are
// words past K. Operands, NORM (x enters as g * x; the sums of squares of a block's slice meet as its products do),
// RESID and GATED as qGemvMma. Geometry: rows of t0 in tiles of 8 MT, cols N in tiles of 16 RT W, grid y = KS,
// dynamic shared memory: x's fragments (32 bytes per chunk, k-step and row of x of a slice, and 32 of padding per
// chunk and k-step), the rings (RT KB per chunk and warp) and the rows' sums of squares (8 bytes a row: two parts).
template <int BITS, int MT, int NSPLIT, int OUT, bool ZEROS, bool PER_TENSOR, bool SCALE_AFTER, int GATED = -1,
          int FP8 = 0, int NORM = 0, int RESID = 0, int RT = 2, int KS = 1, int S = 2, int HS = 0, int LAYOUT = 0,
          int CVT = 1, int SPLIT = 0>
__device__ void qGemvStaged(const QParams &p, const QSplits<NSPLIT> &splits, i64 group, double eps = 0.0,
                            unsigned *scratch = nullptr, i64 blocksCap = 0) {
  constexpr bool HW = qFp8Hw<FP8, CVT != 0>();
  constexpr int WK = BITS == 16 ? 8 : BITS == 8 ? 16 : 32, STEPS = WK / 4, CHUNK = 4 * WK, R = 8 * MT;
  constexpr int BYTES_PER_K2 = BITS == 16 ? 4 : BITS == 8 ? 2 : 1;
  constexpr int SLOTS = RT * MT * 4, STAGE = RT * 2 * 32; // words of a warp's chunk
  // x's fragments of one (chunk, k-step): R rows x 4 lanes' pairs, then 32 bytes of padding, so that the 8 steps
  // a warp's split writes at once fall on different banks (the loop's reads stay 256 contiguous bytes).
  constexpr int PLANE = R * 4 + 4;
  static_assert(SLOTS * 32 * 4 <= S * STAGE * 16, "a warp's partial sums take its ring's place");
  extern __shared__ __align__(16) unsigned char smem[];
  const QTensor &xt = p.t[0], &wt = p.t[1];
  const i64 K = qLast(xt), N = wt.shape[0], M = K ? qNumel(xt) / K : 0;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5, g = lane >> 2, q = lane & 3;
  // How the slices meet: in the cluster, in the scratch, or not at all (one block takes them all).
  const bool cluster = QOPT_CLUSTERS && !SPLIT && KS > 1;
  const bool viaScratch = !cluster && KS > 1 && scratch && gridDim.x <= blocksCap;
  const int slices = cluster || viaScratch ? KS : 1; // blocks sharing a tile's K
  const unsigned rank = cluster ? qClusterRank() : viaScratch ? blockIdx.y : 0;
  if (slices == 1 && blockIdx.y != 0)
    return;
  i64 rowTile, colTile;
  qTile(N, 16 * RT * warps, rowTile, colTile);
  const i64 m0 = rowTile * R, firstTile = (colTile * warps + warp) * RT;
  // Chunk indices and k in 32 bits (K < 2^31: the loop compares and steps them).
  const int chunks = static_cast<int>((K + CHUNK - 1) / CHUNK), sliceChunks = (chunks + KS - 1) / KS;
  const int K32 = static_cast<int>(K);
  const i64 xBytes = static_cast<i64>(sliceChunks) * STEPS * PLANE * sizeof(uint2);
  uint2 *xs = reinterpret_cast<uint2 *>(smem); // [sliceChunks][STEPS] planes of [R][4] and 4 words of padding
  uint4 *ring = reinterpret_cast<uint4 *>(smem + xBytes) + warp * S * STAGE;
  float *red = reinterpret_cast<float *>(ring); // [SLOTS][32], in the warp's ring after its last chunk
  // [XW][R]
  float *ssBlock = reinterpret_cast<float *>(smem + xBytes + static_cast<i64>(warps) * S * STAGE * sizeof(uint4));
  // x's split: XW warps per row where the block has more warps than rows (1 or 2: R is 8 or 16), part j of a row
  // (every XW-th run of loads) by warp XW r + j, which keeps its sum of squares in ssBlock[j R + r].
  const int XW = warps > R ? warps / R : 1, xj = warp % XW;
  const i64 rowBytes = wt.shape[1] * (BITS == 16 ? 2 : 1), groups = PER_TENSOR ? 1 : K / group;
  const QTileRows<RT, (GATED >= 0)> rows(firstTile, N, g);
  const i64 row0 = rows.row0, tStride = rows.tStride, hStride = rows.hStride;
  const unsigned valid = rows.valid;
  const u8 *wbase = qPtr<const u8>(wt) + row0 * rowBytes;
  const QScales<HS> scales{BITS == 16 ? nullptr : p.t[2].data};
  const u8 *zeros = ZEROS ? qPtr<const u8>(p.t[3]) : nullptr;
  constexpr int symZero = BITS == 8 || BITS == 16 ? 0 : 1 << (BITS - 1);
  const float *gs = NORM ? qPtr<const float>(p.t[4]) : nullptr;
  float acc[RT][MT][4];
  if (NORM && lane == 0) // x row r's sum of squares over this block's slices, kept by the warps that split it
    for (int r = warp / XW; r < R; r += warps / XW)
      ssBlock[xj * R + r] = 0.0f;
#pragma unroll
  for (int t = 0; t < RT; ++t)
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
      acc[t][mt][0] = acc[t][mt][1] = acc[t][mt][2] = acc[t][mt][3] = 0.0f;
  // A chunk's scales and zero points: the row's, per word, or where a chunk lies in one scale group (SCALE_AFTER)
  // shared by the row group's 4 lanes, lane q loading those of the group's rows (t, h) with 2 t + h = q + 4 j
  // and passing them on by shuffles.
  constexpr bool SHARED = SCALE_AFTER && !PER_TENSOR && BITS != 16;
  constexpr int PAIRS = 2 * RT, PER = SHARED ? (PAIRS + 3) / 4 : PAIRS;
  float sf[S][PER];
  int zp[S][PER];
  int c1 = 0;
  // Chunk c of the warp's rows into ring stage `st` (words past K as zeros; rows past N and chunks past the slice
  // not copied, never used), its scales and zero points into registers; one cp.async group per chunk, empty or not.
  const QTileWords<LAYOUT, (GATED >= 0)> tiles(qPtr<const u8>(wt), firstTile, N, rowBytes / 64, lane);
  const unsigned ringAddress = qSharedAddress(ring + lane);
  auto issue = [&](int st, int c) {
    const int k = c * CHUNK + q * WK;
#pragma unroll
    for (int i = 0; i < PAIRS; ++i) {
      const int t = i >> 1, h = i & 1;
      const bool row = c < c1 && (valid >> i & 1), ok = row && k < K32;
      if (row)
        qCopyAsync16(ringAddress + (st * PAIRS + i) * 32 * 16,
                     LAYOUT ? tiles.at(t, h, row0 + t * tStride + h * hStride, ok ? c : 0, firstTile)
                            : wbase + (t * tStride + h * hStride) * rowBytes + (ok ? k : 0) / 2 * BYTES_PER_K2,
                     ok);
      if (BITS != 16 && !SHARED) {
        const i64 gi = PER_TENSOR || !ok ? 0 : (row0 + t * tStride + h * hStride) * groups + k / group;
        sf[st][i] = ok ? scales[gi] * qFp8MmaFactor<FP8, HW>() : 0.0f;
        zp[st][i] = ZEROS && ok ? zeros[gi] : symZero;
      }
    }
#pragma unroll
    for (int j = 0; j < (SHARED ? PER : 0); ++j) {
      const int i = q + 4 * j, t = i >> 1, h = i & 1;
      const bool ok = i < PAIRS && c < c1 && (valid >> i & 1);
      const i64 gi = ok ? (row0 + t * tStride + h * hStride) * groups + c * CHUNK / group : 0;
      sf[st][j] = ok ? scales[gi] * qFp8MmaFactor<FP8, HW>() : 0.0f;
      zp[st][j] = ZEROS && ok ? zeros[gi] : symZero;
    }
    qCopyAsyncCommit();
  };
  for (int s = static_cast<int>(rank); s < KS; s += slices) {
    const int cs = sliceChunks * s, c0 = cs < chunks ? cs : chunks;
    c1 = c0 + sliceChunks < chunks ? c0 + sliceChunks : chunks;
    if (s != static_cast<int>(rank))
      __syncthreads(); // the last slice's fragments are read
#pragma unroll
    for (int st = 0; st < S; ++st) // in flight while x is split
      issue(st, c0 + st);
    // x -> fragments: warp v splits rows v, v + warps, ... (XW = 2: part v % 2 of rows v / 2, v / 2 + warps / 2,
    // ...), 512 contiguous bytes of a row per load (lane l's four
    // floats at 4 l: chunk l / (CHUNK / 4) of the load's 128 / CHUNK, word q, the 4 floats of k-step st), 8 loads in
    // flight. A lane's floats are those of its step's pairs (qMmaOffsets), except for 4-bit words, whose pairs join
    // a float with the one 4 places up: lanes 2 i and 2 i + 1 (floats 8 i .. 8 i + 7) swap two of theirs.
    constexpr int SPAN = 128 / CHUNK, UNROLL = 8;
    const int f = 4 * lane % CHUNK, cc = 4 * lane / CHUNK, xq = f / WK, xst = f % WK / 4;
    const bool odd = lane & 1;
    for (int r = warp / XW; r < R; r += warps / XW) {
      const i64 m = m0 + r;
      const float *x = qPtr<const float>(xt) + (m < M ? m : 0) * K;
      float part = 0.0f;
      for (int c = c0 + xj * UNROLL * SPAN; c < c1; c += XW * UNROLL * SPAN) {
        float4 v[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
          const int cu = c + u * SPAN + cc;
          const i64 k = static_cast<i64>(cu) * CHUNK + f;
          const bool in = m < M && cu < c1 && k < K;
          v[u] = in ? *reinterpret_cast<const float4 *>(x + k) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
          if (NORM) {
            const float4 gv = in ? *reinterpret_cast<const float4 *>(gs + k) : make_float4(0, 0, 0, 0);
            part += v[u].x * v[u].x + v[u].y * v[u].y + v[u].z * v[u].z + v[u].w * v[u].w;
            v[u].x *= gv.x, v[u].y *= gv.y, v[u].z *= gv.z, v[u].w *= gv.w;
          }
        }
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
          uint2 frag;
          if (BITS == 16 || HW) // pairs (0, 1), (2, 3)
            frag = make_uint2(qOp2(v[u].x, v[u].y), qOp2(v[u].z, v[u].w));
          else if (BITS == 8) // (0, 2), (1, 3)
            frag = make_uint2(qOp2(v[u].x, v[u].z), qOp2(v[u].y, v[u].w));
          else { // even lane: (its 0, the odd's 0), (its 1, the odd's 1); odd lane: (the even's 2, its 2), ...
            const float r0 = __shfl_xor_sync(0xffffffffu, odd ? v[u].x : v[u].z, 1);
            const float r1 = __shfl_xor_sync(0xffffffffu, odd ? v[u].y : v[u].w, 1);
            frag = odd ? make_uint2(qOp2(r0, v[u].z), qOp2(r1, v[u].w))
                       : make_uint2(qOp2(v[u].x, r0), qOp2(v[u].y, r1));
          }
          const int cu = c + u * SPAN + cc;
          if (cu < c1)
            xs[((cu - c0) * STEPS + xst) * PLANE + r * 4 + xq] = frag;
        }
      }
      if (NORM) {
        part = qWarpSum(part);
        if (lane == 0)
          ssBlock[xj * R + r] += part;
      }
    }
    __syncthreads();
    for (int c = c0; c < c1; c += S) {
#pragma unroll
      for (int st = 0; st < S; ++st) {
        if (c + st >= c1)
          break;
        qCopyAsyncWait<S - 1>(); // this chunk's group (S - 1 newer ones pending)
        uint4 cw[RT][2];
        float cf[RT][2];
        QZero zz[RT][2] = {};
        unsigned sc[RT][2] = {};
#pragma unroll
        for (int i = 0; i < PAIRS; ++i) {
          const int t = i >> 1, h = i & 1, from = (lane & ~3) | (i & 3);
          cw[t][h] = ring[(st * PAIRS + i) * 32 + lane];
          if (BITS == 16) {
            cf[t][h] = 1.0f;
            continue;
          }
          cf[t][h] = SHARED ? __shfl_sync(0xffffffffu, sf[st][i >> 2], from) : sf[st][i % PER];
          const int z = SHARED ? __shfl_sync(0xffffffffu, zp[st][i >> 2], from) : zp[st][i % PER];
          zz[t][h] = qMmaZero<BITS>(z), sc[t][h] = qOp2(cf[t][h], cf[t][h]);
        }
        issue(st, c + st + S); // (its own words, read above: no other lane's)
        float part[SCALE_AFTER ? RT : 1][MT][4];
#pragma unroll
        for (int t = 0; t < (SCALE_AFTER ? RT : 1); ++t)
#pragma unroll
          for (int mt = 0; mt < MT; ++mt)
            part[t][mt][0] = part[t][mt][1] = part[t][mt][2] = part[t][mt][3] = 0.0f;
        const uint2 *xc = xs + (c + st - c0) * STEPS * PLANE + g * 4 + q;
#pragma unroll
        for (int ks = 0; ks < STEPS; ++ks) {
          uint2 b[MT];
#pragma unroll
          for (int mt = 0; mt < MT; ++mt)
            b[mt] = xc[ks * PLANE + 8 * mt * 4];
#pragma unroll
          for (int t = 0; t < RT; ++t) {
            unsigned a[4];
            qMmaWeights<BITS, !SCALE_AFTER, FP8, true, HW>(cw[t][0], ks, zz[t][0], sc[t][0], a[0], a[2]);
            qMmaWeights<BITS, !SCALE_AFTER, FP8, true, HW>(cw[t][1], ks, zz[t][1], sc[t][1], a[1], a[3]);
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
              qMma16816(SCALE_AFTER ? part[SCALE_AFTER ? t : 0][mt] : acc[t][mt], a, b[mt].x, b[mt].y);
          }
        }
        if (SCALE_AFTER)
          qAddScaledParts(acc, part, cf);
      }
    }
    qCopyAsyncWait<0>(); // the ring's last (empty or unused) copies landed before it is reused
  }
  // The slices' sums added in slice order (this block's own, of slice `rank`, from its registers), each x row's
  // 1 / rms applied (its squares summed over the slices in order: complete since the barrier after the last split
  // of x) and the results stored. sumOf(i, j): this lane's partial sum i (of its warp's SLOTS) of slice j; ssOf(i,
  // j): float i of slice j's ssBlock.
  auto meetAndStore = [&](auto sumOf, auto ssOf) {
    if (slices > 1)
#pragma unroll
      for (int t = 0; t < RT; ++t)
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int i = (t * MT + mt) * 4 + e;
            float sum = 0.0f;
            for (int j = 0; j < slices; ++j)
              sum += j == static_cast<int>(rank) ? acc[t][mt][e] : sumOf(i, j);
            acc[t][mt][e] = sum;
          }
    if (NORM) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int r = 8 * mt + 2 * q + e;
          float total = 0.0f;
          for (int j = 0; j < slices; ++j)
            total += XW > 1 ? ssOf(r, j) + ssOf(R + r, j) : ssOf(r, j);
          const float inv = qInvRms(total, K, eps);
#pragma unroll
          for (int t = 0; t < RT; ++t)
            acc[t][mt][e] *= inv, acc[t][mt][2 + e] *= inv;
        }
    }
    qGemvMmaStore<RT, MT, NSPLIT, OUT, GATED, RESID>(p, splits, acc, firstTile, m0, M, N, g, q);
  };
  // This lane's partial sums into the warp's SLOTS x 32 floats at `to` (sum i of lane l at 32 i + l).
  auto publish = [&](float *to) {
#pragma unroll
    for (int t = 0; t < RT; ++t)
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          to[((t * MT + mt) * 4 + e) * 32 + lane] = acc[t][mt][e];
  };
  __syncwarp(); // every lane's last read of the ring before the partial sums take its place
  if (viaScratch) { // this slice's sums published, then added by the column's last block to arrive
    const i64 W = static_cast<i64>(warps) * SLOTS * 32 + (NORM ? XW * R : 0);
    float *part = reinterpret_cast<float *>(scratch + blocksCap) + static_cast<i64>(blockIdx.x) * KS * W;
    float *mine = part + rank * W;
    publish(mine + warp * SLOTS * 32);
    if (NORM)
      for (int i = threadIdx.x; i < XW * R; i += blockDim.x)
        mine[warps * SLOTS * 32 + i] = ssBlock[i];
    __threadfence(); // this thread's sums are seen device-wide before the count says so
    __syncthreads();
    if (!__syncthreads_or(threadIdx.x == 0 && atomicAdd(scratch + blockIdx.x, 1u) == static_cast<unsigned>(KS - 1)))
      return;
    __threadfence();
    meetAndStore([&](int i, int j) { return __ldcg(part + j * W + (warp * SLOTS + i) * 32 + lane); },
                 [&](int i, int j) {
                   return j == static_cast<int>(rank) ? ssBlock[i] : __ldcg(part + j * W + warps * SLOTS * 32 + i);
                 });
    if (threadIdx.x == 0)
      scratch[blockIdx.x] = 0;
    return;
  }
  // Through the cluster's shared memory: the partial sums into the warp's ring; warp w's, over the slices in
  // order, added by the block of rank w % KS, which stores them. (One block: nothing to meet.)
  if (slices > 1)
    publish(red);
  qClusterSync(); // (one block alone: nothing to wait for, its x's sums of squares complete since the last split)
  if (warp % slices == static_cast<int>(rank))
    meetAndStore([&](int i, int j) { return qClusterLoad(red + i * 32 + lane, j); },
                 [&](int i, int j) { return qClusterLoad(ssBlock + i, j); });
  qClusterSync(); // the others have read this block's sums before it leaves
}

// matmul_q / matmul_q_split / matmul_q_gated for one row of x and float16 weights (decode), streaming the weights
// in whole rows: a warp load takes 512 contiguous bytes of one row (32 lanes x 16 bytes), where qGemvMma's takes 64
// bytes of each of 8 rows (measured on the H200 reading a 28672 x 4096 matrix: 58 against 67 us; 4096 x 14336: 33
// against 47-75 us). The tensor cores still do the products: the m16n8k16 A operand's rows g and g + 8 are segment g
// (bytes 64 g .. 64 g + 63 of each 512-byte chunk) of two weight rows n0 and n1, and B's column g is x's segment g,
// so C[g][g] and C[g + 8][g] are the two rows' partial sums over segment g (the other entries of C are not used;
// the mma count per weight byte is qGemvMma's at one row). Each lane forms the x pairs of its own words. The warps of
// a block split K; each warp takes RP pairs of rows over the same x (RP = 2, 4: fewer x loads and conversions per
// weight byte). Diagonal entries are summed over the 8 segments and the warps at the end. EXACT: float32-accurate,
// x enters as two float16 terms, hi = half(x) and lo = half(x - hi), each k-step's mma taken once per term (as
// qGemvRow's products; else x is rounded to float16). GATED: a pair is gate channel c and its up channel N / 2 + c.
// NORM, RESID as qGemvMma (x enters as g * x, the block's lanes sum its squares from the same loads: each k is
// loaded once per block; in double as the reference when EXACT, else in float32, whose rounding is far below x's
// float16 rounding and which spares every block K conversions to double). WG: the block's warps form WG groups
// side by side, each taking its own tile of 2 RP rows, the warps of a group splitting K: the groups read the
// same x (and norm scale) words, the second and later from the SM's L1 (with 2 warps per block, each of the 1536
// blocks of a Llama q/k/v product read all of x and the scale from L2: half as many bytes again as its weights).
// Rows 16-byte aligned (K a multiple of 8). FP8 (1 E4M3FN, 2 E5M2; fp8w): the weights are FP8 codes [N, K] with a
// scale per channel or per tensor (t2), read the same way: a warp load is 512 codes of a row, a lane's word 16 codes
// (4 k-steps, pairs formed by qMmaWeights and x's at qMmaOffsets<8>), and each result is multiplied by its channel's
// scale (E4M3 codes enter as value / 256, qMmaWeights' bit move). K a multiple of 16. CVT (FP8, sm_89 and later):
// the codes become float16 pairs by the hardware conversion (cvt.rn.f16x2.e4m3x2 / e5m2x2: exact, one instruction
// per pair of consecutive codes, x's pairs formed likewise; E4M3 at its value) instead of the bit moves (three to
// four instructions per pair). PIPE 2: the next batch of weight words is loaded before the current one's
// products, so that a warp keeps its loads in flight through its arithmetic (twice the registers for words).
// UB > 0: chunks per batch (else 4 / RP, at least 1: 8 words of weights per lane in flight).
// Geometry: one row of x, cols N in tiles of 2 RP WG.
template <int NSPLIT, int OUT, int GATED = -1, int NORM = 0, int RESID = 0, int RP = 1, bool EXACT = false,
          int WG = 1, int FP8 = 0, bool CVT = false, int PIPE = 1, int UB = 0>
__device__ void qGemvHalf(const QParams &p, const QSplits<NSPLIT> &splits, double eps = 0.0) {
  typedef typename QSelect<EXACT, double, float>::type Ss;
  constexpr bool HW = qFp8Hw<FP8, CVT>();
  constexpr int U = UB > 0 ? UB : RP >= 4 ? 1 : 4 / RP; // chunks per batch
  constexpr int CK = FP8 ? 512 : 256, WK = CK / 32; // k per chunk, per lane's word
  __shared__ float red[16][2 * RP];
  __shared__ Ss redSs[16];
  const QTensor &xt = p.t[0], &wt = p.t[1];
  const i64 K = qLast(xt), N = wt.shape[0], rowBytes = (FP8 ? 1 : 2) * wt.shape[1];
  const int lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
  const int group = (threadIdx.x >> 5) % WG, warp = (threadIdx.x >> 5) / WG, warps = (blockDim.x >> 5) / WG;
  i64 rowTile, colTile;
  qTile(N, 2 * RP * WG, rowTile, colTile);
  colTile = colTile * WG + group;
  const i64 lk = 4 * WK * g + WK * q; // this lane's k in a chunk
  const u8 *wrow[RP][2];
#pragma unroll
  for (int rp = 0; rp < RP; ++rp) {
    i64 n[2];
    if (GATED >= 0) {
      const i64 c = colTile * RP + rp < N / 2 ? colTile * RP + rp : N / 2 - 1;
      n[0] = c, n[1] = N / 2 + c;
    } else {
      const i64 n0 = colTile * 2 * RP + 2 * rp;
      n[0] = n0 < N ? n0 : N - 1, n[1] = n0 + 1 < N ? n0 + 1 : N - 1;
    }
#pragma unroll
    for (int h = 0; h < 2; ++h)
      wrow[rp][h] = qPtr<const u8>(wt) + n[h] * rowBytes + (FP8 ? 1 : 2) * lk;
  }
  const float *x = qPtr<const float>(xt) + lk, *gs = NORM ? qPtr<const float>(p.t[4]) + lk : nullptr;
  const i64 chunks = (K + CK - 1) / CK;
  const i64 c0 = chunks * warp / warps, c1 = chunks * (warp + 1) / warps;
  float acc[RP][4];
  Ss ss = 0;
#pragma unroll
  for (int rp = 0; rp < RP; ++rp)
    acc[rp][0] = acc[rp][1] = acc[rp][2] = acc[rp][3] = 0.0f;
  auto load = [&](i64 c, uint4(&w)[U][RP][2]) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const bool ok = c + u < c1 && (c + u) * CK + lk < K;
#pragma unroll
      for (int rp = 0; rp < RP; ++rp)
#pragma unroll
        for (int h = 0; h < 2; ++h)
          w[u][rp][h] = ok ? qLoadStream(wrow[rp][h] + (c + u) * 512) : make_uint4(0, 0, 0, 0);
    }
  };
  uint4 w[U][RP][2];
  if (PIPE > 1 && c0 < c1)
    load(c0, w);
  for (i64 c = c0; c < c1; c += U) {
    uint4 next[U][RP][2];
    if (PIPE == 1)
      load(c, w);
    else if (c + U < c1)
      load(c + U, next);
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (c + u >= c1)
        break;
      const bool ok = (c + u) * CK + lk < K;
      float4 v[WK / 4];
#pragma unroll
      for (int f = 0; f < WK / 4; ++f) {
        v[f] = ok ? *reinterpret_cast<const float4 *>(x + (c + u) * CK + 4 * f) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (NORM) { // predicated like x's load
          const float4 gv = ok ? *reinterpret_cast<const float4 *>(gs + (c + u) * CK + 4 * f)
                               : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
          ss += static_cast<Ss>(v[f].x) * v[f].x + static_cast<Ss>(v[f].y) * v[f].y +
                static_cast<Ss>(v[f].z) * v[f].z + static_cast<Ss>(v[f].w) * v[f].w;
          v[f].x *= gv.x, v[f].y *= gv.y, v[f].z *= gv.z, v[f].w *= gv.w;
        }
      }
      // k-step st takes the word's float16 pairs 2 st (k 4 st, 4 st + 1) and 2 st + 1 (k 4 st + 2, 4 st + 3); FP8
      // words the pairs at qMmaOffsets<8, HW>.
#pragma unroll
      for (int st = 0; st < WK / 4; ++st) {
        float4 xs = v[st];
        if (FP8) {
          const float *xv = reinterpret_cast<const float *>(v);
          int o[4];
          qMmaOffsets<8, HW>(st, o);
          xs = make_float4(xv[o[0]], xv[o[1]], xv[o[2]], xv[o[3]]);
        }
        const unsigned b0 = qOp2(xs.x, xs.y), b1 = qOp2(xs.z, xs.w);
        unsigned l0 = 0, l1 = 0;
        if (EXACT) {
          l0 = qOp2(xs.x - qOpToFloat(static_cast<unsigned short>(b0 & 0xFFFFu)),
                    xs.y - qOpToFloat(static_cast<unsigned short>(b0 >> 16)));
          l1 = qOp2(xs.z - qOpToFloat(static_cast<unsigned short>(b1 & 0xFFFFu)),
                    xs.w - qOpToFloat(static_cast<unsigned short>(b1 >> 16)));
        }
#pragma unroll
        for (int rp = 0; rp < RP; ++rp) {
          const uint4 &w0 = w[u][rp][0], &w1 = w[u][rp][1];
          unsigned a[4] = {st ? w0.z : w0.x, st ? w1.z : w1.x, st ? w0.w : w0.y, st ? w1.w : w1.y};
          if (FP8) {
            qMmaWeights<8, false, FP8, true, HW>(w0, st, QZero{}, 0u, a[0], a[2]);
            qMmaWeights<8, false, FP8, true, HW>(w1, st, QZero{}, 0u, a[1], a[3]);
          }
          qMma16816(acc[rp], a, b0, b1);
          if (EXACT)
            qMma16816(acc[rp], a, l0, l1);
        }
      }
    }
    if (PIPE > 1)
#pragma unroll
      for (int u = 0; u < U; ++u)
#pragma unroll
        for (int rp = 0; rp < RP; ++rp)
          w[u][rp][0] = next[u][rp][0], w[u][rp][1] = next[u][rp][1];
  }
  // C[g][g] and C[g + 8][g] sit in lane (g, g / 2), entries g % 2 and 2 + g % 2.
  const bool diag = q == (g >> 1);
  float sums[2 * RP];
#pragma unroll
  for (int rp = 0; rp < RP; ++rp) {
    sums[2 * rp] = qWarpSum(diag ? (g & 1 ? acc[rp][1] : acc[rp][0]) : 0.0f);
    sums[2 * rp + 1] = qWarpSum(diag ? (g & 1 ? acc[rp][3] : acc[rp][2]) : 0.0f);
  }
  if (NORM)
    for (int o = 16; o > 0; o >>= 1)
      ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if (warps > 1) { // the group's warps meet in shared memory (slot: the block's warp index)
    if (warp > 0 && lane == 0) {
#pragma unroll
      for (int i = 0; i < 2 * RP; ++i)
        red[threadIdx.x >> 5][i] = sums[i];
      redSs[threadIdx.x >> 5] = ss;
    }
    __syncthreads();
    if (warp > 0)
      return;
    for (int v = 1; v < warps; ++v) {
#pragma unroll
      for (int i = 0; i < 2 * RP; ++i)
        sums[i] += red[v * WG + group][i];
      ss += redSs[v * WG + group];
    }
  }
  if (lane != 0)
    return;
  const float inv = NORM ? qInvRms(ss, K, eps) : 1.0f;
  // FP8: the channel's scale (one per tensor where t2 holds one), E4M3's 256 with it.
  const float *scales = FP8 ? qPtr<const float>(p.t[2]) : nullptr;
  const bool perTensor = FP8 && qNumel(p.t[2]) == 1;
  auto scale = [&](i64 n) { return FP8 ? scales[perTensor ? 0 : n] * (HW ? 1.0f : qFp8MmaFactor<FP8>()) : 1.0f; };
#pragma unroll
  for (int rp = 0; rp < RP; ++rp) {
    if (GATED >= 0) {
      const i64 c = colTile * RP + rp;
      if (c < N / 2)
        qPtr<float>(p.t[OUT])[c] = qActivation<GATED < 0 ? 0 : GATED>(sums[2 * rp] * scale(c) * inv) *
                                   (sums[2 * rp + 1] * scale(N / 2 + c) * inv);
    } else {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const i64 n = colTile * 2 * RP + 2 * rp + h;
        if (n >= N)
          continue;
        const QSplitColumn<NSPLIT, OUT> out(p, splits, n);
        const float y = sums[2 * rp + h] * scale(n) * inv;
        out.y[out.col] = RESID ? qPtr<const float>(p.t[5])[out.col] + y : y;
      }
    }
  }
}

// matmul_q / matmul_q_split for one row of x per block (decode), as qGemvMma but float32-accurate: the weights
// enter the mma as exact integers (code - zero; float16 weights as they are) and the scales multiply the float32
// products; x enters as two float16 terms, hi = half(x) and lo = half(x - hi), through the B operand's otherwise
// idle columns: column 4 t + j holds term t (hi, lo) of the k that lane j of a row group contributes (zeros for
// the other lanes' k), so C[n][4 t + j] is lane j's word's partial sum and carries its own scale group. x is
// split once per block into shared memory, pairs in the order the k-steps take them (2 K float16 values each for
// hi and lo: 4 K bytes, requested as dynamic shared memory). Each warp keeps the next batch of words (and their
// scales) in flight while it multiplies the current one. The block's warps form WT groups of KS = warps / WT: a
// group's warps split K and meet in shared memory, and each group takes TILES tiles of 16 weight rows one after
// the other over the x the block split once (fewer splits of x per weight byte where the layer has many rows; the
// fewer warps split K, the more chunks each takes per tile against a tile's fixed costs). Operands as qLinearQ,
// NORM and RESID too (NORM as qGemvMma does it: x enters as g * x, the block's threads sum its squares as they
// split it, and the results are multiplied by 1 / rms).
// ACT (8-bit weights; W8A8, matmul_q's act_fp8 and act_int8): x rounded to the weights' format (FP8, or int8)
// under the static `actScale` (1) or its own (2, qRowActScale, after a pass for the norm and one for max |x|),
// split as the codes' values (exact in float16, no lo term) and the results multiplied by the scale. CVT (FP8
// weights; here, in qGemvMma and in qGemvStaged): the codes converted by the hardware where it can (qFp8Hw).
// Geometry: rows of t0 one per block, cols N in tiles of 16 TILES WT, 4 K bytes of shared memory.
template <int BITS, int NSPLIT, int OUT, bool ZEROS, bool PER_TENSOR, int GATED = -1, int TILES = 1, int FP8 = 0,
          int NORM = 0, int RESID = 0, int U = 2, bool CHUNK_GROUPS = false, int WT = 1, int ACT = 0, int HS = 0,
          int LAYOUT = 0, int CVT = 1>
__device__ void qGemvRow(const QParams &p, const QSplits<NSPLIT> &splits, i64 group, double eps = 0.0,
                         float actScale = 0.0f) {
  constexpr bool HW = qFp8Hw<FP8, CVT != 0>();
  static_assert(!ACT || BITS == 8, "8-bit activations go with 8-bit weights of their format");
  constexpr int AF = FP8 ? FP8 : kActInt8;
  constexpr int WK = BITS == 16 ? 8 : BITS == 8 ? 16 : 32, STEPS = WK / 4, CHUNK = 4 * WK;
  constexpr int BYTES_PER_K2 = BITS == 16 ? 4 : BITS == 8 ? 2 : 1;
  extern __shared__ __align__(16) unsigned xs[]; // [2][K / 2] float16 pairs: hi, then lo
  __shared__ float red[16][2][32];
  const QTensor &xt = p.t[0], &wt = p.t[1];
  const i64 K = qLast(xt), N = wt.shape[0];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5, g = lane >> 2, q = lane & 3;
  const int KS = warps / WT, ks = warp % KS; // this warp's part of K in its group, group warp / KS
  i64 rowTile, colTile;
  qTile(N, 16 * TILES * WT, rowTile, colTile);
  const i64 firstTile = (colTile * WT + warp / KS) * TILES;
  const i64 groups = PER_TENSOR ? 1 : K / group;
  const i64 rowBytes = wt.shape[1] * (BITS == 16 ? 2 : 1);
  i64 nr[2];
  const u8 *wrow[2];
  auto select = [&](i64 tile) { // the weight rows of this 16-row tile (LAYOUT: their first words)
    qGemvRowPair<(GATED >= 0)>(N, tile, g, nr);
#pragma unroll
    for (int h = 0; h < 2; ++h)
      wrow[h] = LAYOUT ? qTiledRowWord(LAYOUT, qPtr<const u8>(wt), nr[h], N, rowBytes / 64, 0, q)
                       : qPtr<const u8>(wt) + nr[h] * rowBytes;
  };
  select(firstTile);
  const QScales<HS> scales{BITS == 16 ? nullptr : p.t[2].data};
  const u8 *zeros = ZEROS ? qPtr<const u8>(p.t[3]) : nullptr;
  constexpr int symZero = BITS == 8 || BITS == 16 ? 0 : 1 << (BITS - 1);
  const int chunks = static_cast<int>((K + CHUNK - 1) / CHUNK);
  const int c0 = chunks * ks / KS, c1 = chunks * (ks + 1) / KS;
  // A batch: U chunks' words of rows g and g + 8, with their scales and zero points. CHUNK_GROUPS (scale groups
  // of whole chunks: a chunk's 4 words share one group per row): the 2 U (chunk, row) scales and zero points of a
  // batch are loaded once per row group, pair i = 2 u + h by lane 4 g + i % 4 into slot i / 4, and passed to the
  // other lanes by shuffles (a lane's own loads would fetch each 4 times, from 8 rows' lines per instruction).
  constexpr bool SHARED_GROUPS = CHUNK_GROUPS && BITS != 16 && !PER_TENSOR;
  constexpr int PAIRS = SHARED_GROUPS ? 2 * U : 1, SLOTS = (PAIRS + 3) / 4;
  uint4 w[U][2];
  float sf[U][2], osf[SLOTS];
  int zp[U][2], ozp[SLOTS];
  auto load = [&](int c) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const i64 k = static_cast<i64>(c + u) * CHUNK + q * WK;
      const bool ok = c + u < c1 && k < K;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        w[u][h] = ok ? qLoadStream(wrow[h] + (LAYOUT ? (c + u) * i64{1024} : k / 2 * BYTES_PER_K2))
                     : make_uint4(0, 0, 0, 0);
        if (BITS != 16 && !SHARED_GROUPS) {
          const i64 gi = PER_TENSOR ? 0 : nr[h] * groups + (ok ? k : 0) / group;
          sf[u][h] = ok ? scales[gi] * qFp8MmaFactor<FP8, HW>() : 0.0f;
          zp[u][h] = ZEROS ? zeros[gi] : symZero;
        }
      }
    }
    if (SHARED_GROUPS)
#pragma unroll
      for (int j = 0; j < SLOTS; ++j) {
        const int i = q + 4 * j, u = i >> 1;
        const i64 k = static_cast<i64>(c + u) * CHUNK;
        const bool ok = i < PAIRS && c + u < c1 && k < K;
        const i64 gi = ((i & 1) ? nr[1] : nr[0]) * groups + (ok ? k : 0) / group; // no local array
        osf[j] = ok ? scales[gi] * qFp8MmaFactor<FP8, HW>() : 0.0f;
        ozp[j] = ZEROS && ok ? zeros[gi] : symZero;
      }
  };
  load(c0);
  // x -> hi and lo float16 pairs, pair i = (word, step, half) in the order the lanes read them. A warp loads 512
  // contiguous bytes of x at a time, UNROLL loads in flight: lane l's four floats at 4 l are those of one k-step's
  // two pairs of word l / (WK / 4) (qMmaOffsets; 4-bit words' pairs join a float with the one 4 places up, so lanes
  // 2 i and 2 i + 1 swap two of theirs), and it stores that step's pairs of each term (a warp's store: 256
  // contiguous bytes).
  const float *x = qPtr<const float>(xt) + rowTile * K;
  const int pairs = static_cast<int>(K / 2);
  // NORM: g * x is split, and the sum of squares of x taken from the same loads; the products, linear in x, are
  // multiplied by 1 / rms at the end (no pass over x of its own, no barrier of its own).
  const float *gs = NORM ? qPtr<const float>(p.t[4]) : nullptr;
  double ss = 0.0;
  float actInv = 1.0f, xscale = 1.0f;
  if (ACT)
    qRowActScale<AF, ACT, NORM>(x, gs, K, eps, actScale, actInv, xscale);
  constexpr int SPAN = 128 / WK, UNROLL = 4; // words per load
  const int words = static_cast<int>(K / WK), lw = lane / (WK / 4), lst = lane % (WK / 4);
  const bool odd = lane & 1;
  for (int w0 = warp * SPAN; w0 < words; w0 += warps * SPAN * UNROLL) {
    float4 v[UNROLL];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int wd = w0 + u * warps * SPAN + lw;
      const bool in = wd < words;
      const i64 k = static_cast<i64>(wd) * WK + 4 * lst;
      v[u] = in ? *reinterpret_cast<const float4 *>(x + k) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (ACT) {
        if (NORM) {
          const float4 gv = in ? *reinterpret_cast<const float4 *>(gs + k) : make_float4(0, 0, 0, 0);
          v[u].x = gv.x * (v[u].x * actInv), v[u].y = gv.y * (v[u].y * actInv), v[u].z = gv.z * (v[u].z * actInv),
          v[u].w = gv.w * (v[u].w * actInv);
        }
        v[u].x = qActCode<AF>(v[u].x, xscale), v[u].y = qActCode<AF>(v[u].y, xscale),
        v[u].z = qActCode<AF>(v[u].z, xscale), v[u].w = qActCode<AF>(v[u].w, xscale);
      } else if (NORM) {
        const float4 gv = in ? *reinterpret_cast<const float4 *>(gs + k) : make_float4(0, 0, 0, 0);
        ss += static_cast<double>(v[u].x) * v[u].x + static_cast<double>(v[u].y) * v[u].y +
              static_cast<double>(v[u].z) * v[u].z + static_cast<double>(v[u].w) * v[u].w;
        v[u].x *= gv.x, v[u].y *= gv.y, v[u].z *= gv.z, v[u].w *= gv.w;
      }
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      float a[4]; // the step's pairs (a[0], a[1]) and (a[2], a[3])
      if (BITS == 16 || HW)
        a[0] = v[u].x, a[1] = v[u].y, a[2] = v[u].z, a[3] = v[u].w;
      else if (BITS == 8)
        a[0] = v[u].x, a[1] = v[u].z, a[2] = v[u].y, a[3] = v[u].w;
      else { // even lane: (its 0, the odd's 0), (its 1, the odd's 1); odd lane: (the even's 2, its 2), ...
        const float r0 = __shfl_xor_sync(0xffffffffu, odd ? v[u].x : v[u].z, 1);
        const float r1 = __shfl_xor_sync(0xffffffffu, odd ? v[u].y : v[u].w, 1);
        a[0] = odd ? r0 : v[u].x, a[1] = odd ? v[u].z : r0, a[2] = odd ? r1 : v[u].y, a[3] = odd ? v[u].w : r1;
      }
      unsigned hi[2], lo[2];
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        hi[j] = qOp2(a[2 * j], a[2 * j + 1]);
        lo[j] = qOp2(a[2 * j] - qOpToFloat(static_cast<unsigned short>(hi[j] & 0xFFFFu)),
                     a[2 * j + 1] - qOpToFloat(static_cast<unsigned short>(hi[j] >> 16)));
      }
      const int wd = w0 + u * warps * SPAN + lw;
      if (wd < words) {
        *reinterpret_cast<uint2 *>(xs + wd * (WK / 2) + 2 * lst) = make_uint2(hi[0], hi[1]);
        *reinterpret_cast<uint2 *>(xs + pairs + wd * (WK / 2) + 2 * lst) = make_uint2(lo[0], lo[1]);
      }
    }
  }
  __shared__ double ssWarp[16];
  if (NORM && !ACT) {
    ss = qWarpSumD(ss);
    if (lane == 0)
      ssWarp[warp] = ss;
  }
  __syncthreads();
  float inv = ACT ? xscale : 1.0f; // what the sums are multiplied by
  if (NORM && !ACT) {
    double total = 0.0;
    for (int v = 0; v < warps; ++v)
      total += ssWarp[v];
    inv = qInvRms(total, K, eps);
  }
  // This lane's B column g carries term g / 4 of lane g % 4's k: only lanes with g % 4 == q read x.
  const bool xlane = (g & 3) == q;
  const unsigned *xterm = xs + (g >> 2) * pairs;
  for (int t = 0; t < TILES; ++t) { // the group's tiles, one after the other over the x the block split once
    const i64 tile = firstTile + t, n0 = tile * 16;
    if (n0 >= N && (KS == 1 || WT == 1))
      break; // (with groups that split K, a group past N runs on, on clamped rows: the barriers are the block's)
    float acc[2] = {0.0f, 0.0f};
    for (int c = c0; c < c1; c += U) {
      uint4 cw[U][2];
      float cs[U][2];
      int cz[U][2];
#pragma unroll
      for (int u = 0; u < U; ++u)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          cw[u][h] = w[u][h];
          if (SHARED_GROUPS) { // from the lane that loaded pair 2 u + h
            const int i = 2 * u + h, from = (lane & ~3) | (i & 3);
            cs[u][h] = __shfl_sync(0xffffffffu, osf[i >> 2], from);
            cz[u][h] = __shfl_sync(0xffffffffu, ozp[i >> 2], from);
          } else {
            cs[u][h] = BITS == 16 ? 1.0f : sf[u][h], cz[u][h] = BITS == 16 ? 0 : zp[u][h];
          }
        }
      if (c + U < c1) {
        load(c + U);
      } else if (t + 1 < TILES && (n0 + 16 < N || KS > 1)) { // the next tile's first batch during this one's last
        select(tile + 1);
        load(c0);
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        if (c + u >= c1)
          break;
        const int word = (c + u) * 4 + q;
        const bool in = static_cast<i64>(word) * WK < K;
        QZero zz[2] = {};
        if (BITS != 16)
          zz[0] = qMmaZero<BITS>(cz[u][0]), zz[1] = qMmaZero<BITS>(cz[u][1]);
        float part[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int st = 0; st < STEPS; ++st) {
          unsigned a[4];
          qMmaWeights<BITS, false, FP8, true, HW>(cw[u][0], st, zz[0], 0u, a[0], a[2]);
          qMmaWeights<BITS, false, FP8, true, HW>(cw[u][1], st, zz[1], 0u, a[1], a[3]);
          uint2 b = make_uint2(0u, 0u);
          if (xlane && in)
            b = *reinterpret_cast<const uint2 *>(xterm + (word * STEPS + st) * 2);
          qMma16816(part, a, b.x, b.y);
        }
        // part = C[row g, g + 8][column 2q, 2q + 1]: the words of lanes 2q % 4 and 2q % 4 + 1, whose scales those
        // lanes hold (all this lane's, with CHUNK_GROUPS).
        if (SHARED_GROUPS) {
          acc[0] += (part[0] + part[1]) * cs[u][0];
          acc[1] += (part[2] + part[3]) * cs[u][1];
          continue;
        }
        const int l0 = (lane & ~3) | ((2 * q) & 3);
        const float s00 = __shfl_sync(0xffffffffu, cs[u][0], l0), s01 = __shfl_sync(0xffffffffu, cs[u][0], l0 + 1);
        const float s10 = __shfl_sync(0xffffffffu, cs[u][1], l0), s11 = __shfl_sync(0xffffffffu, cs[u][1], l0 + 1);
        acc[0] += part[0] * s00 + part[1] * s01;
        acc[1] += part[2] * s10 + part[3] * s11;
      }
    }
    // Sum over the row group's 4 lanes, then over the warps.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      acc[h] += __shfl_xor_sync(0xffffffffu, acc[h], 1);
      acc[h] += __shfl_xor_sync(0xffffffffu, acc[h], 2);
    }
    if (KS > 1) {
      if (ks > 0)
        red[warp][0][lane] = acc[0], red[warp][1][lane] = acc[1];
      __syncthreads();
      if (ks == 0)
        for (int v = warp + 1; v < warp + KS; ++v)
          acc[0] += red[v][0][lane], acc[1] += red[v][1][lane];
    }
    if (ks == 0 && q == 0 && n0 < N) {
      acc[0] *= inv, acc[1] *= inv;
      if (GATED >= 0) {
        const i64 c = tile * 8 + g, width = N / 2;
        if (c < width)
          qPtr<float>(p.t[OUT])[rowTile * width + c] = qActivation<GATED < 0 ? 0 : GATED>(acc[0]) * acc[1];
      } else {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const i64 n = n0 + g + 8 * h;
          if (n < N) {
            const QSplitColumn<NSPLIT, OUT> out(p, splits, n);
            const i64 o = rowTile * out.width + out.col;
            out.y[o] = RESID ? qPtr<const float>(p.t[5])[o] + acc[h] : acc[h];
          }
        }
      }
    }
    if (KS > 1 && t + 1 < TILES)
      __syncthreads(); // the groups' first warps have read red before the next tile's sums overwrite it
  }
}

//===-- rotary embedding ---------------------------------------------------===//

// Pair j of a row of D = 2 half values rotated by the angle theta, rotary's formulas: STYLE 0 pairs (j, j + half)
// (rotate_half), 1 pairs (2 j, 2 j + 1) (interleaved). x and y may be the same row.
// qRotatePairTo hands the two rotated values to store(index, value).
template <int STYLE, typename Store>
__device__ __forceinline__ void qRotatePairTo(const float *x, i64 j, i64 half, float theta, Store store) {
  const float c = cosf(theta), s = sinf(theta);
  const i64 lo = STYLE == 1 ? 2 * j : j, hi = STYLE == 1 ? 2 * j + 1 : j + half;
  const float a = x[lo], b = x[hi];
  store(lo, a * c + -b * s);
  store(hi, b * c + a * s);
}
template <int STYLE, typename Y>
__device__ __forceinline__ void qRotatePair(const float *x, Y *y, i64 j, i64 half, float theta) {
  qRotatePairTo<STYLE>(x, j, half, theta, [y](i64 i, float v) { qStoreFloat(y + i, v); });
}
// The position of row i of batch b from positions [B or 1, S] of type P, as a float (the angle's factor).
template <typename P> __device__ __forceinline__ float qPosition(const QTensor &pos, i64 b, i64 S, i64 i) {
  return static_cast<float>(qPtr<const P>(pos)[(pos.shape[0] == 1 ? 0 : b) * S + i]);
}

// rotary: t0 x [B, H, S, D], t1 positions [B or 1, S] (P: int64, int32 or float), t2 inv_freq [D/2], t3 out.
// One block per (b, h, s) row. STYLE 0 rotate_half, 1 interleaved.
template <int STYLE, typename P> __device__ void qRotary(const QParams &p) {
  const QTensor &x = p.t[0];
  const i64 H = x.shape[1], S = x.shape[2], D = x.shape[3], half = D / 2, r = blockIdx.x;
  const float position = qPosition<P>(p.t[1], r / (H * S), S, r % S), *freq = qPtr<const float>(p.t[2]);
  for (i64 j = threadIdx.x; j < half; j += blockDim.x)
    qRotatePair<STYLE>(qPtr<const float>(x) + r * D, qPtr<float>(p.t[3]) + r * D, j, half, position * freq[j]);
}

// kv_append_rotary: t0 cache [Bc, H, C, D], t1 new entries [B, H, S, D], t2 length (int64 [1]), positions [B or 1,
// S] (P) at t[OUT - 2], inv_freq [D/2] at t[OUT - 1], the cache (same memory as t0) at t[OUT]: the entries rotated
// as qRotary does, written at the cache's length (C: float, or unsigned short for a float16 cache, or QFp8 for an
// FP8 one: codes of the rotated value times 1 / sc[h], or of the rotated value minus off[h, d] times it, as
// qKvAppend). One block per (b, h, s) row of t1 (fewer than 2^31: 32-bit divisions). As in qKvAppend the length is
// checked only before the stores, its load in flight with the position's, the frequencies', the entries' and the
// scale's.
template <int STYLE, typename P, typename C = float, int OUT = 5>
__device__ void qKvAppendRotary(const QParams &p, const float *sc = nullptr, const float *off = nullptr) {
  const QTensor &cache = p.t[0], &x = p.t[1];
  const i64 H = x.shape[1], S = x.shape[2], D = x.shape[3], half = D / 2, cap = cache.shape[2];
  const i64 len = *qPtr<const i64>(p.t[2]);
  const unsigned r = blockIdx.x, rows = static_cast<unsigned>(S);
  const i64 b = r / (rows * static_cast<unsigned>(H)), h = r / rows % static_cast<unsigned>(H), i = r % rows;
  const float position = qPosition<P>(p.t[OUT - 2], b, S, i), *freq = qPtr<const float>(p.t[OUT - 1]);
  const float *row = qPtr<const float>(x) + static_cast<i64>(r) * D;
  constexpr int FP8 = QIsFp8<C>::format;
  const float f = FP8 != 0 ? 1.0f / sc[h] : 1.0f, *o = FP8 != 0 && off ? off + h * D : nullptr;
  const bool full = len < 0 || len > cap || S > cap - len || x.shape[0] > cache.shape[0];
  C *dst = qPtr<C>(p.t[OUT]) + ((b * H + h) * cap + len + i) * D;
  for (i64 j = threadIdx.x; j < half; j += blockDim.x) {
    i64 at[2];
    float v[2];
    int n = 0;
    qRotatePairTo<STYLE>(row, j, half, position * freq[j], [&](i64 e, float value) { at[n] = e, v[n++] = value; });
    if constexpr (FP8 != 0) {
      const u8 c0 = qFloatToFp8<FP8>((o ? v[0] - o[at[0]] : v[0]) * f);
      const u8 c1 = qFloatToFp8<FP8>((o ? v[1] - o[at[1]] : v[1]) * f);
      if (full)
        break;
      dst[at[0]].code = c0, dst[at[1]].code = c1;
    } else {
      if (full)
        break;
      qStoreFloat(dst + at[0], v[0]), qStoreFloat(dst + at[1], v[1]);
    }
  }
  if (full && threadIdx.x == 0)
    qFail(p, QOPT_STATUS_CACHE_FULL);
}

//===-- attention ----------------------------------------------------------===//

// attention: t0 q [B, H, S, D], t1 k [Bk, Hkv, C, D], t2 v [Bk, Hkv, C, Dv], t3 the mask (MASK 1: bool, where false
// scores become maskedValue; 2: float32, added; 0: absent), broadcast to [B, H, S, keys], t4 the cache length
// (int64 [1], when CACHE, which takes no mask; else absent or missing), out [B, H, S, Dv] at t[OUT]. ROT >= 0: the
// queries rotated as qRotary does (style ROT) as they are loaded, positions (type P) and inv_freq the last two
// inputs (t[OUT - 2], t[OUT - 1]). One block per (b, h, s) query row; the keys in chunks of CHUNK with a running max
// (online softmax): a warp per key for the scores, and for the values key groups of threads that own output dims
// tid, tid + span, ... (Dv <= 4 * blockDim.x). KV: the keys' and values' element type (float, or unsigned short: a
// float16 cache, or QFp8: an FP8 one, whose kv heads' scales are ks and vs, the launch's t5 and t6).
template <bool CAUSAL, bool ZERO_NAN, bool CACHE, int CHUNK, int OUT, int MASK = 0, int ROT = -1, typename P = i64,
          typename KV = float>
__device__ void qAttention(const QParams &p, float scale, float maskedValue = 0.0f, const float *ks = nullptr,
                           const float *vs = nullptr) {
  __shared__ float sc[CHUNK];
  __shared__ float qs[512];
  __shared__ float scratch[32];
  const QTensor &q = p.t[0], &k = p.t[1], &v = p.t[2];
  const i64 B = q.shape[0], H = q.shape[1], S = q.shape[2], D = q.shape[3];
  const i64 Hkv = k.shape[1], C = k.shape[2], Dv = v.shape[3], r = blockIdx.x;
  const i64 b = r / (H * S), h = r / S % H, i = r % S, hk = h / (H / Hkv);
  constexpr bool FP8 = QIsFp8<KV>::format != 0;
  const float kScale = FP8 ? scale * ks[hk] : scale, vScale = FP8 ? vs[hk] : 1.0f;
  i64 T = C;
  if (CACHE) {
    const i64 len = *qPtr<const i64>(p.t[4]);
    if (len < 0 || len > C - S || B > k.shape[0]) {
      qFail(p, QOPT_STATUS_CACHE_FULL);
      return;
    }
    T = len + S;
  }
  i64 jEnd = T;
  if (CAUSAL) {
    jEnd = i + (T - S) + 1;
    jEnd = jEnd < 0 ? 0 : jEnd > T ? T : jEnd;
  }
  i64 ms[4] = {0, 0, 0, 0}; // the mask's strides along [B, H, S, keys] (0 where it broadcasts)
  if (MASK) {
    const QTensor &m = p.t[3];
    const i64 full[4] = {B, H, S, T};
    i64 stride = 1;
    for (int d = 3; d >= 0; --d) {
      const int md = d - (4 - m.rank);
      const i64 size = md >= 0 ? m.shape[md] : 1;
      if (size != 1 && size != full[d]) {
        qFail(p, QOPT_STATUS_SHAPE);
        return;
      }
      ms[d] = size == 1 ? 0 : stride;
      stride *= size;
    }
  }
  const float *qi = qPtr<const float>(q) + r * D;
  if (ROT >= 0) {
    const float position = qPosition<P>(p.t[OUT - 2], b, S, i), *freq = qPtr<const float>(p.t[OUT - 1]);
    for (i64 j = threadIdx.x; j < D / 2; j += blockDim.x)
      qRotatePair<ROT < 0 ? 0 : ROT>(qi, qs, j, D / 2, position * freq[j]);
  } else {
    for (i64 d = threadIdx.x; d < D; d += blockDim.x)
      qs[d] = qi[d];
  }
  const KV *kb = qPtr<const KV>(k) + (b * Hkv + hk) * C * D;
  const KV *vb = qPtr<const KV>(v) + (b * Hkv + hk) * C * Dv;
  float m = -QOPT_INF, l = 0.0f, acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  // Key groups for the values: head dims up to 128 leave most of a large block idle with one thread per dim.
  __shared__ float red[8][128];
  const int span = Dv <= 128 ? 128 : static_cast<int>(blockDim.x);
  const int groups = static_cast<int>(blockDim.x) / span, grp = threadIdx.x / span, tid = threadIdx.x % span;
  __syncthreads();
  for (i64 j0 = 0; j0 < jEnd; j0 += CHUNK) {
    const int jn = static_cast<int>(jEnd - j0 < CHUNK ? jEnd - j0 : CHUNK);
    // Scores: a warp per key, its lanes over the head dim (each key row is read in consecutive 128-byte pieces),
    // four keys in flight per warp.
    float local = -QOPT_INF;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll 4
    for (int jj = warp; jj < jn; jj += warps) {
      const KV *kj = kb + (j0 + jj) * D;
      float s = 0.0f;
      for (i64 d = lane; d < D; d += 32)
        s += qs[d] * qToFloat(kj[d]);
      s = qWarpSum(s) * kScale;
      if (MASK) {
        const i64 mi = b * ms[0] + h * ms[1] + i * ms[2] + (j0 + jj) * ms[3];
        if (MASK == 1)
          s = qPtr<const u8>(p.t[3])[mi] ? s : maskedValue;
        else
          s += qPtr<const float>(p.t[3])[mi];
      }
      if (lane == 0)
        sc[jj] = s;
      local = fmaxf(local, s);
    }
    const float newMax = fmaxf(m, qBlockMax(local, scratch));
    const float base = newMax == -QOPT_INF ? 0.0f : newMax;
    const float factor = expf(m - base);
    float psum = 0.0f;
    for (int jj = threadIdx.x; jj < jn; jj += blockDim.x) {
      const float e = expf(sc[jj] - base);
      sc[jj] = e;
      psum += e;
    }
    l = l * factor + qBlockSum(psum, scratch); // qBlockSum's barriers also publish sc
    // Values: each key group's threads own output dims tid, tid + span, ...; the groups take every groups-th key
    // (their sums meet at the end), four partial sums per thread for independent loads in flight.
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      const i64 d = tid + t * static_cast<i64>(span);
      if (d < Dv) {
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        const KV *vd = vb + j0 * Dv + d;
        int jj = grp;
        for (; jj + 3 * groups < jn; jj += 4 * groups) {
          a0 += sc[jj] * qToFloat(vd[jj * Dv]);
          a1 += sc[jj + groups] * qToFloat(vd[(jj + groups) * Dv]);
          a2 += sc[jj + 2 * groups] * qToFloat(vd[(jj + 2 * groups) * Dv]);
          a3 += sc[jj + 3 * groups] * qToFloat(vd[(jj + 3 * groups) * Dv]);
        }
        for (; jj < jn; jj += groups)
          a0 += sc[jj] * qToFloat(vd[jj * Dv]);
        acc[t] = acc[t] * factor + ((a0 + a1) + (a2 + a3));
      }
    }
    m = newMax;
    __syncthreads();
  }
  if (groups > 1) { // the key groups' sums (Dv <= 128: one dim per thread)
    red[grp][tid] = acc[0];
    __syncthreads();
    if (grp != 0)
      return;
    for (int g2 = 1; g2 < groups; ++g2)
      acc[0] += red[g2][tid];
  }
  float *o = qPtr<float>(p.t[OUT]) + r * Dv;
  const bool nan = (jEnd == 0 && T > 0) || (jEnd > 0 && !(l > 0.0f)); // every key masked: 0 / 0, as the reference
#pragma unroll
  for (int t = 0; t < 4; ++t) {
    const i64 d = tid + t * static_cast<i64>(span);
    if (d < Dv)
      o[d] = nan ? (ZERO_NAN ? 0.0f : __int_as_float(0x7fc00000)) : (FP8 ? acc[t] * vScale : acc[t]) * (1.0f / l);
  }
}

// Decode attention's split of the keys over the grid's y (flash-decoding): at most QOPT_DECODE_MAX_SLICES slices of
// whole chunks of `granule` keys, as many as the cache's length fills (a short context: one block does it all and
// writes the output itself). Several slices meet through global memory, in the launch's scratch (a module global,
// each session loading its own module and running its launches one after another): per row of blocks (kv head) an
// arrival count, then per slice its running max and sum per head (m[G], l[G]) and partial sums o[G][D]; the last
// block of a row to arrive combines them (qDecodeFinish) and resets the count for the next launch.
#define QOPT_DECODE_MAX_SLICES 32
struct QDecodeSplit {
  i64 begin, end; // this block's keys
  int slices;     // the row's blocks that have keys (1: no scratch used)
  unsigned *count; // the row's arrival count
  float *part;     // the row's partial sums: slice s's m[G], l[G], o[G][D] at s * (2 G + G D)
};
// Decode attention's checks and slice: the cache's length (t4) within its capacity, one query row per head in groups
// of G per kv head, at least `shared` bytes of dynamic shared memory, a grid y of at most QOPT_DECODE_MAX_SLICES with
// scratch for its rows (`scratch`: rowsCap counts, then rowsCap x gridDim.y slices' m, l, o) where it exceeds 1
// (else the status is set once and false returned); this block's keys. False also for the blocks past the slices
// the length fills.
template <int G, int D>
__device__ __forceinline__ bool qDecodeSlice(const QParams &p, int shared, int granule, unsigned *scratch,
                                             i64 rowsCap, QDecodeSplit &sp) {
  const QTensor &q = p.t[0], &k = p.t[1];
  const i64 C = k.shape[2], len = *qPtr<const i64>(p.t[4]), rows = q.shape[0] * k.shape[1];
  const int S = static_cast<int>(gridDim.y);
  unsigned dynamicBytes;
  asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(dynamicBytes));
  const bool full = len < 0 || len > C - 1 || q.shape[0] > k.shape[0];
  if (full || q.shape[2] != 1 || q.shape[1] != k.shape[1] * G || dynamicBytes < static_cast<unsigned>(shared) ||
      S > QOPT_DECODE_MAX_SLICES || (S > 1 && (!scratch || rows > rowsCap))) {
    if (blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x == 0)
      qFail(p, full ? QOPT_STATUS_CACHE_FULL : QOPT_STATUS_SHAPE);
    return false;
  }
  const i64 T = len + 1, per = ((T + S - 1) / S + granule - 1) / granule * granule;
  sp.slices = static_cast<int>((T + per - 1) / per);
  if (static_cast<int>(blockIdx.y) >= sp.slices)
    return false;
  sp.begin = per * blockIdx.y, sp.end = sp.begin + per < T ? sp.begin + per : T;
  sp.count = scratch + blockIdx.x;
  sp.part = reinterpret_cast<float *>(scratch + rowsCap) + blockIdx.x * static_cast<i64>(S) * (2 * G + G * D);
  return true;
}

// Decode attention's output rows `out` (G x D) from this block's running max and sum per head (mrow, lrow: natural
// log units, or log2 units with EXP2) and partial sums `part` (shared memory, G x D): divided out when the block
// had every key; else published to the row's scratch, and the row's last block to arrive weighs every slice's
// against their largest max. vscale: the FP8 cache's value scale (1 otherwise). Starts with a barrier of the block.
template <int G, int D, int NT, bool ZERO_NAN, bool EXP2>
__device__ void qDecodeFinish(const QDecodeSplit &sp, float *out, const float *mrow, const float *lrow,
                              const float *part, float vscale) {
  constexpr int W = 2 * G + G * D;
  const int t = threadIdx.x;
  const float nan = ZERO_NAN ? 0.0f : __int_as_float(0x7fc00000);
  __syncthreads();
  if (sp.slices == 1) {
    for (int i = t; i < G * D; i += NT) {
      const float l = lrow[i / D];
      out[i] = l > 0.0f ? part[i] * vscale / l : nan;
    }
    return;
  }
  __shared__ float weight[QOPT_DECODE_MAX_SLICES][G], den[G];
  __shared__ int last;
  float *mine = sp.part + blockIdx.y * W;
  if (t < G)
    mine[t] = mrow[t], mine[G + t] = lrow[t];
  for (int i = t; i < G * D; i += NT)
    mine[2 * G + i] = part[i];
  __threadfence(); // this thread's partial sums are seen device-wide before the count says so
  __syncthreads();
  if (t == 0)
    last = atomicAdd(sp.count, 1u) == static_cast<unsigned>(sp.slices - 1);
  __syncthreads();
  if (!last)
    return;
  __threadfence();
  if (t < G) { // head t's weight per slice against the largest max
    float m = -QOPT_INF;
    for (int s = 0; s < sp.slices; ++s)
      m = fmaxf(m, __ldcg(sp.part + s * W + t));
    const float base = m == -QOPT_INF ? 0.0f : m;
    float d = 0.0f;
    for (int s = 0; s < sp.slices; ++s) {
      const float ms = __ldcg(sp.part + s * W + t), w = EXP2 ? exp2f(ms - base) : expf(ms - base);
      weight[s][t] = w, d += w * __ldcg(sp.part + s * W + G + t);
    }
    den[t] = d;
  }
  __syncthreads();
  for (int i = t; i < G * D; i += NT) {
    const int g = i / D;
    float num = 0.0f;
#pragma unroll 8
    for (int s = 0; s < sp.slices; ++s)
      num += weight[s][g] * __ldcg(sp.part + s * W + 2 * G + i);
    out[i] = den[g] > 0.0f ? num * vscale / den[g] : nan;
  }
  if (t == 0)
    *sp.count = 0;
}

// The G query rows of decode attention's block r (rows (b, hk * G + g) = r * G + g of t0, b = r / Hkv) into qs
// as float, rotated as they are loaded at the batch's one position when ROT >= 0 (positions and frequencies: the
// last two inputs, before the output at t[OUT]).
template <int G, int D, int NT, int ROT, typename P, int OUT>
__device__ __forceinline__ void qDecodeQueries(const QParams &p, i64 r, i64 Hkv, float (*qs)[D]) {
  const float *qg = qPtr<const float>(p.t[0]) + r * G * D;
  if (ROT >= 0) {
    const float position = qPosition<P>(p.t[OUT - 2], r / Hkv, 1, 0), *freq = qPtr<const float>(p.t[OUT - 1]);
    for (int i = threadIdx.x; i < G * (D / 2); i += NT) {
      const int g = i / (D / 2), j = i % (D / 2);
      qRotatePair<ROT < 0 ? 0 : ROT>(qg + g * D, qs[g], j, D / 2, position * freq[j]);
    }
  } else {
    for (int i = threadIdx.x; i < G * D; i += NT)
      qs[i / D][i % D] = qg[i];
  }
}

// Decode attention, split over the cache length (flash-decoding): one query row per head over the KV state, the
// operands of qAttention with CACHE, S = 1 and no mask, head dims D (queries, keys and values alike) a multiple of 4 up
// to 256. A block owns the G query heads of one KV head (GQA: the group reads its keys and values once) and one
// slice of the keys (qDecodeSlice: grid y, as many as the length fills); the slices' partial softmax sums meet in
// the launch's scratch (qDecodeFinish: rowsCap rows of blocks), all in one launch. This kernel takes float32 caches
// and head dims that qDecodeAttentionTc (float16 and FP8 caches on the tensor cores) does not. In a block: chunks of
// CH keys with a running max per head (online softmax), a warp per key for the scores (lanes over float4 columns,
// the G heads' dot products at once), key groups of threads that own a float4 column of the values for all G heads.
// Geometry: rows of the output (B * H) in tiles of G, grid y = the slices, 512 threads. ROT >= 0: rotary queries,
// as qAttention. KV: the cache's element type (float, or unsigned short: float16, or QFp8: FP8 codes, the kv head's
// scales ks, vs).
template <int G, int D, bool ZERO_NAN, int OUT, int ROT = -1, typename P = i64, typename KV = float>
__device__ void qDecodeAttention(const QParams &p, unsigned *scratch, i64 rowsCap, float scale,
                                 const float *ks = nullptr, const float *vs = nullptr) {
  // 512 threads, 4 keys in flight per warp: a 4096-position float16 decode (8 kv heads, head dim 128, H200) 32.2 us
  // with 256 threads and one key per warp at a time, 21.7 with 4, 21.0 with 8 keys, 19.3 with 4 keys and 512
  // threads. Key groups of the values phase: as many as the threads hold, their sums (red) within 32 KB.
  constexpr int NT = 512, WARPS = NT / 32, CH = 128, Q4 = D / 4, KU = 4;
  constexpr int GROUPS = NT / Q4 < 8192 / (G * D) ? NT / Q4 : 8192 / (G * D) > 0 ? 8192 / (G * D) : 1;
  static_assert(D % 4 == 0 && D <= 256 && G >= 1 && G <= WARPS, "head dim or group size out of range");
  __shared__ __align__(16) float qs[G][D];
  __shared__ float sc[G][CH];
  __shared__ float mrow[G], lrow[G], fac[G];
  __shared__ __align__(16) float red[GROUPS][G][D]; // the key groups' sums; red[0] ends as the block's
  const QTensor &k = p.t[1], &v = p.t[2];
  const i64 Hkv = k.shape[1], C = k.shape[2], r = blockIdx.x;
  QDecodeSplit sp;
  if (!qDecodeSlice<G, D>(p, 0, CH, scratch, rowsCap, sp))
    return;
  const i64 begin = sp.begin, end = sp.end;
  constexpr bool FP8 = QIsFp8<KV>::format != 0;
  const float kScale = FP8 ? scale * ks[r % Hkv] : scale;
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
  qDecodeQueries<G, D, NT, ROT, P, OUT>(p, r, Hkv, qs);
  if (t < G)
    mrow[t] = -QOPT_INF, lrow[t] = 0.0f;
  const KV *kb = qPtr<const KV>(k) + r * C * D, *vb = qPtr<const KV>(v) + r * C * D;
  const int c4 = t % Q4, kg = t / Q4; // the values phase: a float4 column and a key group
  float acc[G][4];
#pragma unroll
  for (int g = 0; g < G; ++g)
    acc[g][0] = acc[g][1] = acc[g][2] = acc[g][3] = 0.0f;
  __syncthreads();
  for (i64 j0 = begin; j0 < end; j0 += CH) {
    const int jn = static_cast<int>(end - j0 < CH ? end - j0 : CH);
    // A warp takes KU keys at once (jj = j + u WARPS), their loads issued before any is used: one key at a time
    // waited out the memory latency per key (a 4096-position decode 32 us where its 8 MB of float16 keys and
    // values take about 3 at the H200's bandwidth).
    for (int j = warp; j < jn; j += KU * WARPS) {
      float s[KU][G];
#pragma unroll
      for (int u = 0; u < KU; ++u)
#pragma unroll
        for (int g = 0; g < G; ++g)
          s[u][g] = 0.0f;
      for (int c = lane; c < Q4; c += 32) {
        float4 kv[KU];
#pragma unroll
        for (int u = 0; u < KU; ++u)
          kv[u] = j + u * WARPS < jn ? qLoadFloat4(kb + (j0 + j + u * WARPS) * D + 4 * c)
                                     : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
        for (int g = 0; g < G; ++g) {
          const float4 qv = reinterpret_cast<const float4 *>(qs[g])[c];
#pragma unroll
          for (int u = 0; u < KU; ++u)
            s[u][g] += qv.x * kv[u].x + qv.y * kv[u].y + qv.z * kv[u].z + qv.w * kv[u].w;
        }
      }
#pragma unroll
      for (int u = 0; u < KU; ++u)
#pragma unroll
        for (int g = 0; g < G; ++g) {
          const float sum = qWarpSum(s[u][g]) * kScale;
          if (lane == 0 && j + u * WARPS < jn)
            sc[g][j + u * WARPS] = sum;
        }
    }
    __syncthreads();
    if (warp < G) { // warp g: head g's running max and sum
      float mx = -QOPT_INF;
      for (int jj = lane; jj < jn; jj += 32)
        mx = fmaxf(mx, sc[warp][jj]);
      const float mNew = fmaxf(mrow[warp], qWarpMax(mx)), base = mNew == -QOPT_INF ? 0.0f : mNew;
      float sum = 0.0f;
      for (int jj = lane; jj < jn; jj += 32) {
        const float e = expf(sc[warp][jj] - base);
        sc[warp][jj] = e;
        sum += e;
      }
      sum = qWarpSum(sum);
      if (lane == 0) {
        const float f = expf(mrow[warp] - base);
        fac[warp] = f, lrow[warp] = lrow[warp] * f + sum, mrow[warp] = mNew;
      }
    }
    __syncthreads();
    if (kg < GROUPS) {
#pragma unroll
      for (int g = 0; g < G; ++g)
        acc[g][0] *= fac[g], acc[g][1] *= fac[g], acc[g][2] *= fac[g], acc[g][3] *= fac[g];
#pragma unroll 8
      for (int jj = kg; jj < jn; jj += GROUPS) {
        const float4 vv = qLoadFloat4(vb + (j0 + jj) * D + 4 * c4);
#pragma unroll
        for (int g = 0; g < G; ++g) {
          const float e = sc[g][jj];
          acc[g][0] += e * vv.x, acc[g][1] += e * vv.y, acc[g][2] += e * vv.z, acc[g][3] += e * vv.w;
        }
      }
    }
    __syncthreads(); // the next chunk overwrites sc
  }
  if (kg < GROUPS)
#pragma unroll
    for (int g = 0; g < G; ++g)
      *reinterpret_cast<float4 *>(&red[kg][g][4 * c4]) = make_float4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]);
  __syncthreads();
  for (int i = t; i < G * D; i += NT) { // each (g, d) summed over the key groups by one thread
    float sum = 0.0f;
    for (int e = 0; e < GROUPS; ++e)
      sum += red[e][i / D][i % D];
    red[0][i / D][i % D] = sum;
  }
  qDecodeFinish<G, D, NT, ZERO_NAN, false>(sp, qPtr<float>(p.t[OUT]) + r * G * D, mrow, lrow, &red[0][0][0],
                                           FP8 ? vs[r % Hkv] : 1.0f);
}

// Tensor-core attention for prompts (flash-attention style): the same operands and results as qAttention without a
// mask (causal and/or over the cache), for head dims D (queries, keys and values alike) that are multiples of 16 up
// to 128. A block of 4 warps owns 64 query rows of one (b, h) plane, 16 per warp; each tile of 64 keys is staged
// in shared memory as float16 (rows padded by 16 bytes so that the fragment loads, ldmatrix, hit 32 distinct
// banks), the scores S = Q K^T and the sums P V run on mma.m16n8k16 (float16 operands, float32 accumulation), and
// the softmax is online per row in registers (exp2 of scores pre-scaled by log2(e)). Rounding q, k, v and the
// probabilities to float16 is the difference from the reference: float16-level agreement (q, k, v beyond the
// float16 range become infinities). Geometry: planes of t0 (all dims but the last two) times its rows (S) in tiles
// of 64; 128 threads.
// Four 8x8 float16 matrices from shared memory (lane i gives row i % 8 of matrix i / 8); TRANS: transposed.
template <bool TRANS> __device__ __forceinline__ void qLdMatrix4(unsigned (&r)[4], const void *row) {
  if (TRANS)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(qSharedAddress(row)));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(qSharedAddress(row)));
}
// Rows [0, ROWS) of NM row-major [rows, D] float32 matrices as float16 into shared memory, zeros from row `valid`
// (>= 1) on; THREADS threads. Aligned (`vec`): every thread's 16-byte loads of a batch are issued before any is
// used (rows past `valid` read row valid - 1 and store zeros, so no load sits behind a branch): a
// load-convert-store loop waited out the L2 latency per load and made this kernel 7x slower than its arithmetic.
template <int D, int STRIDE, int NM, int ROWS = 64, int THREADS = 128>
__device__ __forceinline__ void qStageHalfTiles(unsigned short (*const (&dst)[NM])[STRIDE],
                                                const float *const (&src)[NM], int valid, bool vec) {
  if (!vec) {
    for (int m = 0; m < NM; ++m)
      for (int e = threadIdx.x; e < ROWS * D / 2; e += THREADS) {
        const int r = e / (D / 2), d = e % (D / 2) * 2;
        const float a = r < valid ? src[m][r * D + d] : 0.0f, b = r < valid ? src[m][r * D + d + 1] : 0.0f;
        *reinterpret_cast<unsigned *>(&dst[m][r][d]) = qOp2(a, b);
      }
    return;
  }
  constexpr int N = ROWS * D / 4 / THREADS, BATCH = N <= 8 ? N : N / 2; // float4s per thread and matrix
#pragma unroll
  for (int b0 = 0; b0 < N; b0 += BATCH) {
    float4 f[NM][BATCH];
#pragma unroll
    for (int i = 0; i < BATCH; ++i) {
      const int e = threadIdx.x + (b0 + i) * THREADS, r = e / (D / 4), d = e % (D / 4) * 4;
      const int row = r < valid ? r : valid - 1;
#pragma unroll
      for (int m = 0; m < NM; ++m)
        f[m][i] = __ldg(reinterpret_cast<const float4 *>(src[m] + row * D + d));
    }
#pragma unroll
    for (int i = 0; i < BATCH; ++i) {
      const int e = threadIdx.x + (b0 + i) * THREADS, r = e / (D / 4), d = e % (D / 4) * 4;
#pragma unroll
      for (int m = 0; m < NM; ++m) {
        const float4 v = f[m][i];
        *reinterpret_cast<uint2 *>(&dst[m][r][d]) =
            r < valid ? make_uint2(qOp2(v.x, v.y), qOp2(v.z, v.w)) : make_uint2(0u, 0u);
      }
    }
  }
}
// The online softmax's step over a tile of NK keys (log2 units) for a warp's two rows per lane (g, g + 8): mx holds
// each row's max of its lane's scores s (masked ones -INF) and the previous max; the quad's maxima are combined, s
// become exp2(s - max), the running sums lrow and the output fragments o are rescaled to the new max (mrow).
template <int NK, int D>
__device__ __forceinline__ void qOnlineSoftmax(float (&s)[NK / 8][4], float (&mx)[2], float (&mrow)[2],
                                               float (&lrow)[2], float (&o)[D / 8][4]) {
  float base[2], alpha[2], ls[2] = {0.0f, 0.0f};
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
    mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
    base[i] = mx[i] == -QOPT_INF ? 0.0f : mx[i];
    alpha[i] = exp2f(mrow[i] - base[i]);
    mrow[i] = mx[i];
  }
#pragma unroll
  for (int nt = 0; nt < NK / 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[nt][e] = exp2f(s[nt][e] - base[e >> 1]);
      ls[e >> 1] += s[nt][e];
    }
  lrow[0] = lrow[0] * alpha[0] + ls[0];
  lrow[1] = lrow[1] * alpha[1] + ls[1];
#pragma unroll
  for (int nt = 0; nt < D / 8; ++nt)
    o[nt][0] *= alpha[0], o[nt][1] *= alpha[0], o[nt][2] *= alpha[1], o[nt][3] *= alpha[1];
}

// One tile of BK keys for a warp's 16 query rows (flash attention): scores from the query fragments `qa` and the
// keys staged in `ks` (float16, rows padded to KS), the online softmax's running max and sum per row (mrow, lrow,
// the warp's lanes holding rows g and g + 8), and the float16 probabilities times the values in `vs` added into
// `o`. Keys past T, or after a row's position plus `past` (CAUSAL), are masked.
template <int D, int BK, int KS, bool CAUSAL>
__device__ __forceinline__ void qFlashStep(const unsigned short (*ks)[KS], const unsigned short (*vs)[KS],
                                           const unsigned (&qa)[D / 16][4], float (&o)[D / 8][4], float (&mrow)[2],
                                           float (&lrow)[2], i64 j0, i64 T, const i64 (&qi)[2], i64 past, float sl2) {
  const int lane = threadIdx.x & 31, c2 = (lane & 3) * 2;
  float s[BK / 8][4];
#pragma unroll
  for (int nt = 0; nt < BK / 8; ++nt) {
    s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk += 2) { // b0, b1 of two k-steps: d columns 16kk + 0, 8, 16, 24
      unsigned kf[4];
      if (kk + 1 < D / 16) {
        qLdMatrix4<false>(kf, &ks[8 * nt + (lane & 7)][16 * kk + (lane >> 3) * 8]);
        qMma16816(s[nt], qa[kk], kf[0], kf[1]);
        qMma16816(s[nt], qa[kk + 1], kf[2], kf[3]);
      } else { // the last of an odd count: its two matrices again as the other two (no read past the row)
        qLdMatrix4<false>(kf, &ks[8 * nt + (lane & 7)][16 * kk + (lane >> 3 & 1) * 8]);
        qMma16816(s[nt], qa[kk], kf[0], kf[1]);
      }
    }
  }
  float mx[2] = {mrow[0], mrow[1]};
  // Some key of the tile is masked for some row of the warp (its first row is qi[0] - lane / 4).
  const bool edge = j0 + BK > T || (CAUSAL && j0 + BK - 1 > qi[0] - lane / 4 + past);
#pragma unroll
  for (int nt = 0; nt < BK / 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const i64 j = j0 + 8 * nt + c2 + (e & 1);
      const bool keep = !edge || (j < T && (!CAUSAL || j <= qi[e >> 1] + past));
      s[nt][e] = keep ? s[nt][e] * sl2 : -QOPT_INF;
      mx[e >> 1] = fmaxf(mx[e >> 1], s[nt][e]);
    }
  qOnlineSoftmax<BK, D>(s, mx, mrow, lrow, o);
#pragma unroll
  for (int kk = 0; kk < BK / 16; ++kk) {
    const unsigned pa[4] = {qOp2(s[2 * kk][0], s[2 * kk][1]), qOp2(s[2 * kk][2], s[2 * kk][3]),
                            qOp2(s[2 * kk + 1][0], s[2 * kk + 1][1]), qOp2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
    for (int nt = 0; nt < D / 8; nt += 2) { // b0, b1 of two d tiles: keys 16kk + 0, 8 at d 8nt + 0, 8
      unsigned vf[4];
      qLdMatrix4<true>(vf, &vs[16 * kk + (lane >> 3 & 1) * 8 + (lane & 7)][8 * nt + (lane >> 4) * 8]);
      qMma16816(o[nt], pa, vf[0], vf[1]);
      qMma16816(o[nt + 1], pa, vf[2], vf[3]);
    }
  }
}

// A warp's 16 output rows of flash attention (rows qi[0], qi[1] of its lanes; those from S on are not stored):
// o / l, or where every key was masked NaN as the reference gives (0 when ZERO_NAN).
template <int D, bool ZERO_NAN>
__device__ __forceinline__ void qFlashStore(float *out, const float (&o)[D / 8][4], float (&lrow)[2],
                                            const i64 (&qi)[2], i64 S) {
  const int c2 = (threadIdx.x & 3) * 2;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    lrow[i] += __shfl_xor_sync(0xffffffffu, lrow[i], 1);
    lrow[i] += __shfl_xor_sync(0xffffffffu, lrow[i], 2);
  }
#pragma unroll
  for (int nt = 0; nt < D / 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; e += 2) {
      const i64 row = qi[e >> 1];
      if (row < S) {
        const float l = lrow[e >> 1], inv = 1.0f / l;
        const float a = l > 0.0f ? o[nt][e] * inv : ZERO_NAN ? 0.0f : __int_as_float(0x7fc00000);
        const float c = l > 0.0f ? o[nt][e + 1] * inv : ZERO_NAN ? 0.0f : __int_as_float(0x7fc00000);
        *reinterpret_cast<float2 *>(out + row * D + 8 * nt + c2) = make_float2(a, c);
      }
    }
}

// The keys a prompt's flash attention sees (T: the cache's length plus the S new rows when CACHE, else all C of
// t1), after checking the operands' head dims and head groups; false, with the status set, when they do not fit.
template <int D, bool CACHE> __device__ __forceinline__ bool qFlashKeys(const QParams &p, i64 &T) {
  const QTensor &q = p.t[0], &k = p.t[1], &v = p.t[2];
  const i64 H = q.shape[1], S = q.shape[2], Hkv = k.shape[1], C = k.shape[2];
  if (q.shape[3] != D || k.shape[3] != D || v.shape[3] != D || Hkv <= 0 || H % Hkv != 0) {
    qFail(p, QOPT_STATUS_SHAPE);
    return false;
  }
  T = C;
  if (CACHE) {
    const i64 len = *qPtr<const i64>(p.t[4]);
    if (len < 0 || len > C - S || q.shape[0] > k.shape[0]) {
      qFail(p, QOPT_STATUS_CACHE_FULL);
      return false;
    }
    T = len + S;
  }
  return true;
}

template <int D, bool CAUSAL, bool ZERO_NAN, bool CACHE, int OUT>
__device__ void qFlashAttention(const QParams &p, float scale) {
  constexpr int BQ = 64, BK = 64, KS = D + 8;
  __shared__ __align__(16) unsigned short ks[BK][KS]; // the query tile first, then each key tile
  __shared__ __align__(16) unsigned short vs[BK][KS];
  const QTensor &q = p.t[0], &k = p.t[1], &v = p.t[2];
  const i64 H = q.shape[1], S = q.shape[2], Hkv = k.shape[1], C = k.shape[2];
  i64 T = 0;
  if (!qFlashKeys<D, CACHE>(p, T))
    return;
  const i64 tiles = (S + BQ - 1) / BQ, plane = blockIdx.x / tiles, q0 = blockIdx.x % tiles * BQ;
  const i64 b = plane / H, h = plane % H, hk = h / (H / Hkv);
  const i64 past = T - S; // query i sees keys up to i + past (causal)
  const i64 jEnd = CAUSAL ? (q0 + BQ + past < T ? q0 + BQ + past : T) : T;
  const float *qb = qPtr<const float>(q) + plane * S * D;
  const float *kb = qPtr<const float>(k) + (b * Hkv + hk) * C * D, *vb = qPtr<const float>(v) + (b * Hkv + hk) * C * D;
  const bool vec = ((reinterpret_cast<unsigned long long>(qb) | reinterpret_cast<unsigned long long>(kb) |
                     reinterpret_cast<unsigned long long>(vb)) & 15) == 0;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2;
  {
    unsigned short(*const dst[1])[KS] = {ks};
    const float *const src[1] = {qb + q0 * D};
    qStageHalfTiles<D, KS, 1>(dst, src, static_cast<int>(S - q0 < BQ ? S - q0 : BQ), vec);
  }
  __syncthreads();
  const int r0 = warp * 16 + g;
  unsigned qa[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk)
    qLdMatrix4<false>(qa[kk], &ks[warp * 16 + (lane >> 3 & 1) * 8 + (lane & 7)][16 * kk + (lane >> 4) * 8]);
  float o[D / 8][4];
#pragma unroll
  for (int nt = 0; nt < D / 8; ++nt)
    o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.0f;
  float mrow[2] = {-QOPT_INF, -QOPT_INF}, lrow[2] = {0.0f, 0.0f};
  const float sl2 = scale * 1.44269504088896340736f;
  const i64 qi[2] = {q0 + r0, q0 + r0 + 8};
  for (i64 j0 = 0; j0 < jEnd; j0 += BK) {
    __syncthreads(); // the previous tile (or the query fragments) read by every warp
    const int valid = static_cast<int>(T - j0 < BK ? T - j0 : BK);
    unsigned short(*const dst[2])[KS] = {ks, vs};
    const float *const src[2] = {kb + j0 * D, vb + j0 * D};
    qStageHalfTiles<D, KS, 2>(dst, src, valid, vec);
    __syncthreads();
    qFlashStep<D, BK, KS, CAUSAL>(ks, vs, qa, o, mrow, lrow, j0, T, qi, past, sl2);
  }
  qFlashStore<D, ZERO_NAN>(qPtr<float>(p.t[OUT]) + plane * S * D, o, lrow, qi, S);
}


// Flash attention over a float16 KV cache (--kv-cache=f16): the operands of qFlashAttention with t1, t2 float16
// [Bk, Hkv, C, D]. The cache's rows are copied into shared memory as they are (cp.async, two tiles in flight, no
// registers held), so a block can own 128 query rows (8 warps of 16): each key tile staged serves twice the rows
// of the float32 kernel at half the bytes. Tiles of keys after a warp's last row (causal) are skipped by that
// warp; the query tiles run last-first, the longest rows of a causal prompt in the first wave. FP8 (1 E4M3FN, 2
// E5M2): an FP8 cache (t1, t2 codes), its tiles copied as codes (behind the float16 stages: 2 stages x K, V x 64 x
// D bytes) and converted into float16 tiles (exact, qFp8PairToHalf2) after they land; the kv head's key scale ks
// joins the softmax scale and its value scale vs the outputs. Geometry: as qFlashAttention with 128-row tiles, 256
// threads, sharedBytes (128 + 4 * 64) * (D + 8) * 2, plus 4 * 64 * D with FP8.
template <int D, bool CAUSAL, bool ZERO_NAN, bool CACHE, int OUT, int FP8 = 0>
__device__ void qFlashAttentionHalf(const QParams &p, float scale, const float *ks = nullptr,
                                    const float *vs = nullptr) {
  constexpr int BQ = 128, BK = 64, KS = D + 8, THREADS = 256;
  constexpr int EB = FP8 ? 1 : 2, CHUNKS = BK * D * EB / 16; // 16-byte pieces per matrix
  extern __shared__ __align__(16) unsigned short flashShared[];
  unsigned short(*const qsm)[KS] = reinterpret_cast<unsigned short(*)[KS]>(flashShared);
  unsigned short(*const kvs)[KS] = qsm + BQ; // [stage][K, V][BK] rows
  u8 *const codes = reinterpret_cast<u8 *>(kvs + 4 * BK); // FP8: [stage][K, V][BK][D]
  const QTensor &q = p.t[0], &k = p.t[1], &v = p.t[2];
  const i64 H = q.shape[1], S = q.shape[2], Hkv = k.shape[1], C = k.shape[2];
  i64 T = 0;
  if (!qFlashKeys<D, CACHE>(p, T))
    return;
  const i64 tiles = (S + BQ - 1) / BQ, planes = gridDim.x / tiles;
  const i64 plane = blockIdx.x % planes, q0 = (tiles - 1 - blockIdx.x / planes) * BQ;
  const i64 b = plane / H, h = plane % H, hk = h / (H / Hkv);
  const i64 past = T - S; // query i sees keys up to i + past (causal)
  const i64 jEnd = CAUSAL ? (q0 + BQ + past < T ? q0 + BQ + past : T) : T;
  const u8 *kb = qPtr<const u8>(k) + (b * Hkv + hk) * C * D * EB;
  const u8 *vb = qPtr<const u8>(v) + (b * Hkv + hk) * C * D * EB;
  // Tile j0's keys and values into stage `st` (rows from T on: zeros); FP8 codes into the stage's code tiles.
  auto fetch = [&](i64 j0, int st) {
    unsigned short(*const dst)[KS] = kvs + st * 2 * BK;
#pragma unroll
    for (int c = threadIdx.x; c < 2 * CHUNKS; c += THREADS) {
      const int m = c / CHUNKS, r = c % CHUNKS / (D * EB / 16), d = c % (D * EB / 16) * (16 / EB);
      const bool ok = j0 + r < T;
      const u8 *src = (m ? vb : kb) + (ok ? ((j0 + r) * D + d) * EB : 0);
      qCopyAsync16(FP8 ? static_cast<void *>(codes + ((st * 2 + m) * BK + r) * D + d)
                       : static_cast<void *>(&dst[m * BK + r][d]),
                   src, ok);
    }
    qCopyAsyncCommit();
  };
  if (jEnd > 0)
    fetch(0, 0);
  const float *qb = qPtr<const float>(q) + plane * S * D;
  const bool vec = (reinterpret_cast<unsigned long long>(qb) & 15) == 0;
  {
    unsigned short(*const dst[1])[KS] = {qsm};
    const float *const src[1] = {qb + q0 * D};
    qStageHalfTiles<D, KS, 1, BQ, THREADS>(dst, src, static_cast<int>(S - q0 < BQ ? S - q0 : BQ), vec);
  }
  __syncthreads();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, r0 = warp * 16 + (lane >> 2);
  unsigned qa[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk)
    qLdMatrix4<false>(qa[kk], &qsm[warp * 16 + (lane >> 3 & 1) * 8 + (lane & 7)][16 * kk + (lane >> 4) * 8]);
  float o[D / 8][4];
#pragma unroll
  for (int nt = 0; nt < D / 8; ++nt)
    o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.0f;
  float mrow[2] = {-QOPT_INF, -QOPT_INF}, lrow[2] = {0.0f, 0.0f};
  const float sl2 = (FP8 ? scale * ks[hk] : scale) * 1.44269504088896340736f;
  const i64 qi[2] = {q0 + r0, q0 + r0 + 8}, warpLast = q0 + warp * 16 + 15 + past;
  int st = 0;
  for (i64 j0 = 0; j0 < jEnd; j0 += BK, st ^= 1) {
    if (j0 + BK < jEnd) { // the next tile streams in while this one is used
      fetch(j0 + BK, st ^ 1);
      qCopyAsyncWait<1>();
    } else {
      qCopyAsyncWait<0>();
    }
    __syncthreads(); // this tile has landed for every thread's copies
    if (FP8) { // its codes into the stage's float16 tiles, 16 per thread at a time
      unsigned short(*const dst)[KS] = kvs + st * 2 * BK;
      for (int c = threadIdx.x; c < 2 * CHUNKS; c += THREADS) {
        const int m = c / CHUNKS, r = c % CHUNKS / (D / 16), d = c % (D / 16) * 16;
        const uint4 w = *reinterpret_cast<const uint4 *>(codes + ((st * 2 + m) * BK + r) * D + d);
        const unsigned u[4] = {w.x, w.y, w.z, w.w};
        unsigned h[8];
#pragma unroll
        for (int i = 0; i < 4; ++i)
          h[2 * i] = qFp8PairToOp2<FP8 ? FP8 : 1>(u[i]), h[2 * i + 1] = qFp8PairToOp2<FP8 ? FP8 : 1>(u[i] >> 16);
        *reinterpret_cast<uint4 *>(&dst[m * BK + r][d]) = make_uint4(h[0], h[1], h[2], h[3]);
        *reinterpret_cast<uint4 *>(&dst[m * BK + r][d + 8]) = make_uint4(h[4], h[5], h[6], h[7]);
      }
      __syncthreads();
    }
    if (!CAUSAL || j0 <= warpLast)
      qFlashStep<D, BK, KS, CAUSAL>(kvs + st * 2 * BK, kvs + st * 2 * BK + BK, qa, o, mrow, lrow, j0, T, qi, past,
                                    sl2);
    __syncthreads(); // every warp is done with this stage before the next fetch overwrites it
  }
  if (FP8)
#pragma unroll
    for (int nt = 0; nt < D / 8; ++nt)
      o[nt][0] *= vs[hk], o[nt][1] *= vs[hk], o[nt][2] *= vs[hk], o[nt][3] *= vs[hk];
  qFlashStore<D, ZERO_NAN>(qPtr<float>(p.t[OUT]) + plane * S * D, o, lrow, qi, S);
}

// Decode attention over FP8 codes takes its mma fragments straight from the codes in shared memory (no float16
// copy): a lane converts its own pairs with one instruction each, which needs the pairs a fragment holds to be
// adjacent bytes. The dims are permuted to make them so, the same for the queries and keys (a dot product does not
// care) and undone on the output. QK^T: lane (n, c) of a key fragment holds key n's logical dims 16 kk + 2c + {0, 1}
// and + 8 + {0, 1} for each kk: stored as the 4 bytes at c D / 4 + 4 kk of the key's row, a lane's D / 4 contiguous
// bytes. qDecodeFp8KeyDim: the stored dim of the query tile's logical column L. PV: lane (n, c) of a value fragment
// holds dim n of tile nt for keys 2c, 2c + 1 (and + 8): dim n D / 8 + nt of those rows, a lane's D / 8 contiguous
// bytes per row, two rows' bytes paired by a byte permute. qDecodeFp8ValueDim: the stored dim of output column L.
template <int D> __device__ __forceinline__ int qDecodeFp8KeyDim(int L) {
  const int w = L % 16;
  return (w % 8 / 2) * (D / 4) + 4 * (L / 16) + (w & 1) + (w >= 8 ? 2 : 0);
}
template <int D> __device__ __forceinline__ int qDecodeFp8ValueDim(int L) { return L % 8 * (D / 8) + L / 8; }

// N bytes (even) of shared memory from `src` into words, in 16-, 4- or 2-byte loads as N allows (src aligned to
// match); the last word's missing bytes zero.
template <int N> __device__ __forceinline__ void qLoadSharedBytes(unsigned (&w)[(N + 3) / 4], const u8 *src) {
  if constexpr (N % 16 == 0) {
#pragma unroll
    for (int i = 0; i < N / 16; ++i) {
      const uint4 x = *reinterpret_cast<const uint4 *>(src + 16 * i);
      w[4 * i] = x.x, w[4 * i + 1] = x.y, w[4 * i + 2] = x.z, w[4 * i + 3] = x.w;
    }
  } else if constexpr (N % 4 == 0) {
#pragma unroll
    for (int i = 0; i < N / 4; ++i)
      w[i] = *reinterpret_cast<const unsigned *>(src + 4 * i);
  } else {
#pragma unroll
    for (int i = 0; i < (N + 3) / 4; ++i) {
      const unsigned lo = *reinterpret_cast<const unsigned short *>(src + 4 * i);
      const unsigned hi = 4 * i + 2 < N ? *reinterpret_cast<const unsigned short *>(src + 4 * i + 2) : 0u;
      w[i] = lo | hi << 16;
    }
  }
}

// qFlashStep for one warp's KPW keys of decode over FP8 codes (format FP8): key rows kc, value rows vc of RB bytes
// in shared memory, the fragments converted from the codes (qDecodeFp8KeyDim, qDecodeFp8ValueDim: qa's columns and
// o's are in their orders); keys from T on masked, no causal mask (one query row per head).
template <int D, int KPW, int RB, int FP8>
__device__ __forceinline__ void qDecodeStepFp8(const u8 *kc, const u8 *vc, const unsigned (&qa)[D / 16][4],
                                               float (&o)[D / 8][4], float (&mrow)[2], float (&lrow)[2], i64 j0,
                                               i64 T, float sl2) {
  const int lane = threadIdx.x & 31, n = lane >> 2, c = lane & 3, c2 = 2 * c;
  float s[KPW / 8][4];
#pragma unroll
  for (int nt = 0; nt < KPW / 8; ++nt) {
    unsigned w[D / 16];
    qLoadSharedBytes<D / 4>(w, kc + (8 * nt + n) * RB + c * (D / 4));
    s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
      qMma16816(s[nt], qa[kk], qFp8PairToOp2<FP8>(w[kk]), qFp8PairToOp2<FP8>(w[kk] >> 16));
  }
  float mx[2] = {mrow[0], mrow[1]};
  const bool edge = j0 + KPW > T;
#pragma unroll
  for (int nt = 0; nt < KPW / 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const bool keep = !edge || j0 + 8 * nt + c2 + (e & 1) < T;
      s[nt][e] = keep ? s[nt][e] * sl2 : -QOPT_INF;
      mx[e >> 1] = fmaxf(mx[e >> 1], s[nt][e]);
    }
  qOnlineSoftmax<KPW, D>(s, mx, mrow, lrow, o);
  constexpr int VW = (D / 8 + 3) / 4; // words of a lane's value bytes per row
#pragma unroll
  for (int kk = 0; kk < KPW / 16; ++kk) {
    const unsigned pa[4] = {qOp2(s[2 * kk][0], s[2 * kk][1]), qOp2(s[2 * kk][2], s[2 * kk][3]),
                            qOp2(s[2 * kk + 1][0], s[2 * kk + 1][1]), qOp2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
    // Keys 16 kk + 2c, + 1, + 8, + 9: this lane's bytes of each (dims n D / 8 onwards).
    unsigned v[4][VW];
#pragma unroll
    for (int i = 0; i < 4; ++i)
      qLoadSharedBytes<D / 8>(v[i], vc + (16 * kk + c2 + (i & 1) + (i >> 1) * 8) * RB + n * (D / 8));
#pragma unroll
    for (int i = 0; i < VW; ++i) {
      // Byte b of the words: tile 4i + b's pair of keys, first key in the low byte.
      const unsigned lo = __byte_perm(v[0][i], v[1][i], 0x5140), hi = __byte_perm(v[0][i], v[1][i], 0x7362);
      const unsigned lo8 = __byte_perm(v[2][i], v[3][i], 0x5140), hi8 = __byte_perm(v[2][i], v[3][i], 0x7362);
      const unsigned pairs[4][2] = {{lo, lo8}, {lo >> 16, lo8 >> 16}, {hi, hi8}, {hi >> 16, hi8 >> 16}};
#pragma unroll
      for (int b = 0; b < 4; ++b)
        if (4 * i + b < D / 8)
          qMma16816(o[4 * i + b], pa, qFp8PairToOp2<FP8>(pairs[b][0]), qFp8PairToOp2<FP8>(pairs[b][1]));
    }
  }
}

// Decode attention on the tensor cores, over a float16 or FP8 KV cache: the operands, results, splits and geometry
// of qDecodeAttention (a block per kv head's G query heads and slice of the keys, the slices combined through the
// scratch) for head dims D that are multiples of 16 up to 256. The CUDA-core kernel spends its time on
// instructions (a warp sum per key and head, a conversion per element): 34.8 us at 8192 keys of float16 (33.5 MB).
// Here the G query rows (padded to 16 with zeros) are a warp's mma rows, as in the prompts' flash attention: the
// slice streams through shared memory in chunks of KPW * WARPS keys (cp.async, STAGES stages, STAGES - 1 chunks in
// flight while one is used; rows past the slice zero-filled), each warp takes KPW keys of a chunk with its own
// running max and sum (qFlashStep: no barrier between the phases), and at the end the warps' partial sums meet in
// shared memory and the slices' in the scratch (qDecodeFinish). An FP8 chunk arrives as codes; each warp converts
// its key and value rows into float16 rows (exact) before using them.
// Rounding q and the probabilities to float16 is the difference from the reference: float16-level agreement.
// Dynamic shared memory: QDecodeTcShared's bytes; geometry: rows of the output in tiles of G, grid y = the splits,
// 32 * WARPS threads.
template <int G, int D, int WARPS, int KPW, int STAGES, int FP8> struct QDecodeTcShared {
  static constexpr int KS = D + 8, CH = KPW * WARPS;
  // A ring row's bytes: float16 rows padded by 16 bytes (ldmatrix: distinct banks), FP8 codes padded likewise (the
  // fragment loads of qDecodeStepFp8: 8 lanes of a phase on distinct banks).
  static constexpr int RB = FP8 ? D + 16 : KS * 2;
  static constexpr int stage = 2 * CH * RB;                // [K, V][CH] rows
  static constexpr int queries = 16 * KS * 2 + 4 * G * D; // the float16 query tile; the float queries
  static constexpr int bytes = queries + STAGES * stage;
};
template <int G, int D, int WARPS, int KPW, int STAGES, bool ZERO_NAN, int OUT, int ROT = -1, typename P = i64,
          int FP8 = 0>
__device__ void qDecodeAttentionTc(const QParams &p, unsigned *scratch, i64 rowsCap, float scale,
                                   const float *ks = nullptr, const float *vs = nullptr) {
  using Shared = QDecodeTcShared<G, D, WARPS, KPW, STAGES, FP8>;
  constexpr int NT = 32 * WARPS, KS = Shared::KS, CH = Shared::CH, EB = FP8 ? 1 : 2;
  constexpr int PIECES = D * EB / 16; // 16-byte pieces per row
  static_assert(D % 16 == 0 && D <= 256 && G >= 1 && G <= 8 && KPW % 16 == 0 && STAGES >= 2 &&
                    WARPS * G * D * 4 + G * D * 4 <= STAGES * Shared::stage,
                "decode attention (tensor cores): head dim, group size or stages out of range");
  extern __shared__ __align__(16) unsigned char decodeShared[];
  unsigned short(*const qh)[KS] = reinterpret_cast<unsigned short(*)[KS]>(decodeShared);
  float(*const qf)[D] = reinterpret_cast<float(*)[D]>(decodeShared + 16 * KS * 2);
  unsigned char *const ring = decodeShared + Shared::queries;
  // After the last chunk the ring holds the warps' partial sums and the block's.
  float(*const wo)[G][D] = reinterpret_cast<float(*)[G][D]>(ring);
  float(*const bo)[D] = reinterpret_cast<float(*)[D]>(ring + WARPS * G * D * 4);
  __shared__ float wm[WARPS][G], wl[WARPS][G], mrowB[G], lrowB[G];
  const QTensor &k = p.t[1], &v = p.t[2];
  const i64 Hkv = k.shape[1], C = k.shape[2], r = blockIdx.x;
  QDecodeSplit sp;
  if (!qDecodeSlice<G, D>(p, Shared::bytes, CH, scratch, rowsCap, sp))
    return;
  const i64 begin = sp.begin, end = sp.end;
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
  const u8 *kb = qPtr<const u8>(k) + r * C * D * EB, *vb = qPtr<const u8>(v) + r * C * D * EB;
  const int chunks = static_cast<int>((end - begin + CH - 1) / CH);
  // Chunk c's key and value rows into stage c % STAGES (rows from `end` on: zeros), one cp.async group per chunk,
  // empty or not.
  auto issue = [&](int c) {
    if (c < chunks) {
      const i64 j0 = begin + static_cast<i64>(c) * CH;
      unsigned char *st = ring + (c % STAGES) * Shared::stage;
#pragma unroll
      for (int e = t; e < 2 * CH * PIECES; e += NT) {
        const int m = e / (CH * PIECES), row = e % (CH * PIECES) / PIECES, d = e % PIECES * 16;
        const bool ok = j0 + row < end;
        const u8 *src = (m ? vb : kb) + (ok ? (j0 + row) * D * EB + d : 0);
        qCopyAsync16(st + (m * CH + row) * Shared::RB + d, src, ok);
      }
    }
    qCopyAsyncCommit();
  };
#pragma unroll
  for (int c = 0; c < STAGES - 1; ++c)
    issue(c);
  // The queries as float, then the float16 tile of 16 rows (over an FP8 cache its columns in qDecodeStepFp8's order
  // of the dims).
  qDecodeQueries<G, D, NT, ROT, P, OUT>(p, r, Hkv, qf);
  __syncthreads();
  for (int i = t; i < 16 * (D / 2); i += NT) {
    const int g = i / (D / 2), d = i % (D / 2) * 2, e = FP8 ? qDecodeFp8KeyDim<D>(d) : d;
    *reinterpret_cast<unsigned *>(&qh[g][d]) = g < G ? qOp2(qf[g][e], qf[g][e + 1]) : 0u;
  }
  __syncthreads();
  unsigned qa[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk)
    qLdMatrix4<false>(qa[kk], &qh[(lane >> 3 & 1) * 8 + (lane & 7)][16 * kk + (lane >> 4) * 8]);
  float o[D / 8][4];
#pragma unroll
  for (int nt = 0; nt < D / 8; ++nt)
    o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.0f;
  float mrow[2] = {-QOPT_INF, -QOPT_INF}, lrow[2] = {0.0f, 0.0f};
  const float sl2 = (FP8 ? scale * ks[r % Hkv] : scale) * 1.44269504088896340736f;
  const i64 qi[2] = {0, 0}; // (no causal mask: every key of the slice is seen)
  for (int c = 0; c < chunks; ++c) {
    qCopyAsyncWait<STAGES - 2>(); // this thread's copies of chunk c have landed
    __syncthreads();              // everyone's have, and chunk c - 1's stage is no longer read
    issue(c + STAGES - 1);
    const i64 jw = begin + static_cast<i64>(c) * CH + KPW * warp; // this warp's first key
    if (jw >= end)
      continue;
    const unsigned char *st = ring + (c % STAGES) * Shared::stage;
    if (FP8) {
      qDecodeStepFp8<D, KPW, Shared::RB, FP8 ? FP8 : 1>(st + KPW * warp * Shared::RB,
                                                         st + (CH + KPW * warp) * Shared::RB, qa, o, mrow, lrow, jw,
                                                         end, sl2);
    } else {
      const unsigned short(*tile)[KS] = reinterpret_cast<const unsigned short(*)[KS]>(st);
      qFlashStep<D, KPW, KS, false>(tile + KPW * warp, tile + CH + KPW * warp, qa, o, mrow, lrow, jw, end, qi, 0,
                                    sl2);
    }
  }
  // The warps' partial sums (rows g < G: lanes 4g .. 4g + 3 hold row g's columns 8nt + 2(lane % 4) + {0, 1}).
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    lrow[i] += __shfl_xor_sync(0xffffffffu, lrow[i], 1);
    lrow[i] += __shfl_xor_sync(0xffffffffu, lrow[i], 2);
  }
  qCopyAsyncWait<0>(); // (only empty groups remain)
  __syncthreads();     // every warp is done with the ring
  const int g = lane >> 2;
  if (g < G) {
#pragma unroll
    for (int nt = 0; nt < D / 8; ++nt) {
      const int d = 8 * nt + 2 * (lane & 3);
      if (FP8) // (qDecodeStepFp8's output columns: a permutation of the dims)
        wo[warp][g][qDecodeFp8ValueDim<D>(d)] = o[nt][0], wo[warp][g][qDecodeFp8ValueDim<D>(d + 1)] = o[nt][1];
      else
        *reinterpret_cast<float2 *>(&wo[warp][g][d]) = make_float2(o[nt][0], o[nt][1]);
    }
    if ((lane & 3) == 0)
      wm[warp][g] = mrow[0], wl[warp][g] = lrow[0];
  }
  __syncthreads();
  for (int i = t; i < G * D; i += NT) { // the block's: each (g, d) over the warps, against their largest max
    const int h = i / D, d = i % D;
    float m = -QOPT_INF;
#pragma unroll
    for (int w = 0; w < WARPS; ++w)
      m = fmaxf(m, wm[w][h]);
    const float base = m == -QOPT_INF ? 0.0f : m;
    float num = 0.0f, den = 0.0f;
#pragma unroll
    for (int w = 0; w < WARPS; ++w) {
      const float f = exp2f(wm[w][h] - base);
      num += f * wo[w][h][d], den += f * wl[w][h];
    }
    bo[h][d] = num;
    if (d == 0)
      mrowB[h] = m, lrowB[h] = den;
  }
  qDecodeFinish<G, D, NT, ZERO_NAN, true>(sp, qPtr<float>(p.t[OUT]) + r * G * D, mrowB, lrowB, &bo[0][0],
                                          FP8 ? vs[r % Hkv] : 1.0f);
}

// The module's kernels start with qWaitForPrevious (sm_90 and later): the runtime looks for this symbol before it
// launches them with programmatic dependent launch (model.bin files from older compilers lack both).
#if QOPT_SM90
extern "C" __global__ void qopt_waits_for_previous() {}
#endif

//===-- the runtime's helpers around library products ---------------------===//
// Kernels the CUDA backend launches itself, with plain arguments, around the products of many rows it hands to
// cuBLASLt (runtime/src/cuda/CudaBackend.cpp): the activations to float16, and quantized weights to float16 a
// slice of rows at a time (the layouts of QuantFormat.h). Every module holds them; their names and parameters are an
// interface with the runtime. Geometry: 256 threads per block, 8 elements per thread.

#if QOPT_BF16
// Marks a module compiled for bfloat16 operands: its helpers below make bfloat16, which the runtime hands cuBLASLt
// as such.
extern "C" __global__ void qopt_operands_bf16() {}
#endif

// y[i] = x[i] rounded to the module's 16-bit float (qFloatToOp) for i < n.
extern "C" __global__ void qopt_half_from_float(const float *x, unsigned short *y, i64 n) {
  const i64 i0 = (static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x) * 8;
#pragma unroll
  for (int j = 0; j < 8; ++j)
    if (i0 + j < n)
      y[i0 + j] = qFloatToOp(x[i0 + j]);
}

// W8A8's activations for a library product (matmul_q's act_fp8 and act_int8): row r of x [gridDim.x, K] to codes of
// activation format AF (FP8 1: E4M3FN, 2: E5M2, or kActInt8) under its scale, written to scales[r]: the static
// `*actScale` (the layer's operand) where given, else max |row| / the format's largest value (qRowActScale); codes[r, k] = x /
// scale rounded as the reference rounds it (qFloatToFp8; int8 as qActCode, two's complement bytes). One block per
// row, up to 1024 threads, 4 values per thread at a time where K allows.
template <int AF> __device__ __forceinline__ unsigned qActByte(float v, float scale) {
  if (AF == kActInt8)
    return static_cast<u8>(static_cast<i8>(static_cast<int>(qActCode<AF>(v, scale))));
  return qFloatToFp8<AF == kActInt8 ? 1 : AF>(v / scale);
}
template <int AF>
__device__ void qQuantizeRow(const float *x, u8 *codes, float *scales, i64 K, const float *actScale) {
  const float *row = x + static_cast<i64>(blockIdx.x) * K;
  u8 *out = codes + static_cast<i64>(blockIdx.x) * K;
  float inv, scale;
  if (actScale)
    qRowActScale<AF, 1, 0>(row, nullptr, K, 0.0, *actScale, inv, scale);
  else
    qRowActScale<AF, 2, 0>(row, nullptr, K, 0.0, 0.0f, inv, scale);
  if (threadIdx.x == 0)
    scales[blockIdx.x] = scale;
  if (K % 4 == 0 && (reinterpret_cast<unsigned long long>(row) & 15) == 0) {
    for (i64 k = 4 * static_cast<i64>(threadIdx.x); k < K; k += 4 * static_cast<i64>(blockDim.x)) {
      const float4 v = *reinterpret_cast<const float4 *>(row + k);
      *reinterpret_cast<unsigned *>(out + k) = qActByte<AF>(v.x, scale) | qActByte<AF>(v.y, scale) << 8 |
                                               qActByte<AF>(v.z, scale) << 16 | qActByte<AF>(v.w, scale) << 24;
    }
    return;
  }
  for (i64 k = threadIdx.x; k < K; k += blockDim.x)
    out[k] = static_cast<u8>(qActByte<AF>(row[k], scale));
}
extern "C" __global__ void qopt_fp8_quantize_rows(const float *x, u8 *codes, float *scales, i64 K,
                                                  const float *actScale, int fp8) {
  if (fp8 == 2)
    qQuantizeRow<2>(x, codes, scales, K, actScale);
  else
    qQuantizeRow<1>(x, codes, scales, K, actScale);
}
extern "C" __global__ void qopt_int8_quantize_rows(const float *x, u8 *codes, float *scales, i64 K,
                                                   const float *actScale) {
  qQuantizeRow<kActInt8>(x, codes, scales, K, actScale);
}

// W8A8 int8's epilogue (the library's int8 product accumulates exact int32 sums): y[m, c] = float(acc[m, c]) *
// (xScales[m] * wScales[c]) for m < rows, c < cols; acc's rows ldAcc int32 apart, y's ldy floats apart. A thread
// takes 4 columns of rows blockIdx.y, + gridDim.y, ... (grid: x over the columns / 1024 with 256 threads, y up to
// the rows), with no division per element.
extern "C" __global__ void qopt_int8_scale_rows(const int *acc, i64 ldAcc, const float *xScales, const float *wScales,
                                                float *y, i64 ldy, i64 rows, i64 cols) {
  const i64 c0 = (static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x) * 4;
  if (c0 >= cols)
    return;
  float ws[4];
#pragma unroll
  for (int j = 0; j < 4; ++j)
    ws[j] = c0 + j < cols ? wScales[c0 + j] : 0.0f;
  for (i64 m = blockIdx.y; m < rows; m += gridDim.y) {
    const float xs = xScales[m];
    const int *a = acc + m * ldAcc;
    float *o = y + m * ldy;
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (c0 + j < cols)
        o[c0 + j] = static_cast<float>(a[c0 + j]) * (xs * ws[j]);
  }
}

// ids[r] = the index of the largest value of row r of x [rows, cols] (the lowest such index; NaN never chosen, 0
// for a row of NaN: qrt::argmaxRow): a generator's next token without its logits leaving the GPU. A row is taken by
// the blocks of one thread block cluster (grid x = rows * the cluster's size; without clusters one block a row),
// block `rank` the rank-th of equal parts of the row, block 0 combining the parts' answers in rank order.
__device__ __forceinline__ void qArgmaxTake(float &bv, i64 &bi, float v, i64 i) {
  if (i >= 0 && v == v && (bi < 0 || v > bv || (v == bv && i < bi)))
    bv = v, bi = i;
}
extern "C" __global__ void __launch_bounds__(1024) qopt_argmax_cluster_rows(const float *x, i64 cols, i64 *ids) {
  __shared__ float sv[32];
  __shared__ i64 si[32];
  const unsigned blocks = qClusterSize(), rank = qClusterRank();
  const i64 r = blockIdx.x / blocks, part = (cols + blocks - 1) / blocks;
  const i64 p0 = min(cols, static_cast<i64>(rank) * part), p1 = min(cols, p0 + part);
  const float *row = x + r * cols;
  float bv = 0.0f;
  i64 bi = -1;
#pragma unroll 8
  for (i64 k = p0 + threadIdx.x; k < p1; k += blockDim.x) // ascending per thread: a tie keeps the lower index
    qArgmaxTake(bv, bi, row[k], k);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int o = 16; o > 0; o >>= 1)
    qArgmaxTake(bv, bi, __shfl_down_sync(0xffffffffu, bv, o), __shfl_down_sync(0xffffffffu, bi, o));
  if (lane == 0)
    sv[warp] = bv, si[warp] = bi;
  __syncthreads();
  if (warp == 0) {
    const int warps = (blockDim.x + 31) >> 5;
    bv = lane < warps ? sv[lane] : 0.0f, bi = lane < warps ? si[lane] : -1;
    for (int o = 16; o > 0; o >>= 1)
      qArgmaxTake(bv, bi, __shfl_down_sync(0xffffffffu, bv, o), __shfl_down_sync(0xffffffffu, bi, o));
  }
  __syncthreads();
  if (threadIdx.x == 0)
    sv[0] = bv, si[0] = bi; // the part's answer
  qClusterOrBlockSync();
  if (rank == 0 && threadIdx.x == 0) {
    for (unsigned b = 1; b < blocks; ++b)
      qArgmaxTake(bv, bi, qClusterRead(&sv[0], b), qClusterRead(&si[0], b));
    ids[r] = bi < 0 ? 0 : bi;
  }
  qClusterOrBlockSync(); // block 0's reads done
}

// ids[r] = the token drawn from row r of x [rows, cols] by uniforms[r] (qrt::sampleRow, the runtime's Sampling.h:
// temperature, then top_k, then top_p, then the draw): a sampling generator's next token without its logits leaving the
// GPU. A row is taken by the blocks of one thread block cluster (grid x = rows * the cluster's size, 1024 threads a
// block; launched without clusters, or on sm_80, one block a row): block `rank` takes the rank-th of equal parts of the
// row (whole float4s), and the blocks meet through distributed shared memory at each step, every block combining the
// parts' results in rank order, so all of them take the same decisions. The k-th largest value and top_p's threshold
// are found by radix selection over the values' order-preserving 32-bit keys, 8 bits a pass from the top, each pass a
// histogram in shared memory: counts for top_k, probability masses for top_p in fixed point (2^-40 units: integer sums,
// exact in any order); the blocks' histograms are added bin by bin and one warp finds the bin where the running count
// (mass) from the top reaches the target (a scan over the lanes, 8 bins a lane). A logits row's values share few high
// bits, so a warp's values of a pass land in few bins: each warp adds its lanes' entries of one bin together (the lanes
// of a bin found by one match; a count is their number, a mass two 32-bit warp reductions per distinct bin) and one
// lane adds them to the histogram. The draw is a scan of the float64 masses of contiguous segments of the row (a
// thread's segment within its block's part, the parts in rank order); the thread whose segment holds the target finds
// the token in index order, and block 0 takes the first part's answer (the last token that stayed, should rounding
// leave none). Temperature > 0 (0 is the argmax: the runtime calls the argmax helper). Each shared value another block
// reads is written once per launch (the histograms alternate between two buffers: a block refills one only after every
// block has passed the barrier that follows the merge of its last use), and no block leaves before the last barrier,
// after every read of its memory.
__device__ __forceinline__ unsigned qSampleKey(float v) {
  const unsigned u = v == 0.0f ? 0u : __float_as_uint(v); // -0 and +0 are one value
  return u & 0x80000000u ? ~u : u | 0x80000000u;
}
__device__ __forceinline__ unsigned long long qSampleFixed(float p) { // p in [0, 1]
  return static_cast<unsigned long long>(static_cast<double>(p) * 1099511627776.0);
}
extern "C" __global__ void __launch_bounds__(1024)
    qopt_sample_cluster_rows(const float *x, i64 cols, float temperature, i64 topK, float topP,
                             const double *uniforms, i64 *ids) {
  __shared__ unsigned hcount[2][256];
  __shared__ unsigned long long hmass[2][256];
  __shared__ unsigned long long merged[256];
  __shared__ float sf[32];
  __shared__ double sd[32];
  __shared__ i64 si[32];
  __shared__ unsigned long long su[32];
  // Published for the other blocks: this part's maximum, count, top_p mass, draw mass, last token that stays and
  // the token its draw found.
  __shared__ float pubMax;
  __shared__ i64 pubCount, pubLast, pubFound;
  __shared__ unsigned long long pubMass;
  __shared__ double pubTotal;
  __shared__ unsigned sBin;
  __shared__ i64 sLast;
  __shared__ unsigned long long sAbove; // the count (top_k) or mass (top_p) above the selected bins so far
  const unsigned blocks = qClusterSize(), rank = qClusterRank();
  const i64 r = blockIdx.x / blocks;
  const float *row = x + r * cols;
  const i64 part = ((cols + blocks - 1) / blocks + 3) & ~static_cast<i64>(3);
  const i64 p0 = min(cols, static_cast<i64>(rank) * part), p1 = min(cols, p0 + part);
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5, warps = blockDim.x >> 5;
  float mx = -QOPT_INF;
  i64 count = 0;
  for (i64 k = p0 + t; k < p1; k += blockDim.x) {
    const float v = row[k];
    if (v == v)
      mx = fmaxf(mx, v), ++count;
  }
  mx = qBlockMax(mx, sf);
  count = qBlockSum(count, si);
  if (t == 0)
    pubMax = mx, pubCount = count;
  qClusterOrBlockSync();
  mx = -QOPT_INF, count = 0;
  for (unsigned b = 0; b < blocks; ++b)
    mx = fmaxf(mx, qClusterRead(&pubMax, b)), count += qClusterRead(&pubCount, b);
  if (count == 0) {
    if (rank == 0 && t == 0)
      ids[r] = 0;
    qClusterOrBlockSync(); // the others' reads of this block's values done
    return;
  }
  auto weight = [&](float v) { return v == mx ? 1.0f : expf((v - mx) / temperature); };
  const bool vec4 = (cols & 3) == 0 && (reinterpret_cast<unsigned long long>(x) & 15) == 0; // rows of whole float4s
  unsigned lo = 0; // keys at or above it stay (NaN never)
  int pass = 0;    // the histogram buffer: pass & 1
  // Radix selection below the keys `lo` keeps: the key where, from the largest down, the count reaches topK
  // (masses: the mass reaches `target`, in fixed point).
  auto select = [&](bool masses, double target) {
    unsigned prefix = 0, mask = 0;
    if (t == 0)
      sAbove = 0;
    for (int shift = 24; shift >= 0; shift -= 8, ++pass) {
      unsigned *hc = hcount[pass & 1];
      unsigned long long *hm = hmass[pass & 1];
      for (int b = t; b < 256; b += blockDim.x)
        hc[b] = 0, hm[b] = 0;
      __syncthreads();
      // Whole warps every round (ballots), 4 consecutive values a thread loaded together.
      for (i64 base = p0; base < p1; base += 4 * blockDim.x) {
        const i64 k0 = base + 4 * t;
        float v[4];
        if (vec4 && k0 + 3 < p1) {
          const float4 f = *reinterpret_cast<const float4 *>(row + k0);
          v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
        } else {
#pragma unroll
          for (int j = 0; j < 4; ++j)
            v[j] = k0 + j < p1 ? row[k0 + j] : 0.0f;
        }
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const unsigned key = qSampleKey(v[j]);
          const bool in = k0 + j < p1 && v[j] == v[j] && key >= lo && (key & mask) == prefix;
          const unsigned bin = (key >> shift) & 255u;
          const unsigned group = __match_any_sync(0xffffffffu, in ? bin : 256u); // the lanes of this bin
          const bool leader = in && lane == __ffs(group) - 1;
          if (!masses) {
            if (leader)
              atomicAdd(&hc[bin], static_cast<unsigned>(__popc(group)));
            continue;
          }
          // A bin's masses summed over its lanes in two 32-bit halves (a mass is below 2^41 units: 32 lanes'
          // halves fit), one group at a time: only its lanes take the branch, which the reductions need.
          const unsigned long long m = in ? qSampleFixed(weight(v[j])) : 0;
          for (unsigned active = __ballot_sync(0xffffffffu, in); active;) {
            const unsigned g = __shfl_sync(0xffffffffu, group, __ffs(active) - 1);
            if (g >> lane & 1) {
              const unsigned hi = __reduce_add_sync(g, static_cast<unsigned>(m >> 20));
              const unsigned lo = __reduce_add_sync(g, static_cast<unsigned>(m & 0xfffffu));
              if (leader)
                atomicAdd(&hm[bin], (static_cast<unsigned long long>(hi) << 20) + lo);
            }
            active &= ~g;
          }
        }
      }
      qClusterOrBlockSync(); // every part's histogram complete
      for (int b = t; b < 256; b += blockDim.x) {
        unsigned long long sum = 0;
        for (unsigned q = 0; q < blocks; ++q)
          sum += masses ? qClusterRead(&hm[b], q) : qClusterRead(&hc[b], q);
        merged[b] = sum;
      }
      __syncthreads();
      if (warp == 0) {
        // Lane l holds bins 255 - 8 l down to 248 - 8 l; the first bin, from the top, at which the running sum
        // (plus what lies above the bins) reaches the target; none: the lowest non-empty bin, all of them above.
        const unsigned long long above = sAbove;
        auto reaches = [&](unsigned long long s) {
          return masses ? static_cast<double>(above + s) >= target : above + s >= static_cast<unsigned long long>(topK);
        };
        unsigned long long own = 0;
        for (int j = 0; j < 8; ++j)
          own += merged[255 - 8 * lane - j];
        unsigned long long incl = own;
        for (int o = 1; o < 32; o <<= 1) {
          const unsigned long long n = __shfl_up_sync(0xffffffffu, incl, o);
          if (lane >= o)
            incl += n;
        }
        const unsigned hit = __ballot_sync(0xffffffffu, reaches(incl));
        const unsigned nonEmpty = __ballot_sync(0xffffffffu, own > 0);
        if (hit && lane == __ffs(hit) - 1) {
          unsigned long long s = incl - own;
          for (int j = 0; j < 8; ++j) {
            const int b = 255 - 8 * lane - j;
            if (reaches(s + merged[b])) {
              sBin = static_cast<unsigned>(b), sAbove = above + s;
              break;
            }
            s += merged[b];
          }
        } else if (!hit && lane == 31) {
          unsigned lowest = 0;
          if (nonEmpty) {
            const int l = 31 - __clz(nonEmpty); // the lowest bins' lane
            for (int j = 7; j >= 0; --j)
              if (merged[255 - 8 * l - j] > 0) {
                lowest = static_cast<unsigned>(255 - 8 * l - j);
                break;
              }
          }
          sBin = lowest, sAbove = above + incl;
        }
      }
      __syncthreads();
      prefix |= sBin << shift, mask |= 255u << shift;
    }
    return prefix;
  };
  if (topK > 0 && topK < count)
    lo = select(false, 0.0);
  if (topP < 1.0f) {
    unsigned long long mass = 0;
    for (i64 k = p0 + t; k < p1; k += blockDim.x) {
      const float v = row[k];
      if (v == v && qSampleKey(v) >= lo)
        mass += qSampleFixed(weight(v));
    }
    mass = qBlockSum(mass, su);
    if (t == 0)
      pubMass = mass;
    qClusterOrBlockSync();
    mass = 0;
    for (unsigned b = 0; b < blocks; ++b)
      mass += qClusterRead(&pubMass, b);
    lo = select(true, static_cast<double>(topP) * static_cast<double>(mass));
  }
  // The draw: thread t's segment [b0, b1) of the block's part, the running mass at its start by a block scan plus
  // the parts before this one.
  const i64 seg = (p1 - p0 + blockDim.x - 1) / blockDim.x, b0 = min(p1, p0 + t * seg), b1 = min(p1, b0 + seg);
  double local = 0.0;
  i64 last = -1;
  for (i64 k = b0; k < b1; ++k) {
    const float v = row[k];
    if (v == v && qSampleKey(v) >= lo)
      local += weight(v), last = k;
  }
  double incl = local;
  for (int o = 1; o < 32; o <<= 1) {
    const double n = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o)
      incl += n;
  }
  if (t == 0)
    sLast = -1;
  __syncthreads();
  if (lane == 31)
    sd[warp] = incl;
  if (last >= 0)
    atomicMax(&sLast, last);
  __syncthreads();
  double offset = 0.0, partMass = 0.0;
  for (int w = 0; w < warps; ++w) {
    if (w == warp)
      offset = partMass;
    partMass += sd[w];
  }
  if (t == 0)
    pubTotal = partMass, pubLast = sLast, pubFound = -1;
  qClusterOrBlockSync();
  double before = 0.0, total = 0.0;
  i64 lastAll = -1;
  for (unsigned b = 0; b < blocks; ++b) {
    if (b == rank)
      before = total;
    total += qClusterRead(&pubTotal, b);
    lastAll = max(lastAll, qClusterRead(&pubLast, b));
  }
  double excl = __shfl_up_sync(0xffffffffu, incl, 1);
  excl = (lane == 0 ? offset : excl + offset) + before;
  incl += offset + before;
  const double target = uniforms[r] * total;
  if (incl > target && excl <= target) {
    double acc = excl;
    i64 at = last;
    for (i64 k = b0; k < b1; ++k) {
      const float v = row[k];
      if (v == v && qSampleKey(v) >= lo && (acc += weight(v)) > target) {
        at = k;
        break;
      }
    }
    pubFound = at;
  }
  qClusterOrBlockSync();
  if (rank == 0 && t == 0) {
    i64 id = -1;
    for (unsigned b = 0; b < blocks && id < 0; ++b)
      id = qClusterRead(&pubFound, b);
    ids[r] = id >= 0 ? id : lastAll >= 0 ? lastAll : 0;
  }
  qClusterOrBlockSync(); // block 0's reads done
}

// Byte `off` of row r of a dequantization helper's codes: rows rowBytes apart, or (layout 1, 2) row row0 + r of a
// weight of N rows in that tile layout (QuantFormat.h's tileWordOffset; the 16 bytes of a word stay together).
struct QRowBytes {
  const u8 *codes;
  i64 r, rowBytes;
  int layout;
  i64 row0, N;
  __device__ __forceinline__ const u8 *at(i64 off) const {
    return layout ? qTiledRowWord(layout, codes, row0 + r, N, rowBytes / 64, off >> 6, static_cast<int>(off >> 4 & 3)) +
                        (off & 15)
                  : codes + r * rowBytes + off;
  }
};

// out [n, K] float16 = (code - zero) * scale for rows r < n of codes (rowBytes apart; BITS 3 and 4: two codes a
// byte, low nibble first; 8: int8) with scales and zero points [n, K / group] (one of each when perTensor). Rows
// whose K and group are multiples of 8 take one word of codes, one scale and one 16-byte store per thread. The
// kernel is a prompt's price for reading codes through the library (every weight of a layer written as float16
// once per prompt run), so its instructions count: 32-bit index arithmetic where the slice allows (64-bit
// divisions per element made it 10x slower than its bytes), codes to floats by the exponent trick (2^23 + c as a
// float's bits, minus 2^23 + zero: exact), and pairs rounded to float16 in one instruction; the result is the
// reference's, float(code - zero) * scale rounded to nearest even (a value beyond float16's range, which weights do
// not reach, takes qFloatToHalf's saturation). `layout` 1 or 2 (a weight of N rows in that tile layout,
// QuantFormat.h): `codes` is the whole weight and the rows are row0 .. row0 + n - 1 of it.
template <int BITS, bool ZEROS, int HS>
__device__ void qDequantHalf(const u8 *codes, const void *scales, const u8 *zeros, unsigned short *out, i64 n,
                             i64 K, i64 rowBytes, i64 group, int perTensor, int layout, i64 row0, i64 N) {
  const int per = static_cast<int>((K + 7) / 8);
  const i64 t = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x, total = n * per;
  if (t >= total)
    return;
  i64 r;
  int k0;
  if (total <= 0xffffffffLL) {
    const unsigned ut = static_cast<unsigned>(t), ur = ut / static_cast<unsigned>(per);
    r = ur, k0 = static_cast<int>(ut - ur * static_cast<unsigned>(per)) * 8;
  } else {
    r = t / per, k0 = static_cast<int>(t - r * per) * 8;
  }
  const int groups = static_cast<int>(K / group);
  const QRowBytes row{codes, r, rowBytes, layout, row0, N};
  const QScales<HS> sc = QScales<HS>{scales} + (perTensor ? 0 : r * groups);
  const u8 *zp = ZEROS ? zeros + (perTensor ? 0 : r * groups) : nullptr;
  constexpr int symZero = BITS == 8 ? 0 : 1 << (BITS - 1);
  if (K % 8 == 0 && group % 8 == 0) {
    const int g = perTensor ? 0 : (group & (group - 1)) == 0 ? k0 >> (__ffs(static_cast<int>(group)) - 1)
                                                               : k0 / static_cast<int>(group);
    const float scale = sc[g];
    // 2^23 + c has c in its low mantissa bits; int8 codes biased by 128 into [0, 255] first.
    const float base = 8388608.0f + static_cast<float>((ZEROS ? zp[g] : symZero) + (BITS == 8 ? 128 : 0));
    float f[8];
    if (BITS == 8) {
      const uint2 w = *reinterpret_cast<const uint2 *>(row.at(k0));
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const unsigned biased = ((((j < 4 ? w.x : w.y) >> (j % 4 * 8)) & 0xFFu) ^ 0x80u);
        f[j] = (__int_as_float(0x4B000000 | biased) - base) * scale;
      }
    } else {
      const unsigned w = *reinterpret_cast<const unsigned *>(row.at(k0 / 2));
#pragma unroll
      for (int j = 0; j < 8; ++j)
        f[j] = (__int_as_float(0x4B000000 | ((w >> (j * 4)) & 15u)) - base) * scale;
    }
    bool finite = true;
#pragma unroll
    for (int j = 0; j < 8; ++j)
      finite &= fabsf(f[j]) <= kOpMax;
    uint4 v;
    if (finite) {
      v.x = qOp2(f[0], f[1]), v.y = qOp2(f[2], f[3]), v.z = qOp2(f[4], f[5]), v.w = qOp2(f[6], f[7]);
    } else {
      unsigned short h[8];
#pragma unroll
      for (int j = 0; j < 8; ++j)
        h[j] = qFloatToOp(f[j]);
      v.x = h[0] | static_cast<unsigned>(h[1]) << 16, v.y = h[2] | static_cast<unsigned>(h[3]) << 16;
      v.z = h[4] | static_cast<unsigned>(h[5]) << 16, v.w = h[6] | static_cast<unsigned>(h[7]) << 16;
    }
    *reinterpret_cast<uint4 *>(out + r * K + k0) = v;
    return;
  }
  for (int j = 0; j < 8 && k0 + j < K; ++j) {
    const int k = k0 + j;
    const int code =
        BITS == 8 ? static_cast<int>(static_cast<i8>(*row.at(k))) : (*row.at(k >> 1) >> ((k & 1) * 4)) & 15;
    const int g = perTensor ? 0 : k / static_cast<int>(group);
    const int z = ZEROS ? zp[g] : symZero;
    out[r * K + k] = qFloatToOp(static_cast<float>(code - z) * sc[g]);
  }
}

// The same for FP8 codes (fp8 1: E4M3FN, 2: E5M2; fp8w's weights, one code a byte), with the same parameters (no
// zero points): out = half(value(code) * scale), 8 codes per thread, one word of codes and one 16-byte store where
// K and the group are multiples of 8.
extern "C" __global__ void qopt_dequant_half_fp8(const u8 *codes, const float *scales, const u8 *, unsigned short *out,
                                                 i64 n, i64 K, i64 rowBytes, i64 group, int perTensor, int fp8,
                                                 int layout, i64 row0, i64 N) {
  const i64 per = (K + 7) / 8, t = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= n * per)
    return;
  const i64 r = t / per, k0 = (t - r * per) * 8;
  const QRowBytes row{codes, r, rowBytes, layout, row0, N};
  const float *sc = scales + (perTensor ? 0 : r * (K / group));
  auto value = [&](u8 c) { return fp8 == 2 ? qFp8ToFloat<2>(c) : qFp8ToFloat<1>(c); };
  if (K % 8 == 0 && group % 8 == 0) {
    const float scale = sc[perTensor ? 0 : k0 / group];
    const uint2 w = *reinterpret_cast<const uint2 *>(row.at(k0));
    unsigned short h[8];
#pragma unroll
    for (int j = 0; j < 8; ++j)
      h[j] = qFloatToOp(value(static_cast<u8>(((j < 4 ? w.x : w.y) >> (j % 4 * 8)) & 0xFFu)) * scale);
    *reinterpret_cast<uint4 *>(out + r * K + k0) =
        make_uint4(h[0] | static_cast<unsigned>(h[1]) << 16, h[2] | static_cast<unsigned>(h[3]) << 16,
                   h[4] | static_cast<unsigned>(h[5]) << 16, h[6] | static_cast<unsigned>(h[7]) << 16);
    return;
  }
  for (i64 k = k0; k < k0 + 8 && k < K; ++k)
    out[r * K + k] = qFloatToOp(value(*row.at(k)) * sc[perTensor ? 0 : k / group]);
}

// Named by bits, z: zero points, h: float16 scales (int3/int4 only). The FP8 helper's parameters (`fp8` unused).
#define QOPT_DEQUANT_HALF(NAME, BITS, ZEROS, HS)                                                                    \
  extern "C" __global__ void NAME(const u8 *codes, const void *scales, const u8 *zeros, unsigned short *out, i64 n,  \
                                  i64 K, i64 rowBytes, i64 group, int perTensor, int, int layout, i64 row0, i64 N) {\
    qDequantHalf<BITS, ZEROS, HS>(codes, scales, zeros, out, n, K, rowBytes, group, perTensor, layout, row0, N);   \
  }
QOPT_DEQUANT_HALF(qopt_dequant_half_b3, 3, false, 0)
QOPT_DEQUANT_HALF(qopt_dequant_half_b3z, 3, true, 0)
QOPT_DEQUANT_HALF(qopt_dequant_half_b4, 4, false, 0)
QOPT_DEQUANT_HALF(qopt_dequant_half_b4z, 4, true, 0)
QOPT_DEQUANT_HALF(qopt_dequant_half_b8, 8, false, 0)
QOPT_DEQUANT_HALF(qopt_dequant_half_b8z, 8, true, 0)
QOPT_DEQUANT_HALF(qopt_dequant_half_b3h, 3, false, 1)
QOPT_DEQUANT_HALF(qopt_dequant_half_b3zh, 3, true, 1)
QOPT_DEQUANT_HALF(qopt_dequant_half_b4h, 4, false, 1)
QOPT_DEQUANT_HALF(qopt_dequant_half_b4zh, 4, true, 1)
