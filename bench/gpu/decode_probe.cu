// decode_probe: where a one-row FP8 product's DRAM time goes, on Llama-3-8B's decode shapes (bench/gpu/README.md,
// "Decode products as one persistent kernel, and the order of the weight reads").
//
//   nvcc -arch=sm_90a -std=c++17 -O3 bench/gpu/decode_probe.cu -o decode_probe && ./decode_probe [LAYERS] [REPS]
//
// LAYERS (8) layers of FP8 E4M3 weights, each q/k/v (4096 x 6144), o (4096 x 4096), gate/up (4096 x 2 x 14336) and
// down (14336 x 4096) in its own memory (218 MB a layer: every read comes from DRAM), medians of REPS (20) runs:
//  1. the read floor: every weight byte read once by a plain grid-stride kernel, then the same bytes read in the
//     order of a matrix-vector product's warps (pairs of rows, 512-byte chunks; stored by rows or chunk-major),
//     of the tile layouts' products (16-row tiles over slices of K; tile-major or chunk-major) and by blocks owning
//     regions, in one launch over every matrix and in a launch per matrix;
//  2. gemvRegion: a product per launch whose blocks read regions of whole rows in address order;
//  3. (unless PROBE_ONLY is set) the layers' products as one persistent kernel with a grid barrier between
//     dependent products, against the same kernel launched once per product: `chain` (weights through a shared-
//     memory ring filled by bulk copies from a producer warp that does not wait for the barriers; MODE 1 without
//     the arithmetic, MODE 2 with the codes converted by bit moves) and `chainReg` (register loads, K split over
//     warps with atomic adds).
// Every product kernel is checked against a float64 host reference of the first two layers first (PASS / FAIL;
// the no-arithmetic variants fail by design). Not part of the build: a measurement, kept so that it can be rerun.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

typedef long long i64;
typedef unsigned char u8;

#define CK(x)                                                                                                          \
  do {                                                                                                                 \
    cudaError_t e_ = (x);                                                                                              \
    if (e_ != cudaSuccess) {                                                                                           \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));                          \
      std::exit(1);                                                                                                    \
    }                                                                                                                  \
  } while (0)

// One 16-byte load of weights, not kept in L1 (the products' qLoadStream).
__device__ __forceinline__ uint4 ldStream(const void *p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

struct Phase {
  const u8 *w;        // [N, K] E4M3 codes
  const float *scale; // [N]
  const float *x;     // [K]
  const float *gamma; // [K] or null (no norm)
  const float *resid; // [N] or null
  float *y;           // [N] (gated: [N / 2])
  int K, N, gated;
  int slices; // chainReg: K split over this many warps per pair of rows (partial sums added atomically)
};

__device__ __forceinline__ unsigned sharedAddr(const void *p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void barInit(unsigned long long *b, unsigned n) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(sharedAddr(b)), "r"(n) : "memory");
}
__device__ __forceinline__ void barExpect(unsigned long long *b, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(sharedAddr(b)), "r"(bytes) : "memory");
}
__device__ __forceinline__ void barArrive(unsigned long long *b) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(sharedAddr(b)) : "memory");
}
__device__ __forceinline__ void barWait(unsigned long long *b, unsigned parity) {
  unsigned done = 0;
  while (!done)
    asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                 : "=r"(done)
                 : "r"(sharedAddr(b)), "r"(parity)
                 : "memory");
}
__device__ __forceinline__ void bulkCopy(void *dst, const void *src, unsigned bytes, unsigned long long *b) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(sharedAddr(dst)),
      "l"(src), "r"(bytes), "r"(sharedAddr(b))
      : "memory");
}
__device__ __forceinline__ unsigned fp8x2(unsigned pair) {
  unsigned h;
  const unsigned short b = static_cast<unsigned short>(pair);
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h) : "h"(b));
  return h;
}
// two codes of w (prmt selector: byte 1 <- code i, byte 3 <- code j) as float16 bits of code / 256
__device__ __forceinline__ unsigned bits(unsigned w, unsigned sel) {
  unsigned x;
  asm("prmt.b32 %0, %1, 0, %2;" : "=r"(x) : "r"(w), "r"(sel));
  return (x & 0x80008000u) | ((x & 0x7F007F00u) >> 1);
}
__device__ __forceinline__ void mma(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
               "{%0, %1, %2, %3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ unsigned half2of(float lo, float hi) {
  unsigned r;
  asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}
