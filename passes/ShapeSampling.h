//===- ShapeSampling.h - evaluating a function's shapes at chosen sizes ----===//
//
// Runs an nn function through the kernels' shape functions with each dynamic input dim set to a chosen size:
// every value gets its shape, and small tensors (integer shape arithmetic, masks at small sizes) their values.
// Input tensors' values are not known (only their shapes). Used by qopt-refine-shapes (dims that do not depend
// on the sizes) and qopt-raise-attention (masks that are causal whatever the sizes).
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_PASSES_SHAPESAMPLING_H
#define QOPT_PASSES_SHAPESAMPLING_H

#include "qopt/Numerics/Tensor.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"

#include <functional>
#include <memory>

namespace qopt {

struct Sample {
  num::Tensor t;
  std::vector<uint8_t> storage;
  bool known = false; // the shape is known in this run (t.data is set when the values are too)
};

using Samples = llvm::DenseMap<mlir::Value, std::unique_ptr<Sample>>;

struct SamplingOptions {
  int64_t maxElements = 64; // tensors up to this size get their values
  bool floats = false;      // float tensors too (else integer and boolean ones only)
};

// Evaluates `func` with dynamic dim d of argument `arg` set to sizeOf(arg, d).
void sampleShapes(mlir::func::FuncOp func, const std::function<int64_t(mlir::BlockArgument, int64_t)> &sizeOf,
                  const SamplingOptions &options, Samples &out);

// A size function giving every named dim (nn.dims) one size, `base + step * i` for the i-th name met, and unnamed
// dims their own.
std::function<int64_t(mlir::BlockArgument, int64_t)> sizePerDimName(mlir::func::FuncOp func, int64_t base,
                                                                    int64_t step);

} // namespace qopt

#endif // QOPT_PASSES_SHAPESAMPLING_H
