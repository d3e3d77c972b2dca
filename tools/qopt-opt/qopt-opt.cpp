//===- qopt-opt.cpp - mlir-opt with qopt's dialects and passes -------------===//
#include "qopt/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  qopt::registerAllDialects(registry);
  qopt::registerAllPasses();
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  return mlir::asMainReturnCode(mlir::MlirOptMain(argc, argv, "qopt optimizer driver\n", registry));
}
