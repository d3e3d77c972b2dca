//===- RaiseGatedMlp.cpp - act(gate) * up to nn.gated_act -------------------===//
//
// The middle of a gated MLP, down(act(gate(x)) * up(x)), becomes one nn.gated_act: with SiLU written as
// g * Sigmoid(g) (Llama, Qwen, Mistral, Phi-3 exports, llama2.c) or GELU already raised to nn.gelu (GeGLU). The
// activation's result must have no other use, and gate and up one type.
//
//===----------------------------------------------------------------------===//
#include "passes/RaiseMatchers.h"
#include "qopt/Passes.h"

#include "mlir/IR/Builders.h"

namespace qopt {
#define GEN_PASS_DEF_RAISEGATEDMLPPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;
using namespace qopt::raise;

namespace {

// If `v` is act(g) with one use, returns g and the activation.
std::optional<std::pair<Value, nn::GatedActivation>> activationOf(Value v) {
  if (!v.hasOneUse())
    return std::nullopt;
  if (auto gelu = v.getDefiningOp<nn::GeluOp>())
    return std::pair(gelu.getX(), gelu.getApproximation() == nn::GeluApproximation::tanh
                                      ? nn::GatedActivation::gelu_tanh
                                      : nn::GatedActivation::gelu);
  auto mul = binaryOf(v, "mul");
  if (!mul)
    return std::nullopt;
  for (auto [g, s] : {std::pair(mul.getLhs(), mul.getRhs()), std::pair(mul.getRhs(), mul.getLhs())})
    if (auto sig = unaryOf(s, "sigmoid"); sig && sig.getX() == g && s.hasOneUse())
      return std::pair(g, nn::GatedActivation::silu);
  return std::nullopt;
}

struct RaiseGatedMlpPass : qopt::impl::RaiseGatedMlpPassBase<RaiseGatedMlpPass> {
  void runOnOperation() override {
    struct Match {
      nn::BinaryOp root;
      Value gate, up;
      nn::GatedActivation act;
    };
    SmallVector<Match> matches;
    getOperation().walk([&](nn::BinaryOp mul) {
      if (mul.getFn() != "mul")
        return;
      for (auto [a, u] : {std::pair(mul.getLhs(), mul.getRhs()), std::pair(mul.getRhs(), mul.getLhs())}) {
        auto act = activationOf(a);
        if (act && act->first.getType() == u.getType() && u.getType() == mul.getType() && act->first != u) {
          matches.push_back({mul, act->first, u, act->second});
          return;
        }
      }
    });
    for (Match &m : matches) {
      OpBuilder b(m.root);
      auto gated = nn::GatedActOp::create(b, m.root.getLoc(), m.root.getType(), m.gate, m.up, m.act);
      m.root.getResult().replaceAllUsesWith(gated.getResult());
      eraseDead({m.root});
    }
  }
};

} // namespace
