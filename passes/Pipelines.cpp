//===- Pipelines.cpp - registration and qopt's pass pipelines --------------===//
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Dialect/Qnt/QntDialect.h"
#include "qopt/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

namespace qopt {

void registerAllDialects(DialectRegistry &registry) {
  registry.insert<nn::NNDialect, qnt::QntDialect, kern::KernDialect, func::FuncDialect>();
}

LogicalResult runPipeline(ModuleOp module, StringRef pipeline) {
  std::string error;
  llvm::raw_string_ostream os(error);
  FailureOr<OpPassManager> parsed = parsePassPipeline(pipeline, os);
  if (failed(parsed))
    return module.emitError() << "cannot parse pipeline '" << pipeline << "': " << error;
  PassManager pm(module.getContext(), parsed->getOpAnchorName());
  static_cast<OpPassManager &>(pm) = *parsed;
  return pm.run(module);
}

bool setInt4Options(bool symmetric, StringRef mixedInt4, CompileOptions &options, std::string &error) {
  if (symmetric && (options.quantBits != 4 || options.perTensor)) {
    error = "--symmetric applies to rtn4, awq4, gptq4 and mixed (int8 and FP8 weights are symmetric; int3 is "
            "asymmetric; not with --granularity=tensor)";
    return false;
  }
  options.symmetric = symmetric;
  const std::string quantizer = options.gptq ? "gptq" : "awq"; // mixed's int4 (and with gptq int8) quantizer
  if (!mixedInt4.empty() && (!options.mixed || (mixedInt4 != quantizer && mixedInt4 != "rtn"))) {
    error = "--mixed-int4 is " + quantizer + " (candidates measured as quantized) or rtn (rounded to nearest), "
            "with --quantize=mixed";
    return false;
  }
  options.mixedInt4 = mixedInt4.empty() ? quantizer : mixedInt4.str();
  return true;
}

bool setActOrder(bool actOrder, CompileOptions &options, std::string &error) {
  if (actOrder && !options.gptq) {
    error = "--act-order orders GPTQ's rounding: with gptq4, gptq3 or --gptq";
    return false;
  }
  options.actOrder = actOrder;
  return true;
}

bool setMixedSensitivity(StringRef sensitivity, CompileOptions &options, std::string &error) {
  if (!sensitivity.empty() && (!options.mixed || (sensitivity != "kl" && sensitivity != "scaled"))) {
    error = "--mixed-sensitivity is kl (every candidate through the model) or scaled (one per layer group, the "
            "others by their output error), with --quantize=mixed";
    return false;
  }
  options.mixedSensitivity = sensitivity.empty() ? "kl" : sensitivity.str();
  return true;
}

bool setQuantScheme(StringRef scheme, int64_t groupSize, StringRef granularity, std::optional<bool> gptq,
                    CompileOptions &options, std::string &error) {
  options.quantBits = 0;
  options.awq = options.gptq = options.perTensor = options.smoothQuant = options.mixed = false;
  options.fp8Format.clear();
  options.actScale.clear();
  options.groupSize = groupSize;
  if (scheme == "rtn4" || scheme == "rtn3" || scheme == "awq4" || scheme == "awq3" || scheme == "gptq4" ||
      scheme == "gptq3") {
    options.quantBits = scheme.back() - '0';
    options.awq = scheme.starts_with("awq");
    options.gptq = scheme.starts_with("gptq");
    if ((options.awq || options.gptq) && options.calib.empty()) {
      error = "--quantize=" + scheme.str() + " needs calibration data: pass --calib FILE";
      return false;
    }
  } else if (scheme == "mixed") { // int4 (AWQ, GPTQ), int8 (GPTQ) or float per layer group, by measured sensitivity
    options.quantBits = 4;
    options.awq = options.mixed = true;
    if (options.calib.empty()) {
      error = "--quantize=mixed needs calibration data (the layers' sensitivities, AWQ and GPTQ): pass --calib FILE";
      return false;
    }
  } else if (scheme == "int8" || scheme == "fp8w" || scheme == "fp8" || scheme == "w8a8") {
    options.quantBits = 8;
    options.groupSize = 0; // per channel
    if (scheme == "fp8w" || scheme == "fp8")
      options.fp8Format = "e4m3";
    if (scheme == "fp8")
      options.actScale = "static";
    if (scheme == "w8a8") { // SmoothQuant: int8 weights, int8 activations per token
      options.smoothQuant = true;
      options.actScale = "dynamic";
      if (options.calib.empty()) {
        error = "--quantize=w8a8 needs calibration data (SmoothQuant's activation ranges): pass --calib FILE";
        return false;
      }
    }
  } else if (scheme != "none") {
    error = "--quantize=" + scheme.str() + " is not available (this build supports: none, rtn4, awq4, gptq4, int8, "
            "fp8w, fp8, w8a8, mixed, and rtn3, awq3, gptq3)";
    return false;
  }
  // GPTQ's rounding for a scheme that otherwise rounds to nearest: awq4 and awq3 keep AWQ's scales and clipping
  // and round the scaled weights by GPTQ; so does mixed for its int4 layers (its int8 layers: GPTQ alone), by
  // default (measured on stories15M at 6 bits, calibration seeds 0-2: +1.0-1.9% of float's perplexity against
  // +2.3-3.2% with AWQ's int4 and int8 rounded to nearest; bench/accuracy.md).
  if (gptq.value_or(options.mixed)) {
    if (!options.quantBits) {
      error = "--gptq applies to rtn4, rtn3, awq4, awq3, int8, fp8w, fp8, w8a8 and mixed (gptq4 and gptq3 are rtn4 "
              "and rtn3 with it)";
      return false;
    }
    if (options.calib.empty()) {
      error = "--gptq needs calibration data (the layers' Hessians): pass --calib FILE";
      return false;
    }
    options.gptq = true;
  }
  if (groupSize < 0) {
    error = "--group-size must be >= 0";
    return false;
  }
  if (granularity == "channel") {
    options.groupSize = 0;
  } else if (granularity == "tensor") {
    if (options.awq || options.gptq || options.smoothQuant || !options.fp8Format.empty()) {
      error = "--granularity=tensor is available with rtn4, rtn3 and int8";
      return false;
    }
    options.perTensor = true;
  } else if (granularity != "group") {
    error = "--granularity must be group, channel or tensor";
    return false;
  }
  return true;
}

void buildRaisePipeline(OpPassManager &pm) {
  pm.addNestedPass<func::FuncOp>(createRaiseRmsNormPass());
  // GELU before the gated MLP, whose GeGLU pattern reads nn.gelu.
  pm.addNestedPass<func::FuncOp>(createRaiseGeluPass());
  pm.addNestedPass<func::FuncOp>(createRaiseGatedMlpPass());
  pm.addNestedPass<func::FuncOp>(createRaiseRotaryPass());
  pm.addNestedPass<func::FuncOp>(createRaiseAttentionPass());
}

void buildQuantizePipeline(OpPassManager &pm, const CompileOptions &options) {
  // Import leaves generic ONNX nodes; convert them first so everything after sees only nn ops. A float16 /
  // bfloat16 model is then compiled as the float32 model whose values it holds (the targets pick their own
  // precision).
  pm.addNestedPass<func::FuncOp>(createConvertOnnxPass());
  if (options.widenHalf)
    pm.addNestedPass<func::FuncOp>(createWidenHalfPass());
  // Folding and dead-code removal shrink the shape sub-graphs that survived import-time folding.
  pm.addNestedPass<func::FuncOp>(createCanonicalizerPass());
  pm.addNestedPass<func::FuncOp>(createCSEPass());
  // Raising matches canonical patterns (constants folded, duplicates merged), and runs before calibration and
  // quantization so that AWQ folds its scales into the raised norms and every later step sees one op per norm or
  // activation.
  // Dims the exporters' shape arithmetic hides from op-by-op inference (the heads after a reshape to [b, s, -1, d],
  // o_proj's input size): raising and linear-layer detection need them static.
  pm.addNestedPass<func::FuncOp>(createRefineShapesPass());
  if (options.raise)
    buildRaisePipeline(pm);
  // The choice of the layers that stay in float, which every quantization step below honours.
  SelectLayersPassOptions select;
  select.exclude = options.exclude;
  select.quantizeLmHead = options.quantizeLmHead;
  pm.addNestedPass<func::FuncOp>(createSelectLayersPass(select));
  // Calibration runs the float model as it will be compiled (after folding) on real data; only AWQ, GPTQ,
  // SmoothQuant, static activation scales and an FP8 KV cache read its statistics, so rtn and int8 skip it even
  // when given --calib.
  const bool fp8Cache = options.raise && (options.kvCache == "fp8" || options.kvCache == "fp8_e5m2");
  if (!options.calib.empty() &&
      (options.awq || options.gptq || options.smoothQuant || options.actScale == "static" || fp8Cache)) {
    CalibratePassOptions c;
    c.kv = fp8Cache;
    c.calib = options.calib;
    c.tokenizer = options.tokenizer;
    c.samples = options.calibSamples;
    c.seqLen = options.calibSeqLen;
    c.seed = options.calibSeed;
    pm.addPass(createCalibratePass(c));
  }
  // Mixed precision picks each layer group's format from its measured sensitivity, before AWQ scales the int4 ones.
  if (options.mixed) {
    AssignPrecisionPassOptions ap;
    ap.avgBits = options.avgBits;
    // As they will be quantized (AWQ, with --gptq AWQ then GPTQ), or rounded to nearest.
    ap.int4Method = options.mixedInt4 == "rtn" ? "rtn" : options.gptq ? "awq-gptq" : "awq";
    ap.sensitivity = options.mixedSensitivity;
    ap.symmetric = options.symmetric;
    ap.actOrder = options.actOrder;
    ap.groupSize = options.groupSize;
    ap.calib = options.calib;
    ap.tokenizer = options.tokenizer;
    ap.seed = options.calibSeed;
    ap.exclude = options.exclude;
    pm.addPass(createAssignPrecisionPass(ap));
  }
  // SmoothQuant moves the activations' outlier channels into the weights (w8a8) before they are quantized.
  if (options.smoothQuant) {
    SmoothQuantPassOptions sq;
    sq.alpha = options.smoothAlpha;
    sq.exclude = options.exclude;
    pm.addNestedPass<func::FuncOp>(createSmoothQuantPass(sq));
  }
  // AWQ rescales float weights using the calibration statistics; quantization then rounds the rescaled weights.
  if (options.awq) {
    AwqScalePassOptions a;
    a.bits = options.quantBits;
    a.symmetric = options.symmetric;
    a.groupSize = options.groupSize;
    a.exclude = options.exclude;
    pm.addNestedPass<func::FuncOp>(createAwqScalePass(a));
  }
  // GPTQ measures its Hessians on the same windows, a memory budget at a time; whatever it leaves (excluded layers
  // stay float) rtn skips too.
  if (options.gptq) {
    GptqPassOptions g;
    g.calib = options.calib;
    g.tokenizer = options.tokenizer;
    g.samples = options.calibSamples;
    g.seqLen = options.calibSeqLen;
    g.seed = options.calibSeed;
    g.hessianMemory = options.gptqMemory;
    g.actOrder = options.actOrder;
    g.bits = options.quantBits;
    g.groupSize = options.groupSize;
    g.symmetric = options.symmetric;
    if (!options.fp8Format.empty())
      g.format = options.fp8Format;
    g.exclude = options.exclude;
    pm.addPass(createGptqPass(g));
  }
  // Weight quantization works on nn.matmul with constant weights, so it runs after folding has settled them.
  if (options.quantBits && !options.gptq) {
    QuantizeRtnPassOptions q;
    q.bits = options.quantBits;
    q.groupSize = options.groupSize;
    q.symmetric = options.symmetric;
    q.perTensor = options.perTensor;
    if (!options.fp8Format.empty())
      q.format = options.fp8Format;
    q.exclude = options.exclude;
    pm.addNestedPass<func::FuncOp>(createQuantizeRtnPass(q));
  }
  // W8A8: FP8 activations for the FP8-weight layers, INT8 for the int8 ones, from the calibrated ranges or per row
  // at run time.
  if (!options.actScale.empty() && !options.fp8Format.empty()) {
    InsertFp8PassOptions f;
    f.mode = options.actScale;
    pm.addNestedPass<func::FuncOp>(createInsertFp8Pass(f));
  } else if (!options.actScale.empty()) {
    InsertInt8PassOptions i;
    i.mode = options.actScale;
    pm.addNestedPass<func::FuncOp>(createInsertInt8Pass(i));
  }
}

void buildLowerPipeline(OpPassManager &pm, const CompileOptions &options) {
  // The KV cache becomes session state that attention reads in place (it needs raised attention; after
  // quantization, which calibrates with the graph's own inputs).
  if (options.raise) {
    KvStatePassOptions kv;
    kv.maxDims.assign(options.maxDims.begin(), options.maxDims.end());
    kv.dtype = options.kvCache;
    pm.addNestedPass<func::FuncOp>(createKvStatePass(kv));
  }
  // One launch per remaining op.
  pm.addNestedPass<func::FuncOp>(createLowerToKernPass());
  // Layers reading one input (q/k/v, gate/up) become one launch, and a residual add runs with the norm that reads
  // it; part of raising (--raise=false keeps them apart).
  if (options.raise) {
    pm.addNestedPass<func::FuncOp>(createFuseLinearsPass());
    pm.addNestedPass<func::FuncOp>(createFuseAddNormPass());
  }
  // A decoder with its cache in state gets a static one-token entry beside the general one.
  if (options.raise) {
    DecodeEntryPassOptions d;
    d.maxDims.assign(options.maxDims.begin(), options.maxDims.end());
    pm.addPass(createDecodeEntryPass(d));
    // Generation's prompt runs: the output head over the last position only.
    pm.addPass(createLastLogitsEntryPass());
    // Static shapes let more slices of a stacked linear fuse (through a reshape of 2-D rows, GPT-2's Gemm).
    pm.addNestedPass<func::FuncOp>(createFuseLinearsPass());
  }
  // A GPU target reads float layers at memory speed: their weights as 16-bit floats.
  if (options.halfWeights) {
    HalfWeightsPassOptions half;
    half.dtype = options.halfDtype;
    pm.addPass(createHalfWeightsPass(half));
  }
  // Rotary embeddings where the rotated rows are stored and loaded; a decode step's gated activation in the
  // epilogue of its gate/up product, its residual adds in the epilogues of the products that feed them and its
  // norms in the products that read them (after half weights, which make float layers matmul_q products).
  if (options.raise) {
    pm.addNestedPass<func::FuncOp>(createFuseRotaryPass());
    pm.addNestedPass<func::FuncOp>(createFuseGatedProductPass());
    pm.addNestedPass<func::FuncOp>(createFuseNormProductPass());
  }
  // A GPU target's weights of codes in the layout its few-row products read (after the fusions, which decide
  // whether a gated product pairs a weight's rows).
  if (options.tileWeights)
    pm.addPass(createTileWeightsPass());
  // Last: offsets depend on the final list of launches.
  PlanMemoryPassOptions plan;
  plan.maxDims.assign(options.maxDims.begin(), options.maxDims.end());
  pm.addNestedPass<func::FuncOp>(createPlanMemoryPass(plan));
  // A CUDA target: a kernel specialization per launch (views and host instructions are known only now).
  if (!options.cudaArchs.empty()) {
    CudaKernelsPassOptions cuda;
    cuda.archs.assign(options.cudaArchs.begin(), options.cudaArchs.end());
    cuda.actDtype = options.halfDtype;
    pm.addPass(createCudaKernelsPass(cuda));
  }
}

void buildCompilePipeline(OpPassManager &pm, const CompileOptions &options) {
  buildQuantizePipeline(pm, options);
  buildLowerPipeline(pm, options);
}

namespace {

// qopt-quantize-pipeline's options: the names, defaults and meanings of qopt's flags.
struct QuantizePipelineOptions : PassPipelineOptions<QuantizePipelineOptions> {
  Option<std::string> scheme{*this, "scheme",
                             llvm::cl::desc("none, int8, fp8w, fp8, w8a8, mixed, rtn4, awq4, gptq4, rtn3, awq3 or "
                                            "gptq3 (qopt --quantize)"),
                             llvm::cl::init("none")};
  Option<int64_t> groupSize{*this, "group-size", llvm::cl::desc("Inputs per scale group; 0 = per output channel"),
                            llvm::cl::init(128)};
  Option<std::string> granularity{*this, "granularity", llvm::cl::desc("group, channel or tensor"),
                                  llvm::cl::init("group")};
  Option<std::string> exclude{*this, "exclude", llvm::cl::desc("Regex of layers kept in float"),
                              llvm::cl::init("")};
  Option<bool> quantizeLmHead{*this, "quantize-lm-head",
                              llvm::cl::desc("Quantize the output head (kept in float by default)"),
                              llvm::cl::init(false)};
  Option<std::string> calib{*this, "calib",
                            llvm::cl::desc("Calibration text (needs tokenizer) or .npy of int32 ids (awq, gptq)")};
  Option<std::string> tokenizer{*this, "tokenizer", llvm::cl::desc("llama2.c tokenizer.bin for text calibration")};
  Option<int64_t> calibSamples{*this, "calib-samples", llvm::cl::desc("Calibration windows"), llvm::cl::init(128)};
  Option<int64_t> calibSeqLen{*this, "calib-seq-len",
                              llvm::cl::desc("Tokens per window; 0 = min(512, the model's max sequence)"),
                              llvm::cl::init(0)};
  Option<uint64_t> calibSeed{*this, "calib-seed", llvm::cl::desc("Seed of the window choice"), llvm::cl::init(0)};
  Option<double> smoothAlpha{*this, "smooth-alpha", llvm::cl::desc("SmoothQuant's migration strength (w8a8)"),
                             llvm::cl::init(0.5)};
  Option<double> avgBits{*this, "avg-bits", llvm::cl::desc("Bits per weight of mixed precision (scheme=mixed)"),
                         llvm::cl::init(0.0)};
  Option<std::string> mixedInt4{*this, "mixed-int4",
                                llvm::cl::desc("How mixed precision measures its candidates: as quantized (awq, "
                                               "or gptq with gptq) or rtn (round to nearest)"),
                                llvm::cl::init("")};
  Option<std::string> mixedSensitivity{*this, "mixed-sensitivity",
                                       llvm::cl::desc("How mixed precision measures sensitivity: kl (every "
                                                      "candidate through the model) or scaled (one per group)"),
                                       llvm::cl::init("")};
  Option<bool> gptq{*this, "gptq",
                    llvm::cl::desc("GPTQ rounding for rtn4, rtn3, int8, fp8w, fp8 and w8a8, after AWQ for awq4 "
                                   "and awq3 and for mixed's int4 layers (needs calib)"),
                    llvm::cl::init(false)};
  Option<bool> symmetric{*this, "symmetric",
                         llvm::cl::desc("Symmetric int4 (rtn4, awq4, gptq4, mixed): no zero points"),
                         llvm::cl::init(false)};
  Option<double> gptqMemory{*this, "gptq-memory",
                             llvm::cl::desc("MB of GPTQ Hessian sums per run over the calibration data"),
                             llvm::cl::init(4096)};
  Option<bool> actOrder{*this, "act-order",
                        llvm::cl::desc("GPTQ's inputs in decreasing order of the Hessian's diagonal (with gptq)"),
                        llvm::cl::init(false)};
  Option<bool> raise{*this, "raise", llvm::cl::desc("Raise norms, activations, rotary embeddings and attention"),
                     llvm::cl::init(true)};
};

} // namespace

void registerAllPasses() {
  registerQOptPasses();
  registerPassPipeline(
      "qopt-quantize-pipeline",
      "Convert, canonicalize, calibrate and quantize the linear layers (what `qopt --quantize=...` runs before "
      "lowering); leaves nn + qnt ops",
      [](OpPassManager &pm, StringRef optionsStr, function_ref<LogicalResult(const Twine &)> errorHandler) {
        QuantizePipelineOptions o;
        if (failed(o.parseFromString(optionsStr)))
          return failure();
        CompileOptions c;
        c.exclude = o.exclude;
        c.calib = o.calib;
        c.tokenizer = o.tokenizer;
        c.calibSamples = o.calibSamples;
        c.calibSeqLen = o.calibSeqLen;
        c.calibSeed = o.calibSeed;
        c.gptqMemory = o.gptqMemory;
        c.raise = o.raise;
        c.quantizeLmHead = o.quantizeLmHead;
        std::string error;
        if (!setQuantScheme(o.scheme, o.groupSize, o.granularity, o.gptq, c, error))
          return errorHandler("qopt-quantize-pipeline: " + error);
        if (!setInt4Options(o.symmetric, o.mixedInt4, c, error) || !setActOrder(o.actOrder, c, error) ||
            !setMixedSensitivity(o.mixedSensitivity, c, error))
          return errorHandler("qopt-quantize-pipeline: " + error);
        c.smoothAlpha = o.smoothAlpha;
        c.avgBits = o.avgBits;
        buildQuantizePipeline(pm, c);
        return success();
      },
      [](function_ref<void(const detail::PassOptions &)> optHandler) { optHandler(QuantizePipelineOptions()); });
  PassPipelineRegistration<>("qopt-compile-pipeline",
                             "Convert, lower and plan a float model (what `qopt --quantize=none` runs)",
                             [](OpPassManager &pm) { buildCompilePipeline(pm, CompileOptions{}); });
}

} // namespace qopt
