//===- ModelWriter.h - model.bin from a planned kern function --------------===//
#ifndef QOPT_SERIALIZE_MODELWRITER_H
#define QOPT_SERIALIZE_MODELWRITER_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <map>
#include <string>
#include <vector>

namespace qopt {

struct ModelWriteOptions {
  std::map<std::string, std::string> metadata;
  std::vector<uint8_t> tokenizer; // written as the tokenizer section when non-empty
};

// Writes a function that went through qopt-plan-memory. Errors are emitted on the function.
mlir::LogicalResult writeModelBin(mlir::func::FuncOp func, const std::string &path,
                                  const ModelWriteOptions &options);

} // namespace qopt

#endif // QOPT_SERIALIZE_MODELWRITER_H
