//===- QuantMatmul.cpp - matmul with int4/int8 weights, dequantized in-kernel -===//
//
// y[.., N] = x[.., K] * dequant(W)[K, N] for the layouts of QuantFormat.h, and for float16 weights [N, K] (bits
// 16, no scales: the layout a GPU target stores float layers in, converted exactly to float32 here). The weights are never expanded as a
// whole: each worker dequantizes a panel of kPanel output channels into a small float buffer and multiplies it
// with the blocked GEMM, so memory stays at one packed copy of the model. Panels are split over threads by
// output channel; each output element is reduced in one fixed order whatever the thread count.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Gemm.h"
#include "qopt/Numerics/Kernels.h"
#include "qopt/Numerics/QuantFormat.h"
#include "qopt/Numerics/ThreadPool.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace qopt::num {
namespace {

constexpr int64_t kPanel = 64;
constexpr int64_t kL1Floats = 4096; // 16 KiB of dequantized weights

struct QuantShape {
  int64_t bits, group, K, N, groups;
  bool symmetric, perTensor; // perTensor: scales (and zeros) [1, 1]
  DType codes = DType::I8;   // 8-bit weights: int8, or FP8 codes (float8e4m3fn, float8e5m2)
  int64_t actFp8 = 0;        // FP8 activations (W8A8): 1 one static scale, 2 a scale per row of x
  int64_t actInt8 = 0;       // INT8 activations (W8A8 with int8 weights), the same
  int64_t layout = quant::kRowLayout; // weight_layout: the weight's rows as they are, or in tiles (QuantFormat.h)
  int64_t rowBytes = 0;
};

// The weight layout (attribute weight_layout, QuantFormat.h) of a product whose weight rows hold `rowBytes` bytes.
bool weightLayout(const KernelArgs &a, QuantShape &q, std::string &err) {
  q.layout = a.attrs->getInt("weight_layout", quant::kRowLayout);
  if (q.layout == quant::kRowLayout)
    return true;
  if ((q.layout != quant::kTileLayout && q.layout != quant::kPairedTileLayout) ||
      !quant::canTileRows(q.N, q.rowBytes)) {
    err = "matmul_q: weight_layout must be 0 (rows), 1 or 2 (tiles of 16 rows: N a multiple of 16 and rows of "
          "whole 64-byte chunks), got " +
          std::to_string(q.layout) + " for " + std::to_string(q.N) + " rows of " + std::to_string(q.rowBytes) +
          " bytes";
    return false;
  }
  return true;
}

bool quantShape(const KernelArgs &a, QuantShape &q, std::string &err) {
  const Tensor &x = *a.in(0), &w = *a.in(1);
  q.bits = a.attrs->getInt("bits", 4);
  q.symmetric = a.attrs->getInt("symmetric", 0) != 0;
  q.K = x.rank() ? x.shape.back() : 0;
  q.group = a.attrs->getInt("group_size", q.K);
  if (q.bits == 16) { // float16 or bfloat16 weights [N, K]: a layout, not a quantization (no scales)
    if (x.rank() < 1 || x.dtype != DType::F32 || w.rank() != 2 || (w.dtype != DType::F16 && w.dtype != DType::BF16) ||
        w.shape[1] != q.K || a.in(2) || a.in(3)) {
      err = "matmul_q: 16-bit weights are float16 or bfloat16 [N, K] with no scales (x " + shapeStr(x.shape) +
            ", weight " +
            dtypeName(w.dtype) + shapeStr(w.shape) + ")";
      return false;
    }
    q.N = w.shape[0];
    q.group = q.K;
    q.groups = 1;
    q.perTensor = false;
    q.rowBytes = 2 * q.K;
    return weightLayout(a, q, err);
  }
  if (!a.in(2)) {
    err = "matmul_q: " + std::to_string(q.bits) + "-bit weights need scales";
    return false;
  }
  const Tensor &s = *a.in(2);
  const bool nib = quant::isNibbleFormat(q.bits);
  if (x.rank() < 1 || x.dtype != DType::F32 || !(s.dtype == DType::F32 || (nib && s.dtype == DType::F16)) ||
      w.rank() != 2 || s.rank() != 2) {
    err = "matmul_q: expects float32 x of rank >= 1, 2-D packed weights and 2-D float32 scales (float16 for "
          "int3/int4)";
    return false;
  }
  q.N = w.shape[0];
  if (!quant::isSupportedBits(q.bits) || q.group <= 0 || q.K % q.group != 0) {
    err = "matmul_q: bits must be 3, 4, 8 or 16 and group_size must divide K = " + std::to_string(q.K);
    return false;
  }
  q.groups = q.K / q.group;
  int64_t packedK = nib ? q.K / 2 + q.K % 2 : q.K; // (K + 1) / 2 without overflowing
  q.codes = w.dtype;
  const bool fp8 = q.bits == 8 && (w.dtype == DType::F8E4M3FN || w.dtype == DType::F8E5M2);
  DType wantW = nib ? DType::U8 : fp8 ? w.dtype : DType::I8;
  q.perTensor = q.groups == 1 && s.shape == Shape{1, 1};
  if (w.dtype != wantW || w.shape[1] != packedK || (!q.perTensor && (s.shape[0] != q.N || s.shape[1] != q.groups))) {
    err = "matmul_q: packed weight " + shapeStr(w.shape) + " / scales " + shapeStr(s.shape) +
          " do not match K = " + std::to_string(q.K) + ", group_size = " + std::to_string(q.group);
    return false;
  }
  q.actFp8 = a.attrs->getInt("act_fp8", 0);
  if (q.actFp8 < 0 || q.actFp8 > 2 || (q.actFp8 && !fp8)) {
    err = "matmul_q: act_fp8 (1: static, 2: dynamic) needs FP8 weights";
    return false;
  }
  q.actInt8 = a.attrs->getInt("act_int8", 0);
  if (q.actInt8 < 0 || q.actInt8 > 2 || (q.actInt8 && (q.actFp8 || q.bits != 8 || fp8))) {
    err = "matmul_q: act_int8 (1: static, 2: dynamic) needs int8 weights";
    return false;
  }
  // The static activation scale: operand 6, float32 [1], given exactly when act_fp8 or act_int8 is 1.
  const Tensor *as = a.in(6);
  if (((q.actFp8 == 1 || q.actInt8 == 1) != (as != nullptr)) || (as && (as->dtype != DType::F32 ||
                                                                         as->numel() != 1))) {
    err = "matmul_q: a static activation scale (act_fp8 or act_int8 1) is operand 6, float32 [1], and only then";
    return false;
  }
  const Tensor *z = a.in(3);
  bool needZeros = nib && !q.symmetric;
  if (needZeros != (z != nullptr) || (z && (z->dtype != DType::U8 || z->shape != s.shape))) {
    err = "matmul_q: zero points must be given (uint8, shaped like the scales) exactly for asymmetric int4";
    return false;
  }
  q.rowBytes = w.shape[1];
  return weightLayout(a, q, err);
}

// A decode step's fused operands (qopt-fuse-norm-product): operand 4, an rms_norm scale ([K] or [1]) with which x
// is normalized first (attribute norm_epsilon), and operand 5, a residual added to the single result (shaped like
// it). `residualOk`: the family takes a residual (one plain result).
bool fusedOperandsValid(const KernelArgs &a, const QuantShape &q, bool residualOk, std::string &err) {
  if (const Tensor *g = a.in(4); g && (g->dtype != DType::F32 || g->rank() != 1 || (g->numel() != q.K &&
                                                                                     g->numel() != 1))) {
    err = "matmul_q: the norm scale (operand 4) must be float32 [K] or [1], got " + std::string(dtypeName(g->dtype)) +
          shapeStr(g->shape);
    return false;
  }
  if (a.in(5) && !residualOk) {
    err = "matmul_q: a residual (operand 5) needs a product with one plain result";
    return false;
  }
  return true;
}

// After inference: the residual has the result's dtype and shape.
bool residualValid(const KernelArgs &a, std::string &err) {
  const Tensor *r = a.in(5);
  if (r && (r->dtype != DType::F32 || r->shape != a.outputs[0]->shape)) {
    err = "matmul_q: the residual (operand 5) " + std::string(dtypeName(r->dtype)) + shapeStr(r->shape) +
          " must be float32 shaped like the result " + shapeStr(a.outputs[0]->shape);
    return false;
  }
  return true;
}

bool quantMatmulInfer(const KernelArgs &a, std::string &err) {
  QuantShape q;
  if (!quantShape(a, q, err) || !fusedOperandsValid(a, q, true, err))
    return false;
  Shape out = a.in(0)->shape;
  out.back() = q.N;
  a.outputs[0]->dtype = DType::F32;
  a.outputs[0]->shape = out;
  return residualValid(a, err);
}

// out[2i], out[2i + 1] = values[low nibble], values[high nibble] of bytes[i], for i < pairs.
void expandNibblesGeneric(const uint8_t *bytes, int64_t pairs, const float *values, float *out) {
  for (int64_t i = 0; i < pairs; ++i) {
    out[2 * i] = values[bytes[i] & 0xF];
    out[2 * i + 1] = values[bytes[i] >> 4];
  }
}

#if defined(__x86_64__) || defined(_M_X64)
// 8 bytes -> 16 nibbles in order (each 16-bit lane low | high << 8, widened to 32-bit indices) -> a 16-way
// permute of the values.
__attribute__((target("avx512f,avx2"))) void expandNibblesAvx512(const uint8_t *bytes, int64_t pairs,
                                                                  const float *values, float *out) {
  const __m512 table = _mm512_loadu_ps(values);
  const __m128i lowMask = _mm_set1_epi16(0x000F), highMask = _mm_set1_epi16(0x0F00);
  int64_t i = 0;
  for (; i + 8 <= pairs; i += 8) {
    const __m128i b = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(bytes + i)));
    const __m128i nib = _mm_or_si128(_mm_and_si128(b, lowMask), _mm_and_si128(_mm_slli_epi16(b, 4), highMask));
    _mm512_storeu_ps(out + 2 * i, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(nib), table));
  }
  expandNibblesGeneric(bytes + i, pairs - i, values, out + 2 * i);
}

