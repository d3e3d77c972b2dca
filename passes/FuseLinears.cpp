//===- FuseLinears.cpp - linear layers sharing an input as one launch ------===//
//
// q/k/v read the attention norm's output, gate/up the MLP norm's: each group becomes one launch whose weights are
// the layers' weights stacked along the output channels, with one result per layer:
//   kern.launch "matmul"(x, W_i)           -> kern.launch "linear_split"(x, [W_1 | W_2 | ...])
//   kern.launch "matmul_q"(x, W_i, S_i, Z_i) -> kern.launch "matmul_q_split"(x, W, S, Z)   (rows stacked)
// Quantized layers fuse when their format agrees (bits, group size, symmetry) and their scales are per group or
// per channel (per-tensor scales cannot be stacked). Each result is computed as its layer alone would be. The old
// weights are released once unused, so fusing holds at most one extra copy of a group's weights.
//
// A model may ship such a group already stacked (Phi-3's qkv_proj and gate_up_proj): one linear whose output is
// only read by slices that cut its last dim into consecutive pieces. That linear becomes the split launch with its
// own weights, one result per piece, and the slices go.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Dialect/NN/ConstantStorage.h"
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Numerics/Tensor.h"
#include "qopt/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/MapVector.h"

#include <algorithm>
#include <cstring>

