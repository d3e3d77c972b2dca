//===- RaiseRmsNorm.cpp - decomposed RMSNorm to nn.rms_norm -----------------===//
//
// Matches n = x * r with r = 1 / sqrt(mean(x^2, last dim) + eps) in the forms exporters write:
//   x^2:      Pow(x, 2) or Mul(x, x)
//   mean:     ReduceMean over the last axis, keepdims
//   r:        Reciprocal(Sqrt(m + eps)), or n = Div(x, Sqrt(m + eps))
// and then the scale: y = n * w with w a constant of the last dim's size (either operand order). Without a scale
// the op gets a constant one, so every RMS normalization runs as one kernel.
//
//===----------------------------------------------------------------------===//
#include "passes/RaiseMatchers.h"
#include "qopt/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinDialect.h"

namespace qopt {
#define GEN_PASS_DEF_RAISERMSNORMPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;
using namespace qopt::raise;

namespace {

struct Match {
  Operation *root; // the op whose result the rms_norm replaces
  Value x, scale;
  double eps;
};

// Whether `v` is mean(x^2) over the last axis of x with keepdims.
bool isMeanOfSquares(Value v, Value x) {
  auto mean = v.getDefiningOp<nn::ReduceOp>();
  if (!mean || mean.getKind() != "mean" || mean.getKeepdims() != 1)
    return false;
  auto type = dyn_cast<RankedTensorType>(x.getType());
  ArrayRef<int64_t> axes = mean.getAxes();
  if (!type || axes.size() != 1 || (axes[0] != -1 && axes[0] != type.getRank() - 1))
    return false;
  Value sq = mean.getX();
  if (auto pow = binaryOf(sq, "pow"))
    return pow.getLhs() == x && isScalar(pow.getRhs(), 2.0, 0.0);
  if (auto mul = binaryOf(sq, "mul"))
    return mul.getLhs() == x && mul.getRhs() == x;
  return false;
}

// If `denom` is sqrt(mean(x^2) + eps), returns eps.
std::optional<double> sqrtOfMeanSquares(Value denom, Value x) {
  auto sqrt = unaryOf(denom, "sqrt");
  auto add = sqrt ? binaryOf(sqrt.getX(), "add") : nn::BinaryOp();
  if (!add)
    return std::nullopt;
  for (auto [m, e] : {std::pair(add.getLhs(), add.getRhs()), std::pair(add.getRhs(), add.getLhs())}) {
    auto eps = scalarConstant(e);
    if (eps && *eps >= 0 && isMeanOfSquares(m, x))
      return eps;
  }
  return std::nullopt;
}

// Matches the normalization n (without scale) defined by `op`.
std::optional<Match> matchNorm(Operation *op) {
  if (auto div = dyn_cast<nn::BinaryOp>(op); div && div.getFn() == "div")
    if (auto eps = sqrtOfMeanSquares(div.getRhs(), div.getLhs()))
      return Match{op, div.getLhs(), Value(), *eps};
  auto mul = dyn_cast<nn::BinaryOp>(op);
  if (!mul || mul.getFn() != "mul")
    return std::nullopt;
  for (auto [x, r] : {std::pair(mul.getLhs(), mul.getRhs()), std::pair(mul.getRhs(), mul.getLhs())})
    if (auto recip = unaryOf(r, "reciprocal"))
      if (auto eps = sqrtOfMeanSquares(recip.getX(), x))
        return Match{op, x, Value(), *eps};
  return std::nullopt;
}

// A constant that can scale the normalized last dim: 1-D of its size, the input's element type.
bool isScale(Value w, RankedTensorType xt) {
  auto c = w.getDefiningOp<nn::ConstantOp>();
  auto t = c ? dyn_cast<RankedTensorType>(c.getType()) : RankedTensorType();
  return t && t.getRank() == 1 && t.getDimSize(0) == xt.getShape().back() &&
         t.getElementType() == xt.getElementType();
}

struct RaiseRmsNormPass : qopt::impl::RaiseRmsNormPassBase<RaiseRmsNormPass> {
  void runOnOperation() override {
    SmallVector<Match> matches;
    getOperation().walk([&](Operation *op) {
      std::optional<Match> m = matchNorm(op);
      if (!m)
        return;
      auto xt = dyn_cast<RankedTensorType>(m->x.getType());
      if (!xt || xt.getRank() == 0 || xt.isDynamicDim(xt.getRank() - 1) || !isa<FloatType>(xt.getElementType()))
        return;
      // The scale, when the normalized value's one use multiplies it by a constant of the right shape. The
      // result must keep x's type (a broadcast against a bigger scale would change it).
      if (auto user = dyn_cast_or_null<nn::BinaryOp>(singleUser(op->getResult(0)));
          user && user.getFn() == "mul" && user.getType() == op->getResult(0).getType()) {
        Value w = otherOperand(user, op->getResult(0));
        if (w && isScale(w, xt)) {
          m->root = user;
          m->scale = w;
        }
      }
      matches.push_back(*m);
    });
    for (Match &m : matches) {
      OpBuilder b(m.root);
      auto xt = cast<RankedTensorType>(m.x.getType());
      Value scale = m.scale;
      if (!scale) {
        auto st = RankedTensorType::get({xt.getShape().back()}, xt.getElementType());
        scale = nn::ConstantOp::create(b, m.root->getLoc(), st,
                                       DenseElementsAttr::get(st, b.getFloatAttr(xt.getElementType(), 1.0)),
                                       StringAttr());
      }
      auto norm = nn::RmsNormOp::create(b, m.root->getLoc(), m.root->getResult(0).getType(), m.x, scale,
                                        b.getF64FloatAttr(m.eps));
      m.root->getResult(0).replaceAllUsesWith(norm.getResult());
      eraseDead({m.root});
    }
  }
};

} // namespace
