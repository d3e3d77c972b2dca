//===- Passes.h - qopt's passes and pipelines ------------------------------===//
#ifndef QOPT_PASSES_H
#define QOPT_PASSES_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringMap.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qopt {

struct DeviceKernels; // qopt/Serialize/ModelWriter.h

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

// Registers qopt's dialects (and the func dialect its passes work on) in `registry`.
void registerAllDialects(mlir::DialectRegistry &registry);
// Registers every qopt pass and pipeline with the global pass registry (for qopt-opt and embedders).
void registerAllPasses();

struct CompileOptions {
  std::vector<std::string> maxDims; // NAME=N
  bool raise = true;                // raise norms, activations, rotary, attention; fuse shared-input linears
  bool widenHalf = true;            // compile a float16 / bfloat16 model as float32 (qopt-widen-half)
  int64_t quantBits = 0;            // 0: float; 4 or 8: weight-only quantization
  int64_t groupSize = 128;          // 0: per output channel
  bool symmetric = false;
  bool perTensor = false;           // one scale per weight (rtn and int8 only)
  std::string fp8Format;            // "e4m3" or "e5m2": FP8 weight codes (fp8w, fp8); empty: integer codes
  std::string actScale;             // fp8, w8a8: "static" (calibrated) or "dynamic" activation scales; empty: none
  bool smoothQuant = false;         // SmoothQuant's migration before quantization (w8a8; needs calib)
  double smoothAlpha = 0.5;         // its migration strength
  bool mixed = false;               // per-layer int4 / int8 / float under avgBits (qopt-assign-precision; needs calib)
  double avgBits = 0;               // its budget, bits per weight
  std::string mixedInt4 = "awq";    // how its candidates are measured: as quantized ("awq"; "gptq" with gptq) or
                                    // "rtn" (setInt4Options)
  std::string mixedSensitivity = "kl"; // every candidate's KL through the model, or "scaled": the fewest-bits
                                       // candidate's per group, the others' by their output error
  std::string exclude;              // regex of layers kept in float
  bool quantizeLmHead = false;      // quantize the output head too (kept in float by default)
  bool gptq = false;                // GPTQ instead of round-to-nearest (needs calib)
  double gptqMemory = 4096;         // MB of GPTQ's Hessian sums per run over the calibration data
  bool actOrder = false;            // GPTQ's inputs in decreasing order of diag(H), groups fixed up front (setActOrder)
  bool awq = false;                 // activation-aware scaling + clipping before quantization (needs calib)
  std::string calib, tokenizer;     // calibration data (text or .npy ids) and the tokenizer for text
  int64_t calibSamples = 128, calibSeqLen = 0;
  uint64_t calibSeed = 0;
  std::vector<std::string> cudaArchs; // a CUDA target (sm_90a, sm_80, ...); empty: the CPU
  bool halfWeights = false;           // float layers' weights and embedding tables stored as 16-bit floats
  std::string halfDtype = "f16";      // the 16-bit float (f16, bf16) of 16-bit weights and, on a CUDA target, of
                                      // the tensor cores' operands and 16-bit KV caches (--act-dtype)
  bool tileWeights = false;           // codes of the GPU's few-row products in its tile layout (qopt-tile-weights)
  std::string kvCache = "f32"; // element type of the KV cache state (qopt-kv-state dtype): f32, f16, bf16, fp8,
                               // fp8_e5m2
};

// The bound of sequence-like dims when the user gives none: the model's `qopt.max_sequence` metadata, else the rows
// of its position-embedding table, else kDefaultContextBound (`source` says which, for a note). Works on imported
// (nn.onnx_node) and converted modules.
constexpr int64_t kDefaultContextBound = 2048;
struct ContextBound {
  int64_t value;
  std::string source;
};
ContextBound inferContextBound(mlir::ModuleOp module);

// Reads `NAME=N` entries (the max-dims option of qopt-plan-memory and qopt-kv-state, qopt's --max-dim) into
// `bounds`. An entry `ENTRY:NAME=N` bounds the dim in the function (model.bin entry) named ENTRY only, over an
// unscoped bound of the same name: it is read when `entry` is ENTRY and skipped otherwise (session state, sized
// for every entry, takes unscoped bounds only). Returns false with `error` naming the first malformed entry (N
// must be a positive integer).
bool parseDimBounds(llvm::ArrayRef<std::string> entries, llvm::StringMap<int64_t> &bounds, std::string &error,
                    llvm::StringRef entry = {});
