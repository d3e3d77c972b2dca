//===- RaiseGelu.cpp - decomposed GELU to nn.gelu ---------------------------===//
//
// Matches 0.5 * x * (1 + f) where
//   erf:   f = Erf(x / sqrt(2)) or Erf(x * (1 / sqrt(2)))
//   tanh:  f = Tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)), x^3 as Pow(x, 3) or x * x * x
// with the three factors multiplied in any grouping and order (x * 0.5 may also be x / 2).
//
//===----------------------------------------------------------------------===//
#include "passes/RaiseMatchers.h"
#include "qopt/Passes.h"

#include "mlir/IR/Builders.h"

namespace qopt {
#define GEN_PASS_DEF_RAISEGELUPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;
using namespace qopt::raise;

namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440, kSqrt2 = 1.41421356237309504880;
constexpr double kSqrt2OverPi = 0.79788456080286535588, kCubic = 0.044715;
constexpr double kTol = 1e-5; // float32 roundings of the constants above

// The x of erf's argument x / sqrt(2) or x * (1 / sqrt(2)).
Value erfInput(Value arg) {
  if (auto div = binaryOf(arg, "div"); div && isScalar(div.getRhs(), kSqrt2, kTol))
    return div.getLhs();
  return operandBesideScalar(binaryOf(arg, "mul"), kInvSqrt2, kTol);
}

// Whether `v` is x^3.
bool isCube(Value v, Value x) {
  if (auto pow = binaryOf(v, "pow"))
    return pow.getLhs() == x && isScalar(pow.getRhs(), 3.0, 0.0);
  auto mul = binaryOf(v, "mul");
  if (!mul)
    return false;
  for (auto [a, b] : {std::pair(mul.getLhs(), mul.getRhs()), std::pair(mul.getRhs(), mul.getLhs())})
    if (a == x)
      if (auto sq = binaryOf(b, "mul"); sq && sq.getLhs() == x && sq.getRhs() == x)
        return true;
  return false;
}

// The x of tanh's argument sqrt(2 / pi) * (x + 0.044715 * x^3).
Value tanhInput(Value arg) {
  auto inner = binaryOf(operandBesideScalar(binaryOf(arg, "mul"), kSqrt2OverPi, kTol), "add");
  if (!inner)
    return {};
  for (auto [x, c] : {std::pair(inner.getLhs(), inner.getRhs()), std::pair(inner.getRhs(), inner.getLhs())})
    if (isCube(operandBesideScalar(binaryOf(c, "mul"), kCubic, kTol), x))
      return x;
  return {};
}

// Whether `v` is x * 0.5 or x / 2.
bool isHalfOf(Value v, Value x) {
  if (operandBesideScalar(binaryOf(v, "mul"), 0.5, 0.0) == x)
    return true;
  auto div = binaryOf(v, "div");
  return div && div.getLhs() == x && isScalar(div.getRhs(), 2.0, 0.0);
}

// Given e = 1 + f, the op computing 0.5 * x * e, or null.
Operation *productRoot(Value e, Value x) {
  auto m1 = dyn_cast_or_null<nn::BinaryOp>(singleUser(e));
  if (!m1 || m1.getFn() != "mul")
    return nullptr;
  Value p = otherOperand(m1, e);
  if (isHalfOf(p, x))
    return m1; // (x * 0.5) * e
  auto m2 = dyn_cast_or_null<nn::BinaryOp>(singleUser(m1.getResult()));
  if (!m2 || m2.getFn() != "mul")
    return nullptr;
  Value q = otherOperand(m2, m1.getResult());
  if ((p == x && isScalar(q, 0.5, 0.0)) || (isScalar(p, 0.5, 0.0) && q == x))
    return m2; // (x * e) * 0.5 or (0.5 * e) * x
  return nullptr;
}

struct RaiseGeluPass : qopt::impl::RaiseGeluPassBase<RaiseGeluPass> {
  void runOnOperation() override {
    struct Match {
      Operation *root;
      Value x;
      nn::GeluApproximation approx;
    };
    SmallVector<Match> matches;
    getOperation().walk([&](nn::UnaryOp f) {
      Value x;
      nn::GeluApproximation approx;
      if (f.getFn() == "erf")
        x = erfInput(f.getX()), approx = nn::GeluApproximation::erf;
      else if (f.getFn() == "tanh")
        x = tanhInput(f.getX()), approx = nn::GeluApproximation::tanh;
      if (!x || !f->hasOneUse())
        return;
      auto e = dyn_cast<nn::BinaryOp>(*f->getUsers().begin());
      if (!e || e.getFn() != "add" || !isScalar(otherOperand(e, f.getResult()), 1.0, 0.0))
        return;
      Operation *root = productRoot(e.getResult(), x);
      if (root && root->getResult(0).getType() == x.getType())
        matches.push_back({root, x, approx});
    });
    for (Match &m : matches) {
      OpBuilder b(m.root);
      auto gelu = nn::GeluOp::create(b, m.root->getLoc(), m.x.getType(), m.x, m.approx);
      m.root->getResult(0).replaceAllUsesWith(gelu.getResult());
      eraseDead({m.root});
    }
  }
};

} // namespace
