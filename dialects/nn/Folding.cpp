//===- Folding.cpp - constant folding through the reference kernels --------===//
//
// Folding evaluates an op with the same CPU kernel the runtime would run, so a folded shape sub-graph and an
// executed one cannot disagree. Results above kMaxFoldElements are left to run time: folding must not
// materialize weight-sized constants in the IR.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Numerics/Kernels.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectResourceBlobManager.h"

#include <cstring>

using namespace mlir;
using namespace qopt;
using namespace qopt::nn;

namespace {
constexpr int64_t kMaxFoldElements = 1 << 16;
} // namespace

namespace qopt::nn {

num::Attrs toKernelAttrs(DictionaryAttr dict) {
  num::Attrs out;
  for (NamedAttribute na : dict) {
    StringRef key = na.getName().getValue();
    Attribute a = na.getValue();
    if (key == "name")
      continue;
    if (auto i = dyn_cast<IntegerAttr>(a))
      out.setInt(key.str(), i.getValue().getSExtValue());
    else if (auto f = dyn_cast<FloatAttr>(a))
      out.setFloat(key.str(), f.getValueAsDouble());
    else if (auto s = dyn_cast<StringAttr>(a))
      out.setString(key.str(), s.str());
    else if (auto ints = dyn_cast<DenseI64ArrayAttr>(a))
      out.setInts(key.str(), std::vector<int64_t>(ints.asArrayRef().begin(), ints.asArrayRef().end()));
    else if (auto fl = dyn_cast<DenseF64ArrayAttr>(a))
      out.setFloats(key.str(), std::vector<double>(fl.asArrayRef().begin(), fl.asArrayRef().end()));
    else if (auto fl = dyn_cast<DenseF32ArrayAttr>(a))
      out.setFloats(key.str(), std::vector<double>(fl.asArrayRef().begin(), fl.asArrayRef().end()));
  }
  return out;
}

static std::optional<int64_t> resultDType(Operation *op) {
  if (isa<CastOp, ConstantOfShapeOp>(op))
    return static_cast<int64_t>(toDType(cast<TensorType>(op->getResult(0).getType()).getElementType()));
  return std::nullopt;
}

num::Attrs kernelAttrs(Operation *op) {
  num::Attrs out = toKernelAttrs(op->getAttrDictionary());
  if (isa<CastOp>(op))
    out.setInt("to", static_cast<int64_t>(toDType(cast<TensorType>(op->getResult(0).getType()).getElementType())));
  if (isa<ConstantOfShapeOp>(op))
    out.setInt("dtype",
               static_cast<int64_t>(toDType(cast<TensorType>(op->getResult(0).getType()).getElementType())));
  return out;
}

DictionaryAttr kernelAttrDict(Operation *op) {
  Builder b(op->getContext());
  SmallVector<NamedAttribute> attrs;
  for (NamedAttribute na : op->getAttrs())
    if (na.getName() != "name" && na.getName() != "operandSegmentSizes")
      attrs.push_back(na);
  if (auto dt = resultDType(op))
    attrs.push_back(b.getNamedAttr(isa<CastOp>(op) ? "to" : "dtype", b.getI64IntegerAttr(*dt)));
  return b.getDictionaryAttr(attrs);
}

bool readConstant(Attribute attr, num::Tensor &out, std::vector<uint8_t> &storage) {
  auto elements = dyn_cast_or_null<ElementsAttr>(attr);
  if (!elements)
    return false;
  auto type = cast<ShapedType>(elements.getType());
  num::DType dt = toDType(type.getElementType());
  if (dt == num::DType::Undefined || !type.hasStaticShape())
    return false;
  out.dtype = dt;
  out.shape.assign(type.getShape().begin(), type.getShape().end());
  size_t es = num::dtypeSize(dt);
  int64_t n = type.getNumElements();
  if (auto res = dyn_cast<DenseResourceElementsAttr>(attr)) {
    AsmResourceBlob *blob = res.getRawHandle().getBlob();
    if (!blob || blob->getData().size() != static_cast<size_t>(n) * es)
      return false;
    out.data = const_cast<char *>(blob->getData().data());
    return true;
  }
  auto dense = dyn_cast<DenseElementsAttr>(attr);
  if (!dense)
    return false;
  storage.resize(static_cast<size_t>(n) * es);
  if (dt == num::DType::Bool) {
    int64_t i = 0;
    for (bool b : dense.getValues<bool>())
      storage[i++] = b;
  } else {
    ArrayRef<char> raw = dense.getRawData();
    if (dense.isSplat()) {
      for (int64_t i = 0; i < n; ++i)
        std::memcpy(storage.data() + i * es, raw.data(), es);
    } else {
      if (raw.size() != storage.size())
        return false;
      if (!raw.empty()) // an empty tensor may have no data pointer
        std::memcpy(storage.data(), raw.data(), raw.size());
    }
  }
  out.data = storage.data();
  return true;
}

std::string unreadableConstantReason(Attribute attr) {
  std::string text;
  llvm::raw_string_ostream os(text);
  auto elements = dyn_cast_or_null<ElementsAttr>(attr);
  if (!elements) {
    os << "it is not a tensor constant";
  } else if (auto res = dyn_cast<DenseResourceElementsAttr>(attr); res && !res.getRawHandle().getBlob()) {
    os << "its resource '" << res.getRawHandle().getKey()
       << "' has no data (the IR was printed with weights elided: print it with --emit-weights)";
  } else if (toDType(elements.getElementType()) == num::DType::Undefined) {
    os << "its element type " << elements.getElementType() << " is not supported";
  } else {
    os << "its data does not match its type " << elements.getType();
  }
  return text;
}

OpFoldResult foldWithKernel(Operation *op, ArrayRef<Attribute> operands) {
  auto resultType = dyn_cast<RankedTensorType>(op->getResult(0).getType());
  if (!resultType || !resultType.hasStaticShape() || resultType.getNumElements() > kMaxFoldElements)
    return {};
  const num::KernelFamily *kernel = num::lookupFamily(kernelName(op).str());
  if (!kernel)
    return {};
  // Shape arithmetic whose every element is known (e.g. a static entry gathered from a partly dynamic shape)
  // folds even though its operands are not all constants.
  if (resultType.getRank() == 1 && isa<IntegerType>(resultType.getElementType()) &&
      resultType.getElementType().getIntOrFloatBitWidth() == 64 && !isa<ConstantOp>(op)) {
    if (auto known = getPartialInts(op->getResult(0)))
      if (llvm::none_of(*known, [](int64_t v) { return v == ShapedType::kDynamic; }))
        return DenseElementsAttr::get(resultType, ArrayRef<int64_t>(*known));
  }
  // shape/size read only the operand's type.
  bool typeOnly = isa<ShapeOp, SizeOp>(op);
  std::vector<num::Tensor> ins(op->getNumOperands());
  std::vector<std::vector<uint8_t>> storage(op->getNumOperands());
  num::KernelArgs args;
  for (unsigned i = 0; i < op->getNumOperands(); ++i) {
    Type t = op->getOperand(i).getType();
    if (isa<NoneType>(t)) {
      args.inputs.push_back(nullptr);
      continue;
    }
    if (typeOnly) {
      auto rt = dyn_cast<RankedTensorType>(t);
      if (!rt || !rt.hasStaticShape())
        return {};
      ins[i].dtype = toDType(rt.getElementType());
      ins[i].shape.assign(rt.getShape().begin(), rt.getShape().end());
    } else if (!readConstant(operands[i], ins[i], storage[i])) {
      return {};
    }
    args.inputs.push_back(&ins[i]);
  }
  num::Attrs attrs = kernelAttrs(op);
  num::Tensor result;
  args.outputs = {&result};
  args.attrs = &attrs;
  std::string err;
  if (!num::inferShapes(*kernel, args, err))
    return {};
  if (result.shape != std::vector<int64_t>(resultType.getShape().begin(), resultType.getShape().end()) ||
      result.dtype != toDType(resultType.getElementType()))
    return {};
  std::vector<uint8_t> bytes(result.bytes());
  result.data = bytes.data();
  if (!kernel->reference(args, err))
    return {};
  return toElementsAttr(resultType, result);
}

DenseElementsAttr toElementsAttr(RankedTensorType type, const num::Tensor &t) {
  const auto *bytes = static_cast<const uint8_t *>(t.data);
  if (t.dtype == num::DType::Bool) {
    SmallVector<bool> bits(bytes, bytes + t.bytes());
    return DenseElementsAttr::get(type, ArrayRef<bool>(bits));
  }
  return DenseElementsAttr::getFromRawBuffer(type, ArrayRef<char>(reinterpret_cast<const char *>(bytes), t.bytes()));
}

} // namespace qopt::nn