void expandNibbles(const uint8_t *bytes, int64_t pairs, const float *values, float *out) {
  if (cpuHasAvx512())
    expandNibblesAvx512(bytes, pairs, values, out);
  else
    expandNibblesGeneric(bytes, pairs, values, out);
}

// One row of nibble codes whose groups all start on a byte (an even group size), as dequantPanel's generic path
// computes it, value for value: a group's 16 values (code - zero) * scale in one vector (the same integer
// difference, exact conversion to float and one rounded product; float16 scales converted exactly), 16 codes per
// permute, the group's tail through the same values. No table round trip through memory per group, no call.
__attribute__((target("avx512f,avx2,f16c"))) void dequantNibbleRowAvx512(const uint8_t *row, int64_t groups,
                                                                        int64_t group, const float *scale,
                                                                        const uint16_t *halfScale,
                                                                        const uint8_t *zero, int symmetricZero,
                                                                        float *out) {
  const __m512i codes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m128i lowMask = _mm_set1_epi16(0x000F), highMask = _mm_set1_epi16(0x0F00);
  const int64_t pairs = group / 2;
  for (int64_t g = 0; g < groups; ++g) {
    const float sc = scale ? scale[g] : _cvtsh_ss(halfScale[g]);
    const int zp = zero ? zero[g] : symmetricZero;
    const __m512 table =
        _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(codes, _mm512_set1_epi32(zp))), _mm512_set1_ps(sc));
    const uint8_t *bytes = row + g * pairs;
    float *o = out + g * group;
    int64_t i = 0;
    for (; i + 8 <= pairs; i += 8) {
      const __m128i b = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(bytes + i)));
      const __m128i nib = _mm_or_si128(_mm_and_si128(b, lowMask), _mm_and_si128(_mm_slli_epi16(b, 4), highMask));
      _mm512_storeu_ps(o + 2 * i, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(nib), table));
    }
    if (i < pairs) {
      alignas(64) float values[16];
      _mm512_store_ps(values, table);
      expandNibblesGeneric(bytes + i, pairs - i, values, o + 2 * i);
    }
  }
}

