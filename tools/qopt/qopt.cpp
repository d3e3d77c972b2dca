//===- qopt.cpp - the compiler driver --------------------------------------===//
//
//   qopt MODEL.onnx [--quantize=none] [--tokenizer FILE] [--max-dim NAME=N ...] -o model.bin
//   qopt MODEL.onnx --emit=nn|kern          print the IR after import (nn) or after planning (kern)
//   qopt MODEL.onnx --target=cuda:ARCH --emit=cuda   print the CUDA C++ source of the model's kernels
//
// A thin shell over importOnnxModel, buildCompilePipeline and writeModelBin: everything it does can be run pass
// by pass with qopt-opt.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/ConstantStorage.h"
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Import/OnnxImporter.h"
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Passes.h"
#include "qopt/QuantReport.h"
#include "qopt/Serialize/ModelWriter.h"
#include "qopt/Codegen/Cuda.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OperationSupport.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassInstrumentation.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <sys/resource.h>
#include <optional>

using namespace mlir;
namespace cl = llvm::cl;

static cl::OptionCategory category("qopt options");
static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.onnx | model.mlir>"), cl::Required, cl::cat(category));
static cl::opt<std::string> outputFile("o", cl::desc("Output model.bin"), cl::value_desc("file"), cl::cat(category));
static cl::opt<std::string> quantize("quantize",
                                     cl::desc("Weight quantization: none (float), rtn4 (int4 group-wise, "
                                              "asymmetric, round-to-nearest), awq4 (rtn4 after AWQ scaling and "
                                              "clipping; needs --calib), gptq4 (int4 group-wise by GPTQ; needs "
                                              "--calib), int8 (int8 per channel, symmetric), fp8w (FP8 weights per "
                                              "channel, float activations; --fp8-format), fp8 (FP8 weights and "
                                              "activations; --act-scale), w8a8 (SmoothQuant, then int8 weights per "
                                              "channel and int8 activations per token; needs --calib; "
                                              "--smooth-alpha), mixed (int4 AWQ + GPTQ, int8 GPTQ or float per "
                                              "layer group by measured sensitivity under --avg-bits; needs "
                                              "--calib); rtn3, awq3, gptq3: the same with 3-bit weights (accuracy "
                                              "studies)"),
                                     cl::init("none"), cl::cat(category));
static cl::opt<std::string> fp8Format("fp8-format",
                                      cl::desc("FP8 format of --quantize=fp8w: e4m3 (E4M3FN, max 448; default) or "
                                               "e5m2 (max 57344, 2 mantissa bits)"),
                                      cl::init(""), cl::cat(category));
static cl::opt<double> avgBits("avg-bits",
                               cl::desc("Average bits per weight of --quantize=mixed over the linear layers, scales "
                                        "included (int4 g128 costs 4.19, int8 8.0x, float 16; e.g. 4.5 or 6)"),
                               cl::init(0.0), cl::cat(category));
static cl::opt<std::string> mixedInt4("mixed-int4",
                                      cl::desc("How --quantize=mixed measures its candidates' sensitivity: as they "
                                               "will be quantized, gptq (int4 by AWQ then GPTQ, int8 by GPTQ; the "
                                               "default) or with --gptq=false awq (int4 by AWQ's scales and clipping, "
                                               "int8 rounded to nearest), or rtn (rounded to nearest: faster, a "
                                               "rougher estimate)"),
                                      cl::init(""), cl::cat(category));
static cl::opt<std::string> mixedSensitivity(
    "mixed-sensitivity",
    cl::desc("How --quantize=mixed measures sensitivity: kl (each candidate's KL through the model; the default) "
             "or scaled (one candidate per layer group through the model, the others' KL scaled by their output "
             "error on the calibration rows: a run per group instead of one per candidate)"),
    cl::init(""), cl::cat(category));
static cl::opt<std::string> actScale("act-scale",
                                     cl::desc("Activation scales of --quantize=fp8 and w8a8: static (one per layer "
                                              "input, from calibration; needs --calib; fp8's default) or dynamic "
                                              "(per row, at run time; w8a8's default)"),
                                     cl::init(""), cl::cat(category));
