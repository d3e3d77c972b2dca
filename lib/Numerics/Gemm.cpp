//===- Gemm.cpp - cache-blocked, packed, multithreaded fp32 GEMM -----------===//
//
// Layout of the computation (the classic Goto/BLIS scheme):
//
//   C is cut into jobs of mc rows x nb columns; the pool's threads claim jobs one at a time.
//   For each job, K is walked in blocks of kc (kc is fixed per kernel, never per thread count):
//     op(B)[kc x nb] is packed into nr-wide column panels  (stays in L2),
//     op(A)[mc x kc] is packed into mr-tall row panels      (stays in L2),
//     every mr x nr tile of C is updated by the register-blocked micro-kernel, which streams one A panel and one
//     B panel (kc x nr, stays in L1) and keeps the whole tile in registers.
//
// Why results do not depend on the thread count: an output element's value is fixed by the micro-kernel (one fused
// multiply-add per k, in k order, in its own accumulator lane), by kc, and by the update formula applied after
// each kc block. Job shapes only decide which thread computes an element and how packing is shared, never the
// arithmetic. Partial edge tiles run the same full-size kernel on a scratch tile, so an element at an edge gets
// the same operations as one inside. M == 1 and N == 1 go to GEMV kernels whose per-element order is likewise
// independent of how the outputs are split.
//
// Update after the k-block starting at pc:  beta' = (pc == 0 ? beta : 1)
//   beta' == 0:  c = alpha * acc            (C never read)
//   otherwise:   c = fma(alpha, acc, beta' * c)
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Gemm.h"
#include "qopt/Numerics/ThreadPool.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#define QOPT_GEMM_X86 1
#include <immintrin.h>
#else
#define QOPT_GEMM_X86 0
#endif

namespace qopt::num {

namespace {

constexpr int kMaxMR = 16;
constexpr int kMaxNR = 32;

// Packed A: per mr-row panel, kc steps of mr values (a[k*mr + i]). Packed B: per nr-column panel, kc steps of nr
// values (b[k*nr + j]). The kernel updates a full mr x nr tile of C (row stride ldc) with the formula above.
using MicroKernel = void (*)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, float alpha,
                             float beta);
// y[j*incy] = alpha * dot(x[0..K), mat[j*ld + 0..K)) (+ beta * y) for j in [0, n).
using GemvDotKernel = void (*)(int64_t n, int64_t K, float alpha, const float *x, const float *mat, int64_t ld,
                               float beta, float *y, int64_t incy);
// y[j*incy] = alpha * sum_k x[k] * mat[k*ld + j] (+ beta * y) for j in [0, n), n <= kAxpyBlock.
using GemvAxpyKernel = void (*)(int64_t n, int64_t K, float alpha, const float *x, const float *mat, int64_t ld,
                                float beta, float *y, int64_t incy);

// Packs `rows` row streams (src[r][0..kc)) into d[k*D + r], zero-filling r in [rows, D). See "Packing" below.
using PackStreams = void (*)(const float *const *src, int rows, int64_t kc, float *d, int D);

constexpr int64_t kAxpyBlock = 512; // columns per axpy block: the accumulators (2 KiB) stay in L1

struct KernelSet {
  const char *name;
  int mr, nr;
  int64_t mc, nb, kc;
  MicroKernel micro;
  GemvDotKernel dot;
  GemvAxpyKernel axpy;
  PackStreams packStreams;
};

void packStreamsScalar(const float *const *src, int rows, int64_t kc, float *d, int D);

//===----------------------------------------------------------------------===//
// Portable kernels. Plain loops over fixed-size arrays that the compiler vectorizes for the baseline ISA. They
// use separate multiply and add (no fma), which is what the baseline has; they are self-consistent, which is all
// determinism needs.
//===----------------------------------------------------------------------===//

constexpr int kGenMR = 4, kGenNR = 16;

void microGeneric(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, float alpha, float beta) {
  float acc[kGenMR][kGenNR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const float *bk = b + k * kGenNR;
    const float *ak = a + k * kGenMR;
    for (int i = 0; i < kGenMR; ++i) {
      float ai = ak[i];
      for (int j = 0; j < kGenNR; ++j) {
        float p = ai * bk[j];
        acc[i][j] = acc[i][j] + p;
      }
    }
  }
  for (int i = 0; i < kGenMR; ++i) {
    float *ci = c + i * ldc;
    if (beta == 0.0f) {
      for (int j = 0; j < kGenNR; ++j)
        ci[j] = alpha * acc[i][j];
    } else {
      for (int j = 0; j < kGenNR; ++j) {
        float p = alpha * acc[i][j];
        ci[j] = p + beta * ci[j];
      }
    }
  }
}

inline void storeGeneric(float *y, float alpha, float acc, float beta) {
  if (beta == 0.0f) {
    *y = alpha * acc;
  } else {
    float p = alpha * acc;
    *y = p + beta * *y;
  }
}

void dotGeneric(int64_t n, int64_t K, float alpha, const float *x, const float *mat, int64_t ld, float beta, float *y,
                int64_t incy) {
  constexpr int L = 16;
  for (int64_t j = 0; j < n; ++j) {
    const float *m = mat + j * ld;
    float acc[L] = {};
    int64_t k = 0;
    for (; k + L <= K; k += L)
      for (int l = 0; l < L; ++l) {
        float p = x[k + l] * m[k + l];
        acc[l] = acc[l] + p;
      }
    // Fixed pairwise tree over the lanes, then the tail in order.
    for (int w = L / 2; w >= 1; w /= 2)
      for (int l = 0; l < w; ++l)
        acc[l] = acc[l] + acc[l + w];
    float s = acc[0];
    for (; k < K; ++k) {
      float p = x[k] * m[k];
      s = s + p;
    }
    storeGeneric(y + j * incy, alpha, s, beta);
  }
}

void axpyGeneric(int64_t n, int64_t K, float alpha, const float *x, const float *mat, int64_t ld, float beta, float *y,
                 int64_t incy) {
  float acc[kAxpyBlock];
  for (int64_t j = 0; j < n; ++j)
    acc[j] = 0.0f;
  for (int64_t k = 0; k < K; ++k) {
    const float *row = mat + k * ld;
    float xk = x[k];
    for (int64_t j = 0; j < n; ++j) {
      float p = xk * row[j];
      acc[j] = acc[j] + p;
    }
  }
  for (int64_t j = 0; j < n; ++j)
    storeGeneric(y + j * incy, alpha, acc[j], beta);
}

#if QOPT_GEMM_X86
//===----------------------------------------------------------------------===//
// AVX2 + FMA kernels: 6x16 tile = 12 ymm accumulators + 2 B vectors + 1 broadcast.
//===----------------------------------------------------------------------===//

#define QOPT_AVX2 __attribute__((target("avx2,fma")))

QOPT_AVX2 void packStreamsAvx2(const float *const *src, int rows, int64_t kc, float *d, int D);

QOPT_AVX2 inline void storeFma(float *y, float alpha, float acc, float beta) {
  // Scalar twin of the vector update: same single-rounding fma, so tails match vector lanes bit for bit.
  *y = beta == 0.0f ? alpha * acc : std::fmaf(alpha, acc, beta * *y);
}

QOPT_AVX2 inline void updateRow8(float *c, __m256 acc, __m256 valpha, __m256 vbeta, bool readC) {
  if (!readC)
    _mm256_storeu_ps(c, _mm256_mul_ps(valpha, acc));
  else
    _mm256_storeu_ps(c, _mm256_fmadd_ps(valpha, acc, _mm256_mul_ps(vbeta, _mm256_loadu_ps(c))));
}

QOPT_AVX2 void microAvx2(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, float alpha, float beta) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 av;
    av = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
    a += 6;
    b += 16;
  }
  __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  bool readC = beta != 0.0f;
  updateRow8(c + 0 * ldc, c00, va, vb, readC);
  updateRow8(c + 0 * ldc + 8, c01, va, vb, readC);
  updateRow8(c + 1 * ldc, c10, va, vb, readC);
  updateRow8(c + 1 * ldc + 8, c11, va, vb, readC);
  updateRow8(c + 2 * ldc, c20, va, vb, readC);
  updateRow8(c + 2 * ldc + 8, c21, va, vb, readC);
  updateRow8(c + 3 * ldc, c30, va, vb, readC);
  updateRow8(c + 3 * ldc + 8, c31, va, vb, readC);
  updateRow8(c + 4 * ldc, c40, va, vb, readC);
  updateRow8(c + 4 * ldc + 8, c41, va, vb, readC);
  updateRow8(c + 5 * ldc, c50, va, vb, readC);
  updateRow8(c + 5 * ldc + 8, c51, va, vb, readC);
}

