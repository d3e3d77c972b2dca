//===- Gptq.cpp - Hessian-aware weight quantization (GPTQ) -----------------===//
//
// The algorithm of GPTQ's reference implementation, in double precision: dampen H, zero dead inputs, optionally
// permute by decreasing diag(H), take the upper Cholesky factor U of H^-1, then for each column i quantize,
// divide the error by U[i][i] and subtract err * U[i][j] from the later columns j of the current block; after each
// block, propagate the block's errors to all remaining columns at once (the lazy batch update). The grid is
// int4/int3/int8's or FP8's (the columns' errors are compensated the same way).
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/QuantFormat.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qopt::num::quant {

namespace {
// In-place Cholesky A = L L^T (lower, row-major n x n). False if A is not positive definite.
bool cholesky(std::vector<double> &a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double d = a[j * n + j];
    for (int64_t k = 0; k < j; ++k)
      d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0))
      return false;
    d = std::sqrt(d);
    a[j * n + j] = d;
    for (int64_t i = j + 1; i < n; ++i) {
      double s = a[i * n + j];
      for (int64_t k = 0; k < j; ++k)
        s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / d;
    }
    for (int64_t k = j + 1; k < n; ++k)
      a[j * n + k] = 0;
  }
  return true;
}
} // namespace

