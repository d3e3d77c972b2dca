//===- GemmBench.cpp - GFLOP/s of qopt::num::sgemm against a naive loop ---===//
//
// Standalone micro-benchmark: prints the best-of-N GFLOP/s for a few LLM-relevant shapes with 1 and 2 threads
// and for a naive triple loop, so regressions in the packed kernels are visible.
// Usage: GemmBench [maxThreads [kernel]]   (kernel: auto, generic, avx2, avx512)
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Gemm.h"
#include "qopt/Numerics/ThreadPool.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

using namespace qopt::num;

namespace {

double seconds() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void naive(bool transB, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      float s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += A[i * K + k] * (transB ? B[j * K + k] : B[k * N + j]);
      C[i * N + j] = s;
    }
}

// Best time over repetitions filling at least minTime seconds.
template <typename F> double bestTime(F &&f, double minTime) {
  double best = 1e30, start = seconds();
  int reps = 0;
  do {
    double t0 = seconds();
    f();
    best = std::min(best, seconds() - t0);
    ++reps;
  } while (seconds() - start < minTime || reps < 3);
  return best;
}

} // namespace

int main(int argc, char **argv) {
  int maxThreads = argc > 1 ? std::atoi(argv[1]) : 2;
  if (argc > 2 && !sgemmSelectKernel(argv[2])) {
    std::fprintf(stderr, "kernel %s is not available on this CPU\n", argv[2]);
    return 1;
  }
  std::printf("kernel: %s\n", sgemmKernelName());
  struct Shape {
    int64_t M, N, K;
    bool transB;
  } shapes[] = {{512, 512, 512, false},
                {512, 512, 512, true},
                {1, 4096, 4096, true},
                {1, 4096, 4096, false},
                {64, 4096, 4096, true}};
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (const Shape &s : shapes) {
    std::vector<float> A(s.M * s.K), B(s.K * s.N), C(s.M * s.N);
    for (float &v : A)
      v = dist(rng);
    for (float &v : B)
      v = dist(rng);
    double flops = 2.0 * s.M * s.N * s.K;
    std::printf("M=%lld N=%lld K=%lld transB=%d:", (long long)s.M, (long long)s.N, (long long)s.K, s.transB);
    if (s.M * s.N * s.K <= 512LL * 512 * 512 || s.M == 1) {
      double t = bestTime([&] { naive(s.transB, s.M, s.N, s.K, A.data(), B.data(), C.data()); }, 0.5);
      std::printf("  naive %.2f", flops / t * 1e-9);
    }
    for (int th = 1; th <= maxThreads; ++th) {
      ThreadPool pool(th);
      double t = bestTime(
          [&] {
            sgemm(false, s.transB, s.M, s.N, s.K, 1.0f, A.data(), s.K, B.data(), s.transB ? s.K : s.N, 0.0f, C.data(),
                  s.N, &pool);
          },
          1.0);
      std::printf("  %dT %.2f", th, flops / t * 1e-9);
    }
    std::printf("  GFLOP/s\n");
  }
  return 0;
}
