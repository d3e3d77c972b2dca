//===- Quantize.cpp - round-to-nearest weight quantization -----------------===//
//
// The packer side of QuantFormat.h. Scales are chosen per group from the group's range: asymmetric int4 maps
// [min(min, 0), max(max, 0)] onto [0, 15] (the grid always holds 0 exactly: the zero point is a code, so a range
// away from 0 could not be represented); symmetric formats map [-absmax, absmax] onto [-7, 7] (int4) or
// [-127, 127] (int8). A group of zeros gets scale 1; a group of one repeated value is exact. int3/int4 scales are
// rounded to float16 before the codes are chosen (QuantFormat.h).
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/QuantFormat.h"
#include "qopt/Numerics/Tensor.h"
#include "qopt/Numerics/ThreadPool.h"

#include <algorithm>
#include <cstring>

namespace qopt::num::quant {

// Loops over W [K, N] by channel go kChannelBlock channels (one 64-byte line of a row of W) at a time, and
// dequantize's kRowBlock rows of them at a time (16 KB of w, within L1 while the block's lines are written).
constexpr int64_t kChannelBlock = 16, kRowBlock = 256;

GroupParams groupParams(const float *v, int64_t count, int64_t stride, int bits, bool symmetric) {
  GroupParams p;
  float mn = 0, mx = 0, amax = 0;
  for (int64_t i = 0; i < count; ++i) {
    float x = v[i * stride];
    mn = i ? std::min(mn, x) : x;
    mx = i ? std::max(mx, x) : x;
    amax = std::max(amax, std::fabs(x));
  }
  if (symmetric) {
    // int4 symmetric stores q + 8 in a nibble: codes [0, 15] with zero 8; int8 stores q itself.
    const bool nib = isNibbleFormat(bits);
    int qmax = nib ? (1 << (bits - 1)) - 1 : kInt8Max;
    p.scale = amax > 0 ? amax / static_cast<float>(qmax) : 1.0f;
    if (nib)
      p.scale = roundScaleToHalf(p.scale);
    p.zero = symmetricZero(bits);
    p.lo = nib ? 0 : -kInt8Max;
    p.hi = nib ? (1 << bits) - 1 : kInt8Max;
  } else {
    const int levels = (1 << bits) - 1;
    mn = std::min(mn, 0.0f);
    mx = std::max(mx, 0.0f);
    p.scale = mx > mn ? (mx - mn) / static_cast<float>(levels) : 1.0f;
    if (isNibbleFormat(bits))
      p.scale = roundScaleToHalf(p.scale);
    p.zero = static_cast<int>(std::clamp(roundEven(-mn / p.scale), 0.0f, static_cast<float>(levels)));
    p.lo = 0;
    p.hi = levels;
  }
  return p;
}

float roundScaleToHalf(float scale) { return isHalfScale(scale) ? halfToFloat(floatToHalf(scale)) : scale; }

int quantizeCode(float v, const GroupParams &p) {
  return std::clamp(static_cast<int>(roundEven(v / p.scale)) + p.zero, p.lo, p.hi);
}

float dequantizeCode(int code, const GroupParams &p) { return static_cast<float>(code - p.zero) * p.scale; }

void packCodes(const std::vector<int> &codes, const std::vector<GroupParams> &params, int bits, int64_t groupSize,
               int64_t K, int64_t N, bool symmetric, QuantizedWeight &out) {
  out = QuantizedWeight();
  out.bits = bits;
  out.groupSize = groupSize;
  out.K = K;
  out.N = N;
  out.symmetric = symmetric;
  const int64_t G = K / groupSize, rowBytes = isNibbleFormat(bits) ? K / 2 : K;
  out.perTensor = params.size() == 1 && N * G != 1;
  const int64_t P = out.paramRows() * (out.perTensor ? 1 : G);
  out.data.assign(static_cast<size_t>(N * rowBytes), 0);
  out.scales.resize(static_cast<size_t>(P));
  if (isNibbleFormat(bits) && !symmetric)
    out.zeros.resize(static_cast<size_t>(P));
  out.halfScales = isNibbleFormat(bits);
  for (int64_t i = 0; i < P; ++i) {
    out.scales[i] = params[i].scale;
    out.halfScales = out.halfScales && isHalfScale(params[i].scale);
    if (!out.zeros.empty())
      out.zeros[i] = static_cast<uint8_t>(params[i].zero);
  }
  defaultThreadPool().parallelFor(N, [&](int64_t begin, int64_t end) { // rows are independent
    for (int64_t n = begin; n < end; ++n) {
      uint8_t *row = out.data.data() + n * rowBytes;
      for (int64_t k = 0; k < K; ++k) {
        int c = codes[n * K + k];
        if (bits == 8)
          row[k] = static_cast<uint8_t>(static_cast<int8_t>(c));
        else
          row[k >> 1] = static_cast<uint8_t>(row[k >> 1] | (static_cast<uint8_t>(c) << ((k & 1) * 4)));
      }
    }
  });
}

bool checkFinite(const float *w, int64_t K, int64_t N, std::string &error) {
  std::vector<int64_t> firstBad(static_cast<size_t>(K), -1); // per input row, in parallel; the first one reported
  defaultThreadPool().parallelFor(K, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k)
      for (int64_t n = 0; n < N; ++n)
        if (!std::isfinite(w[k * N + n])) {
          firstBad[k] = k * N + n;
          break;
        }
  });
  for (int64_t i : firstBad)
    if (i >= 0) {
      error = "the weight has a non-finite value (" + std::to_string(w[i]) + ") at input " + std::to_string(i / N) +
              ", output " + std::to_string(i % N);
      return false;
    }
  return true;
}

