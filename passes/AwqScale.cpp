//===- AwqScale.cpp - activation-aware weight scaling (AWQ) ----------------===//
//
// For each group of linear layers that read one input x (q/k/v after the attention norm, gate/up after the MLP
// norm, down after up), AWQ searches per-input-channel scales s = mean|x|^alpha (alpha on a grid over [0, 1),
// normalized so that sqrt(max s * min s) = 1) that minimize the group's output error
//     sum_layers || X W - X diag(1/s) Q(diag(s) W) ||^2
// on the calibrated input rows X, where Q is the round-to-nearest quantizer the rtn pass will apply. The chosen
// s is multiplied into the layers' weights and its inverse folded into the op that produces x: the RMSNorm's
// weight (x = gamma * norm(h)), or the output columns of the previous linear layer when x = act(g) * (h W_up).
// A group whose input has other users (besides ops reading only its shape), or whose producer is neither, is
// left alone (reported as a remark).
// Then, per layer, the clip search picks for each output channel the clipping ratio of its weight range that
// minimizes that channel's output error after quantization (AWQ's auto-clip).
//
// Requires qopt-calibrate's `qopt.calib` on the layers; leaves float weights, quantized by qopt-quantize-rtn.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Numerics/Gemm.h"
#include "qopt/Numerics/QuantFormat.h"
#include "qopt/Passes.h"
#include "passes/LinearLayers.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/Regex.h"

#include <cmath>