// One group of 8-bit codes times its scale, as dequantPanel's generic path computes it, value for value: int8
// codes converted exactly; FP8 codes decoded exactly through float16 (an E5M2 code is the top byte of the float16
// of its value; an E4M3FN code's bits moved into a float16's are its value / 256, restored by an exact product),
// 16 at a time by the hardware conversion, a block holding a NaN code through the format's table (`table`);
// then one rounded product by the scale each.
__attribute__((target("avx512f,avx512bw,avx512vl,avx2"))) void
dequantByteGroupAvx512(const uint8_t *codes, int64_t count, DType format, const float *table, float sc, float *out) {
  const __m512 scale = _mm512_set1_ps(sc);
  int64_t k = 0;
  for (; k + 16 <= count; k += 16) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i *>(codes + k));
    __m512 v;
    if (format == DType::I8) {
      v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b));
    } else {
      const __m256i w = _mm256_cvtepu8_epi16(b);
      __m256i h;
      __mmask16 nan;
      if (format == DType::F8E5M2) {
        h = _mm256_slli_epi16(w, 8);
        nan = _mm256_cmpgt_epi16_mask(_mm256_and_si256(w, _mm256_set1_epi16(0x7F)), _mm256_set1_epi16(0x7C));
      } else {
        h = _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(w, _mm256_set1_epi16(0x80)), 8),
                            _mm256_slli_epi16(_mm256_and_si256(w, _mm256_set1_epi16(0x7F)), 7));
        nan = _mm256_cmpeq_epi16_mask(_mm256_and_si256(w, _mm256_set1_epi16(0x7F)), _mm256_set1_epi16(0x7F));
      }
      if (nan) {
        v = _mm512_i32gather_ps(_mm512_cvtepu8_epi32(b), table, 4);
      } else {
        v = _mm512_cvtph_ps(h);
        if (format == DType::F8E4M3FN)
          v = _mm512_mul_ps(v, _mm512_set1_ps(256.0f));
      }
    }
    _mm512_storeu_ps(out + k, _mm512_mul_ps(v, scale));
  }
  for (; k < count; ++k)
    out[k] = (format == DType::I8 ? static_cast<float>(static_cast<int8_t>(codes[k])) : table[codes[k]]) * sc;
}
#else
void dequantByteGroupAvx512(const uint8_t *, int64_t, DType, const float *, float, float *) {}
void dequantNibbleRowAvx512(const uint8_t *, int64_t, int64_t, const float *, const uint16_t *, const uint8_t *, int,
                            float *) {}