bool quantizeRtn(const float *w, int64_t K, int64_t N, int bits, int64_t groupSize, bool symmetric,
                 QuantizedWeight &out, std::string &error) {
  if (!checkFinite(w, K, N, error))
    return false;
  if (!isSupportedBits(bits)) {
    error = "unsupported bit width " + std::to_string(bits) + " (3, 4 or 8)";
    return false;
  }
  if (bits == 8 && !symmetric) {
    error = "int8 weights are symmetric only";
    return false;
  }
  if (groupSize <= 0 || K % groupSize != 0 || (isNibbleFormat(bits) && K % 2 != 0)) {
    error = "group size " + std::to_string(groupSize) + " does not divide the input size " + std::to_string(K);
    return false;
  }
  const int64_t G = K / groupSize;
  std::vector<int> codes(static_cast<size_t>(N * K));
  std::vector<GroupParams> params(static_cast<size_t>(N * G));
  // Channels are independent. W is [K, N]: a group of channel n is a strided column segment, so a thread takes its
  // channels kChannelBlock at a time, group by group: the block's columns share the segment's cache lines.
  defaultThreadPool().parallelFor((N + kChannelBlock - 1) / kChannelBlock, [&](int64_t begin, int64_t end) {
    for (int64_t n0 = begin * kChannelBlock; n0 < std::min(N, end * kChannelBlock); n0 += kChannelBlock)
      for (int64_t g = 0; g < G; ++g)
        for (int64_t n = n0; n < std::min(N, n0 + kChannelBlock); ++n) {
          const float *first = w + (g * groupSize) * N + n;
          GroupParams p = groupParams(first, groupSize, N, bits, symmetric);
          params[n * G + g] = p;
          for (int64_t i = 0; i < groupSize; ++i)
            codes[n * K + g * groupSize + i] = quantizeCode(first[i * N], p);
        }
  });
  packCodes(codes, params, bits, groupSize, K, N, symmetric, out);
  return true;
}

bool quantizeFp8(const float *w, int64_t K, int64_t N, Fp8Format format, int64_t groupSize, QuantizedWeight &out,
                 std::string &error) {
  if (!checkFinite(w, K, N, error))
    return false;
  if (groupSize <= 0 || K % groupSize != 0) {
    error = "group size " + std::to_string(groupSize) + " does not divide the input size " + std::to_string(K);
    return false;
  }
  const int64_t G = K / groupSize;
  out = QuantizedWeight();
  out.bits = 8;
  out.fp8 = true;
  out.fp8Format = format;
  out.symmetric = true;
  out.groupSize = groupSize;
  out.K = K;
  out.N = N;
  out.data.resize(static_cast<size_t>(N * K));
  out.scales.resize(static_cast<size_t>(N * G));
  const float top = fp8Max(format);
  defaultThreadPool().parallelFor(N, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n)
      for (int64_t g = 0; g < G; ++g) {
        const float *first = w + (g * groupSize) * N + n; // a strided column segment of W [K, N]
        float amax = 0.0f;
        for (int64_t i = 0; i < groupSize; ++i)
          amax = std::max(amax, std::fabs(first[i * N]));
        const float scale = amax > 0.0f ? amax / top : 1.0f;
        out.scales[n * G + g] = scale;
        for (int64_t i = 0; i < groupSize; ++i)
          out.data[n * K + g * groupSize + i] = floatToFp8(first[i * N] / scale, format, /*saturate=*/true);
      }
  });
  return true;
}

