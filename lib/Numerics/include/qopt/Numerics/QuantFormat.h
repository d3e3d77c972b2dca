//===- QuantFormat.h - the weight quantization formats, defined once -------===//
//
// The one definition of how quantized weights are laid out, shared by the compiler's packer (passes/), the
// CPU kernels (Kernels/QuantMatmul.cpp) and, later, the CUDA kernels. A weight W of a linear layer y = x W,
// x [.., K], W [K, N], is stored per output channel n (row-major over n, so one channel's K values are
// contiguous) and quantized along K in groups of `groupSize` consecutive inputs:
//
//   int4 (asymmetric):  q in [0, 15],    w ~= (q - zero) * scale, zero in [0, 15] per group
//                       packed two per byte, element k in byte k / 2, even k in the LOW nibble
//                       data [N, K / 2] uint8, scales [N, K / groupSize] float16 (see below), zeros
//                       [N, K / groupSize] uint8
//   int4 (symmetric):   q in [-8, 7] stored as q + 8 in a nibble (zero = 8), same layout, no zeros tensor
//   int8 (symmetric):   q in [-127, 127], w ~= q * scale; data [N, K] int8, scales [N, K / groupSize] float
//   fp8 (E4M3FN, E5M2): q an FP8 code (Fp8.h), w ~= value(q) * scale with scale = max |w| of the group / the
//                       format's largest finite value (448, 57344), codes rounded to nearest even and saturated;
//                       data [N, K] float8e4m3fn / float8e5m2 (dtype says which), scales as int8, bits = 8
//
// int3/int4 scales are float16 values: a group's scale is rounded to the nearest float16 (ties to even) where it
// lies in float16's normal range [2^-14, 65504], and a weight whose scales all do stores them as float16 [N, G]
// (QuantizedWeight::halfScales); otherwise (a group of tiny or huge weights) the weight keeps float32 scales, the
// in-range ones still rounded. Codes are chosen against the rounded scale. 8-bit formats keep float32 scales (one
// per channel: 0.004 bits per weight at K = 4096; float16 would save nothing worth a second range rule).
//
// groupSize == K means one group per output channel. K must be a multiple of groupSize (and even for int4);
// the packer falls back to per-channel for a layer where it is not, and says so in its report.
//
// Per tensor: one scale (and zero point) for the whole weight, scales [1, 1] (zeros [1, 1]), groupSize = K. The
// kernels tell it from the scales' shape: [1, 1] with N > 1.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_NUMERICS_QUANTFORMAT_H
#define QOPT_NUMERICS_QUANTFORMAT_H

#include "qopt/Numerics/Fp8.h"

#include <cmath>
#include <cstdint>

