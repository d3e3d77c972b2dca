//===- Pipelines.cpp - registration and qopt's pass pipelines --------------===//
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Dialect/Qnt/QntDialect.h"
#include "qopt/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

namespace qopt {

void registerAllDialects(DialectRegistry &registry) {
  registry.insert<nn::NNDialect, qnt::QntDialect, kern::KernDialect, func::FuncDialect>();
}

void buildQuantizePipeline(OpPassManager &pm, const CompileOptions &options) {
  // Import leaves generic ONNX nodes; convert them first so everything after sees only nn ops.
  pm.addNestedPass<func::FuncOp>(createConvertOnnxPass());
  // Folding and dead-code removal shrink the shape sub-graphs that survived import-time folding.
  pm.addNestedPass<func::FuncOp>(createCanonicalizerPass());
  pm.addNestedPass<func::FuncOp>(createCSEPass());
  // Calibration runs the float model as it will be compiled (after folding) on real data.
  if (!options.calib.empty()) {
    CalibratePassOptions c;
    c.calib = options.calib;
    c.tokenizer = options.tokenizer;
    c.samples = options.calibSamples;
    c.seqLen = options.calibSeqLen;
    c.seed = options.calibSeed;
    pm.addPass(createCalibratePass(c));
  }
  // AWQ rescales float weights using the calibration statistics; quantization then rounds the rescaled weights.
  if (options.awq) {
    AwqScalePassOptions a;
    a.bits = options.quantBits;
    a.groupSize = options.groupSize;
    a.exclude = options.exclude;
    pm.addNestedPass<func::FuncOp>(createAwqScalePass(a));
  }
  // GPTQ quantizes with the calibrated Hessians; whatever it leaves (excluded layers stay float) rtn skips too.
  if (options.gptq) {
    GptqPassOptions g;
    g.bits = options.quantBits;
    g.groupSize = options.groupSize;
    g.symmetric = options.symmetric;
    g.exclude = options.exclude;
    pm.addNestedPass<func::FuncOp>(createGptqPass(g));
  }
  // Weight quantization works on nn.matmul with constant weights, so it runs after folding has settled them.
  if (options.quantBits && !options.gptq) {
    QuantizeRtnPassOptions q;
    q.bits = options.quantBits;
    q.groupSize = options.groupSize;
    q.symmetric = options.symmetric;
    q.perTensor = options.perTensor;
    q.exclude = options.exclude;
    pm.addNestedPass<func::FuncOp>(createQuantizeRtnPass(q));
  }
}

void buildLowerPipeline(OpPassManager &pm, const CompileOptions &options) {
  // One launch per remaining op; fusion passes slot in here once the kernel tables have fused kernels.
  pm.addNestedPass<func::FuncOp>(createLowerToKernPass());
  // Last: offsets depend on the final list of launches.
  PlanMemoryPassOptions plan;
  plan.maxDims.assign(options.maxDims.begin(), options.maxDims.end());
  pm.addNestedPass<func::FuncOp>(createPlanMemoryPass(plan));
}

void buildCompilePipeline(OpPassManager &pm, const CompileOptions &options) {
  buildQuantizePipeline(pm, options);
  buildLowerPipeline(pm, options);
}

void registerAllPasses() {
  registerQOptPasses();
  PassPipelineRegistration<>("qopt-compile-pipeline",
                             "Convert, lower and plan a float model (what `qopt --quantize=none` runs)",
                             [](OpPassManager &pm) { buildCompilePipeline(pm, CompileOptions{}); });
}

} // namespace qopt