bool quantizeRtnPerTensor(const float *w, int64_t K, int64_t N, int bits, bool symmetric, QuantizedWeight &out,
                          std::string &error) {
  if (!checkFinite(w, K, N, error))
    return false;
  if (!isSupportedBits(bits) || (bits == 8 && !symmetric) || (isNibbleFormat(bits) && K % 2 != 0)) {
    error = bits == 8 ? "int8 weights are symmetric only" : "unsupported format (3, 4 or 8 bits; even K for int4)";
    return false;
  }
  const GroupParams p = groupParams(w, K * N, 1, bits, symmetric);
  std::vector<int> codes(static_cast<size_t>(N * K));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n)
      codes[n * K + k] = quantizeCode(w[k * N + n], p);
  packCodes(codes, {p}, bits, K, K, N, symmetric, out);
  out.perTensor = true;
  return true;
}

void dequantize(const QuantizedWeight &q, float *w) {
  const int64_t G = q.groups(), rowBytes = isNibbleFormat(q.bits) ? q.K / 2 : q.K;
  // w is [K, N]: kRowBlock rows of kChannelBlock channels at a time, the block's lines of w within L1 while each
  // channel's column is written.
  const int64_t blocks = (q.N + kChannelBlock - 1) / kChannelBlock, rowBlocks = (q.K + kRowBlock - 1) / kRowBlock;
  defaultThreadPool().parallelFor(blocks * rowBlocks, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t n0 = b % blocks * kChannelBlock, k0 = b / blocks * kRowBlock;
      const int64_t k1 = std::min(q.K, k0 + kRowBlock);
      for (int64_t n = n0; n < std::min(q.N, n0 + kChannelBlock); ++n) {
        const uint8_t *row = q.data.data() + n * rowBytes;
        for (int64_t k = k0; k < k1;) { // a group's part of the block at a time: one scale and zero point
          const int64_t g = k / q.groupSize, end = std::min(k1, (g + 1) * q.groupSize);
          const float scale = q.scales[q.paramIndex(n, g)];
          if (q.fp8) {
            for (; k < end; ++k)
              w[k * q.N + n] = fp8ToFloat(row[k], q.fp8Format) * scale;
          } else if (q.bits == 8) {
            for (; k < end; ++k)
              w[k * q.N + n] = static_cast<float>(static_cast<int8_t>(row[k])) * scale;
          } else {
            const int zero = q.symmetric ? symmetricZero(q.bits) : q.zeros[q.paramIndex(n, g)];
            for (; k < end; ++k)
              w[k * q.N + n] = static_cast<float>(static_cast<int>(nibble(row, k)) - zero) * scale;
          }
        }
      }
    }
  });
}

void tileRow(int64_t layout, const uint8_t *row, int64_t n, int64_t N, int64_t rowBytes, uint8_t *tiles) {
  for (int64_t w = 0; w < rowBytes / 16; ++w)
    std::memcpy(tiles + tileWordOffset(layout, n, w, N, rowBytes), row + 16 * w, 16);
}

void tileRows(int64_t layout, const uint8_t *rows, int64_t N, int64_t rowBytes, uint8_t *tiles) {
  for (int64_t n = 0; n < N; ++n)
    tileRow(layout, rows + n * rowBytes, n, N, rowBytes, tiles);
}

void untileRow(int64_t layout, const uint8_t *tiles, int64_t n, int64_t N, int64_t rowBytes, uint8_t *row) {
  for (int64_t w = 0; w < rowBytes / 16; ++w)
    std::memcpy(row + 16 * w, tiles + tileWordOffset(layout, n, w, N, rowBytes), 16);
}

} // namespace qopt::num::quant