QOPT_AVX2 inline float hsum8(__m256 v) {
  // Fixed order: (lo + hi), then pairwise within 128 bits.
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// One row's dot product: 4 x 8 lanes over k in steps of 32, then steps of 8 into the first accumulator, then a
// fixed tree, then the scalar tail in order. dotAvx2 runs four rows at once (sharing the x loads) with exactly
// this per-row sequence, so a row gives the same bits in the 4-row loop or in the remainder loop.
QOPT_AVX2 void dotAvx2(int64_t n, int64_t K, float alpha, const float *x, const float *mat, int64_t ld, float beta,
                       float *y, int64_t incy) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float *m0 = mat + j * ld, *m1 = m0 + ld, *m2 = m1 + ld, *m3 = m2 + ld;
    __m256 a[4][4];
    for (int r = 0; r < 4; ++r)
      for (int u = 0; u < 4; ++u)
        a[r][u] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
      for (int u = 0; u < 4; ++u) {
        __m256 xv = _mm256_loadu_ps(x + k + 8 * u);
        a[0][u] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(m0 + k + 8 * u), a[0][u]);
        a[1][u] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(m1 + k + 8 * u), a[1][u]);
        a[2][u] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(m2 + k + 8 * u), a[2][u]);
        a[3][u] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(m3 + k + 8 * u), a[3][u]);
      }
    }
    for (; k + 8 <= K; k += 8) {
      __m256 xv = _mm256_loadu_ps(x + k);
      a[0][0] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(m0 + k), a[0][0]);
      a[1][0] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(m1 + k), a[1][0]);
      a[2][0] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(m2 + k), a[2][0]);
      a[3][0] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(m3 + k), a[3][0]);
    }
    const float *rows[4] = {m0, m1, m2, m3};
    for (int r = 0; r < 4; ++r) {
      __m256 t = _mm256_add_ps(_mm256_add_ps(a[r][0], a[r][1]), _mm256_add_ps(a[r][2], a[r][3]));
      float s = hsum8(t);
      for (int64_t kk = k; kk < K; ++kk)
        s = std::fmaf(x[kk], rows[r][kk], s);
      storeFma(y + (j + r) * incy, alpha, s, beta);
    }
  }
  for (; j < n; ++j) {
    const float *m0 = mat + j * ld;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(m0 + k), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k + 8), _mm256_loadu_ps(m0 + k + 8), a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k + 16), _mm256_loadu_ps(m0 + k + 16), a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k + 24), _mm256_loadu_ps(m0 + k + 24), a3);
    }
    for (; k + 8 <= K; k += 8)
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(m0 + k), a0);
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; k < K; ++k)
      s = std::fmaf(x[k], m0[k], s);
    storeFma(y + j * incy, alpha, s, beta);
  }
}

