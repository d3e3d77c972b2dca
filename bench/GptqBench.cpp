//===- GptqBench.cpp - seconds of qopt::num::quant::quantizeGptq per layer -===//
//
// Standalone micro-benchmark: GPTQ (int4, group 128) of a random layer W [K, N] with a positive-definite Hessian
// H = X^T X / rows from correlated random inputs (every 17th channel an outlier), as qopt-gptq calls it. Prints the
// seconds of each call and a checksum of the codes and scales, so a rewrite can be checked for the same result.
// Usage: qopt-gptq-bench [K N [act-order]]   (default: the LLM shapes 1024 x 2816, 2816 x 1024 and 4096 x 1024)
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Gemm.h"
#include "qopt/Numerics/QuantFormat.h"
#include "qopt/Numerics/ThreadPool.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

using namespace qopt::num;

namespace {

void run(int64_t K, int64_t N, bool actOrder) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(K * N));
  for (float &v : w)
    v = 0.02f * normal(rng);
  const int64_t rows = K / 2;
  std::vector<float> x(static_cast<size_t>(rows * K));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < K; ++k)
      x[r * K + k] = normal(rng) * (k % 17 == 0 ? 6.0f : 1.0f) + (k > 0 ? 0.3f * x[r * K + k - 1] : 0.0f);
  std::vector<float> h(static_cast<size_t>(K * K));
  sgemm(true, false, K, K, rows, 1.0f / static_cast<float>(rows), x.data(), K, x.data(), K, 0.0f, h.data(), K,
        &defaultThreadPool());
  quant::GptqOptions opt;
  opt.actOrder = actOrder;
  quant::QuantizedWeight q;
  std::string error;
  const auto t0 = std::chrono::steady_clock::now();
  const bool ok = quant::quantizeGptq(w.data(), h.data(), K, N, 4, 128, false, opt, q, error);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint64_t sum = 0;
  for (uint8_t b : q.data)
    sum = sum * 1099511628211ull + b;
  for (float f : q.scales)
    sum = sum * 1099511628211ull + static_cast<uint64_t>(f * 1e9f);
  std::printf("K %6lld N %6lld act-order %d: %8.3f s  %s  checksum %016llx\n", static_cast<long long>(K),
              static_cast<long long>(N), actOrder ? 1 : 0, s, ok ? "ok" : error.c_str(),
              static_cast<unsigned long long>(sum));
}

} // namespace

int main(int argc, char **argv) {
  std::printf("threads %d\n", defaultThreadPool().size());
  if (argc >= 3) {
    run(std::atoll(argv[1]), std::atoll(argv[2]), argc > 3 && std::atoi(argv[3]) != 0);
    return 0;
  }
  run(1024, 2816, false);
  run(1024, 512, true);
  run(2816, 1024, false);
  run(4096, 1024, false);
  return 0;
}