namespace qopt {
#define GEN_PASS_DEF_FUSELINEARSPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

kern::WeightOp weightOf(Value v) { return v.getDefiningOp<kern::WeightOp>(); }

constexpr unsigned kActScaleOperand = 6; // matmul_q's static activation scale (qopt-lower-to-kern)

// What must agree for two launches to fuse: the kernel and, for matmul_q, its format. Empty: not fusable.
std::string fusionKey(kern::LaunchOp l) {
  if (l.getNumResults() != 1)
    return "";
  if (l.getKernel() == "matmul") {
    auto w = weightOf(l.getOperands()[1]);
    auto wt = w ? dyn_cast<RankedTensorType>(w.getType()) : RankedTensorType();
    auto xt = dyn_cast<RankedTensorType>(l.getOperands()[0].getType());
    if (!wt || wt.getRank() != 2 || !wt.getElementType().isF32() || !xt || xt.getRank() < 1 ||
        !xt.getElementType().isF32() || xt.getShape().back() != wt.getDimSize(0))
      return "";
    return "f32";
  }
  if (l.getKernel() == "matmul_q") {
    auto ops = l.getOperands();
    auto st = dyn_cast<RankedTensorType>(ops[2].getType());
    auto given = [&](unsigned i) { return ops.size() > i && !isa<NoneType>(ops[i].getType()); };
    if (!weightOf(ops[1]) || !weightOf(ops[2]) || (given(3) && !weightOf(ops[3])) || given(4) || given(5) ||
        !st || st.getShape() == ArrayRef<int64_t>{1, 1})
      return "";
    std::string key = "q";
    for (StringRef a : {"bits", "group_size", "symmetric", "act_fp8", "act_int8"})
      if (auto i = l.getAttrs().getAs<IntegerAttr>(a))
        key += "/" + a.str() + "=" + std::to_string(i.getInt());
    // A static activation scale (operand 6): the layers' must be equal (they read the same x, so calibration gave
    // them the same one), exactly.
    if (given(kActScaleOperand)) {
      auto a = weightOf(ops[kActScaleOperand]);
      auto dense = a ? dyn_cast<DenseElementsAttr>(a.getValue()) : DenseElementsAttr();
      if (!dense || dense.getNumElements() != 1 || !dense.getElementType().isF32())
        return "";
      key += "/scale=" + std::to_string(llvm::bit_cast<uint32_t>(*dense.getValues<float>().begin()));
    }
    return key;
  }
  return "";
}

// Stacks 2-D weights: along columns (float [K, N_i]) or rows (packed [N_i, ..], scales, zeros). Scales of float16
// and float32 (a layer whose scales left float16's range, QuantFormat.h) stack as float32, exactly.
kern::WeightOp stack(OpBuilder &b, Location loc, SmallVector<kern::WeightOp> ws, bool columns) {
  // Each weight read in place (its blob; `held` only for splats and float16 scales widened to float32).
  SmallVector<num::Tensor> ts(ws.size());
  SmallVector<std::vector<uint8_t>> held(ws.size());
  std::string name;
  int64_t rows = 0, cols = 0;
  Type elem = cast<RankedTensorType>(ws[0].getType()).getElementType();
  for (kern::WeightOp w : ws)
    if (cast<RankedTensorType>(w.getType()).getElementType() != elem)
      elem = b.getF32Type(); // float16 and float32 scales: the only mix fusionKey lets through
  for (auto [i, w] : llvm::enumerate(ws)) {
    nn::readConstant(w.getValue(), ts[i], held[i]);
    if (elem.isF32() && ts[i].dtype == num::DType::F16) {
      std::vector<uint8_t> wide(static_cast<size_t>(ts[i].numel()) * 4);
      for (int64_t e = 0; e < ts[i].numel(); ++e) {
        const float f = num::halfToFloat(static_cast<const uint16_t *>(ts[i].data)[e]);
        std::memcpy(wide.data() + 4 * e, &f, 4);
      }
      held[i] = std::move(wide);
      ts[i].data = held[i].data();
      ts[i].dtype = num::DType::F32;
    }
    name += (i ? "+" : "") + (w.getName() ? w.getName()->str() : std::string("weight"));
    rows = columns ? ts[i].shape[0] : rows + ts[i].shape[0];
    cols = columns ? cols + ts[i].shape[1] : ts[i].shape[1];
  }
  const size_t es = num::dtypeSize(ts[0].dtype);
  // Stacked straight into the blob the attribute will own (file-backed: a model's fused matrices are most of it).
  AsmResourceBlob blob = nn::allocateConstantBlob(static_cast<size_t>(rows * cols) * es, 8);
  char *out = blob.getMutableData().data();
  auto piece = [&](size_t i, size_t offset) { return static_cast<const char *>(ts[i].data) + offset; };
  size_t pos = 0;
  if (columns) {
    for (int64_t r = 0; r < rows; ++r)
      for (size_t i = 0; i < ts.size(); ++i) {
        const size_t n = static_cast<size_t>(ts[i].shape[1]) * es;
        std::memcpy(out + pos, piece(i, r * n), n);
        pos += n;
      }
  } else {
    for (size_t i = 0; i < ts.size(); ++i) {
      const size_t n = static_cast<size_t>(ts[i].numel()) * es;
      std::memcpy(out + pos, piece(i, 0), n);
      pos += n;
    }
  }
  auto type = RankedTensorType::get({rows, cols}, elem);
  auto &mgr = DenseResourceElementsHandle::getManagerInterface(b.getContext());
  auto attr = DenseResourceElementsAttr::get(type, mgr.insert(name, std::move(blob)));
  return kern::WeightOp::create(b, loc, attr, b.getStringAttr(name));
}

// The consecutive pieces [start, end) of the last dim of `l`'s result that its readers, all slices of that dim
// with step 1 and constant bounds, cut it into, in order; empty unless they cover the dim exactly once. The slices
// may read the result through one reshape between static shapes that keeps the last dim (GPT-2's Gemm runs on
// 2-D rows): `reshape` is then set.
SmallVector<std::pair<int64_t, kern::LaunchOp>> slicePieces(kern::LaunchOp l, kern::LaunchOp *reshape = nullptr) {
  Value sliced = l.getResult(0);
  if (sliced.hasOneUse()) {
    auto r = dyn_cast<kern::LaunchOp>(*sliced.getUsers().begin());
    auto from = cast<RankedTensorType>(sliced.getType());
    auto to = r ? dyn_cast<RankedTensorType>(r.getResult(0).getType()) : RankedTensorType();
    if (r && r.getKernel() == "reshape" && r.getOperand(0) == sliced && to && from.hasStaticShape() &&
        to.hasStaticShape() && to.getShape().back() == from.getShape().back()) {
      sliced = r.getResult(0);
      if (reshape)
        *reshape = r;
    }
  }
  auto type = cast<RankedTensorType>(sliced.getType());
  const int64_t rank = type.getRank(), n = type.getShape().back();
  SmallVector<std::pair<int64_t, kern::LaunchOp>> pieces;
  if (ShapedType::isDynamic(n) || sliced.use_empty())
    return {};
  auto scalar = [](Value v, int64_t &out) {
    auto w = weightOf(v);
    num::Tensor t;
    std::vector<uint8_t> storage;
    if (!w || !nn::readConstant(w.getValue(), t, storage) || t.numel() != 1)
      return false;
    if (t.dtype == num::DType::I64) // exactly: exporters write INT64_MAX for "to the end"
      out = *static_cast<const int64_t *>(t.data);
    else if (t.dtype == num::DType::I32)
      out = *static_cast<const int32_t *>(t.data);
    else
      return false;
    return true;
  };
  for (Operation *user : sliced.getUsers()) {
    auto s = dyn_cast<kern::LaunchOp>(user);
    if (!s || s.getKernel() != "slice" || s.getOperand(0) != sliced || s.getNumOperands() < 4)
      return {};
    int64_t start, end, axis, step = 1;
    if (!scalar(s.getOperand(1), start) || !scalar(s.getOperand(2), end) || !scalar(s.getOperand(3), axis) ||
        (s.getNumOperands() > 4 && !isa<NoneType>(s.getOperand(4).getType()) && !scalar(s.getOperand(4), step)))
      return {};
    if ((axis != -1 && axis != rank - 1) || step != 1)
      return {};
    start = std::clamp<int64_t>(start < 0 ? start + n : start, 0, n);
    end = std::clamp<int64_t>(end < 0 ? end + n : end, 0, n);
    if (end <= start)
      return {};
    pieces.push_back({start, s});
  }
  llvm::sort(pieces, [](auto &a, auto &b) { return a.first < b.first; });
  int64_t at = 0;
  for (auto &[start, s] : pieces) {
    if (start != at)
      return {};
    at += cast<RankedTensorType>(s.getResult(0).getType()).getShape().back();
  }
  return at == n ? pieces : SmallVector<std::pair<int64_t, kern::LaunchOp>>();
}

// The add of a bias that is `l`'s only reader: a binary add of its result and a float 1-D weight of its last dim's
// size (Qwen2's q/k/v), the sum of `l`'s type. Null otherwise.
kern::LaunchOp biasAdd(kern::LaunchOp l) {
  Value y = l.getResult(0);
  if (!y.hasOneUse())
    return {};
  auto add = dyn_cast<kern::LaunchOp>(*y.getUsers().begin());
  auto fn = add ? add.getAttrs().getAs<StringAttr>("fn") : StringAttr();
  if (!add || add.getKernel() != "binary" || !fn || fn.getValue() != "add" || add.getResult(0).getType() != y.getType())
    return {};
  Value bias = add.getOperand(0) == y ? add.getOperand(1) : add.getOperand(0);
  auto bt = dyn_cast<RankedTensorType>(bias.getType());
  if (!weightOf(bias) || !bt || bt.getRank() != 1 || !bt.getElementType().isF32() ||
      bt.getDimSize(0) != cast<RankedTensorType>(y.getType()).getShape().back())
    return {};
  return add;
}

void release(Value v) {
  auto w = weightOf(v);
  if (!w || !w->use_empty())
    return;
  if (auto res = dyn_cast<DenseResourceElementsAttr>(w.getValue()))
    res.getRawHandle().getResource()->setBlob(AsmResourceBlob());
  w.erase();
}

struct FuseLinearsPass : qopt::impl::FuseLinearsPassBase<FuseLinearsPass> {
  void runOnOperation() override {
    // Linears cut into pieces by slices: the split launch over their own (already stacked) weights.
    SmallVector<kern::LaunchOp> sliced;
    getOperation().walk([&](kern::LaunchOp l) {
      if (!fusionKey(l).empty() && slicePieces(l).size() > 1)
        sliced.push_back(l);
    });
    for (kern::LaunchOp l : sliced) {
      kern::LaunchOp reshape;
      auto pieces = slicePieces(l, &reshape);
      OpBuilder b(l);
      SmallVector<Type> types;
      SmallVector<int64_t> splits;
      auto resultType = cast<RankedTensorType>(l.getResult(0).getType());
      for (auto &[start, s] : pieces) {
        splits.push_back(cast<RankedTensorType>(s.getResult(0).getType()).getShape().back());
        SmallVector<int64_t> shape(resultType.getShape());
        shape.back() = splits.back();
        types.push_back(reshape ? RankedTensorType::get(shape, resultType.getElementType()) : s.getResult(0).getType());
      }
      SmallVector<NamedAttribute> attrs(l.getAttrs().getValue());
      attrs.push_back(b.getNamedAttr("splits", b.getDenseI64ArrayAttr(splits)));
      attrs.push_back(b.getNamedAttr("num_outputs", b.getI64IntegerAttr(static_cast<int64_t>(pieces.size()))));
      auto split = kern::LaunchOp::create(b, l.getLoc(), types,
                                          b.getStringAttr(l.getKernel() == "matmul" ? "linear_split" : "matmul_q_split"),
                                          l.getOperands(), b.getDictionaryAttr(attrs), StringAttr(),
                                          DenseI64ArrayAttr(), ArrayAttr());
      for (auto [i, piece] : llvm::enumerate(pieces)) {
        Value out = split.getResult(i);
        if (reshape) { // each piece in the slice's shape (static): a view, no launch
          auto to = cast<RankedTensorType>(piece.second.getResult(0).getType());
          auto dimsType = RankedTensorType::get({to.getRank()}, b.getI64Type());
          Value dims = kern::WeightOp::create(b, l.getLoc(), DenseElementsAttr::get(dimsType, to.getShape()),
                                              StringAttr());
          out = kern::LaunchOp::create(b, l.getLoc(), TypeRange{to}, b.getStringAttr("reshape"), ValueRange{out, dims},
                                       b.getDictionaryAttr({}), StringAttr(), DenseI64ArrayAttr(), ArrayAttr())
                    .getResult(0);
        }
        piece.second.getResult(0).replaceAllUsesWith(out);
        piece.second.erase();
      }
      if (reshape)
        reshape.erase();
      l.erase();
    }
    // Keyed by the input and the fusion key (interned, so the map can hash it).
    llvm::MapVector<std::pair<Value, StringAttr>, SmallVector<kern::LaunchOp>> groups;
    getOperation().walk([&](kern::LaunchOp l) {
      std::string key = fusionKey(l);
      if (!key.empty())
        groups[{l.getOperands()[0], StringAttr::get(&getContext(), key)}].push_back(l);
    });
    for (auto &group : groups) {
      const auto &key = group.first;
      auto &members = group.second; // a reference the lambdas below can capture (a structured binding cannot)
      if (members.size() < 2)
        continue;
      const bool quant = key.second.getValue() != "f32";
      OpBuilder b(members.front()); // the first in program order: every member reads only x and weights
      Location loc = b.getFusedLoc(llvm::map_to_vector(members, [](kern::LaunchOp l) { return l.getLoc(); }));
      SmallVector<int64_t> splits;
      SmallVector<Type> types;
      auto collect = [&](unsigned operand) {
        return llvm::map_to_vector(members, [&](kern::LaunchOp l) { return weightOf(l.getOperands()[operand]); });
      };
      for (kern::LaunchOp l : members) {
        types.push_back(l.getResult(0).getType());
        splits.push_back(cast<RankedTensorType>(types.back()).getShape().back());
      }
      SmallVector<Value> operands{key.first};
      SmallVector<NamedAttribute> attrs(members.front().getAttrs().getValue());
      // Float layers that each add a bias (and nothing else reads): the biases go with the weights.
      SmallVector<kern::LaunchOp> adds;
      for (kern::LaunchOp l : members)
        if (kern::LaunchOp add = biasAdd(l); add && !quant)
          adds.push_back(add);
      if (adds.size() != members.size())
        adds.clear();
      if (!quant) {
        operands.push_back(stack(b, loc, collect(1), /*columns=*/true));
        if (!adds.empty()) {
          std::vector<float> joined;
          for (kern::LaunchOp add : adds) {
            Value bias = weightOf(add.getOperand(1)) ? add.getOperand(1) : add.getOperand(0);
            num::Tensor t;
            std::vector<uint8_t> storage;
            nn::readConstant(weightOf(bias).getValue(), t, storage);
            const float *f = static_cast<const float *>(t.data);
            joined.insert(joined.end(), f, f + t.numel());
          }
          auto type = RankedTensorType::get({static_cast<int64_t>(joined.size())}, b.getF32Type());
          operands.push_back(kern::WeightOp::create(b, loc, DenseElementsAttr::get(type, ArrayRef<float>(joined)),
                                                    StringAttr()));
        }
      } else {
        operands.push_back(stack(b, loc, collect(1), false));
        operands.push_back(stack(b, loc, collect(2), false));
        Value z = members.front().getOperands().size() > 3 ? members.front().getOperands()[3] : Value();
        operands.push_back(z && !isa<NoneType>(z.getType()) ? stack(b, loc, collect(3), false).getResult()
                                                             : kern::AbsentOp::create(b, loc).getResult());
        if (members.front().getNumOperands() > kActScaleOperand) { // the static activation scale they share
          Value none = kern::AbsentOp::create(b, loc);
          operands.append({none, none, members.front().getOperand(kActScaleOperand)});
        }
      }
      attrs.push_back(b.getNamedAttr("splits", b.getDenseI64ArrayAttr(splits)));
      attrs.push_back(b.getNamedAttr("num_outputs", b.getI64IntegerAttr(static_cast<int64_t>(members.size()))));
      auto fused = kern::LaunchOp::create(b, loc, types, b.getStringAttr(quant ? "matmul_q_split" : "linear_split"),
                                          operands, b.getDictionaryAttr(attrs), StringAttr(), DenseI64ArrayAttr(), ArrayAttr());
      for (auto [i, l] : llvm::enumerate(members)) {
        SmallVector<Value> old(l.getOperands().begin() + 1, l.getOperands().end());
        if (!adds.empty()) { // the sum is the fused output
          kern::LaunchOp add = adds[i];
          old.push_back(add.getOperand(0) == l.getResult(0) ? add.getOperand(1) : add.getOperand(0));
          add.getResult(0).replaceAllUsesWith(fused.getResult(i));
          add.erase();
        }
        l.getResult(0).replaceAllUsesWith(fused.getResult(i));
        l.erase();
        for (Value v : old)
          release(v);
      }
    }
  }
};

} // namespace
