//===- Gptq.cpp - Hessian-aware weight quantization (GPTQ) -----------------===//
//
// The algorithm of GPTQ's reference implementation, in double precision: dampen H, zero dead inputs, optionally
// permute by decreasing diag(H), take the upper Cholesky factor U of H^-1, then for each column i quantize,
// divide the error by U[i][i] and subtract err * U[i][j] from the later columns j of the current block; after each
// block, propagate the block's errors to all remaining columns at once (the lazy batch update). The grid is
// int4/int3/int8's or FP8's (the columns' errors are compensated the same way).
//
// Cost at scale (Llama-3-8B's down projection: K = 14336, N = 4096): the factorizations are O(K^3) and the updates
// O(N K^2), over K x K doubles (1.6 GB) that do not fit any cache. So U is computed without forming H^-1 (U is
// J chol(J H J)^-1 J, J the reversal: one Cholesky and one triangular inverse, in place), both blocked so that each
// pass over the matrix serves a block of 64 columns or rows, and the column loop runs rows (outputs) in parallel
// with the lazy update tiled over the remaining columns. The results do not depend on the number of threads.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/QuantFormat.h"
#include "qopt/Numerics/ThreadPool.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qopt::num::quant {

namespace {

constexpr int64_t kPanel = 64; // columns (rows) per block of the factorizations

double dot(const double *a, const double *b, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0; // four chains: the loop is not bound by one add's latency
  int64_t k = 0;
  for (; k + 4 <= n; k += 4) {
    s0 += a[k] * b[k];
    s1 += a[k + 1] * b[k + 1];
    s2 += a[k + 2] * b[k + 2];
    s3 += a[k + 3] * b[k + 3];
  }
  for (; k < n; ++k)
    s0 += a[k] * b[k];
  return (s0 + s1) + (s2 + s3);
}

// In-place Cholesky A = L L^T (lower, row-major n x n; the upper triangle is zeroed), left-looking by panels of
// kPanel columns: the panel's columns first lose the factored columns' contributions (every row below in parallel,
// in tiles of the factored columns that stay in cache), then the panel's diagonal block is factored and the rows
// below solve against it. False if A is not positive definite.
bool cholesky(std::vector<double> &a, int64_t n, ThreadPool &pool) {
  constexpr int64_t kTile = 512;
  for (int64_t j0 = 0; j0 < n; j0 += kPanel) {
    const int64_t j1 = std::min(n, j0 + kPanel);
    if (j0 > 0)
      pool.parallelFor(n - j0, [&](int64_t b, int64_t e) {
        for (int64_t t0 = 0; t0 < j0; t0 += kTile) {
          const int64_t t = std::min(j0, t0 + kTile) - t0;
          for (int64_t i = j0 + b; i < j0 + e; ++i)
            for (int64_t c = j0; c < std::min(j1, i + 1); ++c)
              a[i * n + c] -= dot(&a[i * n + t0], &a[c * n + t0], t);
        }
      });
    for (int64_t j = j0; j < j1; ++j) {
      double d = a[j * n + j] - dot(&a[j * n + j0], &a[j * n + j0], j - j0);
      if (!(d > 0))
        return false;
      d = std::sqrt(d);
      a[j * n + j] = d;
      for (int64_t i = j + 1; i < j1; ++i)
        a[i * n + j] = (a[i * n + j] - dot(&a[i * n + j0], &a[j * n + j0], j - j0)) / d;
    }
    pool.parallelFor(n - j1, [&](int64_t b, int64_t e) {
      for (int64_t i = j1 + b; i < j1 + e; ++i)
        for (int64_t j = j0; j < j1; ++j)
          a[i * n + j] = (a[i * n + j] - dot(&a[i * n + j0], &a[j * n + j0], j - j0)) / a[j * n + j];
    });
  }
  for (int64_t i = 0; i < n; ++i)
    std::fill(a.begin() + i * n + i + 1, a.begin() + (i + 1) * n, 0.0);
  return true;
}

// In-place inverse of a lower-triangular L (row-major n x n, nonzero diagonal), by panels of kPanel rows: row i of
// X = L^-1 is -(sum over k < i of L[i][k] X[k][:]) / L[i][i], with X[i][i] = 1 / L[i][i]. The panel's rows of L are
// copied out first; the rows above the panel contribute through one pass over them (parallel over column ranges),
// the panel's own rows one after another.
void invertLower(std::vector<double> &a, int64_t n, ThreadPool &pool) {
  std::vector<double> rows(static_cast<size_t>(kPanel * n)), acc(static_cast<size_t>(kPanel * n));
  for (int64_t i0 = 0; i0 < n; i0 += kPanel) {
    const int64_t i1 = std::min(n, i0 + kPanel), P = i1 - i0;
    std::copy(a.begin() + i0 * n, a.begin() + i1 * n, rows.begin());
    std::fill(acc.begin(), acc.begin() + P * n, 0.0);
    // acc[r][j] = sum over k in [j, i0) of L[i0 + r][k] X[k][j], in tiles of kTile columns (a tile of acc stays in
    // cache while the rows of X stream by), the tiles in parallel, taken from both ends (the first tiles, under
    // more rows of the triangle, cost the most).
    constexpr int64_t kTile = 256;
    const int64_t tiles = (i0 + kTile - 1) / kTile;
    pool.parallelFor(tiles, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t tile = t % 2 == 0 ? t / 2 : tiles - 1 - t / 2;
        const int64_t j0 = tile * kTile, j1 = std::min(i0, j0 + kTile);
        for (int64_t k = j0; k < i0; ++k) {
          const double *xk = &a[k * n];
          const int64_t end = std::min(j1, k + 1);
          for (int64_t r = 0; r < P; ++r) {
            const double l = rows[r * n + k];
            double *out = &acc[r * n];
            for (int64_t j = j0; j < end; ++j)
              out[j] += l * xk[j];
          }
        }
      }
    });
    for (int64_t r = 0; r < P; ++r) {
      const int64_t i = i0 + r;
      double *out = &acc[r * n];
      for (int64_t k = i0; k < i; ++k) {
        const double l = rows[r * n + k];
        const double *xk = &a[k * n];
        for (int64_t j = 0; j <= k; ++j)
          out[j] += l * xk[j];
      }
      const double d = rows[r * n + i];
      double *xi = &a[i * n];
      for (int64_t j = 0; j < i; ++j)
        xi[j] = -out[j] / d;
      xi[i] = 1.0 / d;
    }
  }
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
  // H permuted (a copy only with act-order) and W's columns with it.
  std::vector<double> Wp;
  if (opt.actOrder) {
    Wp.resize(W.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < K; ++j)
        Wp[n * K + j] = W[n * K + perm[j]];
    std::vector<double> Hp(H.size());
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j < K; ++j)
        Hp[i * K + j] = H[perm[i] * K + perm[j]];
    H.swap(Hp);
  } else {
    Wp.swap(W);
  }
  std::vector<double>().swap(W);

  // U, the upper Cholesky factor of H^-1 (H^-1 = U^T U): with J the reversal of the K indices and J H J = L L^T,
  // H^-1 = J L^-T L^-1 J = (J L^-1 J)^T (J L^-1 J), and J L^-1 J is upper with a positive diagonal. Conjugating
  // by J reverses a row-major matrix's elements.
  ThreadPool &pool = defaultThreadPool();
  std::vector<double> &U = H;
  std::reverse(U.begin(), U.end());
  if (!cholesky(U, K, pool)) {
    error = "the damped Hessian is not positive definite (increase damp)";
    return false;
  }
  invertLower(U, K, pool);
  std::reverse(U.begin(), U.end());

  std::vector<int> codes(static_cast<size_t>(N * K));
  const int64_t B = std::max<int64_t>(1, opt.blockSize);
  for (int64_t i1 = 0; i1 < K; i1 += B) {
    const int64_t i2 = std::min(K, i1 + B);
    // Rows are independent: each quantizes the block's columns, then propagates their errors to the columns after
    // the block (the lazy batch update), in tiles of columns whose rows of U stay in cache.
    pool.parallelFor(N, [&](int64_t nb, int64_t ne) {
      std::vector<double> err(static_cast<size_t>((ne - nb) * (i2 - i1)));
      std::vector<float> vals(static_cast<size_t>(groupSize));
      for (int64_t n = nb; n < ne; ++n) {
        double *wr = &Wp[n * K];
        double *er = &err[(n - nb) * (i2 - i1)];
        for (int64_t i = i1; i < i2; ++i) {
          const int64_t orig = perm[i], g = orig / groupSize;
          if (!opt.actOrder && orig % groupSize == 0) { // parameters from the updated weights of this group
            for (int64_t t = 0; t < groupSize; ++t)
              vals[t] = static_cast<float>(wr[i + t]);
            params[n * G + g] = paramsOf(vals.data());
          }
          const GroupParams &p = params[n * G + g];
          const int c = quantize(static_cast<float>(wr[i]), p);
          codes[n * K + orig] = c;
          const double e = (wr[i] - dequantize(c, p)) / U[i * K + i];
          er[i - i1] = e;
          const double *ur = &U[i * K];
          for (int64_t j = i + 1; j < i2; ++j)
            wr[j] -= e * ur[j];
        }
      }
      constexpr int64_t kTile = 256;
      for (int64_t j0 = i2; j0 < K; j0 += kTile) {
        const int64_t j1 = std::min(K, j0 + kTile);
        for (int64_t n = nb; n < ne; ++n) {
          double *wr = &Wp[n * K];
          const double *er = &err[(n - nb) * (i2 - i1)];
          for (int64_t i = i1; i < i2; ++i) {
            const double e = er[i - i1];
            const double *ur = &U[i * K];
            for (int64_t j = j0; j < j1; ++j)
              wr[j] -= e * ur[j];
          }
        }
      }
    });
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