bool quantizeGptq(const float *w, const float *h, int64_t K, int64_t N, int bits, int64_t groupSize,
                  bool symmetric, const GptqOptions &opt, QuantizedWeight &out, std::string &error) {
  if (!isSupportedBits(bits) || groupSize <= 0 || K % groupSize != 0 || (isNibbleFormat(bits) && K % 2 != 0)) {
    error = "unsupported bits or a group size that does not divide the input size " + std::to_string(K);
    return false;
  }
  if (!checkFinite(w, K, N, error))
    return false;
  for (int64_t i = 0; i < K * K; ++i)
    if (!std::isfinite(h[i])) {
      error = "the calibration Hessian X^T X has a non-finite value (the calibration activations overflowed?)";
      return false;
    }
  if (opt.fp8 && bits != 8) {
    error = "FP8 codes are 8-bit";
    return false;
  }
  const bool sym = symmetric || bits == 8;
  const int64_t G = K / groupSize;
  // One group's grid: integer codes (groupParams), or FP8 values times the group's scale.
  const float fp8Top = fp8Max(opt.fp8Format);
  auto paramsOf = [&](const float *vals) {
    if (!opt.fp8)
      return groupParams(vals, groupSize, 1, bits, sym);
    float amax = 0.0f;
    for (int64_t i = 0; i < groupSize; ++i)
      amax = std::max(amax, std::fabs(vals[i]));
    GroupParams p;
    p.scale = amax > 0.0f ? amax / fp8Top : 1.0f;
    return p;
  };
  auto quantize = [&](float v, const GroupParams &p) {
    return opt.fp8 ? static_cast<int>(floatToFp8(v / p.scale, opt.fp8Format, /*saturate=*/true)) : quantizeCode(v, p);
  };
  auto dequantize = [&](int c, const GroupParams &p) {
    return opt.fp8 ? fp8ToFloat(static_cast<uint8_t>(c), opt.fp8Format) * p.scale : dequantizeCode(c, p);
  };
  // Work on rows = outputs, columns = inputs, as the paper does.
  std::vector<double> W(static_cast<size_t>(N * K)), H(h, h + K * K);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n)
      W[n * K + k] = w[k * N + n];
  double meanDiag = 0;
  for (int64_t k = 0; k < K; ++k) {
    if (H[k * K + k] == 0) { // an input that never fires: its weights cannot matter
      H[k * K + k] = 1;
      for (int64_t n = 0; n < N; ++n)
        W[n * K + k] = 0;
    }
    meanDiag += H[k * K + k];
  }
  meanDiag /= static_cast<double>(K);
  for (int64_t k = 0; k < K; ++k)
    H[k * K + k] += opt.damp * meanDiag;

  std::vector<int64_t> perm(K);
  std::iota(perm.begin(), perm.end(), 0);
  std::vector<GroupParams> params(static_cast<size_t>(N * G));
  auto groupOf = [&](int64_t n, int64_t g) {
    std::vector<float> vals(groupSize);
    for (int64_t i = 0; i < groupSize; ++i)
      vals[i] = static_cast<float>(W[n * K + g * groupSize + i]);
    return paramsOf(vals.data());
  };
  if (opt.actOrder) {
    // Static groups: parameters from the original weights, in original input order.
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < G; ++g)
        params[n * G + g] = groupOf(n, g);
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return H[a * K + a] > H[b * K + b]; });
  }
  // Permuted copies.
  std::vector<double> Wp(W.size()), Hp(H.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < K; ++j)
      Wp[n * K + j] = W[n * K + perm[j]];
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < K; ++j)
      Hp[i * K + j] = H[perm[i] * K + perm[j]];

  // U: upper Cholesky factor of H^-1. H = L L^T  =>  H^-1 = L^-T L^-1; its upper factor is chol(H^-1)^T.
  if (!cholesky(Hp, K)) {
    error = "the damped Hessian is not positive definite (increase damp)";
    return false;
  }
  std::vector<double> Linv(static_cast<size_t>(K * K), 0.0);
  for (int64_t i = 0; i < K; ++i) {
    Linv[i * K + i] = 1.0 / Hp[i * K + i];
    for (int64_t j = 0; j < i; ++j) {
      double s = 0;
      for (int64_t k = j; k < i; ++k)
        s += Hp[i * K + k] * Linv[k * K + j];
      Linv[i * K + j] = -s / Hp[i * K + i];
    }
  }
  std::vector<double> Hinv(static_cast<size_t>(K * K), 0.0);
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      double s = 0;
      for (int64_t k = i; k < K; ++k)
        s += Linv[k * K + i] * Linv[k * K + j];
      Hinv[i * K + j] = Hinv[j * K + i] = s;
    }
  if (!cholesky(Hinv, K)) {
    error = "the inverse Hessian is not positive definite (increase damp)";
    return false;
  }
  std::vector<double> U(static_cast<size_t>(K * K), 0.0); // U = L'^T, upper
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = i; j < K; ++j)
      U[i * K + j] = Hinv[j * K + i];

  std::vector<int> codes(static_cast<size_t>(N * K));
  const int64_t B = std::max<int64_t>(1, opt.blockSize);
  std::vector<double> err(static_cast<size_t>(N * B));
  for (int64_t i1 = 0; i1 < K; i1 += B) {
    const int64_t i2 = std::min(K, i1 + B);
    for (int64_t i = i1; i < i2; ++i) {
      const int64_t orig = perm[i], g = orig / groupSize;
      if (!opt.actOrder && orig % groupSize == 0)
        for (int64_t n = 0; n < N; ++n) { // parameters from the updated weights of this group
          std::vector<float> vals(groupSize);
          for (int64_t t = 0; t < groupSize; ++t)
            vals[t] = static_cast<float>(Wp[n * K + i + t]);
          params[n * G + g] = paramsOf(vals.data());
        }
      const double d = U[i * K + i];
      for (int64_t n = 0; n < N; ++n) {
        const GroupParams &p = params[n * G + g];
        const double wv = Wp[n * K + i];
        int c = quantize(static_cast<float>(wv), p);
        codes[n * K + orig] = c;
        double e = (wv - dequantize(c, p)) / d;
        err[n * B + (i - i1)] = e;
        for (int64_t j = i + 1; j < i2; ++j)
          Wp[n * K + j] -= e * U[i * K + j];
      }
    }
    // Lazy batch update of everything after the block.
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = i2; j < K; ++j) {
        double s = 0;
        for (int64_t i = i1; i < i2; ++i)
          s += err[n * B + (i - i1)] * U[i * K + j];
        Wp[n * K + j] -= s;
      }
  }
  if (!opt.fp8) {
    packCodes(codes, params, bits, groupSize, K, N, sym, out);
    return true;
  }
  out = QuantizedWeight();
  out.bits = 8;
  out.fp8 = true;
  out.fp8Format = opt.fp8Format;
  out.symmetric = true;
  out.groupSize = groupSize;
  out.K = K;
  out.N = N;
  out.data.assign(codes.begin(), codes.end()); // FP8 codes, one byte each, [N, K]
  out.scales.resize(params.size());
  for (size_t i = 0; i < params.size(); ++i)
    out.scales[i] = params[i].scale;
  return true;
}

} // namespace qopt::num::quant
