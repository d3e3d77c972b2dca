//===- RefineShapes.cpp - dims that do not depend on the input sizes ----------===//
//
// Forward shape inference works op by op and loses what an op cannot see: after
//   Reshape(q_proj(x), Concat(Shape(x)[0], Shape(x)[1], [-1], [16]))
// the heads dim is `?`, because inference does not know that Shape(x)'s dims are the product's own. This pass
// recovers such dims in two steps:
//   1. Sampling: the function's shapes are evaluated twice through the kernels' shape functions (shape arithmetic
//      evaluated on its values), with two different sets of sizes for the dynamic input dims (one size per dim
//      name, far apart as in ShapeInference.cpp). A result dim that is `?` in the IR but the same in both runs
//      does not depend on the input sizes: it becomes static. (The memory planner checks every static dim again
//      at the compiled bounds.)
//   2. Contraction: a matmul with a constant [K, N] weight fixes its input's last dim to K.
// Refined types are written into the producing nn op's results (every nn verifier accepts a static dim where its
// inference says `?`) and returned values into the function's result types; arguments keep their declared types.
//
//===----------------------------------------------------------------------===//
#include "passes/ShapeSampling.h"
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
    func::FuncOp func = getOperation();
    // One size per dim name (unnamed dims get their own), different between the two runs and far apart (odd and
    // distinct per name, as in ShapeInference.cpp).
    Samples a, b;
    sampleShapes(func, sizePerDimName(func, 9967, 2), SamplingOptions{}, a);
    sampleShapes(func, sizePerDimName(func, 19937, 2), SamplingOptions{}, b);
    func.walk([&](Operation *op) {
      if (!op->getDialect() || op->getDialect()->getNamespace() != "nn" || isa<nn::ConstantOp>(op))
        return;
      for (Value v : op->getResults()) {
        auto type = dyn_cast<RankedTensorType>(v.getType());
        auto ia = a.find(v), ib = b.find(v);
        if (!type || type.hasStaticShape() || ia == a.end() || ib == b.end() || !ia->second->known ||
            !ib->second->known)
          continue;
        const num::Shape &sa = ia->second->t.shape, &sb = ib->second->t.shape;
        if (static_cast<int64_t>(sa.size()) != type.getRank() || sa.size() != sb.size())
          continue;
        SmallVector<int64_t> shape(type.getShape());
        for (size_t d = 0; d < shape.size(); ++d)
          if (ShapedType::isDynamic(shape[d]) && sa[d] == sb[d])
            shape[d] = sa[d];
        v.setType(RankedTensorType::get(shape, type.getElementType()));
      }
    });
    // Contraction with a constant weight.
    func.walk([&](nn::MatmulOp mm) {
      auto w = mm.getRhs().getDefiningOp<nn::ConstantOp>();
      auto wt = w ? dyn_cast<RankedTensorType>(w.getType()) : RankedTensorType();
      auto xt = dyn_cast<RankedTensorType>(mm.getLhs().getType());
      if (!wt || wt.getRank() != 2 || !xt || xt.getRank() < 2 || !xt.isDynamicDim(xt.getRank() - 1))
        return;
      Operation *def = mm.getLhs().getDefiningOp();
      if (!def || !def->getDialect() || def->getDialect()->getNamespace() != "nn")
        return;
      SmallVector<int64_t> shape(xt.getShape());
      shape.back() = wt.getDimSize(0);
      mm.getLhs().setType(RankedTensorType::get(shape, xt.getElementType()));
    });
    // Results returned by the function refine its signature with them.
    auto ret = cast<func::ReturnOp>(func.getBody().back().getTerminator());
    func.setFunctionType(FunctionType::get(&getContext(), func.getArgumentTypes(), ret.getOperandTypes()));
  }
};

} // namespace
