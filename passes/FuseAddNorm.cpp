//===- FuseAddNorm.cpp - a residual add and the norm that reads it ----------===//
//
// Pre-norm decoders add each block's output to the residual stream and normalize the sum for the next block:
//   %s = kern.launch "binary"(%a, %b) {fn = "add"}      %s, %n = kern.launch "add_rms_norm"(%a, %b, %w)
//   %n = kern.launch "rms_norm"(%s, %w)             ->
// and likewise a layer_norm (with its scale and bias) into add_layer_norm. One launch reads the two addends once and
// writes both the sum (the stream goes on) and the normalized rows. The fused kernel runs the two kernels' own
// code, so its results equal theirs bit for bit.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Passes.h"

#include "mlir/IR/Builders.h"

namespace qopt {
#define GEN_PASS_DEF_FUSEADDNORMPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

struct FuseAddNormPass : qopt::impl::FuseAddNormPassBase<FuseAddNormPass> {
  void runOnOperation() override {
    SmallVector<kern::LaunchOp> norms;
    getOperation().walk([&](kern::LaunchOp l) {
      if ((l.getKernel() == "rms_norm" || l.getKernel() == "layer_norm") && l.getNumOperands() >= 2)
        norms.push_back(l);
    });
    for (kern::LaunchOp norm : norms) {
      auto add = norm.getOperand(0).getDefiningOp<kern::LaunchOp>();
      auto fn = add ? add.getAttrs().getAs<StringAttr>("fn") : StringAttr();
      if (!add || add.getKernel() != "binary" || !fn || fn.getValue() != "add" || add.getNumResults() != 1 ||
          add.getResult(0).getType() != norm.getResult(0).getType())
        continue;
      // At the add: the norm's scale (and bias) are weights (defined before both) or at least defined before the
      // add. An absent bias is a kern.absent: taken along as it is.
      SmallVector<Value> operands{add.getOperand(0), add.getOperand(1)};
      bool before = true;
      for (Value v : norm.getOperands().drop_front()) {
        if (Operation *def = v.getDefiningOp(); def && !def->isBeforeInBlock(add))
          before = false;
        operands.push_back(v);
      }
      if (!before)
        continue;
      OpBuilder b(add);
      SmallVector<NamedAttribute> attrs(norm.getAttrs().getValue());
      auto fused = kern::LaunchOp::create(
          b, norm.getLoc(), TypeRange{add.getResult(0).getType(), norm.getResult(0).getType()},
          b.getStringAttr(norm.getKernel() == "rms_norm" ? "add_rms_norm" : "add_layer_norm"), operands,
          b.getDictionaryAttr(attrs), StringAttr(), DenseI64ArrayAttr(), ArrayAttr());
      add.getResult(0).replaceAllUsesWith(fused.getResult(0));
      norm.getResult(0).replaceAllUsesWith(fused.getResult(1));
      norm.erase();
      add.erase();
    }
  }
};

} // namespace
