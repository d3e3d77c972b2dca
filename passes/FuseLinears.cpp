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
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/MapVector.h"

#include <cstring>

namespace qopt {
#define GEN_PASS_DEF_FUSELINEARSPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

kern::WeightOp weightOf(Value v) { return v.getDefiningOp<kern::WeightOp>(); }

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
    if (!weightOf(ops[1]) || !weightOf(ops[2]) || (ops.size() > 3 && !isa<NoneType>(ops[3].getType()) && !weightOf(ops[3])) ||
        !st || st.getShape() == ArrayRef<int64_t>{1, 1})
      return "";
    std::string key = "q";
    for (StringRef a : {"bits", "group_size", "symmetric"})
      if (auto i = l.getAttrs().getAs<IntegerAttr>(a))
        key += "/" + std::to_string(i.getInt());
    return key;
  }
  return "";
}

// Bytes of a weight (any dtype), read whole.
std::vector<uint8_t> bytesOf(kern::WeightOp w, num::Tensor &t) {
  std::vector<uint8_t> storage;
  nn::readConstant(w.getValue(), t, storage);
  if (storage.empty())
    storage.assign(static_cast<const uint8_t *>(t.data), static_cast<const uint8_t *>(t.data) + t.bytes());
  return storage;
}

// Stacks 2-D weights: along columns (float [K, N_i]) or rows (packed [N_i, ..], scales, zeros).
kern::WeightOp stack(OpBuilder &b, Location loc, SmallVector<kern::WeightOp> ws, bool columns) {
  SmallVector<num::Tensor> ts(ws.size());
  SmallVector<std::vector<uint8_t>> data;
  std::string name;
  int64_t rows = 0, cols = 0;
  for (auto [i, w] : llvm::enumerate(ws)) {
    data.push_back(bytesOf(w, ts[i]));
    name += (i ? "+" : "") + (w.getName() ? w.getName()->str() : std::string("weight"));
    rows = columns ? ts[i].shape[0] : rows + ts[i].shape[0];
    cols = columns ? cols + ts[i].shape[1] : ts[i].shape[1];
  }
  const size_t es = num::dtypeSize(ts[0].dtype);
  std::vector<uint8_t> out(static_cast<size_t>(rows * cols) * es);
  size_t pos = 0;
  if (columns) {
    for (int64_t r = 0; r < rows; ++r)
      for (auto [i, t] : llvm::enumerate(ts)) {
        const size_t n = static_cast<size_t>(t.shape[1]) * es;
        std::memcpy(out.data() + pos, data[i].data() + r * n, n);
        pos += n;
      }
  } else {
    for (auto &d : data) {
      std::memcpy(out.data() + pos, d.data(), d.size());
      pos += d.size();
    }
  }
  auto type = RankedTensorType::get({rows, cols}, cast<RankedTensorType>(ws[0].getType()).getElementType());
  auto &mgr = DenseResourceElementsHandle::getManagerInterface(b.getContext());
  AsmResourceBlob blob = HeapAsmResourceBlob::allocateAndCopyWithAlign(
      ArrayRef<char>(reinterpret_cast<const char *>(out.data()), out.size()), 8);
  auto attr = DenseResourceElementsAttr::get(type, mgr.insert(name, std::move(blob)));
  return kern::WeightOp::create(b, loc, attr, b.getStringAttr(name));
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
    // Keyed by the input and the fusion key (interned, so the map can hash it).
    llvm::MapVector<std::pair<Value, StringAttr>, SmallVector<kern::LaunchOp>> groups;
    getOperation().walk([&](kern::LaunchOp l) {
      std::string key = fusionKey(l);
      if (!key.empty())
        groups[{l.getOperands()[0], StringAttr::get(&getContext(), key)}].push_back(l);
    });
    for (auto &[key, members] : groups) {
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
      if (!quant) {
        operands.push_back(stack(b, loc, collect(1), /*columns=*/true));
      } else {
        operands.push_back(stack(b, loc, collect(1), false));
        operands.push_back(stack(b, loc, collect(2), false));
        Value z = members.front().getOperands().size() > 3 ? members.front().getOperands()[3] : Value();
        operands.push_back(z && !isa<NoneType>(z.getType()) ? stack(b, loc, collect(3), false).getResult()
                                                             : kern::AbsentOp::create(b, loc).getResult());
      }
      attrs.push_back(b.getNamedAttr("splits", b.getDenseI64ArrayAttr(splits)));
      attrs.push_back(b.getNamedAttr("num_outputs", b.getI64IntegerAttr(static_cast<int64_t>(members.size()))));
      auto fused = kern::LaunchOp::create(b, loc, types, b.getStringAttr(quant ? "matmul_q_split" : "linear_split"),
                                          operands, b.getDictionaryAttr(attrs), StringAttr(), DenseI64ArrayAttr(), ArrayAttr());
      for (auto [i, l] : llvm::enumerate(members)) {
        SmallVector<Value> old(l.getOperands().begin() + 1, l.getOperands().end());
        l.getResult(0).replaceAllUsesWith(fused.getResult(i));
        l.erase();
        for (Value v : old)
          release(v);
      }
    }
  }
};

} // namespace