__device__ __forceinline__ float warpSum(float v) {
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ unsigned loadAcquire(const unsigned *p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// x rounded to float16 into shared memory: word (c, h) of lane L holds x[512 c + 16 L + 8 h .. + 8] (times gamma
// where the phase has one) at uint4 (2 c + h) 32 + L, zeros past K. Returns this thread's part of the sum of the
// squares of x. x is read through L2 (another block may have written it in this launch).
__device__ float roundX(const Phase &P, i64 xwords, uint4 *xs, int nthreads) {
  const i64 K = P.K;
  float sq = 0.0f;
  for (i64 w = threadIdx.x; w < xwords; w += nthreads) {
    const i64 l = w % 32, ch = w / 32, k = ch / 2 * 512 + 16 * l + 8 * (ch % 2);
    float v[8];
#pragma unroll
    for (int f = 0; f < 2; ++f) {
      const bool in = k + 4 * f < K;
      float4 a = in ? __ldcg(reinterpret_cast<const float4 *>(P.x + k + 4 * f)) : make_float4(0.f, 0.f, 0.f, 0.f);
      if (P.gamma) {
        const float4 gm =
            in ? __ldg(reinterpret_cast<const float4 *>(P.gamma + k + 4 * f)) : make_float4(0.f, 0.f, 0.f, 0.f);
        sq += a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w;
        a.x *= gm.x, a.y *= gm.y, a.z *= gm.z, a.w *= gm.w;
      }
      v[4 * f] = a.x, v[4 * f + 1] = a.y, v[4 * f + 2] = a.z, v[4 * f + 3] = a.w;
    }
    xs[w] = make_uint4(half2of(v[0], v[1]), half2of(v[2], v[3]), half2of(v[4], v[5]), half2of(v[6], v[7]));
  }
  return sq;
}

// 1 / rms(x) for a phase with a gamma (else 1) from the threads' parts of x's sum of squares; `sync` is the barrier
// of the threads that call it, between the warps' writes of their sums and their reads (and of x's words).
template <typename Sync> __device__ float invRms(const Phase &P, float ss, float *redSs, int warps, Sync sync) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (P.gamma) {
    ss = warpSum(ss);
    if (lane == 0)
      redSs[warp] = ss;
  }
  sync();
  if (!P.gamma)
    return 1.0f;
  ss = 0.0f;
  for (int w = 0; w < warps; ++w)
    ss += redSs[w];
  return rsqrtf(ss / static_cast<float>(P.K) + 1e-5f);
}

// Words w0 and w1 (16 codes of each of two rows) times x's words xa, xb: four k-steps of qGemvHalf's diagonal mma
// (rows g and g + 8 of A: the two rows' segment g; column g of B: x's segment g), into acc[k-step % 2]. MODE 1: no
// arithmetic (an xor keeps the loads live); 2: the codes converted by bit moves (their values / 256).
template <int MODE>
__device__ __forceinline__ void mmaWords(float (&acc)[2][4], const uint4 &w0, const uint4 &w1, const uint4 &xa,
                                         const uint4 &xb) {
  const unsigned xv[8] = {xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w};
  const unsigned u0[4] = {w0.x, w0.y, w0.z, w0.w}, u1[4] = {w1.x, w1.y, w1.z, w1.w};
#pragma unroll
  for (int st = 0; st < 4; ++st) {
    if (MODE == 1) {
      acc[st & 1][0] += __uint_as_float((u0[st] ^ u1[st] ^ xv[2 * st]) & 0x3F000000u);
      continue;
    }
    unsigned a[4];
    if (MODE == 2) {
      a[0] = bits(u0[st], 0x1404u), a[2] = bits(u0[st], 0x3424u);
      a[1] = bits(u1[st], 0x1404u), a[3] = bits(u1[st], 0x3424u);
    } else {
      a[0] = fp8x2(u0[st] & 0xFFFFu), a[2] = fp8x2(u0[st] >> 16);
      a[1] = fp8x2(u1[st] & 0xFFFFu), a[3] = fp8x2(u1[st] >> 16);
    }
    mma(acc[st & 1], a, xv[2 * st], xv[2 * st + 1]);
  }
}

// The two rows' sums: C[g][g] and C[g + 8][g] sit in lane (g, g / 2), entries g % 2 and 2 + g % 2. Resets acc.
__device__ __forceinline__ void diagSums(float (&acc)[2][4], float &s0, float &s1) {
  const int lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
  const bool diag = q == (g >> 1);
  s0 = warpSum(diag ? (g & 1 ? acc[0][1] + acc[1][1] : acc[0][0] + acc[1][0]) : 0.0f);
  s1 = warpSum(diag ? (g & 1 ? acc[0][3] + acc[1][3] : acc[0][2] + acc[1][2]) : 0.0f);
#pragma unroll
  for (int e = 0; e < 4; ++e)
    acc[0][e] = acc[1][e] = 0.0f;
}

// CW consumer warps (2 rows of each tile of 2 CW rows each), STAGES ring slots of 2 CW rows x KC bytes.
// Phases [first, first + count); the grid barrier before phase ph > first waits for `arrive` to reach ph * G
// (every launch's counter starts at 0 at phase `first`... the host zeroes it before a chain).
template <int CW, int STAGES, int KC, int MODE = 0>
__global__ void __launch_bounds__(32 * (CW + 1), 1)
    chain(const Phase *__restrict__ phases, int count, unsigned *arrive) {
  constexpr int ROWS = 2 * CW, CHUNKS = KC / 512;
  extern __shared__ __align__(128) u8 smem[];
  __shared__ __align__(8) unsigned long long full[STAGES], empty[STAGES];
  __shared__ float redSs[CW];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int G = gridDim.x, b = blockIdx.x;
  u8 *ring = smem;
  uint4 *xs = reinterpret_cast<uint4 *>(smem + STAGES * ROWS * KC);
  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; ++s)
      barInit(&full[s], 1), barInit(&empty[s], CW);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
  if (warp == CW) { // producer
    i64 i = 0;
    for (int ph = 0; ph < count; ++ph) {
      const Phase P = phases[ph];
      const i64 N = P.N, rowBytes = P.K;
      const i64 tiles = P.gated ? (N / 2 + CW - 1) / CW : (N + ROWS - 1) / ROWS;
      const i64 t0 = tiles * b / G, t1 = tiles * (b + 1) / G, kst = (rowBytes + KC - 1) / KC;
      for (i64 t = t0; t < t1; ++t)
        for (i64 ks = 0; ks < kst; ++ks, ++i) {
          const int s = static_cast<int>(i % STAGES);
          if (i >= STAGES)
            barWait(&empty[s], static_cast<unsigned>(i / STAGES - 1) & 1u);
          const i64 k0 = ks * KC, bytes = rowBytes - k0 < KC ? rowBytes - k0 : KC;
          if (lane == 0)
            barExpect(&full[s], static_cast<unsigned>(ROWS * bytes));
          __syncwarp();
          if (lane < ROWS) {
            i64 row;
            if (P.gated) {
              const i64 c = t * CW + lane % CW < N / 2 ? t * CW + lane % CW : N / 2 - 1;
              row = lane >= CW ? N / 2 + c : c;
            } else {
              row = t * ROWS + lane < N ? t * ROWS + lane : N - 1;
            }
            bulkCopy(ring + (s * ROWS + lane) * KC, P.w + row * rowBytes + k0, static_cast<unsigned>(bytes), &full[s]);
          }
        }
    }
    return;
  }
  i64 i = 0;
  for (int ph = 0; ph < count; ++ph) {
    const Phase P = phases[ph];
    const i64 N = P.N, K = P.K, rowBytes = K;
    if (ph > 0) { // every block done with phase ph - 1 (its results are this phase's x and residual)
      if (threadIdx.x == 0) {
        const unsigned want = static_cast<unsigned>(ph) * static_cast<unsigned>(G);
        while (loadAcquire(arrive) < want)
          ;
      }
      asm volatile("bar.sync 1, %0;" ::"r"(32 * CW) : "memory");
    }
    // x -> float16: word (c, h) of lane L holds x[512 c + 16 L + 8 h .. + 8] at uint4 (2 c + h) 32 + L.
    const i64 kst = (rowBytes + KC - 1) / KC, xwords = kst * CHUNKS * 2 * 32;
    const float inv = invRms(P, roundX(P, xwords, xs, 32 * CW), redSs, CW, [] {
      asm volatile("bar.sync 1, %0;" ::"r"(32 * CW) : "memory");
    });
    const i64 tiles = P.gated ? (N / 2 + CW - 1) / CW : (N + ROWS - 1) / ROWS;
    const i64 t0 = tiles * b / G, t1 = tiles * (b + 1) / G;
    float acc[2][4] = {};
    for (i64 t = t0; t < t1; ++t)
      for (i64 ks = 0; ks < kst; ++ks, ++i) {
        const int s = static_cast<int>(i % STAGES);
        const int slot0 = P.gated ? warp : 2 * warp, slot1 = P.gated ? CW + warp : 2 * warp + 1;
        const u8 *r0 = ring + (s * ROWS + slot0) * KC, *r1 = ring + (s * ROWS + slot1) * KC;
        barWait(&full[s], static_cast<unsigned>(i / STAGES) & 1u);
        uint4 w0[CHUNKS], w1[CHUNKS], xa[CHUNKS], xb[CHUNKS];
#pragma unroll
        for (int j = 0; j < CHUNKS; ++j) {
          const int off = 512 * j + 16 * lane;
          const bool ok = ks * KC + off < rowBytes;
          w0[j] = w1[j] = make_uint4(0, 0, 0, 0);
          if (ok) {
            w0[j] = *reinterpret_cast<const uint4 *>(r0 + off);
            w1[j] = *reinterpret_cast<const uint4 *>(r1 + off);
          }
          const uint4 *xw = xs + ((ks * CHUNKS + j) * 2) * 32 + lane;
          xa[j] = xw[0], xb[j] = xw[32];
        }
#pragma unroll
        for (int j = 0; j < CHUNKS; ++j)
          mmaWords<MODE>(acc, w0[j], w1[j], xa[j], xb[j]);
        __syncwarp();
        if (lane == 0)
          barArrive(&empty[s]);
        if (ks + 1 < kst)
          continue;
        float s0, s1;
        diagSums(acc, s0, s1);
        if (lane != 0)
          continue;
        if (P.gated) {
          const i64 c = t * CW + warp;
          if (c < N / 2) {
            const float m = MODE == 2 ? 256.0f : 1.0f;
            const float gt = s0 * m * P.scale[c] * inv, up = s1 * m * P.scale[N / 2 + c] * inv;
            P.y[c] = gt / (1.0f + __expf(-gt)) * up;
          }
        } else {
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const i64 n = t * ROWS + 2 * warp + h;
            if (n < N) {
              const float y = (h ? s1 : s0) * (MODE == 2 ? 256.0f : 1.0f) * P.scale[n] * inv;
              P.y[n] = P.resid ? __ldcg(P.resid + n) + y : y;
            }
          }
        }
      }
    // this block's results of phase ph are written: arrive (after every consumer warp's stores)
    asm volatile("bar.sync 1, %0;" ::"r"(32 * CW) : "memory");
    if (threadIdx.x == 0) {
      __threadfence();
      atomicAdd(arrive, 1u);
    }
  }
}

