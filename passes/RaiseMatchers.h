//===- RaiseMatchers.h - matching decomposed ONNX patterns ------------------===//
//
// Helpers shared by the qopt-raise-* passes: scalar constants, binary ops in either operand order, and the removal
// of the ops a raised pattern leaves unused.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_PASSES_RAISEMATCHERS_H
#define QOPT_PASSES_RAISEMATCHERS_H

#include "qopt/Dialect/NN/NNDialect.h"

#include "mlir/IR/Operation.h"
#include "llvm/ADT/SmallPtrSet.h"

#include <cmath>
#include <optional>

namespace qopt::raise {

// Reads `v` if an nn.constant defines it.
inline bool constantTensor(mlir::Value v, num::Tensor &t, std::vector<uint8_t> &storage) {
  auto c = v.getDefiningOp<nn::ConstantOp>();
  return c && nn::readConstant(c.getValue(), t, storage);
}

// The value of a constant with one element (any shape of size 1, or a splat), as a double.
inline std::optional<double> scalarConstant(mlir::Value v) {
  num::Tensor t;
  std::vector<uint8_t> storage;
  if (!constantTensor(v, t, storage) || t.numel() == 0)
    return std::nullopt;
  double first = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    double x;
    switch (t.dtype) {
    case num::DType::F32: x = t.as<float>()[i]; break;
    case num::DType::F64: x = t.as<double>()[i]; break;
    case num::DType::I64: x = static_cast<double>(t.as<int64_t>()[i]); break;
    case num::DType::I32: x = t.as<int32_t>()[i]; break;
    default: return std::nullopt;
    }
    if (i == 0)
      first = x;
    else if (x != first)
      return std::nullopt;
  }
  return first;
}

// The value of an integer constant with one element (any shape of size 1), exactly (INT64_MAX included).
inline std::optional<int64_t> intConstant(mlir::Value v) {
  num::Tensor t;
  std::vector<uint8_t> storage;
  if (!constantTensor(v, t, storage) || t.numel() != 1)
    return std::nullopt;
  if (t.dtype == num::DType::I64)
    return t.as<int64_t>()[0];
  if (t.dtype == num::DType::I32)
    return t.as<int32_t>()[0];
  return std::nullopt;
}

// Whether `v` is a scalar constant equal to `want` within a relative `tol` (exporters write float32 roundings of
// irrational constants such as sqrt(2/pi)).
inline bool isScalar(mlir::Value v, double want, double tol = 1e-6) {
  auto x = scalarConstant(v);
  return x && std::fabs(*x - want) <= tol * std::max(1.0, std::fabs(want));
}

// `v`'s defining nn.binary with function `fn`, if any.
inline nn::BinaryOp binaryOf(mlir::Value v, llvm::StringRef fn) {
  auto b = v ? v.getDefiningOp<nn::BinaryOp>() : nn::BinaryOp();
  return b && b.getFn() == fn ? b : nn::BinaryOp();
}

inline nn::UnaryOp unaryOf(mlir::Value v, llvm::StringRef fn) {
  auto u = v ? v.getDefiningOp<nn::UnaryOp>() : nn::UnaryOp();
  return u && u.getFn() == fn ? u : nn::UnaryOp();
}

// For a commutative binary op: the operand that is not `known`, or null when neither operand is `known`.
inline mlir::Value otherOperand(nn::BinaryOp op, mlir::Value known) {
  if (op.getLhs() == known)
    return op.getRhs();
  if (op.getRhs() == known)
    return op.getLhs();
  return {};
}

// For a commutative binary op: the operand beside a scalar constant equal to `c`, or null.
inline mlir::Value operandBesideScalar(nn::BinaryOp op, double c, double tol = 1e-6) {
  if (!op)
    return {};
  if (isScalar(op.getRhs(), c, tol))
    return op.getLhs();
  if (isScalar(op.getLhs(), c, tol))
    return op.getRhs();
  return {};
}

// The single user of `v`, or null.
inline mlir::Operation *singleUser(mlir::Value v) {
  return v.hasOneUse() ? *v.getUsers().begin() : nullptr;
}

// Erases `roots` and then every pure nn op left without users, walking back through operands.
// An op can reach the worklist more than once (mul(x, x) pushes x's producer twice): erased ops are remembered and
// skipped before they are touched.
inline void eraseDead(llvm::ArrayRef<mlir::Operation *> roots) {
  llvm::SmallVector<mlir::Operation *> work(roots.begin(), roots.end());
  llvm::SmallPtrSet<mlir::Operation *, 16> erased;
  while (!work.empty()) {
    mlir::Operation *op = work.pop_back_val();
    if (erased.contains(op) || !op->use_empty() || !op->getDialect() || op->getDialect()->getNamespace() != "nn")
      continue;
    llvm::SmallVector<mlir::Operation *> defs;
    for (mlir::Value v : op->getOperands())
      if (mlir::Operation *d = v.getDefiningOp())
        defs.push_back(d);
    erased.insert(op);
    op->erase();
    work.append(defs.begin(), defs.end());
  }
}

} // namespace qopt::raise

#endif // QOPT_PASSES_RAISEMATCHERS_H