namespace qopt {
#define GEN_PASS_DEF_AWQSCALEPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

// A constant's float32 values, copied out.
bool readFloats(Value v, std::vector<float> &out, SmallVectorImpl<int64_t> &shape) {
  auto c = v.getDefiningOp<nn::ConstantOp>();
  if (!c)
    return false;
  num::Tensor t;
  std::vector<uint8_t> storage;
  if (!nn::readConstant(c.getValue(), t, storage) || t.dtype != num::DType::F32)
    return false;
  const float *p = static_cast<const float *>(t.data);
  out.assign(p, p + t.numel());
  shape.assign(t.shape.begin(), t.shape.end());
  return true;
}

// Replaces the value of constant `c` (only used by `user`, or cloned for it otherwise) with new data.
void setFloats(nn::ConstantOp c, Operation *user, ArrayRef<float> data, StringRef suffix) {
  MLIRContext *ctx = c.getContext();
  auto type = cast<RankedTensorType>(c.getType());
  std::string key = (c.getName() ? c.getName()->str() : std::string("awq")) + suffix.str();
  auto &mgr = DenseResourceElementsHandle::getManagerInterface(ctx);
  AsmResourceBlob blob = HeapAsmResourceBlob::allocateAndCopyWithAlign(
      ArrayRef<char>(reinterpret_cast<const char *>(data.data()), data.size() * sizeof(float)), alignof(float));
  // A weight only this layer reads is rewritten in place, releasing the old bytes: AWQ must not leave a second
  // copy of the model behind.
  if (c->hasOneUse())
    if (auto res = dyn_cast<DenseResourceElementsAttr>(c.getValue())) {
      res.getRawHandle().getResource()->setBlob(std::move(blob));
      return;
    }
  auto attr = DenseResourceElementsAttr::get(type, mgr.insert(key, std::move(blob)));
  if (c->hasOneUse()) {
    c.setValueAttr(attr);
    return;
  }
  OpBuilder b(user);
  auto fresh = nn::ConstantOp::create(b, c.getLoc(), attr, c.getNameAttr());
  user->replaceUsesOfWith(c.getResult(), fresh.getResult());
}

// Fake-quantizes W [K, N] in place with the rtn quantizer (what the weights will be at run time).
bool fakeQuant(std::vector<float> &w, int64_t K, int64_t N, int bits, int64_t group) {
  num::quant::QuantizedWeight q;
  std::string err;
  if (!num::quant::quantizeRtn(w.data(), K, N, bits, group, bits == 8, q, err))
    return false;
  num::quant::dequantize(q, w.data());
  return true;
}

// || X A - X B ||^2 for X [S, K], A and B [K, N].
double outputError(const std::vector<float> &X, int64_t S, int64_t K, const std::vector<float> &A,
                   const std::vector<float> &B, int64_t N) {
  std::vector<float> diff(A.size());
  for (size_t i = 0; i < A.size(); ++i)
    diff[i] = A[i] - B[i];
  std::vector<float> y(static_cast<size_t>(S * N));
  num::sgemm(false, false, S, N, K, 1.0f, X.data(), K, diff.data(), N, 0.0f, y.data(), N);
  double e = 0;
  for (float v : y)
    e += static_cast<double>(v) * v;
  return e;
}

// True if `v` is only read by `allowed` ops, by ops that read just its shape, or by the function's return (a KV
// cache output: it carries the scaled values back into the same model).
bool onlyPathUsers(Value v, Operation *allowed) {
  for (Operation *user : v.getUsers())
    if (user != allowed && !isa<nn::ShapeOp, nn::SizeOp, func::ReturnOp>(user))
      return false;
  return true;
}

// True if `v` is computed from `op`'s results.
bool dependsOn(Value v, Operation *op) {
  SmallVector<Value> stack{v};
  llvm::DenseSet<Operation *> seen;
  while (!stack.empty()) {
    Operation *def = stack.pop_back_val().getDefiningOp();
    if (!def || !seen.insert(def).second)
      continue;
    if (def == op)
      return true;
    stack.append(def->operand_begin(), def->operand_end());
  }
  return false;
}

// For the input x of o_proj: follows x back through the attention's head reshape/transpose, its P x V product
// and KV-cache concatenation, to the linear layer whose output columns are x's channels one to one (v_proj),
// with its bias if it has one. Channel c of x is then column c of v_proj's output, so scaling that column by
// 1/s scales x's channel c by 1/s. Returns null where the graph does not prove that (e.g. grouped-query
// attention, whose kv heads are repeated).
nn::MatmulOp traceValueProjection(Value x, nn::ConstantOp &bias) {
  auto xt = dyn_cast<RankedTensorType>(x.getType());
  if (!xt || xt.getRank() < 2 || xt.isDynamicDim(xt.getRank() - 1))
    return nullptr;
  const int64_t C = xt.getShape().back();
  // x = reshape(t): t's last two axes (heads, head dim) merge into x's channels (row-major: channel = h * D + d).
  auto merge = x.getDefiningOp<nn::ReshapeOp>();
  if (!merge)
    return nullptr;
  Value t = merge.getX();
  auto tt = dyn_cast<RankedTensorType>(t.getType());
  if (!tt || tt.getRank() < 3 || tt.isDynamicDim(tt.getRank() - 1) || tt.isDynamicDim(tt.getRank() - 2) ||
      tt.getShape()[tt.getRank() - 1] * tt.getShape()[tt.getRank() - 2] != C)
    return nullptr;
  const int64_t H = tt.getShape()[tt.getRank() - 2];
  int64_t hAxis = tt.getRank() - 2, dAxis = tt.getRank() - 1;
  nn::MatmulOp attention;         // the P x V product, decomposed
  nn::AttentionOp fusedAttention; // or raised
  Operation *pathUser = merge;
  for (int steps = 0; steps < 16; ++steps) {
    if (!onlyPathUsers(t, pathUser))
      return nullptr;
    auto type = cast<RankedTensorType>(t.getType());
    const int64_t rank = type.getRank();
    Operation *def = t.getDefiningOp();
    if (auto tr = dyn_cast_or_null<nn::TransposeOp>(def)) {
      ArrayRef<int64_t> perm = tr.getPerm();
      hAxis = perm[hAxis];
      dAxis = perm[dAxis];
      t = tr.getX();
    } else if (auto mm = dyn_cast_or_null<nn::MatmulOp>(def); mm && !attention) {
      // y = P V over the last two axes: V's columns (the head dim) carry through, batch axes line up from the
      // right. P (the attention weights) must not itself depend on V.
      auto vt = dyn_cast<RankedTensorType>(mm.getRhs().getType());
      if (!vt || vt.getRank() < 3 || dAxis != rank - 1 || hAxis >= rank - 2)
        return nullptr;
      const int64_t vh = hAxis - (rank - vt.getRank());
      if (vh < 0 || vt.isDynamicDim(vh) || vt.getDimSize(vh) != H)
        return nullptr;
      attention = mm;
      hAxis = vh;
      dAxis = vt.getRank() - 1;
      t = mm.getRhs();
    } else if (auto attn = dyn_cast_or_null<nn::AttentionOp>(def); attn && !attention && !fusedAttention) {
      // out [B, H, S, Dv] = attention(q, k, v): value channels carry through per head when every query head reads
      // its own kv head (no grouping: a grouped kv head feeds several query heads).
      auto vt = dyn_cast<RankedTensorType>(attn.getV().getType());
      if (!vt || vt.getRank() != 4 || rank != 4 || hAxis != 1 || dAxis != 3 || vt.isDynamicDim(1) ||
          vt.getDimSize(1) != H)
        return nullptr;
      fusedAttention = attn;
      t = attn.getV();
    } else if (auto cat = dyn_cast_or_null<nn::ConcatOp>(def)) {
      // The KV cache: the past values are graph inputs (made by this same model), the new ones are the path.
      int64_t axis = static_cast<int64_t>(cat.getAxis()); // I64Attr reads as uint64_t
      if (axis < 0)
        axis += rank;
      if (axis == hAxis || axis == dAxis)
        return nullptr;
      Value next;
      for (Value in : cat.getInputs()) {
        if (isa<BlockArgument>(in))
          continue;
        if (next)
          return nullptr;
        next = in;
      }
      if (!next)
        return nullptr;
      t = next;
    } else if (auto split = dyn_cast_or_null<nn::ReshapeOp>(def)) {
      // The split into heads: the last axis of its input becomes (heads, head dim).
      auto it = dyn_cast<RankedTensorType>(split.getX().getType());
      if ((!attention && !fusedAttention) || hAxis != rank - 2 || dAxis != rank - 1 || !it ||
          it.isDynamicDim(it.getRank() - 1) || it.getShape().back() != C)
        return nullptr;
      Value v = split.getX();
      Operation *consumer = split;
      if (!onlyPathUsers(v, split))
        return nullptr;
      bias = nullptr;
      if (auto add = v.getDefiningOp<nn::BinaryOp>(); add && add.getFn() == "add") {
        for (Value operand : {add.getLhs(), add.getRhs()})
          if (auto c = operand.getDefiningOp<nn::ConstantOp>()) {
            auto ct = dyn_cast<RankedTensorType>(c.getType());
            if (ct && ct.getRank() == 1 && ct.getDimSize(0) == C && ct.getElementType().isF32())
              bias = c;
          }
        if (!bias)
          return nullptr;
        Value other = add.getLhs() == bias.getResult() ? add.getRhs() : add.getLhs();
        consumer = add;
        v = other;
      }
      auto prev = v.getDefiningOp<nn::MatmulOp>();
      if (!prev || !linearWeight(prev) || !onlyPathUsers(prev.getResult(), consumer) ||
          cast<RankedTensorType>(prev.getRhs().getType()).getDimSize(1) != C)
        return nullptr;
      // The attention weights must not depend on V.
      if (attention ? dependsOn(attention.getLhs(), prev)
                    : dependsOn(fusedAttention.getQ(), prev) || dependsOn(fusedAttention.getK(), prev) ||
                          (!isa<NoneType>(fusedAttention.getMask().getType()) &&
                           dependsOn(fusedAttention.getMask(), prev)))
        return nullptr;
      return prev;
    } else {
      return nullptr;
    }
    pathUser = def;
  }
  return nullptr;
}

struct Layer {
  nn::MatmulOp mm;
  std::vector<float> w; // [K, N]
  int64_t N = 0;
};

struct AwqScalePass : qopt::impl::AwqScalePassBase<AwqScalePass> {
  using AwqScalePassBase::AwqScalePassBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    // Group the linear layers by their input value, in program order.
    llvm::Regex excludeRe(exclude);
    llvm::MapVector<Value, SmallVector<nn::MatmulOp>> groups;
    func.walk([&](nn::MatmulOp mm) {
      std::string node = isa<NameLoc>(mm.getLoc()) ? cast<NameLoc>(mm.getLoc()).getName().str() : "";
      bool excluded = !exclude.empty() && (excludeRe.match(layerName(mm)) || excludeRe.match(node));
      if (isQuantizable(mm) && mm->hasAttr("qopt.calib") && !excluded)
        groups[mm.getLhs()].push_back(mm);
    });
    if (groups.empty()) {
      func.emitError() << "qopt-awq-scale: no calibrated linear layer (run qopt-calibrate first)";
      return signalPassFailure();
    }
    for (auto &[x, mms] : groups) {
      for (nn::MatmulOp mm : mms) // AWQ's weights: the quantizer's report names the method after it
        mm->setAttr("qopt.awq", UnitAttr::get(&getContext()));
      if (failed(scaleGroup(x, mms)))
        return signalPassFailure();
    }
    if (clip)
      for (auto &[x, mms] : groups)
        for (nn::MatmulOp mm : mms)
          if (failed(clipLayer(mm)))
            return signalPassFailure();
  }