void expandNibbles(const uint8_t *bytes, int64_t pairs, const float *values, float *out) {
  expandNibblesGeneric(bytes, pairs, values, out);
}
#endif

// Dequantizes output channels [n0, n0 + count) into rows of `dst` ([count, K]).
// Weights in the tile layout are read a row at a time through the layout's own unpacking (QuantFormat.h).
void dequantPanel(const QuantShape &q, const Tensor &w, const Tensor *s, const Tensor *z, int64_t n0, int64_t count,
                  float *dst) {
  std::vector<uint8_t> untiled(q.layout != quant::kRowLayout ? static_cast<size_t>(q.rowBytes) : 0);
  for (int64_t r = 0; r < count; ++r) {
    const int64_t n = n0 + r;
    float *out = dst + r * q.K;
    const uint8_t *bytes = w.as<uint8_t>() + n * q.rowBytes; // row n's codes (or float16 values)
    if (!untiled.empty()) {
      quant::untileRow(q.layout, w.as<uint8_t>(), n, q.N, q.rowBytes, untiled.data());
      bytes = untiled.data();
    }
    if (q.bits == 16) {
      if (w.dtype == DType::BF16)
        bf16ToFloatRow(reinterpret_cast<const uint16_t *>(bytes), q.K, out);
      else
        halfToFloatRow(reinterpret_cast<const uint16_t *>(bytes), q.K, out);
      continue;
    }
    const int64_t params = q.perTensor ? 0 : n * q.groups; // this channel's scales and zeros
    // float32 scales, or a nibble format's float16 ones (QuantFormat.h)
    const float *scale = s->dtype == DType::F32 ? s->as<float>() + params : nullptr;
    const uint16_t *halfScale = scale ? nullptr : s->as<uint16_t>() + params;
    auto scaleOf = [&](int64_t g) { return scale ? scale[g] : halfToFloat(halfScale[g]); };
    if (q.bits == 8 && q.codes != DType::I8) { // FP8 codes: a table of the format's 256 values
      static const auto table = [] {
        std::array<std::array<float, 256>, 2> t{};
        for (int c = 0; c < 256; ++c) {
          t[0][c] = fp8ToFloat(static_cast<uint8_t>(c), Fp8Format::E4M3FN);
          t[1][c] = fp8ToFloat(static_cast<uint8_t>(c), Fp8Format::E5M2);
        }
        return t;
      }();
      const std::array<float, 256> &values = table[q.codes == DType::F8E4M3FN ? 0 : 1];
      const uint8_t *row = bytes;
      for (int64_t g = 0; g < q.groups; ++g) {
        const float sc = scaleOf(g);
        if (cpuHasAvx512()) {
          dequantByteGroupAvx512(row + g * q.group, q.group, q.codes, values.data(), sc, out + g * q.group);
          continue;
        }
        for (int64_t k = g * q.group, e = k + q.group; k < e; ++k)
          out[k] = values[row[k]] * sc;
      }
    } else if (q.bits == 8) {
      const int8_t *row = reinterpret_cast<const int8_t *>(bytes);
      for (int64_t g = 0; g < q.groups; ++g) {
        const float sc = scaleOf(g);
        if (cpuHasAvx512()) {
          dequantByteGroupAvx512(reinterpret_cast<const uint8_t *>(row) + g * q.group, q.group, DType::I8, nullptr,
                                 sc, out + g * q.group);
          continue;
        }
        for (int64_t k = g * q.group, e = k + q.group; k < e; ++k)
          out[k] = static_cast<float>(row[k]) * sc;
      }
    } else {
      const uint8_t *row = bytes;
      const uint8_t *zero = z ? z->as<uint8_t>() + params : nullptr;
      if (q.group % 2 == 0 && cpuHasAvx512()) {
        dequantNibbleRowAvx512(row, q.groups, q.group, scale, halfScale, zero, quant::symmetricZero(q.bits), out);
        continue;
      }
      for (int64_t g = 0; g < q.groups; ++g) {
        const float sc = scaleOf(g);
        const int zp = zero ? zero[g] : quant::symmetricZero(q.bits);
        int64_t k = g * q.group;
        const int64_t e = k + q.group;
        if (k % 2 != 0) { // an odd group's first element is the high nibble of a shared byte
          out[k] = static_cast<float>(static_cast<int>(quant::nibble(row, k)) - zp) * sc;
          ++k;
        }
        // Whole bytes, low nibble first, through the group's 16 values (code - zero) * scale: the same value per
        // element as computing it, a lookup instead of three operations (decode is bound by this on the CPU).
        std::array<float, 16> values;
        for (int c = 0; c < 16; ++c)
          values[c] = static_cast<float>(c - zp) * sc;
        const int64_t pairs = (e - k) / 2;
        expandNibbles(row + k / 2, pairs, values.data(), out + k);
        k += 2 * pairs;
        if (k < e)
          out[k] = static_cast<float>(static_cast<int>(quant::nibble(row, k)) - zp) * sc;
      }
    }
  }
}