static cl::opt<bool> symmetricInt4("symmetric",
                                   cl::desc("Symmetric int4 weights (rtn4, awq4, gptq4, mixed): codes -7..7 with one "
                                            "scale per group and no zero point, 4 + 16 / group bits per weight "
                                            "instead of 4 + 24 / group (int8 and FP8 always are)"),
                                   cl::init(false), cl::cat(category));
static cl::opt<bool> gptqRounding("gptq",
                                  cl::desc("Round the weights with GPTQ (each input's rounding error compensated in "
                                           "the inputs not yet rounded, through the calibrated Hessian) instead of "
                                           "to nearest: with rtn4, rtn3, int8, fp8w, fp8 and w8a8, with awq4 and "
                                           "awq3 after AWQ's scaling and clipping, and with mixed (its int4 "
                                           "layers after AWQ's; mixed's default, --gptq=false for AWQ's int4 and "
                                           "int8 rounded to nearest); needs --calib (gptq4 and gptq3 are rtn4 and "
                                           "rtn3 with it)"),
                                  cl::cat(category));
static cl::opt<double> smoothAlpha("smooth-alpha",
                                   cl::desc("SmoothQuant's migration strength of --quantize=w8a8, in [0, 1] "
                                            "(default 0.5; larger moves more of the activations' range into the "
                                            "weights)"),
                                   cl::init(-1.0), cl::cat(category));
static cl::opt<int64_t> groupSize("group-size",
                                  cl::desc("Inputs per scale group (default 128; 0 = per output channel)"),
                                  cl::init(128), cl::cat(category));
static cl::opt<std::string> granularity("granularity",
                                        cl::desc("Scale granularity: group (default; --group-size inputs per "
                                                 "scale), channel (one per output channel), tensor (one per "
                                                 "weight; rtn and int8 only)"),
                                        cl::init("group"), cl::cat(category));
static cl::opt<std::string> calibFile("calib", cl::desc("Calibration data: text (needs --tokenizer) or .npy ids"),
                                      cl::value_desc("file"), cl::cat(category));
static cl::opt<int64_t> calibSamples("calib-samples", cl::desc("Calibration windows (default 128)"), cl::init(128),
                                     cl::cat(category));
static cl::opt<int64_t> calibSeqLen("calib-seq-len",
                                    cl::desc("Tokens per calibration window (default min(512, model max))"),
                                    cl::init(0), cl::cat(category));
static cl::opt<uint64_t> calibSeed("calib-seed", cl::desc("Seed of the calibration window choice"), cl::init(0),
                                   cl::cat(category));
static cl::opt<bool> actOrder("act-order",
                              cl::desc("GPTQ's act-order: round the inputs in decreasing order of the Hessian's "
                                       "diagonal (each group's scale and zero fixed from the weights up front); "
                                       "with gptq4, gptq3 or --gptq"),
                              cl::cat(category));
static cl::opt<double> gptqMemory("gptq-memory",
                                   cl::desc("MB of GPTQ's Hessian sums (K x K floats per layer input) measured per "
                                            "run over the calibration data: less memory, more runs (default 4096)"),
                                   cl::init(4096), cl::value_desc("MB"), cl::cat(category));
static cl::opt<std::string> exclude("exclude", cl::desc("Regex of weight or node names kept in float (the output "
                                                      "head is kept in float without it: --quantize-lm-head)"),
                                    cl::init(""), cl::cat(category));
static cl::opt<bool> quantizeLmHead("quantize-lm-head",
                                    cl::desc("Quantize the output head (the linear layer producing the logits; "
                                             "kept in float by default)"),
                                    cl::cat(category));
static cl::opt<std::string> tokenizerFile("tokenizer", cl::desc("Tokenizer to embed (llama2.c tokenizer.bin)"),
                                          cl::value_desc("file"), cl::cat(category));
static cl::list<std::string> maxDims("max-dim",
                                     cl::desc("Bound of a dynamic input dim, by its ONNX name (repeatable); "
                                              "defaults: batch=1, other dims the model's context bound (its qopt.max_sequence "
                                              "metadata, its position-embedding rows, else 2048). ENTRY:NAME=N bounds it "
                                              "in one model.bin entry only (its activation plan; e.g. "
                                              "prefill:sequence=512 scores in chunks while prefill_last takes whole prompts)"),
                                     cl::value_desc("[ENTRY:]NAME=N"), cl::cat(category));
