//===- LastLogitsEntry.cpp - a prompt entry that computes the last position's logits only ---===//
//
// Generation reads one row of a prompt's logits: the last position's, from which it picks the next token. The
// general `prefill` entry computes every position's (what scoring a text needs), and for a large vocabulary that
// is the costliest product of the step and the largest buffer of its memory plan: Llama-3-8B's 128256-word head
// over a 2048-token prompt is 2.2 TFLOP (7% of the prompt's arithmetic) and a 1 GB float32 result.
//
// This pass clones `prefill` as `prefill_last`, in which each output head (a linear layer with a constant weight
// whose result is a function result, directly or through casts) reads only the last position of its input: a
// gather of index -1 along the sequence axis (the input's second-to-last dim) goes in front of it, and the head,
// the casts after it and the function's result get a sequence dim of 1. Every head is position-wise, so the row
// equals the last row of prefill's result. The runtime runs the entry by name (qrt_session_run_entry): qrun's
// prompts and the chunks before a prompt's last take it, scoring takes `prefill`.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace qopt {
#define GEN_PASS_DEF_LASTLOGITSENTRYPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

// `t` with its second-to-last dim 1 (the sequence axis of [..., sequence, features]).
RankedTensorType lastRowType(RankedTensorType t) {
  SmallVector<int64_t> shape(t.getShape());
  shape[shape.size() - 2] = 1;
  return RankedTensorType::get(shape, t.getElementType());
}

// The output head behind function result `v`: a one-result linear launch (matmul, matmul_q) with a constant
// weight and an activation of rank 2 or more, reached from `v` through cast launches only (recorded in `casts`,
// nearest the result first). Null where the result is anything else.
kern::LaunchOp outputHead(Value v, SmallVectorImpl<kern::LaunchOp> &casts) {
  auto launch = v.getDefiningOp<kern::LaunchOp>();
  while (launch && launch.getKernel() == "cast" && launch.getNumOperands() == 1 && launch->hasOneUse()) {
    casts.push_back(launch);
    launch = launch.getOperand(0).getDefiningOp<kern::LaunchOp>();
  }
  if (!launch || (launch.getKernel() != "matmul" && launch.getKernel() != "matmul_q") ||
      launch.getNumResults() != 1 || launch.getNumOperands() < 2 ||
      !launch.getOperand(1).getDefiningOp<kern::WeightOp>())
    return {};
  // A fused norm or residual operand (qopt-fuse-norm-product) would need its own gather: not this pass's input.
  for (Value extra : launch.getOperands().drop_front(2))
    if (!extra.getDefiningOp<kern::WeightOp>() && !extra.getDefiningOp<kern::AbsentOp>())
      return {};
  auto x = dyn_cast<RankedTensorType>(launch.getOperand(0).getType());
  auto y = dyn_cast<RankedTensorType>(launch.getResult(0).getType());
  if (!x || !y || x.getRank() < 2 || y.getRank() != x.getRank())
    return {};
  return launch;
}

struct LastLogitsEntryPass : qopt::impl::LastLogitsEntryPassBase<LastLogitsEntryPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    func::FuncOp prefill;
    for (auto f : module.getOps<func::FuncOp>()) {
      if (f.getSymName() == "prefill_last")
        return; // made already
      if (f.getSymName() == "prefill")
        prefill = f;
    }
    if (!prefill)
      return; // no decoder entries (qopt-decode-entry makes them)

    // Every result must be a head's: an entry with other outputs at every position would not be the last
    // position's computation only, and runs its general entry.
    auto ret = cast<func::ReturnOp>(prefill.getBody().back().getTerminator());
    SmallVector<unsigned> heads;
    for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
      SmallVector<kern::LaunchOp> casts;
      if (!outputHead(v, casts)) {
        prefill.emitRemark() << "no prefill_last entry: result " << i
                             << " is not an output head's (a linear layer of a constant weight, then casts)";
        return;
      }
      heads.push_back(static_cast<unsigned>(i));
    }
    if (heads.empty())
      return;

    OpBuilder b(module.getBodyRegion());
    b.setInsertionPointAfter(prefill);
    auto last = cast<func::FuncOp>(b.clone(*prefill));
    last.setSymName("prefill_last");
    auto lastRet = cast<func::ReturnOp>(last.getBody().back().getTerminator());
    for (unsigned i : heads) {
      SmallVector<kern::LaunchOp> casts;
      kern::LaunchOp head = outputHead(lastRet.getOperand(i), casts);
      Value x = head.getOperand(0);
      auto xType = cast<RankedTensorType>(x.getType());
      b.setInsertionPoint(head);
      auto indexType = RankedTensorType::get({1}, b.getI64Type());
      Value index =
          kern::WeightOp::create(b, head.getLoc(), DenseElementsAttr::get(indexType, ArrayRef<int64_t>{-1}),
                                 StringAttr());
      NamedAttribute axis(b.getStringAttr("axis"), b.getI64IntegerAttr(xType.getRank() - 2));
      auto row = kern::LaunchOp::create(b, head.getLoc(), TypeRange{lastRowType(xType)}, b.getStringAttr("gather"),
                                        ValueRange{x, index}, b.getDictionaryAttr({axis}), StringAttr(),
                                        DenseI64ArrayAttr(), ArrayAttr());
      head->setOperand(0, row.getResult(0));
      head.getResult(0).setType(lastRowType(cast<RankedTensorType>(head.getResult(0).getType())));
      for (kern::LaunchOp c : llvm::reverse(casts))
        c.getResult(0).setType(lastRowType(cast<RankedTensorType>(c.getResult(0).getType())));
    }
    last.setFunctionType(FunctionType::get(&getContext(), last.getArgumentTypes(), lastRet.getOperandTypes()));
  }
};

} // namespace