namespace qopt::num::quant {

constexpr int kInt4Max = 15;      // unsigned nibble range [0, 15]
constexpr int kInt4SymZero = 8;   // symmetric int4 stores q + 8
constexpr int kInt8Max = 127;     // symmetric int8 uses [-127, 127] so that -q is representable

static_assert(sizeof(uint8_t) == 1, "nibble packing assumes 8-bit bytes");

// int3 uses the int4 storage (nibbles) with a 3-bit grid: codes [0, 7], symmetric zero 4. It exists for accuracy
// studies; a dense 3-bit packing will come with kernels that read it.
inline bool isNibbleFormat(int64_t bits) { return bits == 3 || bits == 4; }
inline bool isSupportedBits(int64_t bits) { return bits == 3 || bits == 4 || bits == 8; }
// float16's normal range, which a nibble format's scale must lie in to be stored as float16.
constexpr float kHalfScaleMin = 6.103515625e-05f, kHalfScaleMax = 65504.0f;
inline bool isHalfScale(float s) { return s >= kHalfScaleMin && s <= kHalfScaleMax; }
inline int symmetricZero(int64_t bits) { return bits == 8 ? 0 : 1 << (bits - 1); }

inline uint8_t packNibbles(uint8_t even, uint8_t odd) { return static_cast<uint8_t>((even & 0xF) | (odd << 4)); }
inline uint8_t nibble(const uint8_t *row, int64_t k) { return (row[k >> 1] >> ((k & 1) * 4)) & 0xF; }

// Round half to even, as the GPU conversion instructions do, so packer and kernels agree on ties.
inline float roundEven(float v) { return std::nearbyint(v); }

// An activation value (already divided by its scale) as a W8A8 int8 code: nearest even, clamped to [-127, 127]
// (the GPU's cvt.rni.sat with the symmetric range); NaN becomes 0.
inline float roundToInt8(float v) {
  const float r = roundEven(v), top = static_cast<float>(kInt8Max);
  return r > top ? top : r < -top ? -top : r == r ? r : 0.0f;
}

// Weight layouts (the `weight_layout` attribute of matmul_q, matmul_q_split and matmul_q_gated): the order of a
// weight's bytes, whose shape and values stay those above. kRowLayout (0, the default): rows as above, read by
// every kernel. The tile layouts permute the same bytes for the GPU's few-row products (qopt-tile-weights), which
// take a weight in tiles of 16 rows and chunks of 64 bytes of each row (4 words of 16 bytes): tile t's chunk c is
// 1 KB at (t * chunks + c) KB, and word q (0-3) of the tile's row (g, h) (g < 8, h < 2) is at 16 (32 h + 4 g + q)
// bytes in it, so that a warp's load (lane 4 g + q, row h) reads 512 contiguous bytes and a tile's chunks follow
// one another. kTileLayout (1): tile t's rows are 16 t + 8 h + g. kPairedTileLayout (2): rows g of the two halves
// of the weight, 8 t + g (h = 0) and N / 2 + 8 t + g (h = 1): the pairs a gated product's thread holds (a gate
// channel and its up channel). Both need N a multiple of 16 and rows of whole chunks.
constexpr int64_t kRowLayout = 0, kTileLayout = 1, kPairedTileLayout = 2;
constexpr int64_t kTileRows = 16, kTileChunkBytes = 64;
inline bool canTileRows(int64_t N, int64_t rowBytes) {
  return N > 0 && N % kTileRows == 0 && rowBytes > 0 && rowBytes % kTileChunkBytes == 0;
}
// The byte offset, in tile layout `layout`, of bytes [16 w, 16 w + 16) of row n.
inline int64_t tileWordOffset(int64_t layout, int64_t n, int64_t w, int64_t N, int64_t rowBytes) {
  int64_t t, g, h;
  if (layout == kPairedTileLayout) {
    h = n >= N / 2 ? 1 : 0;
    t = (n - h * (N / 2)) / 8, g = (n - h * (N / 2)) % 8;
  } else {
    t = n / kTileRows, h = n % kTileRows / 8, g = n % 8;
  }
  const int64_t chunks = rowBytes / kTileChunkBytes, c = w / 4, q = w % 4;
  return ((t * chunks + c) * 64 + 32 * h + 4 * g + q) * 16;
}
// Rows [N, rowBytes] -> tile layout `layout` (canTileRows must hold; `tiles` holds N * rowBytes bytes); tileRow
// moves row n alone (rows go to disjoint bytes: any order, any thread).
void tileRows(int64_t layout, const uint8_t *rows, int64_t N, int64_t rowBytes, uint8_t *tiles);
void tileRow(int64_t layout, const uint8_t *row, int64_t n, int64_t N, int64_t rowBytes, uint8_t *tiles);
// Row n of a weight in tile layout `layout`, as rows (rowBytes bytes into `row`).
void untileRow(int64_t layout, const uint8_t *tiles, int64_t n, int64_t N, int64_t rowBytes, uint8_t *row);

} // namespace qopt::num::quant


#include <string>
#include <vector>

