//===- Cuda.h - CUDA code generation for kern launches ---------------------===//
//
// The compiler's side of the CUDA backend. For a kern launch on a CUDA target, instantiateCudaKernel picks a
// kernel template (lib/Codegen/cuda/kernels.cuh) and specializes it with the launch's attributes, dtypes and
// static dims: the result is a symbol, its CUDA source (an `extern "C"` wrapper over the template) and its launch
// geometry, which model.bin records next to the symbol so that the runtime launches any kernel without knowing
// its family. A launch no template covers runs on the host at run time (the runtime's fallback).
// compileCuda turns the sources into a cubin per architecture plus PTX with NVRTC, opened with dlopen, so qopt
// builds and runs without a CUDA toolkit and needs one only for `--target=cuda:...`; results are cached by
// content hash.
//
// No MLIR here: the pass (passes/CudaKernels.cpp) describes each launch with plain structures.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_CODEGEN_CUDA_H
#define QOPT_CODEGEN_CUDA_H

#include "qopt/Numerics/Tensor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qopt::codegen {

// One operand of a launch: its dtype and shape (-1 for a dynamic dim), or absent.
struct OperandDesc {
  num::DType dtype = num::DType::Undefined;
  std::vector<int64_t> shape;
  bool absent = false;
};

// A matrix-vector kernel's choices that the compiler otherwise derives from the shapes (0: derive), for measuring
// others (qopt-gpu-kernel-check --tune): warps per block (qGemvRow, qGemvMma, qGemvHalf); tiles: 16-row tiles per
// block (qGemvRow) or pairs of weight rows per warp (qGemvHalf: 1, 2 or 4); blocks per SM the registers are capped
// for, chunks per batch of loads in flight (qGemvRow; qGemvHalf 1-4), whether a row group's lanes share the scale
// loads of chunks in one scale group (groups: 1 yes where they can, -1 no), and the groups of warps that take tiles
// side by side (the rest of the warps split K; qGemvRow); whether one row of float16 weights takes x as float16
// hi + lo, float32-accurate (exact: 1 yes, -1 no, x rounded to float16; qGemvHalf).
struct GemvTuning {
  int tiles = 0, warps = 0, blocksPerSm = 0, batch = 0, groups = 0, warpTiles = 0, exact = 0;
  int staged = 0, slices = 0; // a few rows of x: qGemvStaged (1) or qGemvMma (-1); K slices per product (decode
                              // attention: key slices, 1 to 32)
  int half = 0;               // one row of FP8 codes: qGemvHalf's whole-row loads (1) or qGemvRow (0, -1)
  int cvt = 0;  // FP8 codes (qGemvHalf, qGemvRow, qGemvMma, qGemvStaged) to 16-bit floats by the hardware
                // conversion of sm_89+ (0 or 1) or by bit moves (-1)
  int pipe = 0; // qGemvHalf's batches of weight loads in flight: 1, or 2 (the next loaded before the current's math)
  int split = 0; // qGemvStaged's K slices meet in the launch's scratch (1) or, on sm_90, in a cluster (-1); 0: the
                 // layout rule's choice (sm_80 always the scratch)
};

struct LaunchDesc {
  std::string family;
  const num::Attrs *attrs = nullptr;
  std::vector<OperandDesc> inputs, results;
  const GemvTuning *tuning = nullptr;
  // The launch's result is a function result, directly or through casts (a model's output head: its logits decide
  // the greedy token, so its one-row float16 product takes x float32-accurate; qGemvHalf).
  bool outputHead = false;
  // The module's 16-bit float is bfloat16 (--act-dtype=bf16; compileCuda's `bf16`): the tensor cores' operands,
  // 16-bit weights, embedding tables and KV caches are bfloat16, not float16.
  bool bf16 = false;
};

// How the runtime launches a kernel (model.bin's kernels section). gridDim.x covers operand `geometryOperand`
// (an index into inputs then results): its rows (all dims but the last) in tiles of rowsPerBlock, times its cols
// (the last dim, or `cols` when non-zero) in tiles of colsPerBlock; `flat` counts all its elements as cols;
// `planes` tiles the rows of each plane (all dims but the last two) separately, so that no tile straddles two.
struct KernelGeometry {
  uint32_t block = 256;
  uint32_t gridY = 1;
  uint32_t rowsPerBlock = 1;
  uint32_t colsPerBlock = 1;
  uint64_t cols = 0;
  uint32_t sharedBytes = 0;
  uint32_t geometryOperand = 0;
  bool flat = false;
  bool planes = false;
};

struct CudaKernel {
  std::string symbol; // unique per specialization (family, attributes, dtypes, static dims)
  std::string source; // the wrapper: `extern "C" __global__ void symbol(const QParams p) { ... }`
  KernelGeometry geometry;
};

// Returns true and fills `out` when a template implements the launch; otherwise false with `why` saying what
// is not covered (the launch then runs on the host).
bool instantiateCudaKernel(const LaunchDesc &launch, CudaKernel &out, std::string &why);

// The source every wrapper compiles against (the ABI prelude and the templates).
const std::string &cudaTemplateSource();
// The whole CUDA C++ source of a module's kernels, as compileCuda hands it to NVRTC: the templates, then
// `wrappers`; `bf16` defines QOPT_BF16 first.
std::string cudaModuleSource(const std::string &wrappers, bool bf16);

// FNV-1a (64 bits) of `text`, continuing from `seed`: names kernel specializations and cached images.
uint64_t contentHash(const std::string &text, uint64_t seed = 1469598103934665603ull);

// "cuda:sm_90a,sm_80" -> {"sm_90a", "sm_80"}; false with `error` for anything else.
bool parseCudaTarget(const std::string &target, std::vector<std::string> &archs, std::string &error);

struct CudaImage {
  std::string arch;   // "sm_90a", or "compute_80" for PTX
  uint8_t format = 0; // 1 cubin, 2 PTX
  std::vector<uint8_t> bytes;
};
constexpr uint8_t kCubin = 1, kPtx = 2;

// Compiles the template source plus `wrappers` once per architecture (a cubin each) and, with `ptx`, once as PTX
// for the oldest one (for GPUs newer than every cubin). Uses NVRTC (libnvrtc.so from the CUDA toolkit); caches
// each image under `cacheDir` (empty: no cache) by the hash of its source, architecture and NVRTC version. `log`
// gets the compiler's messages on failure.
// `bf16` compiles the module for bfloat16 operands (QOPT_BF16; LaunchDesc::bf16).
bool compileCuda(const std::string &wrappers, const std::vector<std::string> &archs, const std::string &cacheDir,
                 std::vector<CudaImage> &images, std::string &error, bool ptx = true, bool bf16 = false);

// Where compiled images are cached by default: $QOPT_CACHE_DIR/cuda, else $XDG_CACHE_HOME/qopt/cuda, else
// ~/.cache/qopt/cuda (empty without a home).
std::string defaultCudaCacheDir();

} // namespace qopt::codegen

#endif // QOPT_CODEGEN_CUDA_H
