//===- FuseGatedProduct.cpp - a gated MLP's activation into its product -----===//
//
// A gated MLP's gate and up layers run as one stacked product (qopt-fuse-linears) whose two results only the gated
// activation reads:
//   %g, %u = kern.launch "matmul_q_split"(%x, %W, %S, %Z) {splits = [N, N]}
//   %h = kern.launch "gated_act"(%g, %u) {activation}          ->  %h = kern.launch "matmul_q_gated"(%x, %W, %S, %Z)
// For a product of a few static rows (a decode step: the matrix-vector kernels, which hold a gate channel and its
// up channel in one thread) the activation becomes the product's epilogue: one launch, and the 2N-wide gate and
// up rows never reach memory. A prompt's products keep the activation apart: they run as library GEMMs, whose
// epilogues cannot take it. The fused kernel's reference runs the two kernels' own code (bit for bit the same).
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"

namespace qopt {
#define GEN_PASS_DEF_FUSEGATEDPRODUCTPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

constexpr int64_t kMaxRows = 16; // the matrix-vector kernels' rows

// Rows of x (all dims but the last), or -1 when one is dynamic.
int64_t staticRows(Value x) {
  auto t = dyn_cast<RankedTensorType>(x.getType());
  if (!t || t.getRank() == 0)
    return -1;
  int64_t rows = 1;
  for (int64_t d : t.getShape().drop_back()) {
    if (ShapedType::isDynamic(d))
      return -1;
    rows *= d;
  }
  return rows;
}

struct FuseGatedProductPass : qopt::impl::FuseGatedProductPassBase<FuseGatedProductPass> {
  void runOnOperation() override {
    SmallVector<kern::LaunchOp> gates;
    getOperation().walk([&](kern::LaunchOp l) {
      if (l.getKernel() == "gated_act" && l.getNumOperands() == 2 && !l.getVariant())
        gates.push_back(l);
    });
    for (kern::LaunchOp gated : gates) {
      auto product = gated.getOperand(0).getDefiningOp<kern::LaunchOp>();
      if (!product || product.getKernel() != "matmul_q_split" || product.getVariant() ||
          product.getNumResults() != 2 || gated.getOperand(0) != product.getResult(0) ||
          gated.getOperand(1) != product.getResult(1) || !product.getResult(0).hasOneUse() ||
          !product.getResult(1).hasOneUse() || product.getResult(0).getType() != product.getResult(1).getType() ||
          product.getResult(0).getType() != gated.getResult(0).getType())
        continue;
      const int64_t rows = staticRows(product.getOperand(0));
      if (rows < 1 || rows > kMaxRows)
        continue;
      OpBuilder b(product);
      SmallVector<NamedAttribute> attrs;
      for (NamedAttribute a : product.getAttrs())
        if (a.getName() != "splits" && a.getName() != "num_outputs")
          attrs.push_back(a);
      attrs.push_back(b.getNamedAttr("activation", gated.getAttrs().get("activation")
                                                       ? gated.getAttrs().get("activation")
                                                       : b.getI64IntegerAttr(0)));
      auto fused = kern::LaunchOp::create(b, gated.getLoc(), gated.getResult(0).getType(),
                                          b.getStringAttr("matmul_q_gated"), product.getOperands(),
                                          b.getDictionaryAttr(attrs), StringAttr(), DenseI64ArrayAttr(), ArrayAttr());
      gated.getResult(0).replaceAllUsesWith(fused.getResult(0));
      gated.erase();
      product.erase();
    }
  }
};

} // namespace
