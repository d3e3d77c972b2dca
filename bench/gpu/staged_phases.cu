// The phase timer of qGemvStaged (bench/gpu/staged_phases.py builds and runs it): 16 rows of x, int4 g128 weights
// with float16 scales and zero points in the tile layout, K = STAGED_K and N = STAGED_N, under four layouts (tiles a
// warp x 16 warps x slices). kernels_timed.cuh is kernels.cuh with QOPT_PHASE(n) marks in qGemvStaged. Weights
// cycle over 9 copies (about 270 MB: each launch reads its weights from DRAM); after 30 launches one more is timed
// by events and by the blocks' timestamps.
#include <algorithm>
#include <cstdio>
#include <vector>
#include <cuda_runtime.h>
constexpr int kMaxBlocks = 4096, kPhases = 5;
__device__ unsigned long long qPhaseTimes[kMaxBlocks * kPhases];
#define QOPT_PHASE(n)                                                                                              \
  if (threadIdx.x == 0) {                                                                                          \
    unsigned long long t_;                                                                                         \
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t_));                                                         \
    const unsigned b_ = blockIdx.x + gridDim.x * blockIdx.y;                                                       \
    if (b_ < kMaxBlocks)                                                                                           \
      qPhaseTimes[b_ * kPhases + (n)] = t_;                                                                        \
  }
#include "prelude.cuh"
#include "kernels_timed.cuh"
#define STAGED_KERNEL(NAME, RT, KS)                                                                                \
  extern "C" __global__ void __launch_bounds__(512, 1) QOPT_CLUSTER_Y(KS) NAME(const QParams p) {                   \
    const QSplits<1> splits = {{STAGED_N}};                                                                        \
    qGemvStaged<4, 2, 1, 4, true, false, true, -1, 0, 0, 0, RT, KS, 2, 1, 1>(p, splits, 128LL);                    \
  }
STAGED_KERNEL(stagedT1S6, 1, 6)
STAGED_KERNEL(stagedT2S8, 2, 8)
STAGED_KERNEL(stagedT2S4, 2, 4)
STAGED_KERNEL(stagedT1S2, 1, 2)

static void operand(QTensor &t, void *data, long long rows, long long cols) {
  t = {};
  t.data = data;
  t.shape[0] = rows, t.shape[1] = cols;
  t.rank = 2;
}

static void run(const char *name, void (*kernel)(const QParams), int rt, int ks) {
  const long long M = 16, K = STAGED_K, N = STAGED_N, G = K / 128, copies = 9;
  const long long chunks = (K + 127) / 128, slice = (chunks + ks - 1) / ks;
  // x's fragments (planes of 16 rows x 4 lanes' 8 bytes, padded by 32 bytes where the kernel pads them), the rings,
  // the rows' sums of squares: the most either layout of the planes takes.
  const size_t shared = slice * 8 * (16 * 4 + 4) * 8 + 16 * 2 * rt * 1024 + 64;
  const int columns = static_cast<int>((N + 256 * rt - 1) / (256 * rt)), blocks = columns * ks;
  if (const cudaError_t e =
          cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared))) {
    std::printf("%s (K=%lld N=%lld): %zu bytes of shared memory: %s\n", name, K, N, shared, cudaGetErrorString(e));
    cudaGetLastError();
    return;
  }
  float *x, *out;
  unsigned char *w, *z;
  unsigned short *s;
  int *status;
  cudaMalloc(&x, M * K * 4), cudaMalloc(&out, M * N * 4), cudaMalloc(&status, 4);
  cudaMalloc(&w, copies * N * K / 2), cudaMalloc(&z, copies * N * G), cudaMalloc(&s, copies * N * G * 2);
  cudaMemset(x, 0, M * K * 4), cudaMemset(w, 0x37, copies * N * K / 2), cudaMemset(z, 8, copies * N * G);
  cudaMemset(s, 0x30, copies * N * G * 2); // float16 0x3030
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0), cudaEventCreate(&e1);
  for (int i = 0; i <= 30; ++i) {
    QParams p = {};
    const long long c = i % copies;
    operand(p.t[0], x, M, K);
    operand(p.t[1], w + c * N * K / 2, N, K / 2);
    operand(p.t[2], s + c * N * G, N, G);
    operand(p.t[3], z + c * N * G, N, G);
    operand(p.t[4], out, M, N);
    p.status = status;
    if (i == 30)
      cudaEventRecord(e0);
    kernel<<<dim3(columns, ks), 512, shared>>>(p);
    if (i == 30)
      cudaEventRecord(e1);
  }
  const cudaError_t err = cudaDeviceSynchronize();
  float ms = 0.0f;
  cudaEventElapsedTime(&ms, e0, e1);
  std::vector<unsigned long long> t(static_cast<size_t>(std::min(blocks, kMaxBlocks)) * kPhases);
  cudaMemcpyFromSymbol(t.data(), qPhaseTimes, t.size() * sizeof(t[0]));
  const int timed = std::min(blocks, kMaxBlocks);
  unsigned long long first = ~0ull, last = 0;
  for (int b = 0; b < timed; ++b)
    first = std::min(first, t[b * kPhases]), last = std::max(last, t[b * kPhases + 4]);
  std::printf("%s (K=%lld N=%lld, %d blocks, %zu B shared): %s, event %.2f us, first start to last end %.2f us\n",
              name, K, N, blocks, shared, cudaGetErrorString(err), ms * 1000.0f, (last - first) / 1000.0);
  const char *phase[kPhases] = {"start (after the first)", "x split", "loop (warp 0)", "to the cluster barrier",
                                "reduction, store, barrier"};
  for (int ph = 0; ph < kPhases; ++ph) {
    std::vector<double> v;
    for (int b = 0; b < timed; ++b)
      v.push_back((t[b * kPhases + ph] - (ph ? t[b * kPhases + ph - 1] : first)) / 1000.0);
    std::sort(v.begin(), v.end());
    std::printf("  %-27s min %6.2f  median %6.2f  max %6.2f us\n", phase[ph], v.front(), v[v.size() / 2], v.back());
  }
  cudaFree(x), cudaFree(out), cudaFree(w), cudaFree(z), cudaFree(s), cudaFree(status);
}

int main() {
  run("1 tile x 16 warps x 6 slices", stagedT1S6, 1, 6);
  run("2 tiles x 16 warps x 8 slices", stagedT2S8, 2, 8);
  run("2 tiles x 16 warps x 4 slices", stagedT2S4, 2, 4);
  run("1 tile x 16 warps x 2 slices", stagedT1S2, 1, 2);
  return 0;
}