QOPT_AVX2 void axpyAvx2(int64_t n, int64_t K, float alpha, const float *x, const float *mat, int64_t ld, float beta,
                        float *y, int64_t incy) {
  alignas(32) float acc[kAxpyBlock];
  std::memset(acc, 0, sizeof(float) * static_cast<size_t>(n));
  int64_t nv = n & ~int64_t(7);
  int64_t k = 0;
  // Four rows per pass halve the accumulator traffic; the per-lane order is still k, k+1, k+2, k+3.
  for (; k + 4 <= K; k += 4) {
    const float *r0 = mat + k * ld, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
    __m256 x0 = _mm256_set1_ps(x[k]), x1 = _mm256_set1_ps(x[k + 1]);
    __m256 x2 = _mm256_set1_ps(x[k + 2]), x3 = _mm256_set1_ps(x[k + 3]);
    for (int64_t j = 0; j < nv; j += 8) {
      __m256 s = _mm256_load_ps(acc + j);
      s = _mm256_fmadd_ps(x0, _mm256_loadu_ps(r0 + j), s);
      s = _mm256_fmadd_ps(x1, _mm256_loadu_ps(r1 + j), s);
      s = _mm256_fmadd_ps(x2, _mm256_loadu_ps(r2 + j), s);
      s = _mm256_fmadd_ps(x3, _mm256_loadu_ps(r3 + j), s);
      _mm256_store_ps(acc + j, s);
    }
    for (int64_t j = nv; j < n; ++j) {
      float s = acc[j];
      s = std::fmaf(x[k], r0[j], s);
      s = std::fmaf(x[k + 1], r1[j], s);
      s = std::fmaf(x[k + 2], r2[j], s);
      s = std::fmaf(x[k + 3], r3[j], s);
      acc[j] = s;
    }
  }
  for (; k < K; ++k) {
    const float *r0 = mat + k * ld;
    __m256 x0 = _mm256_set1_ps(x[k]);
    for (int64_t j = 0; j < nv; j += 8)
      _mm256_store_ps(acc + j, _mm256_fmadd_ps(x0, _mm256_loadu_ps(r0 + j), _mm256_load_ps(acc + j)));
    for (int64_t j = nv; j < n; ++j)
      acc[j] = std::fmaf(x[k], r0[j], acc[j]);
  }
  for (int64_t j = 0; j < n; ++j)
    storeFma(y + j * incy, alpha, acc[j], beta);
}

//===----------------------------------------------------------------------===//
// AVX-512 kernels: 12x32 tile = 24 zmm accumulators + 2 B vectors (A values are broadcast from memory).
// Same per-element arithmetic shape as AVX2 (one fma per k per lane), so both agree with each other on the GEMM
// path; the GEMV dot differs in its lane split (16 vs 8 lanes) and hence in rounding.
//===----------------------------------------------------------------------===//

#define QOPT_AVX512 __attribute__((target("avx512f,avx2,fma")))

// The accumulator arrays below only stay in registers if their loops are fully unrolled.
#if defined(__clang__)
#define QOPT_UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define QOPT_UNROLL _Pragma("GCC unroll 32")
#else
#define QOPT_UNROLL
#endif

QOPT_AVX512 inline void updateRow16(float *c, __m512 acc, __m512 valpha, __m512 vbeta, bool readC) {
  if (!readC)
    _mm512_storeu_ps(c, _mm512_mul_ps(valpha, acc));
  else
    _mm512_storeu_ps(c, _mm512_fmadd_ps(valpha, acc, _mm512_mul_ps(vbeta, _mm512_loadu_ps(c))));
}

