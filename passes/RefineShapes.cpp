//===- RefineShapes.cpp - dims that a consumer forces -----------------------===//
//
// Forward shape inference cannot see every dim: after a head-merge Reshape(x, Concat(Shape(x)[0:2], [-1])) the last
// dim is `?` although the next matmul's constant [K, N] weight fixes it to K. This pass refines such dims backwards
// into the producer's result type (the nn verifiers accept a static dim where inference says `?`), so that passes
// keyed on static shapes (linear-layer detection, quantization) see the layer.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Passes.h"

namespace qopt {
#define GEN_PASS_DEF_REFINESHAPESPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

struct RefineShapesPass : qopt::impl::RefineShapesPassBase<RefineShapesPass> {
  void runOnOperation() override {
    getOperation().walk([&](nn::MatmulOp mm) {
      auto w = mm.getRhs().getDefiningOp<nn::ConstantOp>();
      auto wt = w ? dyn_cast<RankedTensorType>(w.getType()) : RankedTensorType();
      auto xt = dyn_cast<RankedTensorType>(mm.getLhs().getType());
      if (!wt || wt.getRank() != 2 || !xt || xt.getRank() < 2 || !xt.isDynamicDim(xt.getRank() - 1))
        return;
      // Only an nn op's result: function arguments keep their declared types.
      Operation *def = mm.getLhs().getDefiningOp();
      if (!def || !def->getDialect() || def->getDialect()->getNamespace() != "nn")
        return;
      SmallVector<int64_t> shape(xt.getShape());
      shape.back() = wt.getDimSize(0);
      mm.getLhs().setType(RankedTensorType::get(shape, xt.getElementType()));
    });
  }
};

} // namespace