// The output channel ranges of a matmul_q_split launch: "splits" (positive, summing to N), one output each.
bool splitRanges(const KernelArgs &a, const QuantShape &q, std::vector<int64_t> &splits, std::string &err) {
  if (!a.attrs->getInts("splits", splits)) {
    splits = {q.N};
    return true;
  }
  int64_t sum = 0;
  for (int64_t n : splits) {
    if (n <= 0 || !checkedAdd(sum, n, sum)) {
      sum = -1;
      break;
    }
  }
  if (sum != q.N || splits.size() != a.outputs.size()) {
    err = "matmul_q_split: splits must be " + std::to_string(a.outputs.size()) + " positive sizes summing to N = " +
          std::to_string(q.N);
    return false;
  }
  return true;
}

bool quantMatmulSplitInfer(const KernelArgs &a, std::string &err) {
  QuantShape q;
  std::vector<int64_t> splits;
  if (!quantShape(a, q, err) || !splitRanges(a, q, splits, err) ||
      !fusedOperandsValid(a, q, splits.size() == 1, err))
    return false;
  for (size_t i = 0; i < splits.size(); ++i) {
    Shape out = a.in(0)->shape;
    out.back() = splits[i];
    a.outputs[i]->dtype = DType::F32;
    a.outputs[i]->shape = out;
  }
  return residualValid(a, err);
}