__global__ void readAll(const uint4 *const *bufs, const i64 *words, int nb, unsigned *sink) {
  unsigned a = 0;
  for (int m = 0; m < nb; ++m) {
    const uint4 *p = bufs[m];
    const i64 n = words[m];
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
      const uint4 v = ldStream(p + i);
      a ^= v.x ^ v.y ^ v.z ^ v.w;
    }
  }
  if (a == 0x12345678u)
    *sink = a;
}

// Register loads, no ring: WARPS warps per block, BPS blocks per SM (all resident), each warp work items of a pair
// of rows (gated: a channel's gate and up rows) over a slice of K, BATCH chunks of 512 bytes of each row loaded
// before their math. Outputs pre-zeroed where slices > 1 (atomic adds; slice 0 adds the residual).
template <int WARPS, int BATCH, int MODE = 0>
__global__ void __launch_bounds__(32 * WARPS) chainReg(const Phase *__restrict__ phases, int count, unsigned *arrive) {
  extern __shared__ __align__(128) u8 smem[];
  __shared__ float redSs[WARPS];
  uint4 *xs = reinterpret_cast<uint4 *>(smem);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int G = gridDim.x;
  const i64 gw = static_cast<i64>(blockIdx.x) * WARPS + warp, GW = static_cast<i64>(G) * WARPS;
  for (int ph = 0; ph < count; ++ph) {
    const Phase P = phases[ph];
    const i64 N = P.N, K = P.K;
    if (ph > 0) {
      if (threadIdx.x == 0) {
        const unsigned want = static_cast<unsigned>(ph) * static_cast<unsigned>(G);
        while (loadAcquire(arrive) < want)
          ;
      }
      __syncthreads();
    }
    const i64 nch = (K + 511) / 512, xwords = nch * 64;
    const float inv = invRms(P, roundX(P, xwords, xs, 32 * WARPS), redSs, WARPS, [] { __syncthreads(); });
    const i64 pairs = N / 2, S = P.slices, items = pairs * S;
    for (i64 it = gw; it < items; it += GW) {
      const i64 pair = it / S, sl = it % S;
      const i64 r0 = P.gated ? pair : 2 * pair, r1 = P.gated ? N / 2 + pair : 2 * pair + 1;
      const u8 *w0p = P.w + r0 * K + 16 * lane, *w1p = P.w + r1 * K + 16 * lane;
      const i64 c0 = nch * sl / S, c1 = nch * (sl + 1) / S;
      float acc[2][4] = {};
      for (i64 c = c0; c < c1; c += BATCH) {
        uint4 w0[BATCH], w1[BATCH];
#pragma unroll
        for (int j = 0; j < BATCH; ++j) {
          const bool ok = c + j < c1 && (c + j) * 512 + 16 * lane < K;
          w0[j] = w1[j] = make_uint4(0, 0, 0, 0);
          if (ok) {
            w0[j] = ldStream(w0p + (c + j) * 512);
            w1[j] = ldStream(w1p + (c + j) * 512);
          }
        }
#pragma unroll
        for (int j = 0; j < BATCH; ++j) {
          if (c + j >= c1)
            break;
          mmaWords<MODE>(acc, w0[j], w1[j], xs[(c + j) * 64 + lane], xs[(c + j) * 64 + 32 + lane]);
        }
      }
      float s0, s1;
      diagSums(acc, s0, s1);
      if (lane != 0)
        continue;
      if (P.gated) {
        const float gt = s0 * P.scale[r0] * inv, up = s1 * P.scale[r1] * inv;
        P.y[pair] = gt / (1.0f + __expf(-gt)) * up;
      } else {
        float v0 = s0 * P.scale[r0] * inv, v1 = s1 * P.scale[r1] * inv;
        if (sl == 0 && P.resid)
          v0 += __ldcg(P.resid + r0), v1 += __ldcg(P.resid + r1);
        if (S == 1)
          P.y[r0] = v0, P.y[r1] = v1;
        else
          atomicAdd(P.y + r0, v0), atomicAdd(P.y + r1, v1);
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      __threadfence();
      atomicAdd(arrive, 1u);
    }
  }
}

// BATCH pairs of a lane's 16-byte words, pair j at first(j) and first(j) + gap (those with j < left), all loaded
// before any is used, folded into `a`.
template <int BATCH, typename First>
__device__ __forceinline__ void readBatch(unsigned &a, i64 left, i64 gap, First first) {
  uint4 v[2 * BATCH];
#pragma unroll
  for (int j = 0; j < BATCH; ++j) {
    v[2 * j] = v[2 * j + 1] = make_uint4(0, 0, 0, 0);
    if (j < left) {
      const u8 *r = first(j);
      v[2 * j] = ldStream(r);
      v[2 * j + 1] = ldStream(r + gap);
    }
  }
#pragma unroll
  for (int j = 0; j < 2 * BATCH; ++j)
    a ^= v[j].x ^ v[j].y ^ v[j].z ^ v[j].w;
}

// Read orders (no math): ROWPAIR: warp-owned pairs of rows, BATCH 512-byte chunks of each row in flight (the rule's
// and chainReg's order), the matrix stored by rows or (CHUNKED) chunk-major: chunk c of every row, then chunk c + 1
// (row n's chunk c at (c N + n) 512 bytes), so that warps at the same chunk read neighbouring bytes; REGION: a block
// owns a contiguous range of the matrix and reads it linearly, each thread BATCH 16-byte words in flight (stride one
// block-width).
template <int BATCH, bool CHUNKED = false>
__global__ void readRowPairs(const uint4 *const *bufs, const i64 *words, const i64 *rowBytes, int nb, unsigned *sink) {
  unsigned a = 0;
  const int lane = threadIdx.x & 31;
  const i64 gw = (blockIdx.x * (i64)blockDim.x + threadIdx.x) >> 5, GW = ((i64)gridDim.x * blockDim.x) >> 5;
  for (int m = 0; m < nb; ++m) {
    const u8 *p = reinterpret_cast<const u8 *>(bufs[m]);
    const i64 K = rowBytes[m], N = words[m] * 16 / K, nch = K / 512;
    for (i64 pr = gw; pr < N / 2; pr += GW) {
      const u8 *r0 = p + (CHUNKED ? 2 * pr * 512 : 2 * pr * K) + 16 * lane;
      const i64 step = CHUNKED ? N * 512 : 512;
      for (i64 c = 0; c < nch; c += BATCH)
        readBatch<BATCH>(a, nch - c, CHUNKED ? 512 : K, [&](int j) { return r0 + (c + j) * step; });
    }
  }
  if (a == 0x12345678u)
    *sink = a;
}
// TILES: the few-row and tiled one-row products' order (matmul_q's tile layouts): a weight in tiles of 16 rows and
// chunks of 64 bytes of each row (1 KB a tile's chunk), a warp reading one tile's chunks of one of KS slices of K
// (the warps of a tile's slices consecutive), BATCH chunks in flight; the tiles stored tile-major (tile t's chunk c
// at (t chunks + c) KB, the layout the compiler writes now) or (CHUNKED) chunk-major ((c tiles + t) KB).
template <int BATCH, bool CHUNKED, int KS>
__global__ void readTiles(const uint4 *const *bufs, const i64 *words, const i64 *rowBytes, int nb, unsigned *sink) {
  unsigned a = 0;
  const int lane = threadIdx.x & 31;
  const i64 gw = (blockIdx.x * (i64)blockDim.x + threadIdx.x) >> 5, GW = ((i64)gridDim.x * blockDim.x) >> 5;
  for (int m = 0; m < nb; ++m) {
    const u8 *p = reinterpret_cast<const u8 *>(bufs[m]);
    const i64 K = rowBytes[m], N = words[m] * 16 / K, tiles = N / 16, chunks = K / 64, per = chunks / KS;
    for (i64 u = gw; u < tiles * KS; u += GW) {
      const i64 t = u / KS, c0 = (u % KS) * per;
      for (i64 c = c0; c < c0 + per; c += BATCH)
        readBatch<BATCH>(a, c0 + per - c, 512, [&](int j) {
          return p + (CHUNKED ? (c + j) * tiles + t : t * chunks + c + j) * 1024 + 16 * lane;
        });
    }
  }
  if (a == 0x12345678u)
    *sink = a;
}
template <int BATCH>
__global__ void readRegions(const uint4 *const *bufs, const i64 *words, const i64 *, int nb, unsigned *sink) {
  unsigned a = 0;
  for (int m = 0; m < nb; ++m) {
    const uint4 *p = bufs[m];
    const i64 n = words[m], per = (n + gridDim.x - 1) / gridDim.x, b0 = blockIdx.x * per;
    const i64 b1 = b0 + per < n ? b0 + per : n;
    for (i64 i = b0 + threadIdx.x; i < b1; i += (i64)BATCH * blockDim.x) {
      uint4 v[BATCH];
#pragma unroll
      for (int j = 0; j < BATCH; ++j) {
        v[j] = make_uint4(0, 0, 0, 0);
        if (i + (i64)j * blockDim.x < b1)
          v[j] = ldStream(p + i + (i64)j * blockDim.x);
      }
#pragma unroll
      for (int j = 0; j < BATCH; ++j)
        a ^= v[j].x ^ v[j].y ^ v[j].z ^ v[j].w;
    }
  }
  if (a == 0x12345678u)
    *sink = a;
}

// One product per launch, each block a contiguous range of row pairs (gated: channels, gate rows and up rows) read
// in address order: at step i the block's W warps take chunks w, w + W, ... (512 bytes) of its current pair's two
// rows, BATCH (pair, chunk) items of a warp loaded before their math; a warp's sums of a pair go to shared memory,
// the block adds its warps' sums at the end.
// W at most the rows' chunks (K / 512): a warp without chunks would leave its sums unwritten.
template <int W, int BATCH> __global__ void __launch_bounds__(32 * W) gemvRegion(const Phase *__restrict__ ph) {
  extern __shared__ __align__(128) u8 smem[];
  __shared__ float redSs[W];
  const Phase P = *ph;
  const i64 N = P.N, K = P.K, nch = (K + 511) / 512;
  uint4 *xs = reinterpret_cast<uint4 *>(smem);
  float *part = reinterpret_cast<float *>(smem + nch * 64 * 16);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const float inv = invRms(P, roundX(P, nch * 64, xs, 32 * W), redSs, W, [] { __syncthreads(); });
  const i64 pairs = N / 2, p0 = pairs * blockIdx.x / gridDim.x, p1 = pairs * (blockIdx.x + 1) / gridDim.x;
  const i64 cpw = (nch - warp + W - 1) / W, items = (p1 - p0) * cpw;
  float acc[2][4] = {};
  for (i64 i0 = 0; i0 < items; i0 += BATCH) {
    uint4 w0[BATCH], w1[BATCH];
#pragma unroll
    for (int j = 0; j < BATCH; ++j) {
      const i64 i = i0 + j, pr = p0 + i / cpw, ch = warp + (i % cpw) * W;
      const i64 r0 = P.gated ? pr : 2 * pr, r1 = P.gated ? N / 2 + pr : 2 * pr + 1;
      w0[j] = w1[j] = make_uint4(0, 0, 0, 0);
      if (i < items && ch * 512 + 16 * lane < K) {
        w0[j] = ldStream(P.w + r0 * K + ch * 512 + 16 * lane);
        w1[j] = ldStream(P.w + r1 * K + ch * 512 + 16 * lane);
      }
    }
#pragma unroll
    for (int j = 0; j < BATCH; ++j) {
      const i64 i = i0 + j;
      if (i >= items)
        break;
      const i64 ch = warp + (i % cpw) * W;
      mmaWords<0>(acc, w0[j], w1[j], xs[ch * 64 + lane], xs[ch * 64 + 32 + lane]);
      if (i % cpw == cpw - 1) { // this warp's last chunk of the pair
        float s0, s1;
        diagSums(acc, s0, s1);
        if (lane == 0) {
          const i64 pl = p0 + i / cpw - p0;
          part[(2 * pl) * W + warp] = s0, part[(2 * pl + 1) * W + warp] = s1;
        }
      }
    }
  }
  __syncthreads();
  for (i64 pl = threadIdx.x; pl < p1 - p0; pl += blockDim.x) {
    float s0 = 0.0f, s1 = 0.0f;
    for (int w = 0; w < W; ++w)
      s0 += part[(2 * pl) * W + w], s1 += part[(2 * pl + 1) * W + w];
    const i64 pr = p0 + pl, r0 = P.gated ? pr : 2 * pr, r1 = P.gated ? N / 2 + pr : 2 * pr + 1;
    if (P.gated) {
      const float gt = s0 * P.scale[r0] * inv, up = s1 * P.scale[r1] * inv;
      P.y[pr] = gt / (1.0f + __expf(-gt)) * up;
    } else {
      float v0 = s0 * P.scale[r0] * inv, v1 = s1 * P.scale[r1] * inv;
      if (P.resid)
        v0 += __ldcg(P.resid + r0), v1 += __ldcg(P.resid + r1);
      P.y[r0] = v0, P.y[r1] = v1;
    }
  }
}

// ---- host ----
static float e4m3(u8 c) {
  const int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
  float v = e == 0 ? std::ldexp(static_cast<float>(m), -9) : std::ldexp(1.0f + m / 8.0f, e - 7);
  return s ? -v : v;
}
static float roundHalf(float f) { // float -> float16 -> float, round to nearest even (normal range only)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t lsb = (u >> 13) & 1u;
  u = (u + 0xFFFu + lsb) & ~0x1FFFu;
  float r;
  std::memcpy(&r, &u, 4);
  return std::fabs(f) < 6.1035e-5f ? std::nearbyint(f * 16777216.0f) / 16777216.0f : r;
}

struct Layer {
  u8 *w[4];
  float *scale[4];
};

// Milliseconds of the work `launch` puts on stream s, between two events.
template <typename F> float timed(cudaStream_t s, cudaEvent_t e0, cudaEvent_t e1, F launch) {
  CK(cudaEventRecord(e0, s));
  launch();
  CK(cudaEventRecord(e1, s));
  CK(cudaEventSynchronize(e1));
  float ms;
  CK(cudaEventElapsedTime(&ms, e0, e1));
  return ms;
}

typedef void (*KernelFn)(const Phase *, int, unsigned *);
struct Variant {
  const char *name;
  KernelFn fn;
  int threads, shared;
};
template <int CW, int STAGES, int KC, int MODE = 0> Variant variant(const char *name) {
  const int shared = STAGES * 2 * CW * KC + (14336 + KC - 1) / KC * KC * 2;
  CK(cudaFuncSetAttribute(chain<CW, STAGES, KC, MODE>, cudaFuncAttributeMaxDynamicSharedMemorySize, shared));
  return {name, chain<CW, STAGES, KC, MODE>, 32 * (CW + 1), shared};
}

int main(int argc, char **argv) {
  const int L = argc > 1 ? std::atoi(argv[1]) : 8, reps = argc > 2 ? std::atoi(argv[2]) : 20;
  const int H = 4096, QKV = 6144, F = 14336;
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  const int G = prop.multiProcessorCount;
  std::printf("%s, %d SMs, %d layers\n", prop.name, G, L);
  const int Ks[4] = {H, H, H, F}, Ns[4] = {QKV, H, 2 * F, H};
  // one layer's codes on the host: exponents 4..7 (|v| 0.125..1.9), random signs and mantissas
  std::vector<std::vector<u8>> hw(4);
  uint64_t st = 88172645463325252ull;
  auto rnd = [&] {
    st ^= st << 13, st ^= st >> 7, st ^= st << 17;
    return st;
  };
  for (int m = 0; m < 4; ++m) {
    hw[m].resize(static_cast<size_t>(Ks[m]) * Ns[m]);
    for (auto &c : hw[m]) {
      const uint64_t r = rnd();
      c = static_cast<u8>((r & 0x80) | ((4 + ((r >> 8) & 3)) << 3) | ((r >> 16) & 7));
    }
  }
  std::vector<Layer> layers(L);
  for (auto &ly : layers)
    for (int m = 0; m < 4; ++m) {
      CK(cudaMalloc(&ly.w[m], hw[m].size()));
      CK(cudaMemcpy(ly.w[m], hw[m].data(), hw[m].size(), cudaMemcpyHostToDevice));
      const float sc = 1.0f / std::sqrt(static_cast<float>(Ks[m]));
      std::vector<float> s(Ns[m]);
      for (int n = 0; n < Ns[m]; ++n)
        s[n] = sc * (0.5f + (n % 7) / 7.0f);
      CK(cudaMalloc(&ly.scale[m], 4 * s.size()));
      CK(cudaMemcpy(ly.scale[m], s.data(), 4 * s.size(), cudaMemcpyHostToDevice));
    }
  float *A, *B, *qkv, *act, *gamma;
  CK(cudaMalloc(&A, 4 * H));
  CK(cudaMalloc(&B, 4 * H));
  CK(cudaMalloc(&qkv, 4 * QKV));
  CK(cudaMalloc(&act, 4 * F));
  CK(cudaMalloc(&gamma, 4 * F));
  std::vector<float> x0(H), gm(F);
  for (int k = 0; k < H; ++k)
    x0[k] = std::sin(0.37f * k) + 0.1f;
  for (int k = 0; k < F; ++k)
    gm[k] = 0.75f + 0.5f * ((k * 13) % 11) / 11.0f;
  CK(cudaMemcpy(gamma, gm.data(), 4 * F, cudaMemcpyHostToDevice));
  std::vector<Phase> hp;
  for (auto &ly : layers) {
    hp.push_back({ly.w[0], ly.scale[0], A, gamma, nullptr, qkv, H, QKV, 0});
    hp.push_back({ly.w[1], ly.scale[1], qkv, nullptr, A, B, H, H, 0});
    hp.push_back({ly.w[2], ly.scale[2], B, gamma, nullptr, act, H, 2 * F, 1});
    hp.push_back({ly.w[3], ly.scale[3], act, nullptr, B, A, F, H, 0});
  }
  const int P = static_cast<int>(hp.size());
  Phase *dp;
  CK(cudaMalloc(&dp, sizeof(Phase) * P));
  CK(cudaMemcpy(dp, hp.data(), sizeof(Phase) * P, cudaMemcpyHostToDevice));
  unsigned *arrive;
  CK(cudaMalloc(&arrive, 4 * (P + 1)));

  // CPU reference of the first two layers (x rounded to float16 as the kernel rounds it)
  auto reference = [&](int layersRef) {
    std::vector<double> a(x0.begin(), x0.end()), bb(H), qk(QKV), ac(F);
    auto prod = [&](int m, const std::vector<double> &x, bool norm, std::vector<double> &out, const float *sc) {
      const int K = Ks[m], N = Ns[m];
      double ssum = 0;
      for (int k = 0; k < K; ++k)
        ssum += x[k] * x[k];
      const double inv = norm ? 1.0 / std::sqrt(ssum / K + 1e-5) : 1.0;
      std::vector<float> xr(K);
      for (int k = 0; k < K; ++k)
        xr[k] = roundHalf(static_cast<float>(norm ? x[k] * gm[k] : x[k]));
      out.assign(N, 0.0);
      for (int n = 0; n < N; ++n) {
        double s = 0;
        const u8 *row = hw[m].data() + static_cast<size_t>(n) * K;
        for (int k = 0; k < K; ++k)
          s += static_cast<double>(e4m3(row[k])) * xr[k];
        out[n] = s * sc[n] * inv;
      }
    };
    std::vector<float> sc[4];
    for (int m = 0; m < 4; ++m) {
      sc[m].resize(Ns[m]);
      CK(cudaMemcpy(sc[m].data(), layers[0].scale[m], 4 * Ns[m], cudaMemcpyDeviceToHost));
    }
    std::vector<double> t;
    for (int l = 0; l < layersRef; ++l) {
      prod(0, a, true, qk, sc[0].data());
      std::vector<double> q(qk.begin(), qk.begin() + H);
      prod(1, q, false, t, sc[1].data());
      for (int n = 0; n < H; ++n)
        bb[n] = a[n] + t[n];
      prod(2, bb, true, t, sc[2].data());
      for (int c = 0; c < F; ++c)
        ac[c] = t[c] / (1.0 + std::exp(-t[c])) * t[F + c];
      prod(3, ac, false, t, sc[3].data());
      for (int n = 0; n < H; ++n)
        a[n] = bb[n] + t[n];
    }
    return a;
  };
  const int refLayers = 2;
  const std::vector<double> ref = reference(refLayers);

  std::vector<Variant> vs = {
      variant<8, 4, 2048>("cw8 st4 kc2048"),           variant<16, 2, 2048>("cw16 st2 kc2048"),
      variant<8, 4, 2048, 1>("NOMATH cw8 st4 kc2048"), variant<16, 2, 2048, 1>("NOMATH cw16 st2 kc2048"),
      variant<4, 4, 4096, 1>("NOMATH cw4 st4 kc4096"), variant<8, 4, 2048, 2>("BITS cw8 st4 kc2048"),
      variant<16, 2, 2048, 2>("BITS cw16 st2 kc2048"), variant<16, 3, 2048, 2>("BITS cw16 st3 kc2048")};
  cudaStream_t s;
  CK(cudaStreamCreate(&s));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  // After the work on stream s: the largest difference from the reference of the H values at `dev` (maxd, kept
  // if larger), the reference's largest magnitude (maxr) and whether a value is NaN.
  auto compare = [&](const float *dev, double &maxd, double &maxr, bool &nan) {
    CK(cudaStreamSynchronize(s));
    CK(cudaGetLastError());
    std::vector<float> got(H);
    CK(cudaMemcpy(got.data(), dev, 4 * H, cudaMemcpyDeviceToHost));
    for (int n = 0; n < H; ++n)
      maxd = std::max(maxd, std::fabs(got[n] - ref[n])), maxr = std::max(maxr, std::fabs(ref[n])),
      nan |= std::isnan(got[n]);
  };
  double bytesLayer = 0;
  for (int m = 0; m < 4; ++m)
    bytesLayer += static_cast<double>(Ks[m]) * Ns[m];
  std::printf("bytes per layer %.1f MB\n", bytesLayer / 1e6);
  { // the read floor: every layer's weights read once by a plain streaming kernel
    std::vector<const uint4 *> hb;
    std::vector<i64> hwords;
    for (auto &ly : layers)
      for (int m = 0; m < 4; ++m)
        hb.push_back(reinterpret_cast<const uint4 *>(ly.w[m])), hwords.push_back((i64)Ks[m] * Ns[m] / 16);
    const uint4 **db;
    i64 *dw;
    CK(cudaMalloc(&db, sizeof(void *) * hb.size()));
    CK(cudaMalloc(&dw, sizeof(i64) * hb.size()));
    CK(cudaMemcpy(db, hb.data(), sizeof(void *) * hb.size(), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dw, hwords.data(), sizeof(i64) * hb.size(), cudaMemcpyHostToDevice));
    for (int blocksPerSm : {4, 8, 16}) {
      std::vector<float> t;
      for (int r = 0; r < reps + 2; ++r) {
        float ms =
            timed(s, e0, e1, [&] { readAll<<<G * blocksPerSm, 256, 0, s>>>(db, dw, (int)hb.size(), arrive + P); });
        if (r >= 2)
          t.push_back(ms);
      }
      std::sort(t.begin(), t.end());
      const double us = t[t.size() / 2] * 1e3 / L;
      std::printf("read floor, %d blocks of 256 per SM: per layer %.2f us (%.2f TB/s)\n", blocksPerSm, us,
                  bytesLayer / us / 1e6);
    }
    std::vector<i64> hk;
    for (auto &ly : layers)
      for (int m = 0; m < 4; ++m)
        hk.push_back(Ks[m]);
    i64 *dk;
    CK(cudaMalloc(&dk, sizeof(i64) * hk.size()));
    CK(cudaMemcpy(dk, hk.data(), sizeof(i64) * hk.size(), cudaMemcpyHostToDevice));
    typedef void (*ReadFn)(const uint4 *const *, const i64 *, const i64 *, int, unsigned *);
    struct RO {
      const char *name;
      ReadFn fn;
      int threads, bps;
    };
    const RO ros[] = {{"row pairs, 2 chunks, 8 x 256 per SM", readRowPairs<2>, 256, 8},
                      {"row pairs, 4 chunks, 4 x 256 per SM", readRowPairs<4>, 256, 4},
                      {"row pairs, 8 chunks, 2 x 256 per SM", readRowPairs<8>, 256, 2},
                      {"row pairs, 4 chunks, 2 x 256 per SM", readRowPairs<4>, 256, 2},
                      {"chunk-major row pairs, 2 chunks, 8 x 256 per SM", readRowPairs<2, true>, 256, 8},
                      {"chunk-major row pairs, 4 chunks, 4 x 256 per SM", readRowPairs<4, true>, 256, 4},
                      {"chunk-major row pairs, 8 chunks, 2 x 256 per SM", readRowPairs<8, true>, 256, 2},
                      {"chunk-major row pairs, 4 chunks, 2 x 256 per SM", readRowPairs<4, true>, 256, 2},
                      {"chunk-major row pairs, 2 chunks, 2 x 256 per SM", readRowPairs<2, true>, 256, 2},
                      {"tiles, 8 slices, 4 chunks, 2 x 256 per SM", readTiles<4, false, 8>, 256, 2},
                      {"chunk-major tiles, 8 slices, 4 chunks, 2 x 256 per SM", readTiles<4, true, 8>, 256, 2},
                      {"tiles, 8 slices, 2 chunks, 4 x 256 per SM", readTiles<2, false, 8>, 256, 4},
                      {"chunk-major tiles, 8 slices, 2 chunks, 4 x 256 per SM", readTiles<2, true, 8>, 256, 4},
                      {"tiles, 4 slices, 8 chunks, 2 x 256 per SM", readTiles<8, false, 4>, 256, 2},
                      {"chunk-major tiles, 4 slices, 8 chunks, 2 x 256 per SM", readTiles<8, true, 4>, 256, 2},
                      {"tiles, 16 slices, 2 chunks, 2 x 256 per SM", readTiles<2, false, 16>, 256, 2},
                      {"chunk-major tiles, 16 slices, 2 chunks, 2 x 256 per SM", readTiles<2, true, 16>, 256, 2},
                      {"regions, 1 word, 8 x 256 per SM", readRegions<1>, 256, 8},
                      {"regions, 4 words, 4 x 256 per SM", readRegions<4>, 256, 4},
                      {"regions, 4 words, 2 x 256 per SM", readRegions<4>, 256, 2},
                      {"regions, 8 words, 1 x 512 per SM", readRegions<8>, 512, 1}};
    for (const RO &ro : ros) {
      std::vector<float> t;
      for (int r = 0; r < reps + 2; ++r) {
        float ms =
            timed(s, e0, e1, [&] { ro.fn<<<G * ro.bps, ro.threads, 0, s>>>(db, dw, dk, (int)hb.size(), arrive + P); });
        if (r >= 2)
          t.push_back(ms);
      }
      std::sort(t.begin(), t.end());
      const double us = t[t.size() / 2] * 1e3 / L;
      // the same, one launch per matrix (as a product reads it)
      std::vector<float> tl;
      for (int r = 0; r < reps + 2; ++r) {
        float ms = timed(s, e0, e1, [&] {
          for (size_t i = 0; i < hb.size(); ++i)
            ro.fn<<<G * ro.bps, ro.threads, 0, s>>>(db + i, dw + i, dk + i, 1, arrive + P);
        });
        if (r >= 2)
          tl.push_back(ms);
      }
      std::sort(tl.begin(), tl.end());
      const double ul = tl[tl.size() / 2] * 1e3 / L;
      std::printf("read %s: per layer %.2f us (%.2f TB/s); a launch per matrix %.2f us (%.2f TB/s)\n", ro.name, us,
                  bytesLayer / us / 1e6, ul, bytesLayer / ul / 1e6);
    }
  }
  { // gemvRegion: one launch per product, cold, against the rule's figures
    typedef void (*RegionFn)(const Phase *);
    struct RV {
      const char *name;
      RegionFn fn;
      int warps, bps;
    };
    const RV rvs[] = {{"region w8 b4 x2/SM", gemvRegion<8, 4>, 8, 2},
                      {"region w8 b8 x2/SM", gemvRegion<8, 8>, 8, 2},
                      {"region w4 b8 x4/SM", gemvRegion<4, 8>, 4, 4},
                      {"region w8 b4 x4/SM", gemvRegion<8, 4>, 8, 4},
                      {"region w8 b2 x4/SM", gemvRegion<8, 2>, 8, 4}};
    const char *names[4] = {"q/k/v + norm", "o + residual", "gate/up gated + norm", "down + residual"};
    for (const RV &v : rvs) {
      const int B = G * v.bps;
      int shared = 0; // x in float16 and the warps' sums of the block's pairs, the most any product needs
      for (int m = 0; m < 4; ++m)
        shared = std::max<int>(shared, (Ks[m] + 511) / 512 * 1024 + (Ns[m] / 2 + B - 1) / B * 2 * v.warps * 4);
      CK(cudaFuncSetAttribute(v.fn, cudaFuncAttributeMaxDynamicSharedMemorySize, shared));
      int occ = 0;
      CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, v.fn, 32 * v.warps, shared));
      bool fits = occ >= 1;
      for (int m = 0; m < 4; ++m)
        fits =
            fits && (static_cast<i64>(Ns[m] / 2 + B - 1) / B) * 2 * v.warps * 4 + (Ks[m] + 511) / 512 * 1024 <= shared;
      if (!fits) {
        std::printf("%s: does not fit\n", v.name);
        continue;
      }
      CK(cudaMemcpy(A, x0.data(), 4 * H, cudaMemcpyHostToDevice));
      for (int ph = 0; ph < 4 * refLayers; ++ph)
        v.fn<<<B, 32 * v.warps, shared, s>>>(dp + ph);
      double maxd = 0, maxr = 0;
      bool nan = false;
      compare(A, maxd, maxr, nan);
      std::printf("%s %s (occupancy %d per SM): %d layers, max |d| %.3g of max |ref| %.3g\n",
                  !nan && maxd <= 2e-3 * maxr ? "PASS" : "FAIL", v.name, occ, refLayers, maxd, maxr);
      double sum = 0;
      for (int m = -1; m < 4; ++m) {
        cudaGraph_t gr;
        cudaGraphExec_t xr;
        CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
        for (int ph = 0; ph < P; ++ph)
          if (m < 0 || ph % 4 == m)
            v.fn<<<B, 32 * v.warps, shared, s>>>(dp + ph);
        CK(cudaStreamEndCapture(s, &gr));
        CK(cudaGraphInstantiate(&xr, gr, 0));
        std::vector<float> t;
        for (int r = 0; r < reps + 2; ++r) {
          float ms = timed(s, e0, e1, [&] { CK(cudaGraphLaunch(xr, s)); });
          if (r >= 2)
            t.push_back(ms);
        }
        std::sort(t.begin(), t.end());
        const double us = t[t.size() / 2] * 1e3 / L;
        if (m < 0)
          std::printf("  %s: per layer %.2f us (%.2f TB/s)\n", v.name, us, bytesLayer / us / 1e6);
        else
          sum += us,
              std::printf("    %s: %.2f us (%.2f TB/s)\n", names[m], us, static_cast<double>(Ks[m]) * Ns[m] / us / 1e6);
        CK(cudaGraphExecDestroy(xr));
        CK(cudaGraphDestroy(gr));
      }
      std::printf("    sum of the four %.2f us\n", sum);
    }
  }
  if (std::getenv("PROBE_ONLY"))
    return 0;
  for (const Variant &v : vs) {
    // check: the chain over refLayers layers
    CK(cudaMemcpy(A, x0.data(), 4 * H, cudaMemcpyHostToDevice));
    CK(cudaMemset(arrive, 0, 4));
    v.fn<<<G, v.threads, v.shared, s>>>(dp, 4 * refLayers, arrive);
    double maxd = 0, maxr = 0, maxd2 = 0;
    bool nan = false;
    compare(A, maxd, maxr, nan);
    // the same over separate launches
    CK(cudaMemcpy(A, x0.data(), 4 * H, cudaMemcpyHostToDevice));
    for (int ph = 0; ph < 4 * refLayers; ++ph) {
      CK(cudaMemsetAsync(arrive, 0, 4, s));
      v.fn<<<G, v.threads, v.shared, s>>>(dp + ph, 1, arrive);
    }
    compare(A, maxd2, maxr, nan);
    const bool ok = !nan && maxd <= 2e-3 * maxr && maxd2 <= 2e-3 * maxr;
    std::printf("%s %s: %d layers, max |d| chain %.3g / separate %.3g of max |ref| %.3g\n", ok ? "PASS" : "FAIL",
                v.name, refLayers, maxd, maxd2, maxr);
    // time: the chain of all L layers in one launch, and one launch per product, each as a graph
    cudaGraph_t gc, gs;
    cudaGraphExec_t xc, xs;
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CK(cudaMemsetAsync(arrive, 0, 4, s));
    v.fn<<<G, v.threads, v.shared, s>>>(dp, P, arrive);
    CK(cudaStreamEndCapture(s, &gc));
    CK(cudaGraphInstantiate(&xc, gc, 0));
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    for (int ph = 0; ph < P; ++ph) {
      v.fn<<<G, v.threads, v.shared, s>>>(dp + ph, 1, arrive + 1 + ph);
    }
    CK(cudaStreamEndCapture(s, &gs));
    CK(cudaGraphInstantiate(&xs, gs, 0));
    std::vector<float> tc, ts;
    for (int r = 0; r < reps + 2; ++r) {
      CK(cudaMemcpy(A, x0.data(), 4 * H, cudaMemcpyHostToDevice));
      float ms = timed(s, e0, e1, [&] { CK(cudaGraphLaunch(xc, s)); });
      if (r >= 2)
        tc.push_back(ms);
      CK(cudaMemcpy(A, x0.data(), 4 * H, cudaMemcpyHostToDevice));
      CK(cudaMemset(arrive + 1, 0, 4 * P));
      ms = timed(s, e0, e1, [&] { CK(cudaGraphLaunch(xs, s)); });
      if (r >= 2)
        ts.push_back(ms);
    }
    std::sort(tc.begin(), tc.end());
    std::sort(ts.begin(), ts.end());
    const double c = tc[tc.size() / 2] * 1e3 / L, sp = ts[ts.size() / 2] * 1e3 / L;
    std::printf("  %s: per layer chain %.2f us (%.2f TB/s), separate %.2f us (%.2f TB/s), %.3fx\n", v.name, c,
                bytesLayer / c / 1e6, sp, bytesLayer / sp / 1e6, sp / c);
    CK(cudaGraphExecDestroy(xc));
    CK(cudaGraphExecDestroy(xs));
    CK(cudaGraphDestroy(gc));
    CK(cudaGraphDestroy(gs));
  }
  // chainReg: register loads, distinct output buffers per phase (zeroed before each run)
  {
    const size_t perLayer = QKV + H + F + H;
    float *ys;
    CK(cudaMalloc(&ys, 4 * perLayer * L));
    struct RegVariant {
      const char *name;
      KernelFn fn;
      int warps, bps;
    };
    std::vector<RegVariant> rv = {
        {"REG w16 b4 x2/SM", chainReg<16, 4>, 16, 2}, {"REG w32 b2 x1/SM", chainReg<32, 2>, 32, 1},
        {"REG w16 b2 x2/SM", chainReg<16, 2>, 16, 2}, {"REG w8 b4 x4/SM", chainReg<8, 4>, 8, 4},
        {"REG w8 b8 x2/SM", chainReg<8, 8>, 8, 2},    {"NOMATH REG w16 b4 x2/SM", chainReg<16, 4, 1>, 16, 2}};
    for (const RegVariant &v : rv) {
      int occ = 0;
      CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, v.fn, 32 * v.warps, 28672));
      if (occ < v.bps) {
        std::printf("%s: only %d blocks per SM fit\n", v.name, occ);
        continue;
      }
      const int GR = G * v.bps;
      const i64 GW = static_cast<i64>(GR) * v.warps;
      std::vector<Phase> hr;
      const float *in = A;
      for (int l = 0; l < L; ++l) {
        float *qy = ys + l * perLayer, *hb = qy + QKV, *ac = hb + H, *hn = ac + F;
        const Layer &ly = layers[l];
        hr.push_back({ly.w[0], ly.scale[0], in, gamma, nullptr, qy, H, QKV, 0, 1});
        hr.push_back({ly.w[1], ly.scale[1], qy, nullptr, in, hb, H, H, 0, 1});
        hr.push_back({ly.w[2], ly.scale[2], hb, gamma, nullptr, ac, H, 2 * F, 1, 1});
        hr.push_back({ly.w[3], ly.scale[3], ac, nullptr, hb, hn, F, H, 0, 1});
        in = hn;
      }
      for (Phase &ph : hr)
        if (!ph.gated && ph.N / 2 < GW)
          ph.slices = static_cast<int>(std::min<i64>(4, (GW + ph.N / 2 - 1) / (ph.N / 2)));
      Phase *dr;
      CK(cudaMalloc(&dr, sizeof(Phase) * P));
      CK(cudaMemcpy(dr, hr.data(), sizeof(Phase) * P, cudaMemcpyHostToDevice));
      double maxd = 0, maxr = 0;
      bool nan = false;
      for (int sep = 0; sep < 2; ++sep) {
        CK(cudaMemcpy(A, x0.data(), 4 * H, cudaMemcpyHostToDevice));
        CK(cudaMemset(ys, 0, 4 * perLayer * L));
        CK(cudaMemset(arrive, 0, 4 * (P + 1)));
        if (sep)
          for (int ph = 0; ph < 4 * refLayers; ++ph)
            v.fn<<<GR, 32 * v.warps, 28672, s>>>(dr + ph, 1, arrive + 1 + ph);
        else
          v.fn<<<GR, 32 * v.warps, 28672, s>>>(dr, 4 * refLayers, arrive);
        compare(ys + (refLayers - 1) * perLayer + QKV + H + F, maxd, maxr, nan);
      }
      std::printf("%s %s: %d layers, max |d| %.3g of max |ref| %.3g (slices o %d, qkv %d, down %d)\n",
                  !nan && maxd <= 2e-3 * maxr ? "PASS" : "FAIL", v.name, refLayers, maxd, maxr, hr[1].slices,
                  hr[0].slices, hr[3].slices);
      cudaGraph_t gc, gs;
      cudaGraphExec_t xc, xs;
      CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
      CK(cudaMemsetAsync(ys, 0, 4 * perLayer * L, s));
      CK(cudaMemsetAsync(arrive, 0, 4, s));
      v.fn<<<GR, 32 * v.warps, 28672, s>>>(dr, P, arrive);
      CK(cudaStreamEndCapture(s, &gc));
      CK(cudaGraphInstantiate(&xc, gc, 0));
      CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
      CK(cudaMemsetAsync(ys, 0, 4 * perLayer * L, s));
      for (int ph = 0; ph < P; ++ph)
        v.fn<<<GR, 32 * v.warps, 28672, s>>>(dr + ph, 1, arrive + 1 + ph);
      CK(cudaStreamEndCapture(s, &gs));
      CK(cudaGraphInstantiate(&xs, gs, 0));
      std::vector<float> tc, ts, tm;
      for (int r = 0; r < reps + 2; ++r) {
        float ms = timed(s, e0, e1, [&] { CK(cudaMemsetAsync(ys, 0, 4 * perLayer * L, s)); });
        if (r >= 2)
          tm.push_back(ms);
        ms = timed(s, e0, e1, [&] { CK(cudaGraphLaunch(xc, s)); });
        if (r >= 2)
          tc.push_back(ms);
        CK(cudaMemset(arrive + 1, 0, 4 * P));
        ms = timed(s, e0, e1, [&] { CK(cudaGraphLaunch(xs, s)); });
        if (r >= 2)
          ts.push_back(ms);
      }
      std::sort(tc.begin(), tc.end());
      std::sort(ts.begin(), ts.end());
      std::sort(tm.begin(), tm.end());
      const double c = tc[tc.size() / 2] * 1e3 / L, sp = ts[ts.size() / 2] * 1e3 / L;
      std::printf("  %s: per layer chain %.2f us (%.2f TB/s), separate %.2f us (%.2f TB/s), %.3fx; the memset alone "
                  "%.2f us per layer\n",
                  v.name, c, bytesLayer / c / 1e6, sp, bytesLayer / sp / 1e6, sp / c, tm[tm.size() / 2] * 1e3 / L);
    }
  }
  return 0;
}
