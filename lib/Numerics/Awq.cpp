//===- Awq.cpp - activation-aware scaling and clipping (AWQ) ---------------===//
//
// The searches of AWQ (Lin et al.) for weights that will be rounded to nearest, on calibrated input rows X:
// per-input-channel scales for a group of layers reading one input (scale search), then per output channel the
// clipping ratio of each group's weight range (auto-clip). Both measure output error through sgemm on the shared
// thread pool: the error of a candidate is || X (Q(W') - W') ||^2 column by column, one product per candidate
// over all channels, so a candidate costs one S x K x N product. Channels are processed in tiles of columns to
// bound the temporary matrices (a 14336 x 4096 layer needs S x tile + 2 x K x tile floats, not K x N).
//
// Results do not depend on the number of threads (sgemm and the quantizer are deterministic per element).
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Gemm.h"
#include "qopt/Numerics/QuantFormat.h"
#include "qopt/Numerics/ThreadPool.h"

#include <algorithm>
#include <cmath>

namespace qopt::num::quant {

namespace {

constexpr int64_t kTile = 1024; // output channels per product

// Q(W) in place for W [K, N] (row-major, inputs x outputs): round to nearest, as qopt-quantize-rtn will.
bool fakeQuantize(std::vector<float> &w, int64_t K, int64_t N, int bits, int64_t groupSize, bool symmetric,
                  std::string &error) {
  QuantizedWeight q;
  if (!quantizeRtn(w.data(), K, N, bits, groupSize, bits == 8 || symmetric, q, error))
    return false;
  dequantize(q, w.data());
  return true;
}

// Per column n of D [K, N]: sum over rows of (X D)[r, n]^2, added to err[n].
bool columnErrors(const float *X, int64_t S, int64_t K, const std::vector<float> &D, int64_t N,
                  std::vector<float> &y, double *err) {
  y.resize(static_cast<size_t>(S * N));
  if (!sgemm(false, false, S, N, K, 1.0f, X, K, D.data(), N, 0.0f, y.data(), N, &defaultThreadPool()))
    return false;
  for (int64_t r = 0; r < S; ++r)
    for (int64_t n = 0; n < N; ++n)
      err[n] += static_cast<double>(y[r * N + n]) * y[r * N + n];
  return true;
}

// Columns [n0, n0 + T) of W [K, N] as a contiguous [K, T] matrix.
void copyColumns(const float *w, int64_t K, int64_t N, int64_t n0, int64_t T, std::vector<float> &out) {
  out.resize(static_cast<size_t>(K * T));
  for (int64_t k = 0; k < K; ++k)
    std::copy(w + k * N + n0, w + k * N + n0 + T, out.begin() + k * T);
}

} // namespace

bool awqSearchScales(const float *X, int64_t S, int64_t K, const float *meanAbs,
                     const std::vector<AwqLayerView> &layers, int bits, bool symmetric, int grid,
                     std::vector<float> &scales, std::string &error) {
  if (S <= 0 || K <= 0 || grid <= 0 || layers.empty()) {
    error = "AWQ's scale search needs input rows, layers and a grid of at least one step";
    return false;
  }
  scales.assign(static_cast<size_t>(K), 1.0f);
  double best = -1;
  std::vector<float> s(static_cast<size_t>(K)), tile, diff, y;
  for (int64_t gi = 0; gi < grid; ++gi) {
    const double alpha = static_cast<double>(gi) / static_cast<double>(grid);
    double mx = 0, mn = INFINITY;
    for (int64_t k = 0; k < K; ++k) {
      s[k] = static_cast<float>(std::pow(std::max<double>(meanAbs[k], 1e-4), alpha));
      mx = std::max<double>(mx, s[k]);
      mn = std::min<double>(mn, s[k]);
    }
    const float norm = static_cast<float>(std::sqrt(mx * mn));
    for (float &v : s)
      v /= norm;
    double err = 0;
    for (const AwqLayerView &l : layers) {
      std::vector<double> colErr(static_cast<size_t>(std::min(kTile, l.N)), 0.0);
      for (int64_t n0 = 0; n0 < l.N; n0 += kTile) {
        const int64_t T = std::min(kTile, l.N - n0);
        copyColumns(l.w, K, l.N, n0, T, tile);
        diff = tile;
        for (int64_t k = 0; k < K; ++k) // diag(1/s) Q(diag(s) W) - W
          for (int64_t n = 0; n < T; ++n)
            diff[k * T + n] *= s[k];
        if (!fakeQuantize(diff, K, T, bits, l.groupSize, symmetric, error))
          return false;
        for (int64_t k = 0; k < K; ++k)
          for (int64_t n = 0; n < T; ++n)
            diff[k * T + n] = diff[k * T + n] / s[k] - tile[k * T + n];
        std::fill(colErr.begin(), colErr.end(), 0.0);
        if (!columnErrors(X, S, K, diff, T, y, colErr.data())) {
          error = "AWQ's scale search: the product failed (out of memory?)";
          return false;
        }
        for (int64_t n = 0; n < T; ++n)
          err += colErr[n];
      }
    }
    if (best < 0 || err < best) {
      best = err;
      scales = s;
    }
  }
  return true;
}

bool awqClip(const float *X, int64_t S, int64_t K, float *w, int64_t N, int bits, int64_t groupSize, bool symmetric,
             std::string &error) {
  if (S <= 0 || K <= 0 || N <= 0 || groupSize <= 0 || K % groupSize != 0) {
    error = "AWQ's clip search needs input rows and a group size that divides the input size";
    return false;
  }
  constexpr int kRatios = 11; // 1, 0.95, ..., 0.5
  const int64_t G = K / groupSize;
  std::vector<float> tile, clipped, diff, y, bestTile;
  std::vector<double> err;
  for (int64_t n0 = 0; n0 < N; n0 += kTile) {
    const int64_t T = std::min(kTile, N - n0);
    copyColumns(w, K, N, n0, T, tile);
    std::vector<double> best(static_cast<size_t>(T), -1.0);
    bestTile = tile;
    for (int step = 0; step < kRatios; ++step) {
      const float ratio = 1.0f - 0.05f * static_cast<float>(step);
      clipped = tile;
      for (int64_t g = 0; g < G; ++g) // clip to [-r max|w|, r max|w|] per group of each channel
        for (int64_t n = 0; n < T; ++n) {
          float amax = 0;
          for (int64_t k = g * groupSize; k < (g + 1) * groupSize; ++k)
            amax = std::max(amax, std::fabs(clipped[k * T + n]));
          for (int64_t k = g * groupSize; k < (g + 1) * groupSize; ++k)
            clipped[k * T + n] = std::clamp(clipped[k * T + n], -amax * ratio, amax * ratio);
        }
      diff = clipped;
      if (!fakeQuantize(diff, K, T, bits, groupSize, symmetric, error))
        return false;
      for (size_t i = 0; i < diff.size(); ++i) // the error is against the unclipped weights
        diff[i] -= tile[i];
      err.assign(static_cast<size_t>(T), 0.0);
      if (!columnErrors(X, S, K, diff, T, y, err.data())) {
        error = "AWQ's clip search: the product failed (out of memory?)";
        return false;
      }
      for (int64_t n = 0; n < T; ++n)
        if (best[n] < 0 || err[n] < best[n]) {
          best[n] = err[n];
          for (int64_t k = 0; k < K; ++k)
            bestTile[k * T + n] = clipped[k * T + n];
        }
    }
    for (int64_t k = 0; k < K; ++k)
      std::copy(bestTile.begin() + k * T, bestTile.begin() + (k + 1) * T, w + k * N + n0);
  }
  return true;
}

} // namespace qopt::num::quant
