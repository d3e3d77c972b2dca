//===- DecodeEntry.cpp - a static one-token entry for stateful decoders -----===//
//
// A decoder whose KV cache is session state (qopt-kv-state) runs a prompt of many tokens, then one token at a
// time. This pass gives the one-token step a function of its own, `decode`: a copy of the program in which every
// dynamic input dim is fixed (batch dims at their bound, every other dim at 1), so that
//   - every shape is known here: the kernels' shape functions run once, at compile time, and every result gets
//     its static type;
//   - the shape arithmetic (integer tensors computed from shapes and constants only) becomes constants: the entry
//     launches no shape kernel at run time;
//   - reshapes, and transposes that move only unit dims, become views of their inputs in the memory plan.
// The original function, renamed `prefill`, takes every other size up to the bounds. The runtime runs `decode`
// when the inputs have its shapes.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Numerics/Kernels.h"
#include "qopt/Passes.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseMap.h"

namespace qopt {
#define GEN_PASS_DEF_DECODEENTRYPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

// Shape arithmetic folded into constants is small: larger integer results are data, not shapes.
constexpr int64_t kMaxFoldedElements = 1 << 12;

struct Evaluated {
  num::Tensor t;
  std::vector<uint8_t> storage;
};

bool isBatchDim(StringRef name) { return name == "batch" || name == "batch_size"; }

// The operand a binary launch returns unchanged once the folding made its other operand a constant: x + 0, 0 + x,
// x - 0, x * 1, 1 * x, x / 1 (every element of the constant), when x has the result's element count and dtype (no
// broadcasting makes it larger). Null otherwise. HF decoders compute positions as range(0, n) + the cached length:
// with n = 1 that is the length itself.
Value identityOperand(kern::LaunchOp launch, const num::Tensor &result,
                      const llvm::DenseMap<Value, std::unique_ptr<Evaluated>> &known) {
  if (launch.getKernel() != "binary" || launch.getNumOperands() != 2)
    return {};
  num::Attrs attrs = nn::toKernelAttrs(launch.getAttrs());
  const num::Attr *fn = attrs.find("fn");
  if (!fn)
    return {};
  auto constant = [&](Value v, double want) {
    auto it = known.find(v);
    if (it == known.end() || !it->second->t.data)
      return false;
    const num::Tensor &t = it->second->t;
    for (int64_t i = 0; i < t.numel(); ++i)
      if (num::loadDouble(t, i) != want)
        return false;
    return true;
  };
  auto same = [&](Value v) {
    auto it = known.find(v);
    return it != known.end() && it->second->t.dtype == result.dtype && it->second->t.numel() == result.numel();
  };
  Value a = launch.getOperand(0), c = launch.getOperand(1);
  bool commutes = fn->s == "add" || fn->s == "mul";
  double unit = fn->s == "add" || fn->s == "sub" ? 0.0 : 1.0;
  if (fn->s != "add" && fn->s != "sub" && fn->s != "mul" && fn->s != "div")
    return {};
  if (constant(c, unit) && same(a))
    return a;
  if (commutes && constant(a, unit) && same(c))
    return c;
  return {};
}

struct DecodeEntryPass : qopt::impl::DecodeEntryPassBase<DecodeEntryPass> {
  using DecodeEntryPassBase::DecodeEntryPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<func::FuncOp> funcs(module.getOps<func::FuncOp>());
    if (funcs.size() != 1 || funcs[0].getOps<kern::StateOp>().empty())
      return; // no state to continue from, or entries already made
    func::FuncOp prefill = funcs[0];
    llvm::StringMap<int64_t> bounds;
    std::string error;
    if (!parseDimBounds(maxDims, bounds, error)) {
      prefill.emitError() << error;
      return signalPassFailure();
    }

    // The one-token signature.
    SmallVector<Type> argTypes;
    for (BlockArgument arg : prefill.getArguments()) {
      auto type = cast<RankedTensorType>(arg.getType());
      auto names = prefill.getArgAttrOfType<ArrayAttr>(arg.getArgNumber(), "nn.dims");
      SmallVector<int64_t> shape(type.getShape());
      for (int64_t d = 0; d < type.getRank(); ++d) {
        if (!type.isDynamicDim(d))
          continue;
        StringRef name = names && d < static_cast<int64_t>(names.size()) ? cast<StringAttr>(names[d]).getValue()
                                                                        : StringRef();
        shape[d] = 1;
        if (isBatchDim(name)) {
          auto it = bounds.find(name);
          if (it == bounds.end()) {
            prefill.emitError() << "decode entry: the batch dim '" << name << "' has no bound";
            return signalPassFailure();
          }
          shape[d] = it->second;
        }
      }
      argTypes.push_back(RankedTensorType::get(shape, type.getElementType()));
    }
    OpBuilder b(module.getBodyRegion());
    b.setInsertionPointAfter(prefill);
    auto decode = cast<func::FuncOp>(b.clone(*prefill));
    prefill.setSymName("prefill");
    decode.setSymName("decode");
    for (auto [arg, type] : llvm::zip(decode.getArguments(), argTypes))
      arg.setType(type);

