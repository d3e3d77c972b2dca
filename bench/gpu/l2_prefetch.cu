// l2_prefetch: can a decode layer's latency-bound launches (the KV appends and the attention, ~11 us a layer at
// short context, reading little) hide the next product's weight reads by prefetching them into L2?
// (bench/gpu/README.md, "Weights prefetched into L2 behind the attention").
//
//   nvcc -arch=sm_90a -std=c++17 -O3 bench/gpu/l2_prefetch.cu -o l2_prefetch && ./l2_prefetch [BYTES_PER_WEIGHT]
//        [IDLE_US] [LAYERS] [REPS]
//
// A layer of Llama-3-8B's decode is modelled as five launches in a CUDA graph: q/k/v (4096 x 6144 weights read),
// an idle launch of IDLE_US (10) microseconds on 64 blocks (the appends and attention), o (4096 x 4096), gate/up
// (4096 x 28672) and down (14336 x 4096), each product a plain streaming read of its weights (BYTES_PER_WEIGHT 1:
// FP8; 2: float16; 0.5: int4), LAYERS (8) layers in their own memory so every read starts in DRAM. Variants (how
// the idle window is used): none; a prefetch launch before the idle one that asks L2 for o's weights (one
// cp.async.bulk.prefetch.L2 per 16 KB, or prefetch.global.L2 per 128-byte line, sm_80's form), with or without the
// first 16 MB of gate/up too; the idle launch's own blocks asking for o's weights. Medians of REPS (20) replays,
// us per layer; then o's read alone, cold and after a prefetch. Not part of the build: a measurement.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CHECK(x)                                                                                                  \
  do {                                                                                                            \
    cudaError_t e_ = (x);                                                                                         \
    if (e_ != cudaSuccess) {                                                                                      \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));                    \
      std::exit(1);                                                                                               \
    }                                                                                                             \
  } while (0)

