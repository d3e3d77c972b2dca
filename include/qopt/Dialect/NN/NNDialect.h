//===- NNDialect.h - the nn dialect ----------------------------------------===//
#ifndef QOPT_DIALECT_NN_NNDIALECT_H
#define QOPT_DIALECT_NN_NNDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include <limits>

#include "qopt/Numerics/Tensor.h"

#include "dialects/nn/NNOpsDialect.h.inc"
#include "dialects/nn/NNOpsEnums.h.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/nn/NNOpsTypes.h.inc"

#define GET_OP_CLASSES
#include "dialects/nn/NNOps.h.inc"

namespace qopt::nn {

// Element type mapping between MLIR and the numerics library (ONNX numbering). Undefined if unmapped.
num::DType toDType(mlir::Type elementType);
mlir::Type fromDType(mlir::MLIRContext *ctx, num::DType dtype);

// Computes the result types of an nn kernel op from its operands and attributes, with `?` where a dim is not
// known at compile time. On failure, returns failure and, if `diag` is set, emits the reason on the op.
mlir::LogicalResult inferResultTypes(mlir::Operation *op, llvm::SmallVectorImpl<mlir::Type> &types, bool diag);

// Folds an nn kernel op whose operands are all constants by running the CPU reference kernel. Only small
// results are folded (shape arithmetic), never weight-sized tensors.
mlir::OpFoldResult foldWithKernel(mlir::Operation *op, llvm::ArrayRef<mlir::Attribute> operands);

// The values of a 1-D integer tensor as far as they are known at compile time: std::nullopt for the whole
// vector if even its length is unknown, ShapedType::kDynamic for an unknown element. Looks through constants,
// nn.shape, nn.gather, nn.concat, nn.unsqueeze/squeeze/reshape and integer casts. Vectors longer than 64
// entries (longer than any shape-like operand of a rank-16 tensor) are not tracked: std::nullopt.
std::optional<llvm::SmallVector<int64_t>> getPartialInts(mlir::Value v);

// Reads a constant's elements as num::Tensor bytes (expanding splats). False for non-constant values.
bool readConstant(mlir::Attribute attr, num::Tensor &out, std::vector<uint8_t> &storage);
// The elements of `t` (its dtype and element count matching `type`) as a constant attribute.
mlir::DenseElementsAttr toElementsAttr(mlir::RankedTensorType type, const num::Tensor &t);
// Why readConstant fails for `attr`, as the end of a sentence: a resource without data (weights elided when the IR
// was printed), a blob of the wrong size, or an element type the kernels do not have.
std::string unreadableConstantReason(mlir::Attribute attr);

} // namespace qopt::nn


namespace qopt::nn {
// The CPU reference kernel that computes an nn kernel op: its mnemonic.
inline llvm::StringRef kernelName(mlir::Operation *op) { return op->getName().stripDialect(); }
// The kernel attributes of an nn kernel op: its inherent attributes, plus the target dtype that cast and
// constant_of_shape take from their result type.
num::Attrs kernelAttrs(mlir::Operation *op);
// Kernel attributes from a dictionary (integers, floats, strings, i64/f64 arrays; other entries are skipped).
num::Attrs toKernelAttrs(mlir::DictionaryAttr dict);
// The dictionary a kern.launch carries for an nn kernel op: kernelAttrs(op) as MLIR attributes.
mlir::DictionaryAttr kernelAttrDict(mlir::Operation *op);
} // namespace qopt::nn

#endif // QOPT_DIALECT_NN_NNDIALECT_H
