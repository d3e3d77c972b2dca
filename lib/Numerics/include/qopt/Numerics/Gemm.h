//===- Gemm.h - fp32 matrix multiply for the CPU kernels -------------------===//
//
// The MatMul/Gemm/attention kernels of the CPU backend all land here. Matrices are row-major with leading
// dimensions in elements, as in CBLAS with CblasRowMajor:
//
//   C[M x N] = alpha * op(A)[M x K] * op(B)[K x N] + beta * C
//
// op(A) is A (M x K, lda >= K) or, with transA, A^T where A is K x M (lda >= M); likewise for B.
//
// Determinism: for a given shape and CPU, every output element is computed by the same sequence of floating
// point operations whatever the thread count or pool, so results are bitwise reproducible across 1..N threads.
// Kernel families may differ in the last bits: the AVX2 and AVX-512 packed paths agree bitwise, but their GEMV
// (M == 1 or N == 1) reductions and the portable fallback (no fma) round differently.
//
// beta == 0 never reads C (NaN/Inf garbage in C is ignored). alpha == 0 or K == 0 never reads A or B.
// Negative dimensions, leading dimensions too small for the shape, or a null pointer that would be read make the
// call do nothing and return false (the only other failure is running out of memory for packing buffers).
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_NUMERICS_GEMM_H
#define QOPT_NUMERICS_GEMM_H

#include <cstdint>

namespace qopt::num {

class ThreadPool;

// pool == nullptr runs on the calling thread only (pass &defaultThreadPool() for the shared pool).
bool sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
           const float *B, int64_t ldb, float beta, float *C, int64_t ldc, ThreadPool *pool = nullptr);

// batchCount independent products; matrix b uses A + b*strideA, B + b*strideB, C + b*strideC. A stride of 0
// broadcasts that operand over the batch (e.g. one K matrix shared by all heads). C strides must keep the outputs
// disjoint for the threaded path to be meaningful; that is the caller's contract, as in cuBLAS.
bool sgemmStridedBatched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                         int64_t lda, int64_t strideA, const float *B, int64_t ldb, int64_t strideB, float beta,
                         float *C, int64_t ldc, int64_t strideC, int64_t batchCount, ThreadPool *pool = nullptr);

// Which micro-kernel sgemm dispatches to on this CPU: "avx512", "avx2" or "generic". For logs and benchmarks.
const char *sgemmKernelName();

// Selects the kernel family by name ("generic", "avx2", "avx512"), or restores runtime dispatch with "auto" or
// null. Returns false, changing nothing, for a name this CPU cannot run. Lets tests and benchmarks cover every
// path on one machine; do not call it while another thread is inside sgemm.
bool sgemmSelectKernel(const char *name);

} // namespace qopt::num

#endif // QOPT_NUMERICS_GEMM_H