// A product's weight read: every 16-byte word once, grid-stride, folded into one word a block (kept live).
__global__ void streamRead(const uint4 *w, long long words, unsigned *sink) {
  unsigned acc = 0;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < words; i += (long long)gridDim.x * blockDim.x) {
    uint4 v;
    asm volatile("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(w + i));
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  for (int o = 16; o > 0; o >>= 1)
    acc ^= __shfl_xor_sync(0xffffffffu, acc, o);
  if ((threadIdx.x & 31) == 0 && acc == 0x9e3779b9u)
    sink[blockIdx.x] = acc;
}

__device__ __forceinline__ void prefetchBulk(const char *p, unsigned bytes) {
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
}

// Asks L2 for [p, p + bytes): a 16 KB bulk prefetch per thread (mode 0) or a prefetch per 128-byte line (mode 1).
__device__ void prefetchRange(const char *p, long long bytes, int mode, long long thread, long long threads) {
  if (mode == 0) {
    const long long chunk = 16384;
    for (long long c = thread * chunk; c < bytes; c += threads * chunk)
      prefetchBulk(p + c, static_cast<unsigned>(bytes - c < chunk ? bytes - c : chunk));
  } else {
    for (long long c = thread * 128; c < bytes; c += threads * 128)
      asm volatile("prefetch.global.L2 [%0];" ::"l"(p + c));
  }
}

__global__ void prefetchKernel(const char *a, long long aBytes, const char *b, long long bBytes, int mode) {
  const long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x, n = (long long)gridDim.x * blockDim.x;
  prefetchRange(a, aBytes, mode, t, n);
  if (b)
    prefetchRange(b, bBytes, mode, t, n);
}

// The latency-bound launches: spin for `cycles`, optionally asking L2 for a range first (thread 0 of each block).
__global__ void idleKernel(long long cycles, const char *pre, long long preBytes) {
  if (pre && threadIdx.x < 32)
    prefetchRange(pre, preBytes, 0, blockIdx.x * 32 + threadIdx.x, gridDim.x * 32LL);
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
}

struct Layer {
  char *qkv, *o, *gu, *down;
  long long qkvBytes, oBytes, guBytes, downBytes;
};

int main(int argc, char **argv) {
  const double bpw = argc > 1 ? std::atof(argv[1]) : 1.0;
  const double idleUs = argc > 2 ? std::atof(argv[2]) : 10.0;
  const int layers = argc > 3 ? std::atoi(argv[3]) : 8, reps = argc > 4 ? std::atoi(argv[4]) : 20;
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  int clockKhz = 0;
  CHECK(cudaDeviceGetAttribute(&clockKhz, cudaDevAttrClockRate, 0));
  const long long cycles = static_cast<long long>(idleUs * clockKhz / 1000.0);
  std::printf("%s, %d SMs, L2 %d MB; %.1f bytes a weight, idle %.1f us, %d layers\n", prop.name,
              prop.multiProcessorCount, prop.l2CacheSize >> 20, bpw, idleUs, layers);
  auto bytes = [&](long long k, long long n) { return static_cast<long long>(k * n * bpw) / 16 * 16; };
  std::vector<Layer> ls(layers);
  for (Layer &l : ls) {
    l.qkvBytes = bytes(4096, 6144), l.oBytes = bytes(4096, 4096), l.guBytes = bytes(4096, 28672),
    l.downBytes = bytes(14336, 4096);
    for (auto [p, n] : {std::pair{&l.qkv, l.qkvBytes}, {&l.o, l.oBytes}, {&l.gu, l.guBytes}, {&l.down, l.downBytes}}) {
      CHECK(cudaMalloc(p, n));
      CHECK(cudaMemset(*p, 0x5a, n));
    }
  }
  unsigned *sink;
  CHECK(cudaMalloc(&sink, 1 << 20));
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const int readBlocks = prop.multiProcessorCount * 8;
  auto read = [&](const char *p, long long n) {
    streamRead<<<readBlocks, 256, 0, s>>>(reinterpret_cast<const uint4 *>(p), n / 16, sink);
  };
  const long long guPart = std::min(16LL << 20, ls[0].guBytes);
  struct Variant {
    const char *name;
    int prefetch; // 0 none, 1 a prefetch launch, 2 the idle launch prefetches
    int mode;     // 0 bulk, 1 lines
    bool gu;      // also the first 16 MB of gate/up
  };
  const Variant variants[] = {{"none", 0, 0, false},
                              {"prefetch launch, bulk: o", 1, 0, false},
                              {"prefetch launch, bulk: o + 16 MB of gate/up", 1, 0, true},
                              {"prefetch launch, lines: o", 1, 1, false},
                              {"prefetch launch, lines: o + 16 MB of gate/up", 1, 1, true},
                              {"idle launch prefetches o (bulk)", 2, 0, false},
                              {"none (again)", 0, 0, false}};
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  auto timeGraph = [&](cudaGraphExec_t g, int n) {
    std::vector<float> t;
    for (int r = 0; r < n + 2; ++r) {
      CHECK(cudaEventRecord(e0, s));
      CHECK(cudaGraphLaunch(g, s));
      CHECK(cudaEventRecord(e1, s));
      CHECK(cudaEventSynchronize(e1));
      float ms;
      CHECK(cudaEventElapsedTime(&ms, e0, e1));
      if (r >= 2)
        t.push_back(ms * 1000.0f);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  auto capture = [&](auto body) {
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    body();
    CHECK(cudaStreamEndCapture(s, &g));
    CHECK(cudaGraphInstantiate(&ge, g, 0));
    CHECK(cudaGraphDestroy(g));
    return ge;
  };
  for (const Variant &v : variants) {
    cudaGraphExec_t ge = capture([&] {
      for (const Layer &l : ls) {
        read(l.qkv, l.qkvBytes);
        if (v.prefetch == 1)
          prefetchKernel<<<prop.multiProcessorCount, 128, 0, s>>>(l.o, l.oBytes, v.gu ? l.gu : nullptr, guPart, v.mode);
        idleKernel<<<64, 128, 0, s>>>(cycles, v.prefetch == 2 ? l.o : nullptr, l.oBytes);
        read(l.o, l.oBytes);
        read(l.gu, l.guBytes);
        read(l.down, l.downBytes);
      }
    });
    std::printf("%-48s %8.2f us a layer\n", v.name, timeGraph(ge, reps) / layers);
    CHECK(cudaGraphExecDestroy(ge));
  }
  // o's read alone (each layer's o after the other layers' reads: from DRAM), and after a prefetch and a wait.
  auto alone = [&](bool pre) {
    cudaGraphExec_t ge = capture([&] {
      for (const Layer &l : ls) {
        read(l.gu, l.guBytes); // evicts the previous layer's o
        if (pre) {
          prefetchKernel<<<prop.multiProcessorCount, 128, 0, s>>>(l.o, l.oBytes, nullptr, 0, 0);
          idleKernel<<<64, 128, 0, s>>>(cycles, nullptr, 0);
        }
        read(l.o, l.oBytes);
      }
    });
    cudaGraphExec_t base = capture([&] {
      for (const Layer &l : ls) {
        read(l.gu, l.guBytes);
        if (pre) {
          prefetchKernel<<<prop.multiProcessorCount, 128, 0, s>>>(l.o, l.oBytes, nullptr, 0, 0);
          idleKernel<<<64, 128, 0, s>>>(cycles, nullptr, 0);
        }
      }
    });
    const float t = (timeGraph(ge, reps) - timeGraph(base, reps)) / layers;
    CHECK(cudaGraphExecDestroy(ge));
    CHECK(cudaGraphExecDestroy(base));
    return t;
  };
  std::printf("o's read (%.1f MB) alone: from DRAM %.2f us, after a prefetch %.2f us\n", ls[0].oBytes / 1e6,
              alone(false), alone(true));
  CHECK(cudaStreamSynchronize(s));
  return 0;
}
