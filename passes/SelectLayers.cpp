//===- SelectLayers.cpp - which linear layers stay in float, and why ------===//
//
// Marks every linear layer (passes/LinearLayers.h) that weight quantization must leave in float with
// `qopt.float_reason`, a sentence for qopt's summary and --report:
//   - the output head: a layer whose result reaches a function result through reshapes, transposes, casts and
//     bias additions only (the vocabulary projection, lm_head, whatever its weight is called), unless
//     `quantize-lm-head` is set;
//   - a layer whose weight or node name matches `exclude`.
// The quantization passes (calibrate, awq, gptq, rtn) skip marked layers.
//
//===----------------------------------------------------------------------===//
#include "passes/LinearLayers.h"
#include "qopt/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/Regex.h"

namespace qopt {
#define GEN_PASS_DEF_SELECTLAYERSPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

// Whether `v` reaches a function result through ops that only move, cast or offset it.
bool reachesResult(Value v, int depth = 0) {
  if (depth > 16)
    return false;
  for (Operation *user : v.getUsers()) {
    if (isa<func::ReturnOp>(user))
      return true;
    bool passes = isa<nn::ReshapeOp, nn::TransposeOp, nn::CastOp, nn::SqueezeOp, nn::UnsqueezeOp, nn::FlattenOp>(user);
    if (auto add = dyn_cast<nn::BinaryOp>(user))
      passes = add.getFn() == "add" && (add.getLhs().getDefiningOp<nn::ConstantOp>() ||
                                        add.getRhs().getDefiningOp<nn::ConstantOp>());
    if (passes && reachesResult(user->getResult(0), depth + 1))
      return true;
  }
  return false;
}

struct SelectLayersPass : qopt::impl::SelectLayersPassBase<SelectLayersPass> {
  using SelectLayersPassBase::SelectLayersPassBase;

  void runOnOperation() override {
    llvm::Regex excludeRe(exclude);
    std::string reErr;
    if (!exclude.empty() && !excludeRe.isValid(reErr)) {
      getOperation().emitError() << "qopt-select-layers: invalid exclude regex '" << exclude << "': " << reErr;
      return signalPassFailure();
    }
    getOperation().walk([&](nn::MatmulOp mm) {
      if (!linearWeight(mm))
        return;
      std::string name = layerName(mm), node;
      if (auto nl = dyn_cast<NameLoc>(mm.getLoc()))
        node = nl.getName().str();
      std::string reason;
      if (!exclude.empty() && (excludeRe.match(name) || excludeRe.match(node)))
        reason = "matches --exclude '" + exclude + "'";
      else if (!quantizeLmHead && reachesResult(mm.getResult()))
        reason = "output head (it produces a model output); --quantize-lm-head quantizes it";
      if (!reason.empty())
        mm->setAttr(kFloatReasonAttr, StringAttr::get(&getContext(), reason));
    });
  }
};

} // namespace