QOPT_AVX512 void microAvx512(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, float alpha,
                             float beta) {
  constexpr int MR = 12;
  __m512 acc0[MR], acc1[MR];
  QOPT_UNROLL
  for (int i = 0; i < MR; ++i) {
    acc0[i] = _mm512_setzero_ps();
    acc1[i] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
    __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
    QOPT_UNROLL
    for (int i = 0; i < MR; ++i) {
      __m512 av = _mm512_set1_ps(a[i]);
      acc0[i] = _mm512_fmadd_ps(av, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(av, b1, acc1[i]);
    }
    a += MR;
    b += 32;
  }
  __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  bool readC = beta != 0.0f;
  QOPT_UNROLL
  for (int i = 0; i < MR; ++i) {
    updateRow16(c + i * ldc, acc0[i], va, vb, readC);
    updateRow16(c + i * ldc + 16, acc1[i], va, vb, readC);
  }
}

QOPT_AVX512 inline void storeFma512(float *y, float alpha, float acc, float beta) {
  *y = beta == 0.0f ? alpha * acc : std::fmaf(alpha, acc, beta * *y);
}

QOPT_AVX512 inline float hsum16(__m512 v) {
  // A fixed pairwise tree through memory: portable across compilers (GCC's 512->256 extract intrinsics warn).
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  for (int w = 8; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l)
      t[l] += t[l + w];
  return t[0];
}

// Per row: 4 x 16 lanes over k in steps of 64, steps of 16 into the first accumulator, a fixed tree, the scalar
// tail. R rows at a time (R = 4, then 1..3 for the remainder) with the identical per-row sequence (see dotAvx2).
template <int R> QOPT_AVX512 void dotRowsAvx512(const float *x, const float *mat, int64_t ld, int64_t K, float *out) {
  __m512 a[R][4];
  for (int r = 0; r < R; ++r)
    for (int u = 0; u < 4; ++u)
      a[r][u] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 64 <= K; k += 64) {
    for (int u = 0; u < 4; ++u) {
      __m512 xv = _mm512_loadu_ps(x + k + 16 * u);
      for (int r = 0; r < R; ++r)
        a[r][u] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(mat + r * ld + k + 16 * u), a[r][u]);
    }
  }
  for (; k + 16 <= K; k += 16) {
    __m512 xv = _mm512_loadu_ps(x + k);
    for (int r = 0; r < R; ++r)
      a[r][0] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(mat + r * ld + k), a[r][0]);
  }
  for (int r = 0; r < R; ++r) {
    float s = hsum16(_mm512_add_ps(_mm512_add_ps(a[r][0], a[r][1]), _mm512_add_ps(a[r][2], a[r][3])));
    const float *m = mat + r * ld;
    for (int64_t kk = k; kk < K; ++kk)
      s = std::fmaf(x[kk], m[kk], s);
    out[r] = s;
  }
}

QOPT_AVX512 void dotAvx512(int64_t n, int64_t K, float alpha, const float *x, const float *mat, int64_t ld, float beta,
                           float *y, int64_t incy) {
  float s[4];
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    dotRowsAvx512<4>(x, mat + j * ld, ld, K, s);
    for (int r = 0; r < 4; ++r)
      storeFma512(y + (j + r) * incy, alpha, s[r], beta);
  }
  for (; j < n; ++j) {
    dotRowsAvx512<1>(x, mat + j * ld, ld, K, s);
    storeFma512(y + j * incy, alpha, s[0], beta);
  }
}

QOPT_AVX512 void axpyAvx512(int64_t n, int64_t K, float alpha, const float *x, const float *mat, int64_t ld, float beta,
                            float *y, int64_t incy) {
  alignas(64) float acc[kAxpyBlock];
  std::memset(acc, 0, sizeof(float) * static_cast<size_t>(n));
  int64_t nv = n & ~int64_t(15);
  int64_t k = 0;
  for (; k + 4 <= K; k += 4) {
    const float *r0 = mat + k * ld, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
    __m512 x0 = _mm512_set1_ps(x[k]), x1 = _mm512_set1_ps(x[k + 1]);
    __m512 x2 = _mm512_set1_ps(x[k + 2]), x3 = _mm512_set1_ps(x[k + 3]);
    for (int64_t j = 0; j < nv; j += 16) {
      __m512 s = _mm512_load_ps(acc + j);
      s = _mm512_fmadd_ps(x0, _mm512_loadu_ps(r0 + j), s);
      s = _mm512_fmadd_ps(x1, _mm512_loadu_ps(r1 + j), s);
      s = _mm512_fmadd_ps(x2, _mm512_loadu_ps(r2 + j), s);
      s = _mm512_fmadd_ps(x3, _mm512_loadu_ps(r3 + j), s);
      _mm512_store_ps(acc + j, s);
    }
    for (int64_t j = nv; j < n; ++j) {
      float s = acc[j];
      s = std::fmaf(x[k], r0[j], s);
      s = std::fmaf(x[k + 1], r1[j], s);
      s = std::fmaf(x[k + 2], r2[j], s);
      s = std::fmaf(x[k + 3], r3[j], s);
      acc[j] = s;
    }
  }
  for (; k < K; ++k) {
    const float *r0 = mat + k * ld;
    __m512 x0 = _mm512_set1_ps(x[k]);
    for (int64_t j = 0; j < nv; j += 16)
      _mm512_store_ps(acc + j, _mm512_fmadd_ps(x0, _mm512_loadu_ps(r0 + j), _mm512_load_ps(acc + j)));
    for (int64_t j = nv; j < n; ++j)
      acc[j] = std::fmaf(x[k], r0[j], acc[j]);
  }
  for (int64_t j = 0; j < n; ++j)
    storeFma512(y + j * incy, alpha, acc[j], beta);
}
#endif // QOPT_GEMM_X86

//===----------------------------------------------------------------------===//
// Dispatch
//===----------------------------------------------------------------------===//

// kc = 256 keeps a B micro-panel (256 x nr floats: 16-32 KiB) near L1 and an A block (mc x 256) in L2.
// clang-format off
const KernelSet kGeneric = {"generic", kGenMR, kGenNR, 144, 256, 256, microGeneric, dotGeneric, axpyGeneric,
                            packStreamsScalar};
