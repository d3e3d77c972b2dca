//===- ModelWriter.h - model.bin from a planned kern function --------------===//
#ifndef QOPT_SERIALIZE_MODELWRITER_H
#define QOPT_SERIALIZE_MODELWRITER_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "qopt/Format/ModelBin.h"

#include <map>
#include <string>
#include <vector>

namespace qopt {

// The weights of a model.bin written with external weights, in the order of their external indices: what a
// qrt_weight_resolver hands the runtime. The data points into the function's constants (keep the IR alive) or
// into `owned` for constants that had to be expanded (splats).
struct ExternalWeights {
  struct Entry {
    std::string name;
    const void *data = nullptr;
    uint64_t bytes = 0;
  };
  std::vector<Entry> entries;
  std::vector<std::vector<uint8_t>> owned;
};

// Device code for the kernels section (a CUDA target): compiled images and the launch record of each symbol that
// instructions name as their variant.
struct DeviceKernels {
  struct Image {
    std::string arch;
    uint8_t format = 0; // qopt::format::ImageFormat
    std::vector<uint8_t> bytes;
  };
  struct Symbol {
    std::string name;
    format::KernelLaunch launch;
  };
  std::vector<Image> images;
  std::vector<Symbol> symbols;
  bool bf16 = false; // compiled for bfloat16 operands (--act-dtype=bf16): the file is format 5.0 (ModelBin.h)
};

struct ModelWriteOptions {
  std::map<std::string, std::string> metadata;
  std::vector<uint8_t> tokenizer; // written as the tokenizer section when non-empty
  // When set, weights are not written: each is recorded as Storage::External and its bytes listed here, for a
  // host that runs the model in-process without a second copy of the weights (calibration).
  ExternalWeights *external = nullptr;
  // Written as the kernels section when it has images.
  DeviceKernels kernels;
  // Each weight's storage released as soon as its bytes are in the file (the module's weights read as absent
  // after: for a driver done with them), so that the passes' temporary files and the output never take the disk
  // twice over. Not with `external`.
  bool releaseWeights = false;
};

// Writes functions that went through qopt-plan-memory, each an entry of the model.bin (in this order; the first
// is the general one, whose inputs the runtime reports), sharing weights and state. Errors are emitted on the
// functions.
mlir::LogicalResult writeModelBin(llvm::ArrayRef<mlir::func::FuncOp> entries, const std::string &path,
                                  const ModelWriteOptions &options);
// Every function of `module`, in order.
mlir::LogicalResult writeModelBin(mlir::ModuleOp module, const std::string &path, const ModelWriteOptions &options);
// One entry.
mlir::LogicalResult writeModelBin(mlir::func::FuncOp func, const std::string &path,
                                  const ModelWriteOptions &options);

} // namespace qopt

#endif // QOPT_SERIALIZE_MODELWRITER_H
