//===- Quantize.cpp - round-to-nearest weight quantization -----------------===//
//
// The packer side of QuantFormat.h. Scales are chosen per group from the group's range: asymmetric int4 maps
// [min, max] onto [0, 15]; symmetric formats map [-absmax, absmax] onto [-7, 7] (int4) or [-127, 127] (int8).
// A group whose values are all equal (zero range) gets scale 1 and stores its value exactly when it is 0.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/QuantFormat.h"

#include <algorithm>

namespace qopt::num::quant {

bool quantizeRtn(const float *w, int64_t K, int64_t N, int bits, int64_t groupSize, bool symmetric,
                 QuantizedWeight &out, std::string &error) {
  if (bits != 4 && bits != 8) {
    error = "unsupported bit width " + std::to_string(bits) + " (4 or 8)";
    return false;
  }
  if (bits == 8 && !symmetric) {
    error = "int8 weights are symmetric only";
    return false;
  }
  if (groupSize <= 0 || K % groupSize != 0 || (bits == 4 && K % 2 != 0)) {
    error = "group size " + std::to_string(groupSize) + " does not divide the input size " + std::to_string(K);
    return false;
  }
  out = QuantizedWeight();
  out.bits = bits;
  out.groupSize = groupSize;
  out.K = K;
  out.N = N;
  out.symmetric = symmetric;
  const int64_t G = K / groupSize, rowBytes = bits == 4 ? K / 2 : K;
  out.data.assign(static_cast<size_t>(N * rowBytes), 0);
  out.scales.assign(static_cast<size_t>(N * G), 1.0f);
  if (bits == 4 && !symmetric)
    out.zeros.assign(static_cast<size_t>(N * G), 0);
  std::vector<int> q(static_cast<size_t>(groupSize));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < G; ++g) {
      float mn = 0, mx = 0, amax = 0;
      for (int64_t i = 0; i < groupSize; ++i) {
        float v = w[(g * groupSize + i) * N + n];
        mn = i ? std::min(mn, v) : v;
        mx = i ? std::max(mx, v) : v;
        amax = std::max(amax, std::fabs(v));
      }
      float scale;
      int zero = 0, lo, hi;
      if (symmetric) {
        int qmax = bits == 4 ? 7 : kInt8Max;
        scale = amax > 0 ? amax / static_cast<float>(qmax) : 1.0f;
        lo = bits == 4 ? -8 : -kInt8Max;
        hi = qmax;
      } else {
        scale = mx > mn ? (mx - mn) / static_cast<float>(kInt4Max) : 1.0f;
        zero = static_cast<int>(std::clamp(roundEven(-mn / scale), 0.0f, static_cast<float>(kInt4Max)));
        lo = 0;
        hi = kInt4Max;
      }
      for (int64_t i = 0; i < groupSize; ++i) {
        float v = w[(g * groupSize + i) * N + n];
        q[i] = std::clamp(static_cast<int>(roundEven(v / scale)) + zero, lo, hi);
      }
      out.scales[n * G + g] = scale;
      if (!out.zeros.empty())
        out.zeros[n * G + g] = static_cast<uint8_t>(zero);
      uint8_t *row = out.data.data() + n * rowBytes;
      for (int64_t i = 0; i < groupSize; ++i) {
        int64_t k = g * groupSize + i;
        if (bits == 8) {
          row[k] = static_cast<uint8_t>(static_cast<int8_t>(q[i]));
        } else {
          uint8_t nib = static_cast<uint8_t>(symmetric ? q[i] + kInt4SymZero : q[i]);
          row[k >> 1] = static_cast<uint8_t>(row[k >> 1] | (nib << ((k & 1) * 4)));
        }
      }
    }
  return true;
}

void dequantize(const QuantizedWeight &q, float *w) {
  const int64_t G = q.groups(), rowBytes = q.bits == 4 ? q.K / 2 : q.K;
  for (int64_t n = 0; n < q.N; ++n) {
    const uint8_t *row = q.data.data() + n * rowBytes;
    for (int64_t k = 0; k < q.K; ++k) {
      int64_t g = k / q.groupSize;
      int v;
      if (q.bits == 8)
        v = static_cast<int8_t>(row[k]);
      else
        v = static_cast<int>(nibble(row, k)) - (q.symmetric ? kInt4SymZero : q.zeros[n * G + g]);
      w[k * q.N + n] = static_cast<float>(v) * q.scales[n * G + g];
    }
  }
}

} // namespace qopt::num::quant