// clang-format on
#if QOPT_GEMM_X86
const KernelSet kAvx2 = {"avx2", 6, 16, 144, 256, 256, microAvx2, dotAvx2, axpyAvx2, packStreamsAvx2};
const KernelSet kAvx512 = {"avx512", 12, 32, 144, 256, 256, microAvx512, dotAvx512, axpyAvx512, packStreamsAvx2};
#endif

const KernelSet &detectKernels() {
#if QOPT_GEMM_X86
  __builtin_cpu_init(); // needed if we run before the CPU model is initialized (static constructors)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return kAvx2;
#endif
  return kGeneric;
}

const KernelSet &detectedKernels() {
  static const KernelSet &detected = detectKernels();
  return detected;
}

std::atomic<const KernelSet *> selected{nullptr}; // null: the detected best

const KernelSet &kernels() {
  const KernelSet *ks = selected.load(std::memory_order_relaxed);
  return ks ? *ks : detectedKernels();
}

//===----------------------------------------------------------------------===//
// Per-thread scratch: packing buffers reused across calls so a decode loop does not allocate per GEMM.
//===----------------------------------------------------------------------===//

class Scratch {
public:
  ~Scratch() { std::free(ptr); }
  // Returns at least n floats, 64-byte aligned, or null when out of memory.
  float *get(size_t n) {
    if (n <= cap)
      return ptr;
    size_t bytes = ((n * sizeof(float)) + 63) & ~size_t(63);
    void *p = std::aligned_alloc(64, bytes);
    if (!p)
      return nullptr;
    std::free(ptr);
    ptr = static_cast<float *>(p);
    cap = bytes / sizeof(float);
    return ptr;
  }

private:
  float *ptr = nullptr;
  size_t cap = 0;
};

thread_local Scratch tlsPackA, tlsPackB, tlsVec;

//===----------------------------------------------------------------------===//
// Packing. Both operands reduce to two shapes of copy into a panel d[k*D + r] (D = mr or nr, r < rows <= D,
// zero padding for r in [rows, D)):
//   runs:    the r values of one k are contiguous in memory (A^T, or B)       -> one short copy per k
//   streams: each r is its own row, contiguous in k (A, or B^T as stored)    -> a transpose
//===----------------------------------------------------------------------===//

void packRuns(const float *src, int64_t ld, int rows, int64_t kc, float *d, int D) {
  for (int64_t k = 0; k < kc; ++k) {
    std::memcpy(d + k * D, src + k * ld, sizeof(float) * static_cast<size_t>(rows));
    for (int r = rows; r < D; ++r)
      d[k * D + r] = 0.0f;
  }
}

void packStreamsScalar(const float *const *src, int rows, int64_t kc, float *d, int D) {
  for (int64_t k = 0; k < kc; ++k) {
    int r = 0;
    for (; r < rows; ++r)
      d[k * D + r] = src[r][k];
    for (; r < D; ++r)
      d[k * D + r] = 0.0f;
  }
}

#if QOPT_GEMM_X86
// The same transpose with 8x8 and 4x4 register transposes (pure data movement, so results cannot change).
QOPT_AVX2 void packStreamsAvx2(const float *const *src, int rows, int64_t kc, float *d, int D) {
  int64_t k8 = kc & ~int64_t(7);
  int r = 0;
  for (; r + 8 <= rows; r += 8) {
    for (int64_t k = 0; k < k8; k += 8) {
      __m256 t0 = _mm256_loadu_ps(src[r + 0] + k), t1 = _mm256_loadu_ps(src[r + 1] + k);
      __m256 t2 = _mm256_loadu_ps(src[r + 2] + k), t3 = _mm256_loadu_ps(src[r + 3] + k);
      __m256 t4 = _mm256_loadu_ps(src[r + 4] + k), t5 = _mm256_loadu_ps(src[r + 5] + k);
      __m256 t6 = _mm256_loadu_ps(src[r + 6] + k), t7 = _mm256_loadu_ps(src[r + 7] + k);
      __m256 u0 = _mm256_unpacklo_ps(t0, t1), u1 = _mm256_unpackhi_ps(t0, t1);
      __m256 u2 = _mm256_unpacklo_ps(t2, t3), u3 = _mm256_unpackhi_ps(t2, t3);
      __m256 u4 = _mm256_unpacklo_ps(t4, t5), u5 = _mm256_unpackhi_ps(t4, t5);
      __m256 u6 = _mm256_unpacklo_ps(t6, t7), u7 = _mm256_unpackhi_ps(t6, t7);
      __m256 v0 = _mm256_shuffle_ps(u0, u2, 0x44), v1 = _mm256_shuffle_ps(u0, u2, 0xEE);
      __m256 v2 = _mm256_shuffle_ps(u1, u3, 0x44), v3 = _mm256_shuffle_ps(u1, u3, 0xEE);
      __m256 v4 = _mm256_shuffle_ps(u4, u6, 0x44), v5 = _mm256_shuffle_ps(u4, u6, 0xEE);
      __m256 v6 = _mm256_shuffle_ps(u5, u7, 0x44), v7 = _mm256_shuffle_ps(u5, u7, 0xEE);
      float *o = d + k * D + r;
      _mm256_storeu_ps(o + 0 * D, _mm256_permute2f128_ps(v0, v4, 0x20));
      _mm256_storeu_ps(o + 1 * D, _mm256_permute2f128_ps(v1, v5, 0x20));
      _mm256_storeu_ps(o + 2 * D, _mm256_permute2f128_ps(v2, v6, 0x20));
      _mm256_storeu_ps(o + 3 * D, _mm256_permute2f128_ps(v3, v7, 0x20));
      _mm256_storeu_ps(o + 4 * D, _mm256_permute2f128_ps(v0, v4, 0x31));
      _mm256_storeu_ps(o + 5 * D, _mm256_permute2f128_ps(v1, v5, 0x31));
      _mm256_storeu_ps(o + 6 * D, _mm256_permute2f128_ps(v2, v6, 0x31));
      _mm256_storeu_ps(o + 7 * D, _mm256_permute2f128_ps(v3, v7, 0x31));
    }
  }
  for (; r + 4 <= rows; r += 4) {
    for (int64_t k = 0; k < k8; k += 4) {
      __m128 t0 = _mm_loadu_ps(src[r + 0] + k), t1 = _mm_loadu_ps(src[r + 1] + k);
      __m128 t2 = _mm_loadu_ps(src[r + 2] + k), t3 = _mm_loadu_ps(src[r + 3] + k);
      _MM_TRANSPOSE4_PS(t0, t1, t2, t3);
      float *o = d + k * D + r;
      _mm_storeu_ps(o + 0 * D, t0);
      _mm_storeu_ps(o + 1 * D, t1);
      _mm_storeu_ps(o + 2 * D, t2);
      _mm_storeu_ps(o + 3 * D, t3);
    }
  }
  for (; r < rows; ++r)
    for (int64_t k = 0; k < k8; ++k)
      d[k * D + r] = src[r][k];
  for (int64_t k = 0; k < k8; ++k)
    for (int rr = rows; rr < D; ++rr)
      d[k * D + rr] = 0.0f;
  if (k8 < kc) {
    const float *tail[kMaxNR > kMaxMR ? kMaxNR : kMaxMR];
    for (int i = 0; i < rows; ++i)
      tail[i] = src[i] + k8;
    packStreamsScalar(tail, rows, kc - k8, d + k8 * D, D);
  }
}
#endif