static cl::opt<std::string> emit("emit", cl::desc("Print instead of writing model.bin: the IR, nn (after import, "
                                                  "conversion and raising) or kern (after lowering and planning), or "
                                                  "cuda: the CUDA C++ source that NVRTC compiles for a CUDA target "
                                                  "(the kernel templates, then one extern \"C\" wrapper per kernel)"),
                                 cl::value_desc("nn|kern|cuda"), cl::cat(category));
static cl::opt<bool> emitWeights("emit-weights",
                                 cl::desc("With --emit, print weights in full (re-parsable by qopt-opt) instead of "
                                          "eliding them"),
                                 cl::cat(category));
static cl::opt<std::string> reportFile("report",
                                       cl::desc("Write a JSON report: per linear layer its format, method, size "
                                                "and quantization error; pass times (docs/report.md)"),
                                       cl::value_desc("file.json"), cl::cat(category));
static cl::opt<bool> raise("raise",
                           cl::desc("Raise norms, activations, rotary embeddings and attention to fused ops and run "
                                    "linear layers that share an input as one launch (default true; --raise=false "
                                    "keeps the imported graph's decomposition)"),
                           cl::init(true), cl::cat(category));
static cl::opt<bool> timing("time", cl::desc("Print the time and peak resident memory of each step"),
                            cl::cat(category));
static cl::opt<std::string> target("target",
                                   cl::desc("Where the model runs: cpu (default), or cuda:ARCH[,ARCH...] (e.g. "
                                            "cuda:sm_90a,sm_80): CUDA kernels generated into model.bin (needs "
                                            "NVRTC from a CUDA toolkit); qrun runs either on the CPU too"),
                                   cl::init("cpu"), cl::cat(category));
static cl::opt<std::string> actDtype("act-dtype",
                                     cl::desc("A CUDA target's 16-bit float, the type activations are rounded to "
                                              "for the tensor cores and of its 16-bit weights and KV cache: f16 "
                                              "(the default) or bf16 (float32's range, for models whose "
                                              "activations exceed float16's 65504; 8 significant bits, not 11)"),
                                     cl::init(""), cl::cat(category));
static cl::opt<std::string> kvCache("kv-cache",
                                    cl::desc("Element type of a decoder's KV cache state: f16 or bf16 (the default "
                                             "for a CUDA target, its --act-dtype: half the bytes, keys and values "
                                             "rounded as they are stored, prompt attention streams it into the "
                                             "tensor cores) or f32 (the default for the CPU); fp8 (E4M3) or "
                                             "fp8_e5m2: a quarter of f32's bytes, per-kv-head scales from "
                                             "calibration (needs --calib)"),
                                    cl::init(""), cl::cat(category));
static cl::opt<std::string> floatWeights("float-weights",
                                         cl::desc("How float layers' weights and embedding tables are stored: f16 "
                                                  "or bf16 (the default for a CUDA target, its --act-dtype) or f32 "
                                                  "(the default for the CPU)"),
                                         cl::init(""), cl::cat(category));
static cl::opt<std::string> weightLayout("weight-layout",
                                         cl::desc("How quantized weights' bytes are ordered: tiles (the default for a "
                                                  "CUDA target: the order the GPU's decode kernels read them in, "
                                                  "qopt-tile-weights) or rows (the default for the CPU)"),
                                         cl::init(""), cl::cat(category));

