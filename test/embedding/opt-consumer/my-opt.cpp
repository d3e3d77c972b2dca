// An mlir-opt-like tool of another compiler: its own main, with qopt's dialects and passes registered.
#include "qopt/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  qopt::registerAllDialects(registry);
  qopt::registerAllPasses();
  return mlir::asMainReturnCode(mlir::MlirOptMain(argc, argv, "my-opt: a compiler embedding qopt\n", registry));
}