// op(A) rows [i0, i0+mc), columns [p0, p0+kc) -> panels of mr rows, zero-padded to a multiple of mr.
void packA(const KernelSet &ks, bool transA, const float *A, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
           int64_t kc, float *dst) {
  const int mr = ks.mr;
  PackStreams streams = ks.packStreams;
  for (int64_t ip = 0; ip < mc; ip += mr) {
    int rows = static_cast<int>(std::min<int64_t>(mr, mc - ip));
    float *d = dst + ip * kc;
    if (transA) { // opA[i][k] = A[k*lda + i]
      packRuns(A + p0 * lda + i0 + ip, lda, rows, kc, d, mr);
    } else { // opA[i][k] = A[i*lda + k]
      const float *src[kMaxMR];
      for (int i = 0; i < rows; ++i)
        src[i] = A + (i0 + ip + i) * lda + p0;
      streams(src, rows, kc, d, mr);
    }
  }
}

// op(B) rows [p0, p0+kc), columns [j0, j0+nc) -> panels of nr columns, zero-padded to a multiple of nr.
void packB(const KernelSet &ks, bool transB, const float *B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
           int64_t nc, float *dst) {
  const int nr = ks.nr;
  PackStreams streams = ks.packStreams;
  for (int64_t jp = 0; jp < nc; jp += nr) {
    int cols = static_cast<int>(std::min<int64_t>(nr, nc - jp));
    float *d = dst + jp * kc;
    if (!transB) { // opB[k][j] = B[k*ldb + j]
      packRuns(B + p0 * ldb + j0 + jp, ldb, cols, kc, d, nr);
    } else { // opB[k][j] = B[j*ldb + k]
      const float *src[kMaxNR];
      for (int j = 0; j < cols; ++j)
        src[j] = B + (j0 + jp + j) * ldb + p0;
      streams(src, cols, kc, d, nr);
    }
  }
}

struct GemmArgs {
  bool transA, transB;
  int64_t M, N, K;
  float alpha;
  const float *A;
  int64_t lda;
  const float *B;
  int64_t ldb;
  float beta;
  float *C;
  int64_t ldc;
};