    // Every shape at these sizes; integer results computed from constants and shapes only become constants. A
    // program that cannot run one token this way (a shape function refusing it) keeps its general entry only.
    std::string why;
    auto fail = [&](Operation *op, const std::string &reason) {
      why = reason;
      if (auto nl = dyn_cast<NameLoc>(op->getLoc()))
        why = "node '" + nl.getName().str() + "': " + why;
      return failure();
    };
    auto specialize = [&]() -> LogicalResult {
      llvm::DenseMap<Value, std::unique_ptr<Evaluated>> known;
      for (BlockArgument arg : decode.getArguments()) {
        auto e = std::make_unique<Evaluated>();
        auto type = cast<RankedTensorType>(arg.getType());
        e->t.dtype = nn::toDType(type.getElementType());
        e->t.shape.assign(type.getShape().begin(), type.getShape().end());
        known[arg] = std::move(e);
      }
      SmallVector<Operation *> ops;
      for (Operation &op : decode.getBody().front())
        ops.push_back(&op);
      for (Operation *op : ops) {
        if (auto w = dyn_cast<kern::WeightOp>(op)) {
          // Shape arithmetic reads small integer constants only: a model's weights are known by their type, not
          // copied (a copy of every weight would double the compiler's memory on a large model).
          auto e = std::make_unique<Evaluated>();
          auto type = cast<RankedTensorType>(w.getType());
          e->t.dtype = nn::toDType(type.getElementType());
          e->t.shape.assign(type.getShape().begin(), type.getShape().end());
          if (!num::isFloat(e->t.dtype) && type.getNumElements() <= kMaxFoldedElements &&
              !nn::readConstant(w.getValue(), e->t, e->storage))
            return fail(w, "cannot read a weight: " + nn::unreadableConstantReason(w.getValue()));
          known[w.getResult()] = std::move(e);
          continue;
        }
        if (auto st = dyn_cast<kern::StateOp>(op)) {
          auto e = std::make_unique<Evaluated>();
          e->t.dtype = nn::toDType(st.getType().getElementType());
          e->t.shape.assign(st.getType().getShape().begin(), st.getType().getShape().end());
          known[st.getResult()] = std::move(e);
          continue;
        }
        auto launch = dyn_cast<kern::LaunchOp>(op);
        if (!launch)
          continue;
        const num::KernelFamily *k = num::lookupFamily(launch.getKernel().str());
        num::Attrs attrs = nn::toKernelAttrs(launch.getAttrs());
        num::KernelArgs args;
        args.attrs = &attrs;
        for (Value v : launch.getOperands()) {
          if (isa<NoneType>(v.getType())) {
            args.inputs.push_back(nullptr);
            continue;
          }
          auto found = known.find(v);
          Evaluated *in = found == known.end() ? nullptr : found->second.get();
          if (!in) {
            return fail(launch, "an operand has no evaluated shape");
          }
          args.inputs.push_back(&in->t);
        }
        SmallVector<std::unique_ptr<Evaluated>> outs;
        for (size_t r = 0; r < launch.getNumResults(); ++r) {
          outs.push_back(std::make_unique<Evaluated>());
          args.outputs.push_back(&outs.back()->t);
        }
        std::string err;
        if (!num::inferShapes(*k, args, err)) {
          return fail(launch, err);
        }
        std::vector<std::vector<uint8_t> *> storage;
        for (auto &o : outs)
          storage.push_back(&o->storage);
        bool evaluated = false;
        if (!num::evaluateSmall(*k, args, kMaxFoldedElements, /*floats=*/false,
                                    storage, evaluated, err))
          return fail(launch, "evaluating shape arithmetic: " + err);
        b.setInsertionPoint(launch);
        for (auto [r, res] : llvm::enumerate(launch.getResults())) {
          auto old = cast<RankedTensorType>(res.getType());
          const num::Shape &shape = outs[r]->t.shape;
          if (static_cast<int64_t>(shape.size()) != old.getRank()) {
            return fail(launch, "a result of rank " + std::to_string(shape.size()) + ", not " +
                                    std::to_string(old.getRank()));
          }
          auto type = RankedTensorType::get(shape, old.getElementType());
          res.setType(type);
          if (outs[r]->t.data) { // shape arithmetic: a constant of this entry
            Value c = kern::WeightOp::create(b, launch.getLoc(), nn::toElementsAttr(type, outs[r]->t), StringAttr());
            res.replaceAllUsesWith(c);
            known[c] = std::move(outs[r]);
            continue;
          }
          if (Value x = identityOperand(launch, outs[r]->t, known)) { // arithmetic that changes nothing: a reshape
            auto shapeType = RankedTensorType::get({type.getRank()}, b.getI64Type());
            Value dims = kern::WeightOp::create(
                b, launch.getLoc(), DenseElementsAttr::get(shapeType, ArrayRef<int64_t>(shape)), StringAttr());
            auto reshape = kern::LaunchOp::create(b, launch.getLoc(), TypeRange{type}, b.getStringAttr("reshape"),
                                                  ValueRange{x, dims}, b.getDictionaryAttr({}), StringAttr(),
                                                  DenseI64ArrayAttr(), ArrayAttr());
            res.replaceAllUsesWith(reshape.getResult(0));
            known[reshape.getResult(0)] = std::move(outs[r]);
            continue;
          }
          known[res] = std::move(outs[r]);
        }
      }
      return success();
    };
    if (failed(specialize())) {
      decode.erase();
      prefill.setSymName("main");
      prefill.emitRemark() << "no one-token decode entry (" << why << "): every run takes the general entry";
      return;
    }

    auto ret = cast<func::ReturnOp>(decode.getBody().back().getTerminator());
    decode.setFunctionType(FunctionType::get(&getContext(), argTypes, ret.getOperandTypes()));

    // What the constants replaced, and constants nothing reads any more. In-place launches write state: kept.
    bool changed = true;
    while (changed) {
      changed = false;
      for (Operation &op : llvm::make_early_inc_range(llvm::reverse(decode.getBody().front()))) {
        if (!op.use_empty() || !isa<kern::LaunchOp, kern::WeightOp, kern::AbsentOp>(op))
          continue;
        if (auto l = dyn_cast<kern::LaunchOp>(op))
          if (num::lookupFamily(l.getKernel().str())->inPlace >= 0)
            continue;
        op.erase();
        changed = true;
      }
    }
  }
};

} // namespace
