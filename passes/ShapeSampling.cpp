//===- ShapeSampling.cpp - evaluating a function's shapes at chosen sizes --===//
#include "passes/ShapeSampling.h"

#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Numerics/Kernels.h"

#include "llvm/ADT/StringMap.h"

using namespace mlir;

namespace qopt {

namespace {

bool isNNKernelOp(Operation *op) {
  return op->getDialect() && op->getDialect()->getNamespace() == "nn" &&
         !isa<nn::ConstantOp, nn::NoneOp, nn::OnnxNodeOp>(op) && num::lookupFamily(nn::kernelName(op).str());
}

} // namespace

void sampleShapes(func::FuncOp func, const std::function<int64_t(BlockArgument, int64_t)> &sizeOf,
                  const SamplingOptions &options, Samples &out) {
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
    const num::KernelFamily *k = num::lookupFamily(nn::kernelName(op).str());
    num::Attrs attrs = nn::kernelAttrs(op);
    num::KernelArgs args;
    args.attrs = &attrs;
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
    std::vector<std::vector<uint8_t> *> storage;
    for (auto &r : results)
      storage.push_back(&r->storage);
    bool evaluated = false;
    if (!num::evaluateSmall(*k, args, options.maxElements, options.floats, storage, evaluated, err))
      for (auto &r : results) // values this sample cannot compute: its shapes are still known
        r->t.data = nullptr;
    for (auto [r, res] : llvm::enumerate(results)) {
      res->known = true;
      out[op->getResult(r)] = std::move(res);
    }
  });
}

std::function<int64_t(BlockArgument, int64_t)> sizePerDimName(func::FuncOp func, int64_t base, int64_t step) {
  auto index = std::make_shared<llvm::StringMap<int64_t>>();
  return [func, base, step, index](BlockArgument arg, int64_t d) mutable -> int64_t {
    auto names = func.getArgAttrOfType<ArrayAttr>(arg.getArgNumber(), "nn.dims");
    std::string key = names && d < static_cast<int64_t>(names.size()) && !cast<StringAttr>(names[d]).getValue().empty()
                          ? cast<StringAttr>(names[d]).getValue().str()
                          : "#" + std::to_string(arg.getArgNumber()) + "." + std::to_string(d);
    auto [it, inserted] = index->try_emplace(key, static_cast<int64_t>(index->size()));
    return base + step * it->second;
  };
}

} // namespace qopt
