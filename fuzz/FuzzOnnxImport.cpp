//===- FuzzOnnxImport.cpp - fuzz the ONNX importer and the float compiler ---===//
//
// The input is a serialized ModelProto. It is imported from memory (as if it lay in a directory holding no
// external data), converted, compiled with the float pipeline (dynamic dims bounded at 4), written as a model.bin
// and loaded by the runtime, which runs it once on zero inputs. Every stage may reject the input with a
// diagnostic; none may crash, and what the compiler writes the runtime must accept.
//
// The harness caps one tensor at 16 MiB (OnnxImportOptions::maxTensorBytes; the default is 64 GiB) and runs within
// RunOnZeros.h's limits: large but valid models are a resource limit, not a bug.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Import/OnnxImporter.h"
#include "qopt/Passes.h"
#include "qopt/Serialize/ModelWriter.h"

#include "RunOnZeros.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringSet.h"

#include <cstdlib>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

using namespace mlir;

namespace {

// The context is made afresh every 256 inputs: MLIR never frees uniqued attributes and types, so one context
// for a whole run would grow without bound (and trip libFuzzer's RSS limit) without any leak in qopt.
MLIRContext &context() {
  static std::unique_ptr<MLIRContext> ctx;
  static unsigned uses = 0;
  if (!ctx || ++uses % 256 == 0) {
    ctx.reset();
    DialectRegistry registry;
    qopt::registerAllDialects(registry);
    ctx = std::make_unique<MLIRContext>(registry);
    ctx->loadAllAvailableDialects();
    ctx->disableMultithreading();
    ctx->getDiagEngine().registerHandler([](Diagnostic &) { return success(); }); // rejections are expected
  }
  return *ctx;
}

// Every named dynamic dim of the inputs bounded at 4, as qopt --max-dim would.
std::vector<std::string> smallBounds(ModuleOp module) {
  std::vector<std::string> out;
  llvm::StringSet<> seen;
  for (auto func : module.getOps<func::FuncOp>())
    for (unsigned i = 0; i < func.getNumArguments(); ++i)
      if (auto names = func.getArgAttrOfType<ArrayAttr>(i, "nn.dims"))
        for (Attribute a : names) {
          StringRef n = cast<StringAttr>(a).getValue();
          if (!n.empty() && !n.contains('=') && seen.insert(n).second)
            out.push_back(n.str() + "=4");
        }
  return out;
}

void runModel(const std::string &path) {
  qrt_model *model = nullptr;
  if (qrt_status st = qrt_model_load(path.c_str(), &model)) {
    std::fprintf(stderr, "qrt rejected what qopt wrote: %s\n", qrt_status_message(st));
    std::abort();
  }
  qopt::fuzz::runOnZeros(model);
  qrt_model_free(model);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  qopt::registerAllPasses();
  context();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  MLIRContext &ctx = context();
  qopt::OnnxImportOptions importOptions;
  importOptions.maxTensorBytes = uint64_t(16) << 20;
  OwningOpRef<ModuleOp> module = qopt::importOnnxModelFromMemory(
      &ctx, ArrayRef<char>(reinterpret_cast<const char *>(data), size), "/nonexistent/fuzz/model.onnx",
      importOptions);
  if (!module)
    return 0;
  qopt::CompileOptions options;
  options.maxDims = smallBounds(*module);
  PassManager pm(&ctx);
  qopt::buildCompilePipeline(pm, options);
  if (failed(pm.run(*module)))
    return 0;
  auto funcs = module->getOps<func::FuncOp>();
  if (funcs.empty())
    return 0;
  static const std::string path = "/tmp/qopt-fuzz-onnx-" + std::to_string(::getpid()) + ".bin";
  if (failed(qopt::writeModelBin(*funcs.begin(), path, {})))
    return 0;
  runModel(path);
  ::unlink(path.c_str());
  return 0;
}
