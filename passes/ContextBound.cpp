//===- ContextBound.cpp - the longest sequence a model can take ------------===//
//
// The bound that sizes every sequence-like dynamic dim when the user gives no --max-dim: the model's own limit
// where the graph states one, else a documented default. Sources, in order:
//   1. `qopt.max_sequence` in the model's metadata (written by scripts/llama2c_to_onnx.py);
//   2. the rows of a learned position-embedding table: a rank-2 float constant gathered along axis 0 by indices
//      that are either computed in the graph (a Range, a CumSum of the mask) or read from an input whose name
//      holds "position" (GPT-2's wpe). A table gathered straight from another input is a token embedding;
//   3. kDefaultContextBound.
// Rotary embeddings computed from inv_freq (Llama, Qwen, Mistral, Phi-3 exports) state no limit: such models get
// the default.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Passes.h"

#include "mlir/IR/BuiltinOps.h"

#include <cstdlib>

using namespace mlir;

namespace qopt {

namespace {

// Ops that pass index values through unchanged (up to shape and integer width), before or after conversion.
bool isPassThrough(Operation *op) {
  if (isa<nn::CastOp, nn::ReshapeOp, nn::UnsqueezeOp, nn::SqueezeOp, nn::FlattenOp>(op))
    return true;
  if (auto node = dyn_cast<nn::OnnxNodeOp>(op))
    return node.getDomain().empty() &&
           llvm::is_contained({"Cast", "Reshape", "Unsqueeze", "Squeeze", "Flatten"}, node.getOpType());
  return false;
}

// Whether a gather's indices are positions: not read straight from an input, or from an input named for them.
bool indicesArePositions(Value indices) {
  Value v = indices;
  while (Operation *def = v.getDefiningOp()) {
    if (!isPassThrough(def) || def->getNumOperands() == 0)
      return true; // computed in the graph
    v = def->getOperand(0);
  }
  auto arg = cast<BlockArgument>(v);
  auto func = dyn_cast<func::FuncOp>(arg.getOwner()->getParentOp());
  auto name = func ? func.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "nn.name") : StringAttr();
  return name && name.getValue().contains_insensitive("position");
}

// The rows of a rank-2 float constant, or 0.
int64_t tableRows(Value data) {
  auto c = data.getDefiningOp<nn::ConstantOp>();
  if (!c)
    return 0;
  auto type = cast<ShapedType>(c.getType());
  if (type.getRank() != 2 || !isa<FloatType>(type.getElementType()))
    return 0;
  return type.getDimSize(0);
}

} // namespace

ContextBound inferContextBound(ModuleOp module) {
  if (auto meta = module->getAttrOfType<DictionaryAttr>("nn.metadata"))
    if (auto s = meta.getAs<StringAttr>("qopt.max_sequence")) {
      long long v = std::atoll(s.str().c_str());
      if (v > 0)
        return {v, "the model's qopt.max_sequence metadata"};
    }
  int64_t rows = 0;
  module.walk([&](Operation *op) {
    Value data, indices;
    int64_t axis = 0;
    if (auto g = dyn_cast<nn::GatherOp>(op)) {
      data = g.getData(), indices = g.getIndices(), axis = g.getAxis();
    } else if (auto node = dyn_cast<nn::OnnxNodeOp>(op)) {
      if (!node.getDomain().empty() || node.getOpType() != "Gather" || node.getNumOperands() != 2)
        return;
      data = node.getOperand(0), indices = node.getOperand(1);
      if (auto a = node.getAttrs().getAs<IntegerAttr>("axis"))
        axis = a.getInt();
    } else {
      return;
    }
    int64_t r = tableRows(data);
    if (r > 0 && axis == 0 && indicesArePositions(indices))
      rows = rows ? std::min(rows, r) : r;
  });
  if (rows > 0)
    return {rows, "the rows of the model's position-embedding table"};
  return {kDefaultContextBound, "qopt's default (the model states no limit)"};
}

bool parseDimBound(llvm::StringRef kv, DimBound &out, std::string &error) {
  const size_t eq = kv.find('=');
  size_t colon = kv.find(':');
  if (colon != llvm::StringRef::npos && eq != llvm::StringRef::npos && colon > eq)
    colon = llvm::StringRef::npos; // a ':' in the value is malformed below
  const size_t nameAt = colon == llvm::StringRef::npos ? 0 : colon + 1;
  const std::string value = eq == llvm::StringRef::npos ? "" : kv.substr(eq + 1).str();
  char *end = nullptr;
  const long long v = value.empty() ? -1 : std::strtoll(value.c_str(), &end, 10);
  if (eq == llvm::StringRef::npos || eq == nameAt || colon == 0 || v <= 0 || !end || *end) {
    error = "invalid max-dims entry '" + kv.str() + "' (expected NAME=N or ENTRY:NAME=N with N > 0)";
    return false;
  }
  out.entry = colon == llvm::StringRef::npos ? "" : kv.take_front(colon).str();
  out.name = kv.slice(nameAt, eq).str();
  out.value = v;
  return true;
}

bool parseDimBounds(llvm::ArrayRef<std::string> entries, llvm::StringMap<int64_t> &bounds, std::string &error,
                    llvm::StringRef entry) {
  // Unscoped bounds first, then the ones scoped to `entry` over them, whatever the order given.
  for (bool scopedPass : {false, true})
    for (const std::string &kv : entries) {
      DimBound d;
      if (!parseDimBound(kv, d, error))
        return false;
      if (d.entry.empty() == scopedPass || (scopedPass && d.entry != entry))
        continue;
      bounds[d.name] = d.value;
    }
  return true;
}

} // namespace qopt
