// Another compiler's driver using qopt's C++ API: import an ONNX file, run a pipeline given by name (qopt's
// registered pipelines and passes, parsed like mlir-opt's -pass-pipeline), write model.bin. Errors come back as
// MLIR diagnostics; this driver prints them and fails.
//   compile-onnx MODEL.onnx PIPELINE OUT.bin
#include "qopt/Import/OnnxImporter.h"
#include "qopt/Passes.h"
#include "qopt/Serialize/ModelWriter.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/raw_ostream.h"

int main(int argc, char **argv) {
  if (argc != 4) {
    llvm::errs() << "usage: compile-onnx MODEL.onnx PIPELINE OUT.bin\n";
    return 2;
  }
  mlir::DialectRegistry registry;
  qopt::registerAllDialects(registry);
  qopt::registerAllPasses();
  mlir::MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  mlir::ScopedDiagnosticHandler diagnostics(&ctx, [](mlir::Diagnostic &d) {
    llvm::errs() << "compile-onnx: " << d << "\n";
    return mlir::success();
  });
  mlir::OwningOpRef<mlir::ModuleOp> module = qopt::importOnnxModel(&ctx, argv[1]);
  if (!module)
    return 1;
  // A full pipeline string, "builtin.module(...)", as mlir-opt's -pass-pipeline takes.
  if (mlir::failed(qopt::runPipeline(*module, argv[2])))
    return 1;
  auto func = *module->getOps<mlir::func::FuncOp>().begin();
  return mlir::failed(qopt::writeModelBin(func, argv[3], {})) ? 1 : 0;
}