namespace qopt::num::quant {

// A weight quantized to one of the layouts above.
struct QuantizedWeight {
  int bits = 4;
  bool fp8 = false; // FP8 codes (bits 8) in fp8Format instead of int8
  Fp8Format fp8Format = Fp8Format::E4M3FN;
  int64_t groupSize = 0, K = 0, N = 0;
  bool symmetric = false;
  std::vector<uint8_t> data;  // int4: [N, K/2] packed; int8: [N, K] as int8 bit patterns
  std::vector<float> scales;  // [N, K / groupSize]
  bool halfScales = false;    // every scale is a normal float16 value: stored as float16 (int3/int4 only)
  std::vector<uint8_t> zeros; // [N, K / groupSize], asymmetric int4 only ([1, 1] per tensor)
  bool perTensor = false;     // scales and zeros [1, 1]
  int64_t groups() const { return groupSize ? K / groupSize : 0; }
  int64_t paramRows() const { return perTensor ? 1 : N; } // rows of scales and zeros
  int64_t paramIndex(int64_t n, int64_t g) const { return perTensor ? 0 : n * groups() + g; }
};

// False with `error` naming the first non-finite value (NaN or Inf) of W [K, N], which no quantizer can represent.
bool checkFinite(const float *w, int64_t K, int64_t N, std::string &error);

// Round-to-nearest quantization of W [K, N] (ONNX MatMul layout: inputs x outputs, row-major). Returns false with
// `error` if the format is unsupported or groupSize does not divide K.
bool quantizeRtn(const float *w, int64_t K, int64_t N, int bits, int64_t groupSize, bool symmetric,
                 QuantizedWeight &out, std::string &error);
// FP8 weights in `format`, one scale per group of groupSize inputs of an output channel (groupSize = K: per
// channel): the group's largest magnitude maps to the format's largest finite value.
bool quantizeFp8(const float *w, int64_t K, int64_t N, Fp8Format format, int64_t groupSize, QuantizedWeight &out,
                 std::string &error);
// Round-to-nearest with one scale (and zero point) for the whole weight.
bool quantizeRtnPerTensor(const float *w, int64_t K, int64_t N, int bits, bool symmetric, QuantizedWeight &out,
                          std::string &error);
// The scale and zero point round-to-nearest picks for a group of values (the range rules in Quantize.cpp), and
// the stored code of one value under them (a nibble for int4, the int8 value for int8).
struct GroupParams {
  float scale = 1.0f;
  int zero = 0, lo = 0, hi = 0;
};
GroupParams groupParams(const float *values, int64_t count, int64_t stride, int bits, bool symmetric);
// A nibble format's scale as stored: rounded to the nearest float16 where it is in float16's normal range.
float roundScaleToHalf(float scale);
int quantizeCode(float v, const GroupParams &p);      // clamp(round(v / scale) + zero, lo, hi)
float dequantizeCode(int code, const GroupParams &p); // (code - zero) * scale
// Packs stored codes [N, K] (row-major by output channel) with their group parameters ([N, K / groupSize], or
// one for the whole weight) into `out`.
void packCodes(const std::vector<int> &codes, const std::vector<GroupParams> &params, int bits, int64_t groupSize,
               int64_t K, int64_t N, bool symmetric, QuantizedWeight &out);

// Expands back to W [K, N] (for reporting quantization error and for tests).
void dequantize(const QuantizedWeight &q, float *w);

} // namespace qopt::num::quant

namespace qopt::num::quant {

struct GptqOptions {
  double damp = 0.01;     // added to H's diagonal, as a fraction of its mean
  int64_t blockSize = 128; // columns per lazy batch update
  bool actOrder = false;  // quantize inputs in decreasing order of H's diagonal (with groups fixed up front)
  bool fp8 = false;       // bits 8: FP8 codes in fp8Format (quantizeFp8's grid and scales) instead of int8
  Fp8Format fp8Format = Fp8Format::E4M3FN;
};

// GPTQ (Frantar et al.): quantizes W [K, N] column by column (input by input), spreading each column's
// rounding error over the not yet quantized columns through the inverse Hessian H^-1, H = X^T X / rows [K, K].
// Group parameters come from the partially updated weights as each group starts (or, with actOrder, from the
// original weights). Emits the same format as quantizeRtn (options.fp8: as quantizeFp8, a group's scale its
// largest magnitude over the format's largest value, each weight rounded to the nearest FP8 value).
bool quantizeGptq(const float *w, const float *h, int64_t K, int64_t N, int bits, int64_t groupSize,
                  bool symmetric, const GptqOptions &options, QuantizedWeight &out, std::string &error);

// AWQ (Lin et al.) for weights that will be rounded to nearest (quantizeRtn with `bits`, symmetric for int8 or
// where asked), on calibrated input rows X [S, K] (row-major).
struct AwqLayerView {
  const float *w = nullptr; // W [K, N]
  int64_t N = 0;
  int64_t groupSize = 0; // the group size it will be quantized with (dividing K)
};
// The per-input-channel scales s = mean|x|^alpha (alpha = i / grid, i = 0 .. grid - 1; normalized so that
// sqrt(max s * min s) = 1) minimizing sum over the layers of || X W - X diag(1/s) Q(diag(s) W) ||^2; alpha = 0 gives
// s = 1, so the result is never worse on X than no scaling. meanAbs [K] is mean |x| per input channel.
bool awqSearchScales(const float *X, int64_t S, int64_t K, const float *meanAbs,
                     const std::vector<AwqLayerView> &layers, int bits, bool symmetric, int grid,
                     std::vector<float> &scales, std::string &error);
// AWQ's auto-clip, in place on W [K, N]: per output channel, the ratio r in {1, 0.95, ..., 0.5} whose clipping of
// each group to [-r max|w|, r max|w|] minimizes || X w - X Q(clip_r(w)) ||^2 (the first such ratio on ties). X is
// the layer's input as it will be (divided by AWQ's scales where they were folded into W).
bool awqClip(const float *X, int64_t S, int64_t K, float *w, int64_t N, int bits, int64_t groupSize, bool symmetric,
             std::string &error);

} // namespace qopt::num::quant

#endif // QOPT_NUMERICS_QUANTFORMAT_H
