//===- RefineShapes.cpp - dims that do not depend on the input sizes ----------===//
//
// Forward shape inference works op by op and loses what an op cannot see: after
//   Reshape(q_proj(x), Concat(Shape(x)[0], Shape(x)[1], [-1], [16]))
// the heads dim is `?`, because inference does not know that Shape(x)'s dims are the product's own. This pass
// recovers such dims in two steps:
//   1. Sampling: the function's shapes are evaluated twice through the kernels' shape functions (shape arithmetic
//      evaluated on its values), with two different sets of sizes for the dynamic input dims (one size per dim
//      name, far apart as in ShapeInference.cpp). A result dim that is `?` in the IR but the same in both runs
//      does not depend on the input sizes: it becomes static. (The memory planner checks every static dim again
//      at the compiled bounds.)
//   2. Contraction: a matmul with a constant [K, N] weight fixes its input's last dim to K.
// Refined types are written into the producing nn op's results (every nn verifier accepts a static dim where its
// inference says `?`) and returned values into the function's result types; arguments keep their declared types.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Numerics/Kernels.h"
#include "qopt/Passes.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

namespace qopt {
#define GEN_PASS_DEF_REFINESHAPESPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

// Integer tensors up to this many elements are evaluated (shape arithmetic); larger ones (masks, position ranges)
// and float tensors get their shape only.
constexpr int64_t kMaxSampledElements = 64;

struct Sample {
  num::Tensor t;
  std::vector<uint8_t> storage;
  bool known = false; // the shape is known in this run
};

using Samples = llvm::DenseMap<Value, std::unique_ptr<Sample>>;

bool isNNKernelOp(Operation *op) {
  return op->getDialect() && op->getDialect()->getNamespace() == "nn" &&
         !isa<nn::ConstantOp, nn::NoneOp, nn::OnnxNodeOp>(op) && num::lookupKernel(nn::kernelName(op).str());
}

// Evaluates the shapes of `func` with each dynamic input dim set from `sizeOf`.
void evaluate(func::FuncOp func, const std::function<int64_t(BlockArgument, int64_t)> &sizeOf, Samples &out) {
  for (BlockArgument arg : func.getArguments()) {
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    auto s = std::make_unique<Sample>();
    if (type) {
      s->known = true;
      s->t.dtype = nn::toDType(type.getElementType());
      for (int64_t d = 0; d < type.getRank(); ++d)
        s->t.shape.push_back(type.isDynamicDim(d) ? sizeOf(arg, d) : type.getDimSize(d));
    }
    out[arg] = std::move(s);
  }
  func.walk([&](Operation *op) {
    if (auto c = dyn_cast<nn::ConstantOp>(op)) {
      auto s = std::make_unique<Sample>();
      s->known = nn::readConstant(c.getValue(), s->t, s->storage);
      out[c.getResult()] = std::move(s);
      return;
    }
    if (!isNNKernelOp(op))
      return;
    const num::KernelDef *k = num::lookupKernel(nn::kernelName(op).str());
    num::Attrs attrs = nn::kernelAttrs(op);
    num::KernelArgs args;
    args.attrs = &attrs;
    // shape and size read only their operand's shape.
    const bool shapeOnly = isa<nn::ShapeOp, nn::SizeOp>(op);
    bool allData = true;
    for (auto [i, v] : llvm::enumerate(op->getOperands())) {
      if (isa<NoneType>(v.getType())) {
        args.inputs.push_back(nullptr);
        continue;
      }
      auto it = out.find(v);
      if (it == out.end() || !it->second->known)
        return;
      if ((k->shapeDataInputs >> i & 1u) && !it->second->t.data)
        return; // a shape read from values this run does not have
      allData &= shapeOnly || it->second->t.data != nullptr;
      args.inputs.push_back(&it->second->t);
    }
    SmallVector<std::unique_ptr<Sample>> results;
    for (unsigned r = 0; r < op->getNumResults(); ++r) {
      results.push_back(std::make_unique<Sample>());
      args.outputs.push_back(&results.back()->t);
    }
    std::string err;
    if (!num::inferShapes(*k, args, err))
      return;
    bool small = true;
    for (auto &r : results)
      small &= !num::isFloat(r->t.dtype) && r->t.numel() <= kMaxSampledElements;
    if (allData && small) {
      for (auto &r : results) {
        r->storage.resize(std::max<size_t>(r->t.bytes(), 1));
        r->t.data = r->storage.data();
      }
      if (!k->run(args, err))
        for (auto &r : results)
          r->t.data = nullptr;
    }
    for (auto [r, res] : llvm::enumerate(results)) {
      res->known = true;
      out[op->getResult(r)] = std::move(res);
    }
  });
}

struct RefineShapesPass : qopt::impl::RefineShapesPassBase<RefineShapesPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    // One size per dim name (unnamed dims get their own), different between the two runs and far apart.
    llvm::StringMap<int64_t> index;
    auto sizer = [&](int64_t base) {
      return [&, base](BlockArgument arg, int64_t d) -> int64_t {
        auto names = func.getArgAttrOfType<ArrayAttr>(arg.getArgNumber(), "nn.dims");
        std::string key = names && d < static_cast<int64_t>(names.size()) && !cast<StringAttr>(names[d]).getValue().empty()
                              ? cast<StringAttr>(names[d]).getValue().str()
                              : "#" + std::to_string(arg.getArgNumber()) + "." + std::to_string(d);
        auto [it, inserted] = index.try_emplace(key, static_cast<int64_t>(index.size()));
        return base + 2 * it->second; // odd, distinct per name
      };
    };
    Samples a, b;
    evaluate(func, sizer(9967), a);
    evaluate(func, sizer(19937), b);
    func.walk([&](Operation *op) {
      if (!isNNKernelOp(op))
        return;
      for (Value v : op->getResults()) {
        auto type = dyn_cast<RankedTensorType>(v.getType());
        auto ia = a.find(v), ib = b.find(v);
        if (!type || type.hasStaticShape() || ia == a.end() || ib == b.end() || !ia->second->known ||
            !ib->second->known)
          continue;
        const num::Shape &sa = ia->second->t.shape, &sb = ib->second->t.shape;
        if (static_cast<int64_t>(sa.size()) != type.getRank() || sa.size() != sb.size())
          continue;
        SmallVector<int64_t> shape(type.getShape());
        for (size_t d = 0; d < shape.size(); ++d)
          if (ShapedType::isDynamic(shape[d]) && sa[d] == sb[d])
            shape[d] = sa[d];
        v.setType(RankedTensorType::get(shape, type.getElementType()));
      }
    });
    // Contraction with a constant weight.
    func.walk([&](nn::MatmulOp mm) {
      auto w = mm.getRhs().getDefiningOp<nn::ConstantOp>();
      auto wt = w ? dyn_cast<RankedTensorType>(w.getType()) : RankedTensorType();
      auto xt = dyn_cast<RankedTensorType>(mm.getLhs().getType());
      if (!wt || wt.getRank() != 2 || !xt || xt.getRank() < 2 || !xt.isDynamicDim(xt.getRank() - 1))
        return;
      Operation *def = mm.getLhs().getDefiningOp();
      if (!def || !def->getDialect() || def->getDialect()->getNamespace() != "nn")
        return;
      SmallVector<int64_t> shape(xt.getShape());
      shape.back() = wt.getDimSize(0);
      mm.getLhs().setType(RankedTensorType::get(shape, xt.getElementType()));
    });
    // Results returned by the function refine its signature with them.
    auto ret = cast<func::ReturnOp>(func.getBody().back().getTerminator());
    func.setFunctionType(FunctionType::get(&getContext(), func.getArgumentTypes(), ret.getOperandTypes()));
  }
};

} // namespace
