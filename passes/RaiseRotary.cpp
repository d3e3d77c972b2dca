//===- RaiseRotary.cpp - rotary position embeddings to nn.rotary -------------===//
//
// Matches y = x * C + rotate_half(x) * S where
//   rotate_half(x) = Concat(Neg(x[..., D/2:]), x[..., :D/2]) along the last axis,
//   C = Unsqueeze(Cos(E), 1), S = Unsqueeze(Sin(E), 1), E = Concat(F, F) along the last axis,
//   F = positions * inv_freq, written as MatMul(Unsqueeze(Cast(P), 2), inv_freq [1, D/2]) (scripts/llama2c_to_onnx)
//       or Transpose(MatMul(inv_freq [1, D/2, 1], Cast(P) [1, 1, S]), [0, 2, 1]) (HF exports),
// and replaces it with nn.rotary rotate_half(x, P, inv_freq): the per-forward cos/sin tables and the per-layer
// rotation become one op per rotated tensor. x must be [B, H, S, D] (heads before the sequence).
//
//===----------------------------------------------------------------------===//
#include "passes/RaiseMatchers.h"
#include "qopt/Passes.h"

#include "mlir/IR/Builders.h"

namespace qopt {
#define GEN_PASS_DEF_RAISEROTARYPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;
using namespace qopt::raise;

namespace {

// If `v` is x[..., lo:hi] (a slice of the last axis with step 1), returns x; hi may be past the end.
Value lastAxisSlice(Value v, int64_t lo, int64_t hi) {
  auto s = v.getDefiningOp<nn::SliceOp>();
  if (!s)
    return {};
  auto xt = dyn_cast<RankedTensorType>(s.getX().getType());
  if (!xt || xt.getRank() == 0)
    return {};
  auto start = intConstant(s.getStarts()), end = intConstant(s.getEnds());
  auto axis = isa<NoneType>(s.getAxes().getType()) ? std::optional<int64_t>(0) : intConstant(s.getAxes());
  auto step = isa<NoneType>(s.getSteps().getType()) ? std::optional<int64_t>(1) : intConstant(s.getSteps());
  if (!start || !end || !axis || !step || *step != 1 || (*axis != -1 && *axis != xt.getRank() - 1))
    return {};
  const int64_t D = xt.getShape().back();
  if (*start != lo || (*end != hi && !(hi == D && *end >= D)))
    return {};
  return s.getX();
}

// If `v` is rotate_half(x), returns x.
Value rotateHalfOf(Value v) {
  auto cat = v.getDefiningOp<nn::ConcatOp>();
  if (!cat || cat.getInputs().size() != 2)
    return {};
  auto neg = unaryOf(cat.getInputs()[0], "neg");
  if (!neg)
    return {};
  auto t = dyn_cast<RankedTensorType>(cat.getType());
  const int64_t axis = static_cast<int64_t>(cat.getAxis()); // I64Attr reads as uint64_t
  if (!t || t.isDynamicDim(t.getRank() - 1) || (axis != -1 && axis != t.getRank() - 1))
    return {};
  const int64_t D = t.getShape().back(), half = D / 2;
  Value hi = lastAxisSlice(neg.getX(), half, D), lo = lastAxisSlice(cat.getInputs()[1], 0, half);
  return hi && hi == lo ? hi : Value();
}

struct Angles {
  Value positions; // [B or 1, S]
  Value invFreq;   // constant [1, D/2] or [D/2]
};

// F = positions * inv_freq in one of the two exported forms.
std::optional<Angles> anglesOf(Value f) {
  // scripts/llama2c_to_onnx: MatMul(Unsqueeze(Cast(P), 2), inv_freq [1, D/2]).
  if (auto mm = f.getDefiningOp<nn::MatmulOp>()) {
    auto unsq = mm.getLhs().getDefiningOp<nn::UnsqueezeOp>();
    auto inv = mm.getRhs().getDefiningOp<nn::ConstantOp>();
    if (unsq && inv && unsq.getAxes() == ArrayRef<int64_t>{2})
      if (auto cast = unsq.getX().getDefiningOp<nn::CastOp>())
        if (auto pt = dyn_cast<RankedTensorType>(cast.getX().getType()); pt && pt.getRank() == 2)
          return Angles{cast.getX(), inv};
    return std::nullopt;
  }
  // HF: Transpose(MatMul(inv_freq [1, D/2, 1], Cast(P) [1, 1, S]), [0, 2, 1]) with P [1, 1, S] or [B, 1, S].
  auto tr = f.getDefiningOp<nn::TransposeOp>();
  auto mm = tr ? tr.getX().getDefiningOp<nn::MatmulOp>() : nn::MatmulOp();
  if (!mm || tr.getPerm() != ArrayRef<int64_t>{0, 2, 1})
    return std::nullopt;
  auto inv = mm.getLhs().getDefiningOp<nn::ConstantOp>();
  auto cast = mm.getRhs().getDefiningOp<nn::CastOp>();
  auto it = inv ? dyn_cast<RankedTensorType>(inv.getType()) : RankedTensorType();
  auto pt = cast ? dyn_cast<RankedTensorType>(cast.getX().getType()) : RankedTensorType();
  if (!it || it.getRank() != 3 || it.getDimSize(0) != 1 || it.getDimSize(2) != 1 || !pt || pt.getRank() != 3 ||
      pt.getDimSize(1) != 1)
    return std::nullopt;
  return Angles{cast.getX(), inv}; // squeezed to [B, S] when raised
}

// If `v` is Unsqueeze(fn(Concat(F, F)), 1), returns F's angles.
std::optional<Angles> tableOf(Value v, StringRef fn, Value &f) {
  auto unsq = v.getDefiningOp<nn::UnsqueezeOp>();
  if (!unsq || unsq.getAxes() != ArrayRef<int64_t>{1})
    return std::nullopt;
  auto u = unaryOf(unsq.getX(), fn);
  auto cat = u ? u.getX().getDefiningOp<nn::ConcatOp>() : nn::ConcatOp();
  if (!cat || cat.getInputs().size() != 2 || cat.getInputs()[0] != cat.getInputs()[1])
    return std::nullopt;
  f = cat.getInputs()[0];
  return anglesOf(f);
}

struct Match {
  nn::BinaryOp root;
  Value x;
  Angles angles;
};

std::optional<Match> matchAt(nn::BinaryOp add) {
  if (add.getFn() != "add")
    return std::nullopt;
  for (auto [a, b] : {std::pair(add.getLhs(), add.getRhs()), std::pair(add.getRhs(), add.getLhs())}) {
    auto ma = binaryOf(a, "mul"), mb = binaryOf(b, "mul");
    if (!ma || !mb)
      continue;
    for (auto [x, c] : {std::pair(ma.getLhs(), ma.getRhs()), std::pair(ma.getRhs(), ma.getLhs())})
      for (auto [r, s] : {std::pair(mb.getLhs(), mb.getRhs()), std::pair(mb.getRhs(), mb.getLhs())}) {
        if (rotateHalfOf(r) != x)
          continue;
        Value fc, fs;
        auto cosA = tableOf(c, "cos", fc), sinA = tableOf(s, "sin", fs);
        auto xt = dyn_cast<RankedTensorType>(x.getType());
        if (!cosA || !sinA || fc != fs || !xt || xt.getRank() != 4 || x.getType() != add.getType())
          continue;
        return Match{add, x, *cosA};
      }
  }
  return std::nullopt;
}

struct RaiseRotaryPass : qopt::impl::RaiseRotaryPassBase<RaiseRotaryPass> {
  void runOnOperation() override {
    SmallVector<Match> matches;
    getOperation().walk([&](nn::BinaryOp add) {
      if (auto m = matchAt(add))
        matches.push_back(*m);
    });
    for (Match &m : matches) {
      OpBuilder b(m.root);
      Value pos = m.angles.positions;
      auto pt = cast<RankedTensorType>(pos.getType());
      if (pt.getRank() == 3) // HF's [B, 1, S]
        pos = nn::SqueezeOp::create(b, m.root.getLoc(),
                                    RankedTensorType::get({pt.getDimSize(0), pt.getDimSize(2)}, pt.getElementType()),
                                    pos, b.getDenseI64ArrayAttr({1}));
      auto rot = nn::RotaryOp::create(b, m.root.getLoc(), m.root.getType(), m.x, pos, m.angles.invFreq,
                                      nn::RotaryStyle::rotate_half);
      m.root.getResult().replaceAllUsesWith(rot.getResult());
      eraseDead({m.root});
    }
  }
};

} // namespace