namespace {

// Bounds of the dynamic input dims: the user's --max-dim, else 1 for batch dims and the model's context bound
// (qopt::inferContextBound) for every other named dim, with a note saying where that bound came from. A --max-dim
// that names no input dim is an error (a typo would otherwise leave the default in place silently).
std::optional<std::vector<std::string>> resolveMaxDims(ModuleOp module) {
  std::vector<std::string> out(maxDims.begin(), maxDims.end());
  llvm::StringSet<> given, named; // unscoped names (no default then), and every name, ENTRY: stripped
  for (const auto &kv : out) {
    qopt::DimBound d;
    std::string error;
    if (!qopt::parseDimBound(kv, d, error)) {
      llvm::errs() << "qopt: error: " << error << "\n";
      return std::nullopt;
    }
    if (d.entry.empty())
      given.insert(d.name);
    named.insert(d.name);
  }
  llvm::SetVector<StringRef> names; // every named dynamic dim of the inputs, in order
  for (auto func : module.getOps<func::FuncOp>())
    for (unsigned i = 0; i < func.getNumArguments(); ++i)
      if (auto dims = func.getArgAttrOfType<ArrayAttr>(i, "nn.dims"))
        for (Attribute a : dims)
          if (!cast<StringAttr>(a).getValue().empty())
            names.insert(cast<StringAttr>(a).getValue());
  for (const auto &g : named)
    if (!names.contains(g.getKey())) {
      std::string known;
      for (StringRef n : names)
        known += (known.empty() ? "" : ", ") + n.str();
      llvm::errs() << "qopt: error: --max-dim " << g.getKey() << ": no input has a dynamic dim named '"
                   << g.getKey() << "' (" << (known.empty() ? "the inputs have no named dynamic dims" : "named dims: " + known)
                   << ")\n";
      return std::nullopt;
    }
  std::optional<qopt::ContextBound> bound;
  std::string defaulted;
  for (StringRef n : names) {
    if (given.contains(n))
      continue;
    if (n == "batch" || n == "batch_size") {
      out.push_back(n.str() + "=1");
      continue;
    }
    if (!bound)
      bound = qopt::inferContextBound(module);
    out.push_back(n.str() + "=" + std::to_string(bound->value));
    defaulted += (defaulted.empty() ? "'" : ", '") + n.str() + "'";
  }
  if (bound)
    llvm::errs() << "qopt: note: dims " << defaulted << " bounded at " << bound->value << " from " << bound->source
                 << "; --max-dim NAME=N sets another bound\n";
  return out;
}

// Each ENTRY of an `ENTRY:NAME=N` --max-dim names a function of the compiled module (a model.bin entry): the
// entries exist only once lowering has made them, so a typo is caught here rather than ignored.
bool checkScopedEntries(ModuleOp module) {
  for (const std::string &kv : maxDims) {
    qopt::DimBound d;
    std::string error;
    if (!qopt::parseDimBound(kv, d, error) || d.entry.empty() || module.lookupSymbol<func::FuncOp>(d.entry))
      continue; // malformed ones were refused before the compile
    const std::string &entry = d.entry;
    std::string known;
    for (auto f : module.getOps<func::FuncOp>())
      known += (known.empty() ? "" : ", ") + f.getSymName().str();
    llvm::errs() << "qopt: error: --max-dim " << kv << ": the compiled model has no entry '" << entry
                 << "' (entries: " << known << ")\n";
    return false;
  }
  return true;
}

// Wall time of each pass, summed by pass argument, in first-run order. Pass managers' adaptors (the nesting of
// function passes) have no argument and are not counted.
struct PassTimer : PassInstrumentation {
  std::vector<qopt::PassTime> &times;
  std::vector<std::chrono::steady_clock::time_point> started;
  explicit PassTimer(std::vector<qopt::PassTime> &t) : times(t) {}
  void runBeforePass(Pass *pass, Operation *) override {
    if (!pass->getArgument().empty())
      started.push_back(std::chrono::steady_clock::now());
  }
  void runAfterPass(Pass *pass, Operation *) override { record(pass); }
  void runAfterPassFailed(Pass *pass, Operation *) override { record(pass); }
  void record(Pass *pass) {
    if (pass->getArgument().empty() || started.empty())
      return;
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started.back()).count();
    started.pop_back();
    std::string name = pass->getArgument().str();
    for (qopt::PassTime &t : times)
      if (t.pass == name) {
        t.seconds += s;
        return;
      }
    times.push_back({name, s});
  }
};

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(argc, argv, "qopt: quantizing compiler for neural networks\n");
  qopt::CompileOptions opts;
  opts.calib = calibFile;
  opts.tokenizer = tokenizerFile;
  opts.calibSamples = calibSamples;
  opts.calibSeqLen = calibSeqLen;
  opts.calibSeed = calibSeed;
  opts.gptqMemory = gptqMemory;
  opts.exclude = exclude;
  opts.raise = raise;
  opts.quantizeLmHead = quantizeLmHead;
  std::string schemeError;
  // --gptq unset: the scheme's default (on for mixed); --gptq=false turns it off there.
  const std::optional<bool> gptq =
      gptqRounding.getNumOccurrences() ? std::optional<bool>(gptqRounding) : std::nullopt;
  if (!qopt::setQuantScheme(quantize, groupSize, granularity, gptq, opts, schemeError)) {
    llvm::errs() << "qopt: error: " << schemeError << "\n";
    return 1;
  }
  if (!fp8Format.empty()) {
    if (opts.fp8Format.empty() || (fp8Format != "e4m3" && fp8Format != "e5m2")) {
      llvm::errs() << "qopt: error: --fp8-format must be e4m3 or e5m2, with --quantize=fp8w or fp8\n";
      return 1;
    }
    opts.fp8Format = fp8Format;
  }
  if (!actScale.empty()) {
    if (opts.actScale.empty() || (actScale != "static" && actScale != "dynamic")) {
      llvm::errs() << "qopt: error: --act-scale must be static or dynamic, with --quantize=fp8 or w8a8\n";
      return 1;
    }
    opts.actScale = actScale;
  }
  if (opts.actScale == "static" && opts.calib.empty()) {
    llvm::errs() << "qopt: error: --quantize=" << quantize << " with static activation scales needs calibration data: "
                    "pass --calib FILE (or --act-scale=dynamic)\n";
    return 1;
  }
  if (gptqMemory.getNumOccurrences() && (!opts.gptq || !(gptqMemory > 0))) {
    llvm::errs() << "qopt: error: --gptq-memory takes a positive number of MB, with GPTQ (--quantize=gptq4 or "
                    "gptq3, or --gptq)\n";
    return 1;
  }
  if (opts.mixed != (avgBits.getNumOccurrences() > 0) || (opts.mixed && !(avgBits > 0))) {
    llvm::errs() << "qopt: error: --quantize=mixed takes its budget from --avg-bits B (bits per weight, e.g. 4.5), "
                    "and --avg-bits needs --quantize=mixed\n";
    return 1;
  }
  opts.avgBits = avgBits;
  if (std::string err; !qopt::setInt4Options(symmetricInt4, mixedInt4, opts, err) ||
                       !qopt::setActOrder(actOrder, opts, err) ||
                       !qopt::setMixedSensitivity(mixedSensitivity, opts, err)) {
    llvm::errs() << "qopt: error: " << err << "\n";
    return 1;
  }
  if (smoothAlpha.getNumOccurrences()) {
    if (!opts.smoothQuant || !(smoothAlpha >= 0.0 && smoothAlpha <= 1.0)) {
      llvm::errs() << "qopt: error: --smooth-alpha must be in [0, 1], with --quantize=w8a8\n";
      return 1;
    }
    opts.smoothAlpha = smoothAlpha;
  }
  if (target != "cpu") {
    std::string targetError;
    if (!qopt::codegen::parseCudaTarget(target, opts.cudaArchs, targetError)) {
      llvm::errs() << "qopt: error: --target: " << targetError << "\n";
      return 1;
    }
  }
  if (!actDtype.empty() && actDtype != "f16" && actDtype != "bf16") {
    llvm::errs() << "qopt: error: --act-dtype must be f16 or bf16\n";
    return 1;
  }
  if (!actDtype.empty() && opts.cudaArchs.empty()) {
    llvm::errs() << "qopt: error: --act-dtype is a CUDA target's choice (the CPU computes in float32): pass "
                    "--target=cuda:ARCH\n";
    return 1;
  }
  opts.halfDtype = actDtype.empty() ? "f16" : actDtype.getValue();
  if (!floatWeights.empty() && floatWeights != "f16" && floatWeights != "bf16" && floatWeights != "f32") {
    llvm::errs() << "qopt: error: --float-weights must be f16, bf16 or f32\n";
    return 1;
  }
  // A CUDA target's kernels read 16-bit weights and caches as their operands' type: they must be that type (the
  // CPU reads either).
  auto halfMatches = [&](const char *option, const std::string &value) {
    if (opts.cudaArchs.empty() || (value != "f16" && value != "bf16") || value == opts.halfDtype)
      return true;
    llvm::errs() << "qopt: error: --" << option << "=" << value << " differs from --act-dtype=" << opts.halfDtype
                 << ": a CUDA target's 16-bit weights and caches are its tensor cores' operand type\n";
    return false;
  };
  if (!halfMatches("float-weights", floatWeights))
    return 1;
  opts.halfWeights = floatWeights.empty() ? !opts.cudaArchs.empty() : floatWeights != "f32";
  if (opts.cudaArchs.empty() && floatWeights == "bf16")
    opts.halfDtype = "bf16";
  if (!weightLayout.empty() && weightLayout != "tiles" && weightLayout != "rows") {
    llvm::errs() << "qopt: error: --weight-layout must be tiles or rows\n";
    return 1;
  }
  opts.tileWeights = weightLayout.empty() ? !opts.cudaArchs.empty() : weightLayout == "tiles";
  if (!kvCache.empty() && kvCache != "f32" && kvCache != "f16" && kvCache != "bf16" && kvCache != "fp8" &&
      kvCache != "fp8_e5m2") {
    llvm::errs() << "qopt: error: --kv-cache must be f32, f16, bf16, fp8 or fp8_e5m2\n";
    return 1;
  }
  if (!halfMatches("kv-cache", kvCache))
    return 1;
  if ((kvCache == "fp8" || kvCache == "fp8_e5m2") && opts.calib.empty()) {
    llvm::errs() << "qopt: error: --kv-cache=" << kvCache << " needs calibration data (each cache's range per kv "
                 << "head): pass --calib FILE\n";
    return 1;
  }
  opts.kvCache = !kvCache.empty() ? kvCache.getValue() : !opts.cudaArchs.empty() ? opts.halfDtype : "f32";
  if (emit.empty() && outputFile.empty()) {
    llvm::errs() << "qopt: error: no output: pass -o model.bin or --emit=nn|kern|cuda\n";
    return 1;
  }
  if (!emit.empty() && emit != "nn" && emit != "kern" && emit != "cuda") {
    llvm::errs() << "qopt: error: --emit must be nn, kern or cuda\n";
    return 1;
  }
  if (emit == "cuda" && opts.cudaArchs.empty()) {
    llvm::errs() << "qopt: error: --emit=cuda prints the kernels of a CUDA target: pass --target=cuda:ARCH[,ARCH...]\n";
    return 1;
  }
  DialectRegistry registry;
  qopt::registerAllDialects(registry);
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  ctx.disableMultithreading();
  // Diagnostics print as "file: error: message" with the ONNX node name as location.
  ScopedDiagnosticHandler handler(&ctx, [](Diagnostic &d) {
    std::string loc;
    llvm::raw_string_ostream os(loc);
    if (auto nl = dyn_cast<NameLoc>(d.getLocation()))
      os << "node '" << nl.getName().getValue() << "': ";
    else if (auto fl = dyn_cast<FileLineColLoc>(d.getLocation()))
      os << fl.getFilename().getValue() << ": ";
    const char *sev = d.getSeverity() == DiagnosticSeverity::Error ? "error" : "note";
    llvm::errs() << "qopt: " << sev << ": " << loc << d.str() << "\n";
    return success();
  });

  auto t0 = std::chrono::steady_clock::now();
  auto step = [&](const char *what) {
    if (timing) {
      auto t1 = std::chrono::steady_clock::now();
      // Memory: the process's peak resident set so far (ru_maxrss, KB on Linux; it counts the pages of mmapped
      // external weights that were read, which the kernel can drop again), the anonymous part now (what only swap
      // could free; /proc/self/status where there is one) and the file-backed constants alive.
      struct rusage usage = {};
      getrusage(RUSAGE_SELF, &usage);
      llvm::errs() << "qopt: " << what << " " << std::chrono::duration<double>(t1 - t0).count() << " s, peak "
                   << usage.ru_maxrss / 1024 << " MB resident";
      if (auto status = llvm::MemoryBuffer::getFileAsStream("/proc/self/status")) {
        StringRef rest = (*status)->getBuffer();
        size_t at = rest.find("RssAnon:");
        unsigned long long kb = 0;
        if (at != StringRef::npos && !rest.substr(at + 8).ltrim().consumeInteger(10, kb))
          llvm::errs() << " (" << kb / 1024 << " MB anonymous now)";
      }
      // The constants the passes made that live in temporary files (ConstantStorage.h): memory the system can
      // write back.
      llvm::errs() << ", " << qopt::nn::fileBackedConstantBytes() / 1048576 << " MB of weights in temporary files";
      llvm::errs() << "\n";
      t0 = t1;
    }
  };
  // An .mlir input is a module in qopt's dialects (what --emit=nn prints, or another frontend's output).
  OwningOpRef<ModuleOp> module = StringRef(inputFile).ends_with(".mlir")
                                     ? parseSourceFile<ModuleOp>(inputFile, &ctx)
                                     : qopt::importOnnxModel(&ctx, inputFile);
  if (!module)
    return 1;
  step("import");

  qopt::QuantReport report;
  report.scheme = quantize;
  report.groupSize = opts.perTensor ? -1 : opts.groupSize;
  report.source = inputFile;
  if (emit == "nn") {
    // The graph as quantization sees it: converted (a 16-bit float model widened, as the pipeline does) and, unless
    // --raise=false, canonicalized and raised.
    PassManager pm(&ctx);
    pm.addNestedPass<func::FuncOp>(qopt::createConvertOnnxPass());
    if (opts.widenHalf)
      pm.addNestedPass<func::FuncOp>(qopt::createWidenHalfPass());
    if (opts.raise) {
      pm.addNestedPass<func::FuncOp>(mlir::createCanonicalizerPass());
      pm.addNestedPass<func::FuncOp>(mlir::createCSEPass());
      pm.addNestedPass<func::FuncOp>(qopt::createRefineShapesPass());
      qopt::buildRaisePipeline(pm);
    }
    if (failed(pm.run(*module)))
      return 1;
  } else {
    auto dims = resolveMaxDims(*module);
    if (!dims)
      return 1;
    opts.maxDims = std::move(*dims);
    // Quantize, take the report from the nn/qnt module, then lower.
    PassManager quant(&ctx), lower(&ctx);
    quant.addInstrumentation(std::make_unique<PassTimer>(report.passes));
    lower.addInstrumentation(std::make_unique<PassTimer>(report.passes));
    qopt::buildQuantizePipeline(quant, opts);
    qopt::buildLowerPipeline(lower, opts);
    if (failed(quant.run(*module)))
      return 1;
    // "Before" is this same module with its linear layers in f32 (import-time folding has changed other
    // constants since the file was read, so the input's size would not compare like with like).
    report.layers = qopt::collectLayerReports(*module);
    report.weightBytesAfter = report.weightBytesBefore = qopt::constantBytes(*module);
    for (const qopt::LayerReport &l : report.layers)
      report.weightBytesBefore += l.floatBytes - l.bytes;
    if (failed(lower.run(*module)))
      return 1;
    if (!checkScopedEntries(*module))
      return 1;
  }
  step("compile");
  if (emit.empty() && opts.quantBits)
    qopt::printQuantSummary(report, llvm::errs());
  if (!reportFile.empty()) {
    std::error_code ec;
    llvm::raw_fd_ostream os(reportFile, ec);
    if (ec) {
      llvm::errs() << "qopt: error: cannot write report '" << reportFile << "': " << ec.message() << "\n";
      return 1;
    }
    qopt::writeQuantReportJson(report, os);
  }

  if (emit == "cuda") {
    std::string source;
    if (failed(qopt::cudaKernelSource(*module, source)))
      return 1;
    llvm::outs() << source;
    return 0;
  }
  if (!emit.empty()) {
    OpPrintingFlags flags;
    if (!emitWeights) {
      flags.elideLargeElementsAttrs(16);
      flags.elideLargeResourceString(64);
    }
    flags.enableDebugInfo(/*enable=*/true, /*prettyForm=*/false);
    module->print(llvm::outs(), flags);
    llvm::outs() << "\n";
    return 0;
  }
  qopt::ModelWriteOptions wopts;
  wopts.releaseWeights = true; // (nothing reads them after)
  if (auto meta = (*module)->getAttrOfType<DictionaryAttr>("nn.metadata"))
    for (NamedAttribute na : meta)
      if (auto s = dyn_cast<StringAttr>(na.getValue()))
        wopts.metadata[na.getName().str()] = s.str();
  wopts.metadata["qopt.quantize"] = quantize;
  wopts.metadata["qopt.source"] = llvm::sys::path::filename(inputFile).str();
  auto func = *module->getOps<func::FuncOp>().begin();
  if (!tokenizerFile.empty()) {
    auto buf = llvm::MemoryBuffer::getFile(tokenizerFile, /*IsText=*/false);
    if (!buf) {
      llvm::errs() << "qopt: error: " << tokenizerFile << ": cannot read tokenizer: " << buf.getError().message()
                   << "\n";
      return 1;
    }
    wopts.tokenizer.assign((*buf)->getBufferStart(), (*buf)->getBufferEnd());
    wopts.metadata["tokenizer.format"] = "llama2c";
    // The vocabulary is the logits' last dim.
    for (unsigned i = 0; i < func.getNumResults(); ++i) {
      auto name = func.getResultAttrOfType<StringAttr>(i, "nn.name");
      auto type = dyn_cast<RankedTensorType>(func.getResultTypes()[i]);
      if (name && name.getValue() == "logits" && type && type.getRank() > 0 && !type.isDynamicDim(type.getRank() - 1))
        wopts.metadata["tokenizer.vocab_size"] = std::to_string(type.getShape().back());
    }
  }
  if (!opts.cudaArchs.empty()) {
    if (failed(qopt::compileCudaKernels(*module, qopt::codegen::defaultCudaCacheDir(), wopts.kernels)))
      return 1;
    step("cuda");
  }
  // Weights the passes made of 1 MiB or more went to memory instead of temporary files (ConstantStorage.h): a large
  // model then needs its copies' bytes of memory.
  if (qopt::nn::constantFilesFailed())
    llvm::errs() << "qopt: note: no temporary file could be made under " << qopt::nn::constantFileDirectory()
                 << " (no such directory, or no space): the weights the compiler made are held in memory; set "
                    "TMPDIR to a directory with room\n";
  if (failed(qopt::writeModelBin(*module, outputFile, wopts)))
    return 1;
  step("write");
  // Per entry, what a session runs and allocates besides the weights: the kernel launches of one run (views are
  // none, and shape arithmetic runs on the host), the activation arena (sized for the bounds of the dynamic dims)
  // and the state kept between runs (the KV cache at the context bound, shared by the entries).
  int64_t largest = -1, entries = 0;
  StringRef largestEntry;
  for (auto f : module->getOps<func::FuncOp>()) {
    auto bytesAttr = [&](StringRef key) {
      auto a = f->getAttrOfType<IntegerAttr>(key);
      return a ? a.getInt() : 0;
    };
    ++entries;
    if (bytesAttr("kern.arena_bytes") > largest)
      largest = bytesAttr("kern.arena_bytes"), largestEntry = f.getSymName();
    int64_t launches = 0, host = 0;
    f.walk([&](qopt::kern::LaunchOp l) {
      host += l->hasAttr("host") ? 1 : 0;
      launches += l->hasAttr("view") || l->hasAttr("host") ? 0 : 1;
    });
    llvm::errs() << "qopt: entry '" << f.getSymName() << "': " << launches << " launches per run, activation arena "
                 << bytesAttr("kern.arena_bytes") << " bytes, state " << bytesAttr("kern.state_bytes") << " bytes, "
                 << host << " host instructions\n";
  }
  // A session's arena serves every entry: the largest (--max-dim ENTRY:NAME=N bounds one entry's).
  if (entries > 1)
    llvm::errs() << "qopt: a session's activation arena: " << largest << " bytes (entry '" << largestEntry
                 << "', the largest)\n";
  return 0;
}
