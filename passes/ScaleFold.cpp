//===- ScaleFold.cpp - per-input-channel scales folded into a layer's producer --===//
#include "passes/ScaleFold.h"
#include "passes/LinearLayers.h"
#include "qopt/Dialect/NN/ConstantStorage.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"

using namespace mlir;

namespace qopt {

bool calibSamples(nn::MatmulOp mm, std::vector<float> &X, int64_t &S, std::vector<float> &meanAbs) {
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
  AsmResourceBlob blob = nn::copyConstantBlob(
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

namespace {

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

} // namespace

bool ScaleSink::find(Value x, ArrayRef<nn::MatmulOp> mms, std::string &why) {
  nn::MatmulOp first = mms.front();
  K = cast<RankedTensorType>(first.getRhs().getType()).getDimSize(0);
  layer = layerName(first);
  // Where can 1/s go? Into a constant that multiplies x elementwise (the norm's weight), or into the output
  // columns of the linear layer feeding the other factor of x = a * (h W).
  // Users that read only x's shape (the shape arithmetic of exported graphs) do not see the scale.
  for (Operation *user : x.getUsers())
    if (!isa<nn::ShapeOp, nn::SizeOp>(user) &&
        (!isa<nn::MatmulOp>(user) || !llvm::is_contained(mms, cast<nn::MatmulOp>(user)))) {
      why = "input of '" + layer + "' has other users";
      return false;
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
    why = "no norm weight or previous linear layer to fold the scale of '" + layer + "' into";
    return false;
  }
  this->src = src;
  this->gamma = gamma;
  this->gammaBias = gammaBias;
  this->gammaUser = gammaUser;
  this->prev = prev;
  this->prevBias = prevBias;
  this->activation = activation;
  return true;
}

void ScaleSink::divideInput(ArrayRef<float> s, StringRef suffix) {
  if (gamma) {
    std::vector<float> g;
    SmallVector<int64_t> shape;
    readFloats(gamma, g, shape);
    for (int64_t k = 0; k < K; ++k)
      g[k] /= s[k];
    setFloats(gamma, gammaUser, g, suffix);
    if (gammaBias) {
      std::vector<float> bias;
      readFloats(gammaBias, bias, shape);
      for (int64_t k = 0; k < K; ++k)
        bias[k] /= s[k];
      setFloats(gammaBias, gammaUser, bias, suffix);
    }
  } else if (activation) {
    OpBuilder b(activation->getContext());
    b.setInsertionPointAfter(activation);
    std::vector<float> inv(K);
    for (int64_t k = 0; k < K; ++k)
      inv[k] = 1.0f / s[k];
    auto it = RankedTensorType::get({K}, b.getF32Type());
    auto c = nn::ConstantOp::create(b, activation->getLoc(), it, DenseElementsAttr::get(it, ArrayRef<float>(inv)),
                                    b.getStringAttr(layer + suffix.str() + "_input_scale"));
    auto mul = nn::BinaryOp::create(b, activation->getLoc(), src.getType(), b.getStringAttr("mul"), src, c);
    src.replaceAllUsesExcept(mul.getResult(), mul);
  } else {
    std::vector<float> w;
    SmallVector<int64_t> shape;
    readFloats(prev.getRhs(), w, shape);
    const int64_t N = shape[1];
    for (int64_t k = 0; k < shape[0]; ++k)
      for (int64_t n = 0; n < N; ++n)
        w[k * N + n] /= s[n];
    setFloats(prev.getRhs().getDefiningOp<nn::ConstantOp>(), prev, w, suffix);
    if (prevBias) {
      std::vector<float> bias;
      readFloats(prevBias, bias, shape);
      for (int64_t n = 0; n < N; ++n)
        bias[n] /= s[n];
      setFloats(prevBias, *prevBias->getUsers().begin(), bias, suffix);
    }
  }
}

} // namespace qopt