// x normalized by the norm scale (operand 4) with the rms_norm kernel's own code, into `normed` (backed by
// `storage`); x itself without one.
bool productInput(const KernelArgs &a, Tensor &normed, std::vector<float> &storage, const Tensor *&x,
                  std::string &err) {
  x = a.in(0);
  const Tensor *g = a.in(4);
  if (!g)
    return true;
  static const KernelFamily *rms = lookupFamily("rms_norm");
  Attrs attrs;
  attrs.setFloat("epsilon", a.attrs->getFloat("norm_epsilon", 1e-5));
  normed = *x;
  storage.resize(static_cast<size_t>(x->numel()));
  normed.data = storage.data();
  const KernelArgs norm{{x, g}, {&normed}, &attrs, nullptr};
  if (!rms->reference(norm, err))
    return false;
  x = &normed;
  return true;
}

bool quantMatmulRun(const KernelArgs &a, std::string &err) {
  QuantShape q;
  std::vector<int64_t> splits;
  if (!quantShape(a, q, err) || !splitRanges(a, q, splits, err))
    return false;
  Tensor normed;
  std::vector<float> normStorage;
  const Tensor *xp = nullptr;
  if (!productInput(a, normed, normStorage, xp, err))
    return false;
  const Tensor &x = *xp, &w = *a.in(1), *s = a.in(2);
  const Tensor *z = a.in(3);
  const int64_t M = q.K ? x.numel() / q.K : 0;
  // W8A8: x rounded to the weights' 8-bit format under its scale (static, or max |row| / the format's largest
  // value), as the GPU's conversion does: FP8 saturated, or int8 to nearest even clamped to +-127. The product of
  // the rounded values then equals the 8-bit product with the scales applied after, up to summation order.
  const float *xv = x.as<float>();
  std::vector<float> xq;
  const int64_t act = q.actFp8 ? q.actFp8 : q.actInt8;
  const float actScale = act == 1 ? *a.in(6)->as<float>() : 0.0f;
  if (act == 1 && !(actScale > 0.0f)) {
    err = "matmul_q: the static activation scale (operand 6) must be positive, got " + std::to_string(actScale);
    return false;
  }
  if (act) {
    const Fp8Format f = q.codes == DType::F8E4M3FN ? Fp8Format::E4M3FN : Fp8Format::E5M2;
    const float top = q.actFp8 ? fp8Max(f) : static_cast<float>(quant::kInt8Max);
    auto round = [&](float v) {
      return q.actFp8 ? fp8ToFloat(floatToFp8(v, f, /*saturate=*/true), f) : quant::roundToInt8(v);
    };
    xq.resize(static_cast<size_t>(M * q.K));
    for (int64_t m = 0; m < M; ++m) {
      const float *row = xv + m * q.K;
      float scale = actScale;
      if (act == 2) {
        float amax = 0.0f;
        for (int64_t k = 0; k < q.K; ++k)
          amax = std::max(amax, std::fabs(row[k]));
        scale = amax > 0.0f ? amax / top : 1.0f;
      }
      for (int64_t k = 0; k < q.K; ++k)
        xq[m * q.K + k] = round(row[k] / scale) * scale;
    }
    xv = xq.data();
  }
  // Panels of at most `rows` output channels within each output (so a split's results are those of the layer
  // alone): (first channel, count, output, first column in it). One row of x (decode) reads each dequantized value
  // once, so its panel is kept within L1 (4-row steps, the GEMV's own, each row's dot product computed the same way
  // whatever the panel holds); more rows reuse a panel of kPanel channels from L2.
  const int64_t rows = M == 1 ? std::clamp<int64_t>(kL1Floats / std::max<int64_t>(q.K, 1) / 4 * 4, 1, kPanel) : kPanel;
  struct Panel {
    int64_t n0, count;
    Tensor *y;
    int64_t col;
  };
  std::vector<Panel> panels;
  int64_t off = 0;
  for (size_t i = 0; i < splits.size(); ++i) {
    if (a.outputs[i]->numel() != 0) // an empty result's N may be huge when the packed weight is empty
      for (int64_t c = 0; c < splits[i]; c += rows)
        panels.push_back({off + c, std::min(rows, splits[i] - c), a.outputs[i], c});
    off += splits[i];
  }
  // At most N rows: the buffer then stays within twice the packed weight's size, so the product cannot overflow.
  const int64_t panelRows = std::min(rows, q.N);
  auto work = [&](int64_t begin, int64_t end) {
    std::vector<float> buf(static_cast<size_t>(panelRows * q.K));
    for (int64_t p = begin; p < end; ++p) {
      const Panel &pn = panels[p];
      const int64_t ld = pn.y->shape.back();
      dequantPanel(q, w, s, z, pn.n0, pn.count, buf.data());
      // y[:, col:col+count] = x [M, K] * buf^T [K, count]
      sgemm(false, true, M, pn.count, q.K, 1.0f, xv, q.K, buf.data(), q.K, 0.0f,
            pn.y->as<float>() + pn.col, ld, nullptr);
    }
  };
  const int64_t n = static_cast<int64_t>(panels.size());
  if (a.pool && n > 1)
    a.pool->parallelFor(n, work);
  else
    work(0, n);
  if (const Tensor *r = a.in(5)) { // the residual stream's add: residual + product, as the binary add computes it
    float *y = a.outputs[0]->as<float>();
    const float *rv = r->as<float>();
    for (int64_t i = 0, e = a.outputs[0]->numel(); i < e; ++i)
      y[i] = rv[i] + y[i];
  }
  return true;
}

