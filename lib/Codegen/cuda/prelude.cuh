// qopt CUDA kernel ABI (compiled by NVRTC at qopt time; no CUDA header is included).
//
// Every generated kernel is `extern "C" __global__ void SYMBOL(const QParams p)`: the operands in launch order
// (inputs, then results), each its device address and shape, and a status word the kernels set when an operand
// is out of its range (the runtime reports it after the step). The launch geometry (block size, grid) is
// recorded next to the symbol in model.bin: gridDim.x covers the "rows" (all dims but the last) and the "cols"
// (the last dim) of one operand in tiles of rowsPerBlock x colsPerBlock, row tiles outermost.
typedef long long i64;
typedef unsigned char u8;
typedef signed char i8;

#define QOPT_MAX_RANK 8
#define QOPT_MAX_OPERANDS 12

struct QTensor {
  void *data;
  i64 shape[QOPT_MAX_RANK];
  int rank; // -1: an absent optional operand
  int pad;
};

struct QParams {
  QTensor t[QOPT_MAX_OPERANDS];
  int *status;
};

// Status codes (the runtime's messages for them are in runtime/src/cuda/CudaBackend.cpp).
#define QOPT_STATUS_CACHE_FULL 1
#define QOPT_STATUS_INDEX_RANGE 2

__device__ __forceinline__ i64 qNumel(const QTensor &t) {
  i64 n = 1;
  for (int d = 0; d < t.rank; ++d)
    n *= t.shape[d];
  return n;
}
__device__ __forceinline__ i64 qLast(const QTensor &t) { return t.rank > 0 ? t.shape[t.rank - 1] : 1; }
template <typename T> __device__ __forceinline__ T *qPtr(const QTensor &t) { return static_cast<T *>(t.data); }
// QSelect<B, T, F>::type: T when B, else F (NVRTC has no <type_traits>).
template <bool B, typename T, typename F> struct QSelect { typedef T type; };
template <typename T, typename F> struct QSelect<false, T, F> { typedef F type; };

// This thread's element under a flat geometry (one element per thread).
__device__ __forceinline__ i64 qFlatIndex() { return static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; }

__device__ __forceinline__ void qFail(const QParams &p, int code) {
  if (p.status)
    atomicCAS(p.status, 0, code);
}

// This block's (row tile, col tile) under the recorded geometry.
__device__ __forceinline__ void qTile(i64 cols, i64 colsPerBlock, i64 &rowTile, i64 &colTile) {
  const i64 colTiles = (cols + colsPerBlock - 1) / colsPerBlock;
  rowTile = static_cast<i64>(blockIdx.x) / colTiles;
  colTile = static_cast<i64>(blockIdx.x) % colTiles;
}

__device__ __forceinline__ float qWarpSum(float v) {
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float qWarpMax(float v) {
  for (int o = 16; o > 0; o >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ double qWarpSumD(double v) {
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
template <typename T> __device__ T qBlockSum(T v, T *scratch /* 32 entries */) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if (lane == 0)
    scratch[warp] = v;
  __syncthreads();
  T r = 0;
  for (int w = 0; w < warps; ++w)
    r += scratch[w];
  return r;
}
__device__ float qBlockMax(float v, float *scratch /* 32 entries */) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = qWarpMax(v);
  __syncthreads();
  if (lane == 0)
    scratch[warp] = v;
  __syncthreads();
  float r = scratch[0];
  for (int w = 1; w < warps; ++w)
    r = fmaxf(r, scratch[w]);
  return r;
}

#define QOPT_INF __int_as_float(0x7f800000)
#define QOPT_STATUS_SHAPE 3

// sm_90 and later: thread block clusters and programmatic dependent launch. QOPT_CLUSTER_Y(N) is a wrapper
// attribute giving a kernel clusters of N blocks along grid y, nothing on older architectures (their kernels must
// not rely on it: QOPT_CLUSTERS says which case compiles).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define QOPT_SM90 1
#define QOPT_CLUSTER_Y(N) __cluster_dims__(1, N, 1)
#else
#define QOPT_SM90 0
#define QOPT_CLUSTER_Y(N)
#endif
#define QOPT_CLUSTERS QOPT_SM90

// This block's rank in its cluster, a barrier of the cluster's threads (ordering their shared memory writes before
// the reads that follow), and a float of block `rank`'s shared memory at the address of `local` in this block's;
// without clusters: rank 0, nothing, and the local float.
__device__ __forceinline__ unsigned qClusterRank() {
  unsigned r = 0;
#if QOPT_CLUSTERS
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
#endif
  return r;
}
// The number of blocks in this block's cluster: 1 without clusters or when launched without them.
__device__ __forceinline__ unsigned qClusterSize() {
  unsigned n = 1;
#if QOPT_CLUSTERS
  asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(n));
#endif
  return n;
}
__device__ __forceinline__ void qClusterSync() {
#if QOPT_CLUSTERS
  asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
#endif
}
__device__ __forceinline__ float qClusterLoad(const float *local, unsigned rank) {
#if QOPT_CLUSTERS
  unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(local)), remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(a), "r"(rank));
  float v;
  asm volatile("ld.shared::cluster.f32 %0, [%1];" : "=f"(v) : "r"(remote) : "memory");
  return v;
#else
  return *local;
#endif
}

// A 4- or 8-byte value of block `rank`'s shared memory at the address of `local` in this block's (the local value
// without clusters), and a barrier of the cluster's threads that is the block's barrier where there are no clusters
// (kernels whose blocks form a cluster when the launch asks for one and work alone otherwise).
template <typename T> __device__ __forceinline__ T qClusterRead(const T *local, unsigned rank) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "4- or 8-byte values");
#if QOPT_CLUSTERS
  unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(local)), remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(a), "r"(rank));
  union {
    T v;
    unsigned u4;
    unsigned long long u8;
  } r;
  if constexpr (sizeof(T) == 4)
    asm volatile("ld.shared::cluster.b32 %0, [%1];" : "=r"(r.u4) : "r"(remote) : "memory");
  else
    asm volatile("ld.shared::cluster.b64 %0, [%1];" : "=l"(r.u8) : "r"(remote) : "memory");
  return r.v;
#else
  return *local;
#endif
}
__device__ __forceinline__ void qClusterOrBlockSync() {
#if QOPT_CLUSTERS
  qClusterSync();
#else
  __syncthreads();
#endif
}

// Every wrapper's first statement. On sm_90 the runtime launches kernels with programmatic stream serialization
// (when the module has qopt_waits_for_previous, kernels.cuh), so a kernel's launch is processed and its blocks
// placed while the launch before it finishes: they wait here, before reading anything, for the grids they depend on
// to finish and their writes to be visible. No kernel triggers its dependents early (griddepcontrol.
// launch_dependents): on a Llama-3-8B-shaped rtn4 model that made decode 8% slower (the next grid's waiting blocks
// held the SMs' registers and shared memory while the one-row GEMVs ran), where completion-triggered launches make
// it 1-2% faster than no programmatic launch at all.
__device__ __forceinline__ void qWaitForPrevious() {
#if QOPT_SM90
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
