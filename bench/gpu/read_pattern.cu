// How a one-row product's weight stream should be laid over a warp's loads: a float16 matrix [N, K] read once
// (16-byte loads that bypass L1, the words xor-ed so nothing is optimized away), at Llama-3-8B's shapes, with
// SEG bytes of each row per warp load (64: 8 rows x 64 bytes, qGemvMma's fragment order; 256: 2 rows; 512: one
// row's 512 contiguous bytes, qGemvHalf's), U chunks per batch of loads in flight, and 1-4 warps per block
// splitting K. Each warp takes two loads per chunk (rows r and r + 512 / SEG, as the mma's a0 / a1 words).
// On the GPU machine: nvcc -arch=sm_90a -O3 -o /tmp/rp bench/gpu/read_pattern.cu && /tmp/rp
// (prints the median of 25 timed launches after 5 warm-ups per line; bench/gpu/README.md has the H200's figures).
// `/tmp/rp --b2b`: the read floor of the W4A16 benchmark instead: the bytes of an int4 4096 x 14336 matrix
// (29.4 MB, which fits in the H200's 50 MB L2) read by 200 back-to-back launches, the mean per launch, timed as
// qopt-gpu-kernel-check --bench and torch time theirs.
#include <cstdio>
#include <cstdint>
#include <vector>
#include <algorithm>
#include <string>
__device__ __forceinline__ uint4 ld(const void *p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}
template <int SEG, int U>
__global__ void k(const uint8_t *w, long N, long K, unsigned *out) {
  constexpr int RPI = 512 / SEG;      // rows per load instruction
  constexpr int LPR = SEG / 16;       // lanes per row
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const long rowBytes = K * 2;
  // a warp tile: 2 * RPI rows (two loads per step: rows r and r + RPI), as the mma's a0/a1 words
  const long tileRows = 2 * RPI;
  const long r0 = blockIdx.x * tileRows + lane / LPR;
  const long chunks = rowBytes / SEG;
  const long c0 = chunks * warp / warps, c1 = chunks * (warp + 1) / warps;
  unsigned acc = 0;
  const uint8_t *p0 = w + r0 * rowBytes + (lane % LPR) * 16, *p1 = p0 + RPI * rowBytes;
  for (long c = c0; c < c1; c += U) {
    uint4 v[U][2];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const bool ok = c + u < c1;
      v[u][0] = ok ? ld(p0 + (c + u) * SEG) : make_uint4(0, 0, 0, 0);
      v[u][1] = ok ? ld(p1 + (c + u) * SEG) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < U; ++u)
      acc += v[u][0].x ^ v[u][0].y ^ v[u][0].z ^ v[u][0].w ^ v[u][1].x ^ v[u][1].y ^ v[u][1].z ^ v[u][1].w;
  }
  if (acc == 0x12345678u) out[0] = acc;
}
template <int SEG, int U> void run(const uint8_t *w, long N, long K, unsigned *out, int warps) {
  cudaEvent_t a, b;
  cudaEventCreate(&a); cudaEventCreate(&b);
  const long tiles = N / (2 * (512 / SEG));
  std::vector<float> t;
  for (int i = 0; i < 30; ++i) {
    cudaEventRecord(a);
    k<SEG, U><<<tiles, 32 * warps>>>(w, N, K, out);
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms; cudaEventElapsedTime(&ms, a, b);
    if (i >= 5) t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  const double us = t[t.size() / 2] * 1e3;
  printf("N=%ld K=%ld seg=%d U=%d warps=%d: %.1f us, %.0f GB/s\n", N, K, SEG, U, warps, us, N * K * 2 / us / 1e3);
}
template <int SEG, int U> void backToBack(const uint8_t *w, long N, long K, unsigned *out, int warps) {
  cudaEvent_t a, b;
  cudaEventCreate(&a); cudaEventCreate(&b);
  const long tiles = N / (2 * (512 / SEG));
  for (int i = 0; i < 10; ++i)
    k<SEG, U><<<tiles, 32 * warps>>>(w, N, K, out);
  cudaEventRecord(a);
  for (int i = 0; i < 200; ++i)
    k<SEG, U><<<tiles, 32 * warps>>>(w, N, K, out);
  cudaEventRecord(b);
  cudaEventSynchronize(b);
  float ms; cudaEventElapsedTime(&ms, a, b);
  const double us = ms * 1e3 / 200;
  printf("back-to-back N=%ld K=%ld (%.1f MB) seg=%d U=%d warps=%d: %.2f us, %.0f GB/s\n", N, K, N * K * 2 / 1e6,
         SEG, U, warps, us, N * K * 2 / us / 1e3);
}
int main(int argc, char **argv) {
  uint8_t *w; unsigned *out;
  cudaMalloc(&w, 1l << 30); cudaMalloc(&out, 4);
  cudaMemset(w, 1, 1l << 30);
  if (argc > 1 && std::string(argv[1]) == "--b2b") {
    for (auto [N, K] : {std::pair<long, long>{14336, 1024}, {4096, 3584}, {14336, 1088}})
      for (int warps : {1, 2, 4, 8}) {
        backToBack<64, 4>(w, N, K, out, warps);
        backToBack<512, 4>(w, N, K, out, warps);
        backToBack<512, 8>(w, N, K, out, warps);
      }
    return 0;
  }
  for (auto [N, K] : {std::pair<long, long>{28672, 4096}, {4096, 14336}, {6144, 4096}, {128256, 4096}}) {
    for (int warps : {1, 2, 4}) {
      run<64, 4>(w, N, K, out, warps);
      run<512, 4>(w, N, K, out, warps);
      run<256, 4>(w, N, K, out, warps);
      run<64, 8>(w, N, K, out, warps);
      run<512, 8>(w, N, K, out, warps);
    }
  }
  return 0;
}