// matmul_q_gated(x, W, S, Z) {activation, ...}: a gated MLP's gate and up layers stacked by output channel (gate
// first, N / 2 each) with the gated activation applied, act(x W_gate^T) * (x W_up^T) (qopt-fuse-gated-product).
// The reference runs matmul_q_split and gated_act's own code, so its results are those two launches' bit for bit.
bool quantMatmulGatedInfer(const KernelArgs &a, std::string &err) {
  QuantShape q;
  if (!quantShape(a, q, err) || !fusedOperandsValid(a, q, false, err))
    return false;
  if (q.N % 2 != 0) {
    err = "matmul_q_gated: the stacked gate and up layers need an even number of output channels, got " +
          std::to_string(q.N);
    return false;
  }
  const int64_t act = a.attrs->getInt("activation", -1);
  if (act < 0 || act > 2) {
    err = "matmul_q_gated: activation must be 0 (silu), 1 (gelu) or 2 (gelu_tanh), got " + std::to_string(act);
    return false;
  }
  Shape out = a.in(0)->shape;
  out.back() = q.N / 2;
  a.outputs[0]->dtype = DType::F32;
  a.outputs[0]->shape = out;
  return true;
}

bool quantMatmulGatedRun(const KernelArgs &a, std::string &err) {
  Tensor gate = *a.outputs[0], up = *a.outputs[0];
  std::vector<float> storage(2 * static_cast<size_t>(gate.numel()));
  gate.data = storage.data();
  up.data = storage.data() + gate.numel();
  Attrs attrs;
  for (const Attr &at : a.attrs->all())
    if (at.key != "splits")
      attrs.add(at);
  attrs.setInts("splits", {gate.shape.back(), gate.shape.back()});
  KernelArgs product = a;
  product.outputs = {&gate, &up};
  product.attrs = &attrs;
  if (!quantMatmulRun(product, err))
    return false;
  const KernelArgs gated{{&gate, &up}, {a.outputs[0]}, a.attrs, a.pool};
  return lookupFamily("gated_act")->reference(gated, err);
}

const KernelFamily kKernels[] = {
    {"matmul_q", 2, 7, 1, 0, quantMatmulInfer, quantMatmulRun,
     "x * dequant(W) for int4 (asym/sym), int3, int8 or FP8 (E4M3FN, E5M2) weights, group-wise, per channel or "
     "per tensor (QuantFormat.h), or float16 weights (bits 16); optional rms_norm of x (operand 4: its scale) and "
     "residual added to the result (operand 5); W8A8's static activation scale (operand 6)"},
    {"matmul_q_split", 2, 7, -1, 0, quantMatmulSplitInfer, quantMatmulRun,
     "matmul_q over layers sharing their input, weights stacked by output channel; one output per 'splits' entry"},
    {"matmul_q_gated", 2, 7, 1, 0, quantMatmulGatedInfer, quantMatmulGatedRun,
     "act(x * dequant(W_gate)) * (x * dequant(W_up)), the gate and up layers stacked by output channel (matmul_q's "
     "formats; activation 0 silu, 1 gelu, 2 gelu_tanh; optional rms_norm of x, operand 4)"},
};

} // namespace

void registerQuantKernels(std::vector<const KernelFamily *> &out) { appendKernels(out, kKernels); }

} // namespace qopt::num