// Computes the block C[i0:i0+mc, j0:j0+nc] completely (all of K). Returns false only on allocation failure.
bool gemmBlock(const KernelSet &ks, const GemmArgs &g, int64_t i0, int64_t mc, int64_t j0, int64_t nc) {
  const int mr = ks.mr, nr = ks.nr;
  int64_t mcPad = (mc + mr - 1) / mr * mr;
  int64_t ncPad = (nc + nr - 1) / nr * nr;
  int64_t kcMax = std::min(ks.kc, g.K);
  float *pa = tlsPackA.get(static_cast<size_t>(mcPad * kcMax));
  float *pb = tlsPackB.get(static_cast<size_t>(ncPad * kcMax));
  if (!pa || !pb)
    return false;
  // Zeroed once so the kernel never reads indeterminate values in the unused part of an edge tile.
  alignas(64) float tile[kMaxMR * kMaxNR] = {};

  for (int64_t p0 = 0; p0 < g.K; p0 += ks.kc) {
    int64_t kc = std::min(ks.kc, g.K - p0);
    float beta = p0 == 0 ? g.beta : 1.0f;
    packB(ks, g.transB, g.B, g.ldb, p0, kc, j0, nc, pb);
    packA(ks, g.transA, g.A, g.lda, i0, mc, p0, kc, pa);
    for (int64_t jr = 0; jr < nc; jr += nr) {
      int64_t cols = std::min<int64_t>(nr, nc - jr);
      const float *bp = pb + jr * kc;
      for (int64_t ir = 0; ir < mc; ir += mr) {
        int64_t rows = std::min<int64_t>(mr, mc - ir);
        const float *ap = pa + ir * kc;
        float *c = g.C + (i0 + ir) * g.ldc + (j0 + jr);
        if (rows == mr && cols == nr) {
          ks.micro(kc, ap, bp, c, g.ldc, g.alpha, beta);
          continue;
        }
        // Edge tile: run the same full kernel on a scratch tile so edge elements get identical arithmetic.
        if (beta != 0.0f) {
          for (int64_t i = 0; i < rows; ++i)
            std::memcpy(tile + i * nr, c + i * g.ldc, sizeof(float) * static_cast<size_t>(cols));
        }
        ks.micro(kc, ap, bp, tile, nr, g.alpha, beta);
        for (int64_t i = 0; i < rows; ++i)
          std::memcpy(c + i * g.ldc, tile + i * nr, sizeof(float) * static_cast<size_t>(cols));
      }
    }
  }
  return true;
}

// Runs items [0, n) on the pool, each thread taking the next unclaimed item. Which thread computes an item then
// depends on timing, which is harmless (an item's arithmetic does not depend on who runs it) and keeps all cores
// busy when one of them is shared with another process, where a static split would wait for the slowest.
template <typename F> void runDynamic(ThreadPool &pool, int64_t n, const F &item) {
  std::atomic<int64_t> next{0};
  pool.parallelFor(std::min<int64_t>(n, pool.size()), [&](int64_t, int64_t) {
    for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;)
      item(i, i + 1);
  });
}

// Work below this many multiply-adds runs on the calling thread: waking workers costs a few microseconds.
constexpr int64_t kMinParallelWork = 1 << 15;

bool gemmBlocked(const KernelSet &ks, const GemmArgs &g, ThreadPool *pool) {
  int threads = pool ? pool->size() : 1;
  double work = double(g.M) * double(g.N) * double(g.K);
  if (work < double(kMinParallelWork))
    threads = 1;
  // Job grid. Shrinking the jobs to occupy every thread only changes who computes what, never the arithmetic.
  int64_t mc = ks.mc, nb = ks.nb;
  auto ceilDiv = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  int64_t mBlocks = ceilDiv(g.M, mc), nBlocks = ceilDiv(g.N, nb);
  if (threads > 1 && mBlocks * nBlocks < 2 * threads) {
    // Prefer splitting N (B panels are re-packed per M block, A per N block; N splits keep A packing cheap).
    int64_t wantN = ceilDiv(2 * threads, mBlocks);
    nb = std::max<int64_t>(ks.nr, ceilDiv(ceilDiv(g.N, wantN), ks.nr) * ks.nr);
    nBlocks = ceilDiv(g.N, nb);
    if (mBlocks * nBlocks < 2 * threads) {
      int64_t wantM = ceilDiv(2 * threads, nBlocks);
      mc = std::max<int64_t>(ks.mr, ceilDiv(ceilDiv(g.M, wantM), ks.mr) * ks.mr);
      mBlocks = ceilDiv(g.M, mc);
    }
  }
  int64_t jobs = mBlocks * nBlocks;
  std::atomic<bool> ok{true};
  auto runJobs = [&](int64_t begin, int64_t end) {
    for (int64_t job = begin; job < end; ++job) {
      // N-major job order: jobs claimed back to back mostly share B columns.
      int64_t nbI = job / mBlocks, mbI = job % mBlocks;
      int64_t i0 = mbI * mc, j0 = nbI * nb;
      if (!gemmBlock(ks, g, i0, std::min(mc, g.M - i0), j0, std::min(nb, g.N - j0)))
        ok.store(false, std::memory_order_relaxed);
    }
  };
  if (threads > 1 && jobs > 1)
    runDynamic(*pool, jobs, runJobs);
  else
    runJobs(0, jobs);
  return ok.load();
}

// y[j*incy] for j in [0, n): GEMV in dot form (mat is n x K, row stride ld) or axpy form (mat is K x n).
bool gemv(const KernelSet &ks, bool dotForm, int64_t n, int64_t K, float alpha, const float *x, int64_t incx,
          const float *mat, int64_t ld, float beta, float *y, int64_t incy, ThreadPool *pool) {
  if (incx != 1) {
    float *buf = tlsVec.get(static_cast<size_t>(K));
    if (!buf)
      return false;
    for (int64_t k = 0; k < K; ++k)
      buf[k] = x[k * incx];
    x = buf;
  }
  // Blocks of 64 outputs (axpy: kAxpyBlock) are the unit of work; any split gives the same bits.
  const int64_t unit = dotForm ? 64 : kAxpyBlock;
  int64_t units = (n + unit - 1) / unit;
  auto run = [&](int64_t ub, int64_t ue) {
    for (int64_t u = ub; u < ue; ++u) {
      int64_t j0 = u * unit, len = std::min(unit, n - j0);
      if (dotForm)
        ks.dot(len, K, alpha, x, mat + j0 * ld, ld, beta, y + j0 * incy, incy);
      else
        ks.axpy(len, K, alpha, x, mat + j0, ld, beta, y + j0 * incy, incy);
    }
  };
  int threads = pool ? pool->size() : 1;
  if (threads > 1 && units > 1 && double(n) * double(K) >= double(kMinParallelWork))
    runDynamic(*pool, units, run);
  else
    run(0, units);
  return true;
}