// One such entry: `entry` empty when unscoped. False with `error` when malformed.
struct DimBound {
  std::string entry, name;
  int64_t value = 0;
};
bool parseDimBound(llvm::StringRef kv, DimBound &out, std::string &error);

// Runs a textual pipeline on `module`, e.g.
//   "builtin.module(qopt-quantize-pipeline{scheme=awq4 calib=c.txt tokenizer=t.bin}, func.func(qopt-lower-to-kern))"
// (the form mlir-opt's -pass-pipeline takes; qopt's passes and pipelines must be registered, registerAllPasses).
// A pipeline that does not parse is reported as an error diagnostic on the module; pass failures report their
// own diagnostics.
mlir::LogicalResult runPipeline(mlir::ModuleOp module, llvm::StringRef pipeline);

// For a CUDA target, after qopt-cuda-kernels: compiles the kernel sources recorded on the module
// (kern.cuda_kernels, kern.cuda_archs) with NVRTC into `out` (model.bin's kernels section), caching images under
// `cacheDir` (empty: no cache). A module without kern.cuda_kernels leaves `out` empty. Errors are emitted on the
// module.
mlir::LogicalResult compileCudaKernels(mlir::ModuleOp module, const std::string &cacheDir, DeviceKernels &out);
// The CUDA C++ source compileCudaKernels hands NVRTC for `module` (the kernel templates, then one `extern "C"`
// wrapper per kernel): what `qopt --emit=cuda` prints. An error on the module where it records no kernels.
mlir::LogicalResult cudaKernelSource(mlir::ModuleOp module, std::string &source);

// Fills the quantization fields of `options` from a scheme name (none, int8, fp8w, fp8, w8a8, mixed, rtn4, awq4,
// gptq4, rtn3, awq3, gptq3), a group size (0 = per output channel), a granularity (group, channel, tensor) and
// `gptq` (GPTQ rounding for rtn4, rtn3, int8, fp8w, fp8 and w8a8: gptq4 is rtn4 with it; awq4, awq3 and mixed
// after AWQ's scaling; unset: the scheme's default, on for mixed only), with the rules qopt applies: int8 is per
// channel unless per tensor; awq and gptq need `options.calib` and are group- or channel-wise. Returns false with a
// message naming the offending value.
// After setQuantScheme: `symmetric` int4 (rtn4, awq4, gptq4, mixed; not per tensor) and how mixed precision
// measures its candidates, `mixedInt4` ("" or the scheme's quantizer, awq or with gptq gptq: as quantized; "rtn":
// rounded to nearest). Returns false with a message naming the offending flag.
bool setInt4Options(bool symmetric, llvm::StringRef mixedInt4, CompileOptions &options, std::string &error);
// After setQuantScheme: GPTQ's act-order (inputs rounded in decreasing order of the Hessian's diagonal), which
// needs GPTQ (gptq4, gptq3, --gptq, mixed unless --gptq=false: it measures its candidates so too). Returns false
// with a message.
bool setActOrder(bool actOrder, CompileOptions &options, std::string &error);
// --mixed-sensitivity: kl or scaled, with --quantize=mixed (empty: kl).
bool setMixedSensitivity(llvm::StringRef sensitivity, CompileOptions &options, std::string &error);
bool setQuantScheme(llvm::StringRef scheme, int64_t groupSize, llvm::StringRef granularity,
                    std::optional<bool> gptq, CompileOptions &options, std::string &error);

// The compilation pipeline: convert ONNX nodes, canonicalize, quantize weights (if asked), lower to kern, plan
// memory. It is the quantize pipeline (ending with nn + qnt ops) followed by the lower pipeline (ending with
// planned kern launches, ready for writeModelBin); tools that inspect the quantized module run them separately.
void buildCompilePipeline(mlir::OpPassManager &pm, const CompileOptions &options);
// The raising passes (RMSNorm, GELU, gated MLP, rotary, attention), in order, on canonicalized nn ops; part of the quantize pipeline
// unless CompileOptions::raise is false.
void buildRaisePipeline(mlir::OpPassManager &pm);
void buildQuantizePipeline(mlir::OpPassManager &pm, const CompileOptions &options);
void buildLowerPipeline(mlir::OpPassManager &pm, const CompileOptions &options);

} // namespace qopt

#endif // QOPT_PASSES_H