  int64_t groupFor(int64_t K) const { return groupSize > 0 && K % groupSize == 0 ? groupSize : K; }

  bool samplesOf(nn::MatmulOp mm, std::vector<float> &X, int64_t &S, std::vector<float> &meanAbs) {
    auto calib = mm->getAttrOfType<DictionaryAttr>("qopt.calib");
    auto samples = calib ? dyn_cast_or_null<ElementsAttr>(calib.get("samples")) : ElementsAttr();
    auto mean = calib ? dyn_cast_or_null<DenseElementsAttr>(calib.get("mean_abs")) : DenseElementsAttr();
    if (!samples || !mean)
      return false;
    num::Tensor t;
    std::vector<uint8_t> storage;
    if (!nn::readConstant(samples, t, storage) || t.rank() != 2)
      return false;
    S = t.shape[0];
    X.assign(static_cast<const float *>(t.data), static_cast<const float *>(t.data) + t.numel());
    meanAbs.assign(mean.getValues<float>().begin(), mean.getValues<float>().end());
    return S > 0;
  }

  LogicalResult scaleGroup(Value x, ArrayRef<nn::MatmulOp> group) {
    SmallVector<nn::MatmulOp> mms(group.begin(), group.end());
    std::vector<float> X, meanAbs;
    int64_t S = 0;
    if (!samplesOf(mms.front(), X, S, meanAbs))
      return mms.front().emitError() << "qopt-awq-scale: the layer's qopt.calib has no samples";
    const int64_t K = static_cast<int64_t>(meanAbs.size());
    // Where can 1/s go? Into a constant that multiplies x elementwise (the norm's weight), or into the output
    // columns of the linear layer feeding the other factor of x = a * (h W).
    // Users that read only x's shape (the shape arithmetic of exported graphs) do not see the scale.
    for (Operation *user : x.getUsers())
      if (!isa<nn::ShapeOp, nn::SizeOp>(user) &&
          (!isa<nn::MatmulOp>(user) || !llvm::is_contained(mms, cast<nn::MatmulOp>(user)))) {
        mms.front().emitRemark() << "AWQ: input of '" << layerName(mms.front())
                                 << "' has other users; not scaled";
        return success();
      }
    // Reshapes that keep the last dim (an exporter's flatten to 2-D before a Gemm) pass the scale through, when
    // nothing else reads their input.
    Value src = x;
    while (auto r = src.getDefiningOp<nn::ReshapeOp>()) {
      auto in = dyn_cast<RankedTensorType>(r.getX().getType());
      auto out = dyn_cast<RankedTensorType>(r.getType());
      if (!in || !out || in.getRank() == 0 || out.getRank() == 0 || in.getShape().back() != K ||
          out.getShape().back() != K ||
          llvm::any_of(r.getX().getUsers(), [&](Operation *u) { return u != r && !isa<nn::ShapeOp, nn::SizeOp>(u); }))
        break;
      src = r.getX();
    }
    // A constant 1-D f32 of size K.
    auto constantK = [&](Value v) {
      auto c = v ? v.getDefiningOp<nn::ConstantOp>() : nn::ConstantOp();
      auto ct = c ? dyn_cast<RankedTensorType>(c.getType()) : RankedTensorType();
      return ct && ct.getRank() == 1 && ct.getDimSize(0) == K && ct.getElementType().isF32() ? c : nn::ConstantOp();
    };
    auto mul = src.getDefiningOp<nn::BinaryOp>();
    Operation *gammaUser = mul; // the op that reads gamma (and gammaBias)
    nn::ConstantOp gamma, gammaBias;
    nn::MatmulOp prev;
    if (auto rms = src.getDefiningOp<nn::RmsNormOp>()) {
      gamma = constantK(rms.getScale());
      gammaUser = rms;
    } else if (auto ln = src.getDefiningOp<nn::LayerNormOp>()) {
      // y = norm(h) * g + b: x / s needs both g / s and b / s. Only a norm over the last dim has per-channel g.
      auto lt = dyn_cast<RankedTensorType>(ln.getX().getType());
      int64_t axis = static_cast<int64_t>(ln.getAxis());
      if (lt && (axis == -1 || axis == lt.getRank() - 1)) {
        gamma = constantK(ln.getScale());
        gammaBias = ln.getBias() ? constantK(ln.getBias()) : nn::ConstantOp();
        if (ln.getBias() && !gammaBias)
          gamma = nn::ConstantOp();
      }
      gammaUser = ln;
    } else if (auto gated = src.getDefiningOp<nn::GatedActOp>()) {
      // act(g) * (h W_up): 1/s goes into up's output columns.
      auto p = gated.getUp().getDefiningOp<nn::MatmulOp>();
      if (p && linearWeight(p) && p->hasOneUse() && cast<RankedTensorType>(p.getRhs().getType()).getDimSize(1) == K)
        prev = p;
    } else if (mul && mul.getFn() == "mul") {
      for (Value operand : {mul.getLhs(), mul.getRhs()}) {
        auto c = operand.getDefiningOp<nn::ConstantOp>();
        auto ct = c ? dyn_cast<RankedTensorType>(c.getType()) : RankedTensorType();
        if (ct && ct.getRank() == 1 && ct.getDimSize(0) == K && ct.getElementType().isF32())
          gamma = c;
        auto p = operand.getDefiningOp<nn::MatmulOp>();
        if (p && linearWeight(p) && p->hasOneUse() &&
            cast<RankedTensorType>(p.getRhs().getType()).getDimSize(1) == K)
          prev = p;
      }
    }
    nn::ConstantOp prevBias;
    if (!gamma && !prev && src == x)
      prev = traceValueProjection(x, prevBias);
    // After an activation with no linear parameter to fold into (GPT-2's GELU before mlp.c_proj), 1/s becomes a
    // multiplication of the activation's output (AutoAWQ's scaled activation; a later fusion folds it into the
    // activation's kernel).
    Operation *activation = nullptr;
    if (!gamma && !prev)
      if (Operation *def = src.getDefiningOp(); def && isa<nn::GeluOp, nn::GatedActOp>(def))
        activation = def;
    if (!gamma && !prev && !activation) {
      mms.front().emitRemark() << "AWQ: no norm weight or previous linear layer to fold the scale of '"
                               << layerName(mms.front()) << "' into; not scaled";
      return success();
    }
    std::vector<Layer> layers;
    for (nn::MatmulOp mm : mms) {
      Layer l;
      l.mm = mm;
      SmallVector<int64_t> shape;
      if (!readFloats(mm.getRhs(), l.w, shape))
        return mm.emitError() << "qopt-awq-scale: unreadable weight";
      std::string err;
      if (!num::quant::checkFinite(l.w.data(), shape[0], shape[1], err))
        return mm.emitError() << "qopt-awq-scale: '" << layerName(mm) << "': " << err;
      l.N = shape[1];
      layers.push_back(std::move(l));
    }
    // Grid search of alpha.
    double best = -1;
    std::vector<float> bestS(K, 1.0f);
    for (int64_t gi = 0; gi < grid; ++gi) {
      const double alpha = static_cast<double>(gi) / grid;
      std::vector<float> s(K);
      double mx = 0, mn = INFINITY;
      for (int64_t k = 0; k < K; ++k) {
        s[k] = static_cast<float>(std::pow(std::max<double>(meanAbs[k], 1e-4), alpha));
        mx = std::max<double>(mx, s[k]);
        mn = std::min<double>(mn, s[k]);
      }
      const float norm = static_cast<float>(std::sqrt(mx * mn));
      for (float &v : s)
        v /= norm;
      double err = 0;
      for (Layer &l : layers) {
        std::vector<float> q(l.w);
        for (int64_t k = 0; k < K; ++k)
          for (int64_t n = 0; n < l.N; ++n)
            q[k * l.N + n] *= s[k];
        if (!fakeQuant(q, K, l.N, static_cast<int>(bits), groupFor(K)))
          return l.mm.emitError() << "qopt-awq-scale: cannot quantize the layer";
        for (int64_t k = 0; k < K; ++k)
          for (int64_t n = 0; n < l.N; ++n)
            q[k * l.N + n] /= s[k];
        err += outputError(X, S, K, l.w, q, l.N);
      }
      if (best < 0 || err < best) {
        best = err;
        bestS = s;
      }
    }
    // Apply: W <- diag(s) W, and 1/s into the producer.
    for (Layer &l : layers) {
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < l.N; ++n)
          l.w[k * l.N + n] *= bestS[k];
      setFloats(l.mm.getRhs().getDefiningOp<nn::ConstantOp>(), l.mm, l.w, ".awq");
    }
    if (gamma) {
      std::vector<float> g;
      SmallVector<int64_t> shape;
      readFloats(gamma, g, shape);
      for (int64_t k = 0; k < K; ++k)
        g[k] /= bestS[k];
      setFloats(gamma, gammaUser, g, ".awq");
      if (gammaBias) {
        std::vector<float> bias;
        readFloats(gammaBias, bias, shape);
        for (int64_t k = 0; k < K; ++k)
          bias[k] /= bestS[k];
        setFloats(gammaBias, gammaUser, bias, ".awq");
      }
    } else if (activation) {
      OpBuilder b(activation->getContext());
      b.setInsertionPointAfter(activation);
      std::vector<float> inv(K);
      for (int64_t k = 0; k < K; ++k)
        inv[k] = 1.0f / bestS[k];
      auto it = RankedTensorType::get({K}, b.getF32Type());
      auto c = nn::ConstantOp::create(b, activation->getLoc(), it, DenseElementsAttr::get(it, ArrayRef<float>(inv)),
                                      b.getStringAttr(layerName(mms.front()) + ".awq_input_scale"));
      auto mul = nn::BinaryOp::create(b, activation->getLoc(), src.getType(), b.getStringAttr("mul"), src, c);
      src.replaceAllUsesExcept(mul.getResult(), mul);
    } else {
      std::vector<float> w;
      SmallVector<int64_t> shape;
      readFloats(prev.getRhs(), w, shape);
      const int64_t N = shape[1];
      for (int64_t k = 0; k < shape[0]; ++k)
        for (int64_t n = 0; n < N; ++n)
          w[k * N + n] /= bestS[n];
      setFloats(prev.getRhs().getDefiningOp<nn::ConstantOp>(), prev, w, ".awq");
      if (prevBias) {
        std::vector<float> bias;
        readFloats(prevBias, bias, shape);
        for (int64_t n = 0; n < N; ++n)
          bias[n] /= bestS[n];
        setFloats(prevBias, *prevBias->getUsers().begin(), bias, ".awq");
      }
    }
    // The layers' inputs changed by 1/s: keep their samples consistent for the clip search.
    for (Layer &l : layers) {
      auto calib = l.mm->getAttrOfType<DictionaryAttr>("qopt.calib");
      SmallVector<NamedAttribute> attrs(calib.getValue());
      attrs.push_back(NamedAttribute(StringAttr::get(&getContext(), "awq_scale"),
                                     DenseElementsAttr::get(RankedTensorType::get({K}, Float32Type::get(&getContext())),
                                                            ArrayRef<float>(bestS))));
      l.mm->setAttr("qopt.calib", DictionaryAttr::get(&getContext(), attrs));
    }
    return success();
  }

  // Per output channel, clip each group's weights to the ratio in {1, 0.95, ..., 0.5} of their largest magnitude
  // that minimizes that channel's output error after quantization.
  LogicalResult clipLayer(nn::MatmulOp mm) {
    std::vector<float> X, meanAbs, w;
    int64_t S = 0;
    if (!samplesOf(mm, X, S, meanAbs))
      return success();
    SmallVector<int64_t> shape;
    if (!readFloats(mm.getRhs(), w, shape))
      return success();
    const int64_t K = shape[0], N = shape[1], group = groupFor(K);
    auto calib = mm->getAttrOfType<DictionaryAttr>("qopt.calib");
    if (auto s = dyn_cast_or_null<DenseElementsAttr>(calib.get("awq_scale"))) {
      std::vector<float> sv(s.getValues<float>().begin(), s.getValues<float>().end());
      for (int64_t r = 0; r < S; ++r) // the scaled layer sees x / s
        for (int64_t k = 0; k < K; ++k)
          X[r * K + k] /= sv[k];
    }
    std::vector<float> col(K), ref(S), out(S);
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t k = 0; k < K; ++k)
        col[k] = w[k * N + n];
      for (int64_t r = 0; r < S; ++r) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k)
          acc += static_cast<double>(X[r * K + k]) * col[k];
        ref[r] = static_cast<float>(acc);
      }
      double best = -1;
      std::vector<float> bestCol(col);
      for (int step = 0; step <= 10; ++step) {
        const float ratio = 1.0f - 0.05f * step;
        std::vector<float> c(col);
        for (int64_t g = 0; g < K / group; ++g) { // clip to [-r * max|w|, r * max|w|] per group
          float amax = 0;
          for (int64_t k = g * group; k < (g + 1) * group; ++k)
            amax = std::max(amax, std::fabs(c[k]));
          for (int64_t k = g * group; k < (g + 1) * group; ++k)
            c[k] = std::clamp(c[k], -amax * ratio, amax * ratio);
        }
        std::vector<float> q(c);
        if (!fakeQuant(q, K, 1, static_cast<int>(bits), group))
          return success();
        double err = 0;
        for (int64_t r = 0; r < S; ++r) {
          double acc = 0;
          for (int64_t k = 0; k < K; ++k)
            acc += static_cast<double>(X[r * K + k]) * q[k];
          err += (acc - ref[r]) * (acc - ref[r]);
        }
        if (best < 0 || err < best) {
          best = err;
          bestCol = c;
        }
      }
      for (int64_t k = 0; k < K; ++k)
        w[k * N + n] = bestCol[k];
    }
    setFloats(mm.getRhs().getDefiningOp<nn::ConstantOp>(), mm, w, ".clip");
    return success();
  }
};

} // namespace