bool validate(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
              int64_t ldb, const float *C, int64_t ldc) {
  if (M < 0 || N < 0 || K < 0)
    return false;
  if (M == 0 || N == 0)
    return true;
  if (!C || ldc < N)
    return false;
  if (K == 0)
    return true;
  if (!A || !B)
    return false;
  if (lda < (transA ? M : K) || ldb < (transB ? K : N))
    return false;
  return true;
}

// C = beta * C without reading C when beta == 0 (alpha == 0 or K == 0).
void scaleC(int64_t M, int64_t N, float beta, float *C, int64_t ldc) {
  if (beta == 1.0f)
    return;
  for (int64_t i = 0; i < M; ++i) {
    float *c = C + i * ldc;
    if (beta == 0.0f)
      std::fill(c, c + N, 0.0f);
    else
      for (int64_t j = 0; j < N; ++j)
        c[j] *= beta;
  }
}

bool sgemmImpl(const KernelSet &ks, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
               ThreadPool *pool) {
  if (M == 0 || N == 0)
    return true;
  if (alpha == 0.0f || K == 0) {
    scaleC(M, N, beta, C, ldc);
    return true;
  }
  if (M == 1) {
    // Decode: one activation row times a weight matrix. x = op(A) row 0.
    const float *x = A;
    int64_t incx = transA ? lda : 1;
    if (transB) // op(B)[k][j] = B[j*ldb + k]: one dot product per output
      return gemv(ks, true, N, K, alpha, x, incx, B, ldb, beta, C, 1, pool);
    return gemv(ks, false, N, K, alpha, x, incx, B, ldb, beta, C, 1, pool);
  }
  if (N == 1) {
    // C column = op(A) * x with x = op(B) column 0.
    const float *x = B;
    int64_t incx = transB ? 1 : ldb;
    if (!transA) // op(A)[i][k] = A[i*lda + k]
      return gemv(ks, true, M, K, alpha, x, incx, A, lda, beta, C, ldc, pool);
    return gemv(ks, false, M, K, alpha, x, incx, A, lda, beta, C, ldc, pool);
  }
  GemmArgs g{transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc};
  return gemmBlocked(ks, g, pool);
}

} // namespace

bool sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
           const float *B, int64_t ldb, float beta, float *C, int64_t ldc, ThreadPool *pool) {
  if (!validate(transA, transB, M, N, K, A, lda, B, ldb, C, ldc))
    return false;
  return sgemmImpl(kernels(), transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, pool);
}

bool sgemmStridedBatched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                         int64_t lda, int64_t strideA, const float *B, int64_t ldb, int64_t strideB, float beta,
                         float *C, int64_t ldc, int64_t strideC, int64_t batchCount, ThreadPool *pool) {
  if (batchCount < 0 || !validate(transA, transB, M, N, K, A, lda, B, ldb, C, ldc))
    return false;
  if (batchCount == 0 || M == 0 || N == 0)
    return true;
  const KernelSet &ks = kernels();
  auto one = [&](int64_t b, ThreadPool *p) {
    return sgemmImpl(ks, transA, transB, M, N, K, alpha, A + b * strideA, lda, B + b * strideB, ldb, beta,
                     C + b * strideC, ldc, p);
  };
  int threads = pool ? pool->size() : 1;
  // Attention-sized problems (many small heads) parallelize over the batch; big ones inside each product. The
  // per-element arithmetic is the same either way.
  bool overBatch = threads > 1 && batchCount >= threads &&
                   double(M) * double(N) * double(K) < double(ks.mc) * double(ks.nb) * double(ks.kc) * threads;
  if (!overBatch) {
    bool ok = true;
    for (int64_t b = 0; b < batchCount; ++b)
      ok = one(b, pool) && ok;
    return ok;
  }
  std::atomic<bool> ok{true};
  runDynamic(*pool, batchCount, [&](int64_t b, int64_t) {
    if (!one(b, nullptr))
      ok.store(false, std::memory_order_relaxed);
  });
  return ok.load();
}

const char *sgemmKernelName() { return kernels().name; }

bool sgemmSelectKernel(const char *name) {
  if (!name || std::strcmp(name, "auto") == 0) {
    selected.store(nullptr, std::memory_order_relaxed);
    return true;
  }
  const KernelSet *want = nullptr;
  if (std::strcmp(name, "generic") == 0)
    want = &kGeneric;
#if QOPT_GEMM_X86
  const KernelSet &best = detectedKernels();
  if (std::strcmp(name, "avx2") == 0 && (&best == &kAvx2 || &best == &kAvx512))
    want = &kAvx2;
  if (std::strcmp(name, "avx512") == 0 && &best == &kAvx512)
    want = &kAvx512;
#endif
  if (!want)
    return false;
  selected.store(want, std::memory_order_relaxed);
  return true;
}

} // namespace qopt::num
