//===- RaiseAttention.cpp - softmax(Q K^T) V to nn.attention ----------------===//
//
// Matches the attention exporters write, from the softmax outwards:
//   scores = MatMul(Q [* c1], K^T [* c2]) [* c | / c]
//   K^T    = Transpose(K, last two dims), or torch's sdpa form Reshape(Transpose(Reshape(K, [-1, T, D]), [0, 2, 1]),
//            [B, H, D, T])
//   masked = Where(bool mask, scores, fill) | Add(scores, float mask) | scores
//   P      = Softmax(masked, last axis) [then Where(IsNaN(P), 0, P), sdpa's guard]
//   out    = MatMul(P, V)
// with K and V optionally behind the grouped-query repeat Reshape(Expand(Unsqueeze(X, 2), [B, Hkv, n, T, D]),
// [B, Hkv * n, T, D]), which the op's head grouping replaces. The scale is the product of the constants.
//
//===----------------------------------------------------------------------===//
#include "passes/RaiseMatchers.h"
#include "passes/ShapeSampling.h"
#include "qopt/Passes.h"

#include "mlir/IR/Builders.h"

namespace qopt {
#define GEN_PASS_DEF_RAISEATTENTIONPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;
using namespace qopt::raise;

namespace {

RankedTensorType rankedType(Value v, int64_t rank) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t && t.getRank() == rank ? t : RankedTensorType();
}

// If `v` is X [* c] or [c *] X with c a scalar constant, returns X and multiplies `scale` by c.
Value stripScale(Value v, double &scale) {
  if (auto mul = binaryOf(v, "mul"))
    for (auto [x, c] : {std::pair(mul.getLhs(), mul.getRhs()), std::pair(mul.getRhs(), mul.getLhs())})
      if (auto s = scalarConstant(c); s && x.getType() == mul.getType()) {
        scale *= *s;
        return x;
      }
  if (auto div = binaryOf(v, "div"))
    if (auto s = scalarConstant(div.getRhs()); s && *s != 0 && div.getLhs().getType() == div.getType()) {
      scale /= *s;
      return div.getLhs();
    }
  return v;
}

// Undoes the grouped-query repeat of kv heads: X [B, Hkv, T, D] from Reshape(Expand(Unsqueeze(X, 2), ...)).
Value stripRepeat(Value v) {
  auto merge = v.getDefiningOp<nn::ReshapeOp>();
  auto expand = merge ? merge.getX().getDefiningOp<nn::ExpandOp>() : nn::ExpandOp();
  auto unsq = expand ? expand.getX().getDefiningOp<nn::UnsqueezeOp>() : nn::UnsqueezeOp();
  if (!unsq || unsq.getAxes().size() != 1 || unsq.getAxes()[0] != 2)
    return v;
  auto x = rankedType(unsq.getX(), 4), e = rankedType(expand.getY(), 5), r = rankedType(merge.getY(), 4);
  if (!x || !e || !r || x.isDynamicDim(1) || x.isDynamicDim(3) || e.isDynamicDim(2) || e.getDimSize(1) != x.getDimSize(1) ||
      r.getDimSize(1) != x.getDimSize(1) * e.getDimSize(2) || r.getDimSize(3) != x.getDimSize(3))
    return v;
  return unsq.getX();
}

// K from K^T: a transpose of the last two dims, or the sdpa reshape/transpose/reshape around a rank-3 transpose.
// GPT-2's eager export transposes [B, S, H, D] straight to [B, H, D, S]: then `bshd` is set and the caller puts K
// in [B, H, S, D] order.
Value untranspose(Value kt, bool &bshd) {
  bshd = false;
  if (auto tr = kt.getDefiningOp<nn::TransposeOp>()) {
    if (!rankedType(tr.getX(), 4))
      return {};
    if (tr.getPerm() == ArrayRef<int64_t>{0, 1, 3, 2})
      return tr.getX();
    if (tr.getPerm() == ArrayRef<int64_t>{0, 2, 3, 1}) {
      bshd = true;
      return tr.getX();
    }
    return {};
  }
  auto outer = kt.getDefiningOp<nn::ReshapeOp>();
  auto tr = outer ? outer.getX().getDefiningOp<nn::TransposeOp>() : nn::TransposeOp();
  auto inner = tr ? tr.getX().getDefiningOp<nn::ReshapeOp>() : nn::ReshapeOp();
  if (!inner || tr.getPerm() != ArrayRef<int64_t>{0, 2, 1})
    return {};
  // [B, H, T, D] -> [B*H, T, D] -> [B*H, D, T] -> [B, H, D, T]: the static dims must sit where a transpose of the
  // last two dims puts them.
  auto k = rankedType(inner.getX(), 4), flat = rankedType(inner.getY(), 3), out = rankedType(outer.getY(), 4);
  if (!k || !flat || !out || k.isDynamicDim(3) || flat.getDimSize(2) != k.getDimSize(3) ||
      out.getDimSize(2) != k.getDimSize(3) || (!k.isDynamicDim(1) && out.getDimSize(1) != k.getDimSize(1)))
    return {};
  return inner.getX();
}

struct Match {
  nn::SoftmaxOp softmax;
  nn::MatmulOp root; // out = P V
  Value q, k, v, mask;
  double scale = 1, maskedValue = -std::numeric_limits<double>::infinity();
  bool zeroNan = false;
  bool kBSHD = false; // k is [B, S, H, D]: transposed to [B, H, S, D] when raised
};

std::optional<Match> matchAt(nn::SoftmaxOp sm) {
  auto st = rankedType(sm.getX(), 4);
  if (!st || sm.getLog() != 0 || (static_cast<int64_t>(sm.getAxis()) != -1 && static_cast<int64_t>(sm.getAxis()) != 3))
    return std::nullopt;
  Match m;
  m.softmax = sm;
  // P's consumer: the P V product, possibly behind the NaN guard.
  Value p = sm.getY();
  Operation *consumer = singleUser(p);
  if (!consumer && std::distance(p.getUsers().begin(), p.getUsers().end()) == 2) {
    for (Operation *u : p.getUsers())
      if (auto w = dyn_cast<nn::WhereOp>(u))
        if (auto isnan = unaryOf(w.getCondition(), "isnan");
            isnan && isnan.getX() == p && w.getY() == p && isScalar(w.getX(), 0.0, 0.0) && isnan->hasOneUse()) {
          m.zeroNan = true;
          p = w.getResult();
          consumer = singleUser(p);
        }
  }
  auto pv = dyn_cast_or_null<nn::MatmulOp>(consumer);
  if (!pv || pv.getLhs() != p)
    return std::nullopt;
  m.root = pv;
  m.v = stripRepeat(pv.getRhs());
  // The mask.
  Value s = sm.getX();
  if (auto w = s.getDefiningOp<nn::WhereOp>()) {
    auto fill = scalarConstant(w.getY());
    auto ct = dyn_cast<RankedTensorType>(w.getCondition().getType());
    if (!fill || !ct || !ct.getElementType().isInteger(1) || !w->hasOneUse())
      return std::nullopt;
    m.mask = w.getCondition();
    m.maskedValue = *fill;
    s = w.getX();
  } else if (auto add = binaryOf(s, "add"); add && add->hasOneUse()) {
    // The scores are the operand computed by the Q K^T product (possibly scaled); the other is the mask.
    for (auto [x, msk] : {std::pair(add.getLhs(), add.getRhs()), std::pair(add.getRhs(), add.getLhs())}) {
      double unused = 1;
      if (x.getType() == add.getType() && stripScale(x, unused).getDefiningOp<nn::MatmulOp>() &&
          isa<FloatType>(cast<ShapedType>(msk.getType()).getElementType())) {
        m.mask = msk;
        s = x;
        break;
      }
    }
    if (!m.mask)
      return std::nullopt;
  }
  // The scores.
  Value raw = stripScale(s, m.scale);
  auto qk = raw.getDefiningOp<nn::MatmulOp>();
  if (!qk || (raw != s && !s.hasOneUse()) || !qk->hasOneUse())
    return std::nullopt;
  m.q = stripScale(qk.getLhs(), m.scale);
  Value kt = stripScale(qk.getRhs(), m.scale);
  Value k = untranspose(kt, m.kBSHD);
  if (!k)
    return std::nullopt;
  m.k = m.kBSHD ? k : stripRepeat(k);
  auto q = rankedType(m.q, 4), kk = rankedType(m.k, 4), v = rankedType(m.v, 4);
  if (kk && m.kBSHD) // as [B, H, S, D]
    kk = RankedTensorType::get({kk.getDimSize(0), kk.getDimSize(2), kk.getDimSize(1), kk.getDimSize(3)},
                               kk.getElementType());
  if (!q || !kk || !v || q.isDynamicDim(1) || kk.isDynamicDim(1) || v.isDynamicDim(1) ||
      kk.getDimSize(1) != v.getDimSize(1) || q.getDimSize(1) % kk.getDimSize(1) != 0)
    return std::nullopt;
  return m;
}

// Whether `mask` is computed from the function's inputs' shapes only (not their values).
bool dependsOnShapesOnly(Value mask) {
  SmallVector<Value> stack{mask};
  llvm::DenseSet<Operation *> seen;
  while (!stack.empty()) {
    Value v = stack.pop_back_val();
    Operation *def = v.getDefiningOp();
    if (!def)
      return false; // an input's values
    if (isa<nn::ShapeOp, nn::SizeOp>(def) || !seen.insert(def).second)
      continue;
    stack.append(def->operand_begin(), def->operand_end());
  }
  return true;
}

// Whether the mask of `m` keeps exactly the causal positions (key j for query i when j <= i + T - S), for any input
// sizes: it must depend on shapes only, and is evaluated at two small size assignments (the mask's values at
// [B, H, S, T], read through broadcasting). A boolean mask keeps where true; an additive one where 0 and masks
// with values <= -1e30 (exporters add -inf or the lowest float).
bool isCausal(func::FuncOp func, Match m) {
  if (!m.mask || !dependsOnShapesOnly(m.mask))
    return false;
  SamplingOptions options;
  options.maxElements = 1 << 14;
  options.floats = true;
  for (auto [base, step] : {std::pair<int64_t, int64_t>(3, 2), std::pair<int64_t, int64_t>(4, 3)}) {
    Samples samples;
    sampleShapes(func, sizePerDimName(func, base, step), options, samples);
    auto mi = samples.find(m.mask), si = samples.find(m.softmax.getX());
    if (mi == samples.end() || si == samples.end() || !mi->second->known || !mi->second->t.data ||
        !si->second->known || si->second->t.rank() != 4)
      return false;
    const num::Tensor &mk = mi->second->t;
    const num::Shape &full = si->second->t.shape; // [B, H, S, T]
    if (mk.rank() > 4)
      return false;
    int64_t strides[4], stride = 1;
    for (int d = 3; d >= 0; --d) {
      int64_t md = d - (4 - mk.rank()), size = md >= 0 ? mk.shape[md] : 1;
      if (size != 1 && size != full[d])
        return false;
      strides[d] = size == 1 ? 0 : stride;
      stride *= size;
    }
    const int64_t S = full[2], T = full[3];
    for (int64_t b = 0; b < full[0]; ++b)
      for (int64_t h = 0; h < full[1]; ++h)
        for (int64_t i = 0; i < S; ++i)
          for (int64_t j = 0; j < T; ++j) {
            const double v = num::loadDouble(mk, b * strides[0] + h * strides[1] + i * strides[2] + j * strides[3]);
            const bool keep = mk.dtype == num::DType::Bool ? v != 0 : v == 0;
            if (mk.dtype != num::DType::Bool && !keep && v > -1e30)
              return false;
            if (keep != (j <= i + T - S))
              return false;
          }
  }
  return true;
}

struct RaiseAttentionPass : qopt::impl::RaiseAttentionPassBase<RaiseAttentionPass> {
  void runOnOperation() override {
    SmallVector<Match> matches;
    getOperation().walk([&](nn::SoftmaxOp sm) {
      if (auto m = matchAt(sm))
        matches.push_back(*m);
    });
    // Causal masks (one per model, shared by the layers) become the op's causal flag: the mask's computation goes.
    llvm::DenseMap<Value, bool> causal;
    for (Match &m : matches) {
      if (!m.mask)
        continue;
      auto [it, inserted] = causal.try_emplace(m.mask, false);
      if (inserted)
        it->second = isCausal(getOperation(), m);
    }
    for (Match &m : matches) {
      OpBuilder b(m.root);
      const bool isCausalMask = m.mask && causal.lookup(m.mask);
      if (isCausalMask)
        m.mask = Value(), m.maskedValue = -std::numeric_limits<double>::infinity();
      Value mask = m.mask ? m.mask : nn::NoneOp::create(b, m.root.getLoc()).getResult();
      if (m.kBSHD) {
        auto t = cast<RankedTensorType>(m.k.getType());
        auto kt = RankedTensorType::get({t.getDimSize(0), t.getDimSize(2), t.getDimSize(1), t.getDimSize(3)},
                                        t.getElementType());
        m.k = nn::TransposeOp::create(b, m.root.getLoc(), kt, m.k, b.getDenseI64ArrayAttr({0, 2, 1, 3}));
      }
      auto attn = nn::AttentionOp::create(b, m.root.getLoc(), m.root.getType(), m.q, m.k, m.v, mask, Value(), Value(), Value(),
                                          b.getF64FloatAttr(m.scale), b.getF64FloatAttr(m.maskedValue),
                                          b.getI64IntegerAttr(isCausalMask ? 1 : 0),
                                          b.getI64IntegerAttr(m.zeroNan ? 1 : 0));
      m.root.getResult().replaceAllUsesWith(attn.getResult());
      eraseDead({m.root});
    }
    // A causal mask's computation went with the last Where that read it (eraseDead follows operands back).
  }
};

} // namespace
