//===- Blas.h - cuBLASLt, opened with dlopen, for products of many rows ----===//
//
// The generated kernels stream the weights once per row tile on CUDA cores: right for one row (decode), far from
// the tensor cores' throughput when a prompt brings hundreds of rows. For those the CUDA backend hands the product
// to cuBLASLt (float16 operands, or FP8 with per-row and per-channel scales: float32 accumulation and result; int8
// operands: int32 sums), opened at run time like the driver, so qrt still links no CUDA library and runs the
// generated kernels where cuBLASLt is missing.
//
// QRT_CUBLASLT chooses: unset, the library found on the usual paths (libcublasLt.so.13, .so.12, then under
// /usr/local/cuda/lib64), else the generated kernels; a path, that file; `off`, never; `require`, an error at
// session start when it cannot be opened.
//
//===----------------------------------------------------------------------===//
#ifndef QRT_CUDA_BLAS_H
#define QRT_CUDA_BLAS_H

#include "cuda/Driver.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>

namespace qrt::cuda {

struct BlasApi; // the library's entry points (Blas.cpp)

class Gemm {
public:
  // cuBLASLt on the current context, or null: with `error` set when it had to open (`require`, or a library that
  // fails to start), with `error` empty when it is simply absent or turned off.
  static std::unique_ptr<Gemm> open(std::string &error);
  ~Gemm();

  // y[m, j] = sum_k x[m, k] * w[j, k] for m < M, j < N: x float16 [M, K] and w float16 [N, K] (`bf16`: both
  // bfloat16), row-major; y float32 with rows ldy floats apart. Enqueued on `stream`; `workspace` holds
  // kWorkspaceBytes.
  bool run(const void *w, const void *x, float *y, int64_t M, int64_t N, int64_t K, int64_t ldy, bool bf16,
           CUstream stream, void *workspace, std::string &error);

  // The same with FP8 E4M3 operands on the FP8 tensor cores (sm_89+): w [N, K] and x [M, K] codes, row-major, and
  // the product of row m and channel j scaled by xScales[m] * wScales[j] (cuBLASLt's outer-vector scales), float32
  // accumulation. False with `error` empty where the library has no such algorithm (an older cuBLASLt, a GPU
  // without FP8 tensor cores, K not a multiple of 16): the caller runs its own kernel.
  bool runFp8(const void *w, const float *wScales, const void *x, const float *xScales, float *y, int64_t M,
              int64_t N, int64_t K, int64_t ldy, CUstream stream, void *workspace, std::string &error);

  // y[m, j] = sum_k x[m, k] * w[j, k] exactly, in int32, for int8 w [N, K] and x [M, K] (row-major; IMMA tensor
  // cores), y's rows ldy apart. False with `error` empty where the library has no such algorithm (K or ldy not a
  // multiple of 4, or none for this GPU or shape): the caller runs its own kernel. |sum| < 2^31 needs K < 133144.
  bool runInt8(const void *w, const void *x, int32_t *y, int64_t M, int64_t N, int64_t K, int64_t ldy,
               CUstream stream, void *workspace, std::string &error);

  static constexpr size_t kWorkspaceBytes = 32 << 20;
  // "cuBLASLt 130100" (the library's version number).
  std::string describe() const;

private:
  Gemm() = default;
  struct Plan;
  enum class Operands { Half, BFloat16, Fp8, Int8 };
  // A plan for float16 (or bfloat16) operands, FP8 E4M3 ones with these scale vectors (weights', x's), or int8
  // ones; null with `error` set when it cannot be made, or for FP8 and int8 with `error` empty when the library
  // refuses it (once asked, remembered).
  const Plan *plan(int64_t M, int64_t N, int64_t K, int64_t ldy, unsigned alignment, Operands kind,
                   const float *const (&fp8Scales)[2], std::string &error);

  const BlasApi *api = nullptr;
  void *handle = nullptr;
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, unsigned, int>, std::unique_ptr<Plan>> plans;
};

} // namespace qrt::cuda

#endif // QRT_CUDA_BLAS_H
