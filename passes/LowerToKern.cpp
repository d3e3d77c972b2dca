//===- LowerToKern.cpp - nn ops to kern.launch -----------------------------===//
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Dialect/Qnt/QntDialect.h"
#include "qopt/Passes.h"

#include "mlir/IR/Builders.h"

namespace qopt {
#define GEN_PASS_DEF_LOWERTOKERNPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

// matmul_q's attributes: the weight format, and the activations' FP8 or INT8 quantization when there is one.
DictionaryAttr linearAttrs(OpBuilder &b, qnt::LinearOp lin) {
  SmallVector<NamedAttribute> a{b.getNamedAttr("bits", lin.getBitsAttr()),
                                b.getNamedAttr("group_size", lin.getGroupSizeAttr()),
                                b.getNamedAttr("symmetric", b.getI64IntegerAttr(lin.getSymmetric()))};
  if (lin.getActFp8())
    a.push_back(b.getNamedAttr("act_fp8", b.getI64IntegerAttr(lin.getActFp8())));
  else if (lin.getActInt8())
    a.push_back(b.getNamedAttr("act_int8", b.getI64IntegerAttr(lin.getActInt8())));
  return b.getDictionaryAttr(a);
}

// matmul_q's operands: x, weight, scales, zeros (absent where none), then, with a static activation scale, two
// absent operands (the norm scale and residual that qopt-fuse-norm-product may give it) and that scale (6).
SmallVector<Value> linearOperands(OpBuilder &b, qnt::LinearOp lin) {
  SmallVector<Value> ops{lin.getX(), lin.getWeight(), lin.getScales(), lin.getZeros()};
  if (Value a = lin.getActScale()) {
    Value none = kern::AbsentOp::create(b, lin.getLoc());
    ops.append({none, none, a});
  }
  return ops;
}

struct LowerToKernPass : qopt::impl::LowerToKernPassBase<LowerToKernPass> {
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (op->getDialect() && (op->getDialect()->getNamespace() == "nn" || op->getDialect()->getNamespace() == "qnt"))
        ops.push_back(op);
    });
    for (Operation *op : ops) {
      OpBuilder b(op);
      Value repl;
      if (auto node = dyn_cast<nn::OnnxNodeOp>(op)) {
        node.emitError() << "ONNX " << node.getOpType() << " was not converted (run qopt-convert-onnx first)";
        return signalPassFailure();
      }
      if (auto c = dyn_cast<nn::ConstantOp>(op)) {
        repl = kern::WeightOp::create(b, c.getLoc(), c.getValue(), c.getNameAttr());
      } else if (auto lin = dyn_cast<qnt::LinearOp>(op)) {
        // The CPU kernel for every weight-only format; GPU targets pick theirs by the same attributes.
        auto launch = kern::LaunchOp::create(b, op->getLoc(), op->getResultTypes(), b.getStringAttr("matmul_q"),
                                             linearOperands(b, lin), linearAttrs(b, lin), StringAttr(),
                                             DenseI64ArrayAttr(), ArrayAttr());
        op->replaceAllUsesWith(launch);
        op->erase();
        continue;
      } else if (auto st = dyn_cast<nn::StateOp>(op)) {
        repl = kern::StateOp::create(b, st.getLoc(), st.getType(), st.getNameAttr(), IntegerAttr());
      } else if (isa<nn::NoneOp>(op)) {
        repl = kern::AbsentOp::create(b, op->getLoc());
      } else {
        auto launch = kern::LaunchOp::create(b, op->getLoc(), op->getResultTypes(),
                                             b.getStringAttr(nn::kernelName(op)), op->getOperands(),
                                             nn::kernelAttrDict(op), StringAttr(), DenseI64ArrayAttr(), ArrayAttr());
        op->replaceAllUsesWith(launch);
        op->erase();
        continue;
      }
      op->replaceAllUsesWith(ValueRange{repl});
      op->erase();
    }
  }
};
} // namespace
