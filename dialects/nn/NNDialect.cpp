//===- NNDialect.cpp - nn dialect registration, verifiers, folders ---------===//
//
// Every nn kernel op shares one verifier (its result types must agree with the generic shape inference) and one
// folder (constant operands are evaluated by the CPU reference kernel of the same name), so semantics live in
// exactly two places: ShapeInference.cpp and lib/Numerics.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Dialect/ResourceCheck.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace qopt;
using namespace qopt::nn;

#include "dialects/nn/NNOpsDialect.cpp.inc"
#include "dialects/nn/NNOpsEnums.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/nn/NNOpsTypes.cpp.inc"

void NNDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/nn/NNOps.cpp.inc"
      >();
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialects/nn/NNOpsTypes.cpp.inc"
      >();
}

Operation *NNDialect::materializeConstant(OpBuilder &builder, Attribute value, Type type, Location loc) {
  auto elements = dyn_cast<ElementsAttr>(value);
  if (!elements || elements.getType() != type)
    return nullptr;
  return ConstantOp::create(builder, loc, type, elements, StringAttr());
}

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

LogicalResult ConstantOp::verify() { return qopt::verifyResourceSize(getOperation(), getValue()); }

namespace qopt::nn {

num::DType toDType(Type t) {
  if (t.isF32()) return num::DType::F32;
  if (t.isF64()) return num::DType::F64;
  if (t.isF16()) return num::DType::F16;
  if (t.isBF16()) return num::DType::BF16;
  if (isa<Float8E4M3FNType>(t)) return num::DType::F8E4M3FN;
  if (isa<Float8E5M2Type>(t)) return num::DType::F8E5M2;
  if (auto it = dyn_cast<IntegerType>(t)) {
    bool u = it.isUnsigned();
    switch (it.getWidth()) {
    case 1: return num::DType::Bool;
    case 8: return u ? num::DType::U8 : num::DType::I8;
    case 16: return u ? num::DType::U16 : num::DType::I16;
    case 32: return u ? num::DType::U32 : num::DType::I32;
    case 64: return u ? num::DType::U64 : num::DType::I64;
    default: break;
    }
  }
  return num::DType::Undefined;
}

Type fromDType(MLIRContext *ctx, num::DType d) {
  Builder b(ctx);
  auto u = [&](unsigned w) { return IntegerType::get(ctx, w, IntegerType::Unsigned); };
  switch (d) {
  case num::DType::F32: return b.getF32Type();
  case num::DType::F64: return b.getF64Type();
  case num::DType::F16: return b.getF16Type();
  case num::DType::BF16: return b.getBF16Type();
  case num::DType::F8E4M3FN: return Float8E4M3FNType::get(ctx);
  case num::DType::F8E5M2: return Float8E5M2Type::get(ctx);
  case num::DType::Bool: return b.getI1Type();
  case num::DType::I8: return b.getIntegerType(8);
  case num::DType::I16: return b.getIntegerType(16);
  case num::DType::I32: return b.getIntegerType(32);
  case num::DType::I64: return b.getIntegerType(64);
  case num::DType::U8: return u(8);
  case num::DType::U16: return u(16);
  case num::DType::U32: return u(32);
  case num::DType::U64: return u(64);
  default: return Type();
  }
}

} // namespace qopt::nn

namespace {
LogicalResult verifyKernelOp(Operation *op) {
  for (Type t : op->getResultTypes())
    if (!isa<TensorType>(t))
      return op->emitOpError() << "expects tensor results";
  SmallVector<Type> inferred;
  if (failed(inferResultTypes(op, inferred, /*diag=*/true)))
    return failure();
  for (auto [have, want] : llvm::zip(op->getResultTypes(), inferred)) {
    auto h = cast<TensorType>(have), w = cast<TensorType>(want);
    if (h.getElementType() != w.getElementType())
      return op->emitOpError() << "result element type " << h.getElementType() << " does not match inferred "
                               << w.getElementType();
    if (h.hasRank() && w.hasRank()) {
      if (h.getRank() != w.getRank())
        return op->emitOpError() << "result type " << have << " does not match inferred " << want;
      for (auto [a, b] : llvm::zip(h.getShape(), w.getShape()))
        if (!ShapedType::isDynamic(a) && !ShapedType::isDynamic(b) && a != b)
          return op->emitOpError() << "result type " << have << " does not match inferred " << want;
    }
  }
  return success();
}
} // namespace

#define NN_KERNEL_OP(Op)                                                                                          \
  LogicalResult Op::verify() { return verifyKernelOp(getOperation()); }                                           \
  OpFoldResult Op::fold(FoldAdaptor adaptor) { return foldWithKernel(getOperation(), adaptor.getOperands()); }
NN_KERNEL_OP(UnaryOp)
NN_KERNEL_OP(BinaryOp)
NN_KERNEL_OP(WhereOp)
NN_KERNEL_OP(CastOp)
NN_KERNEL_OP(MatmulOp)
NN_KERNEL_OP(SoftmaxOp)
NN_KERNEL_OP(LayerNormOp)
NN_KERNEL_OP(RmsNormOp)
NN_KERNEL_OP(GeluOp)
NN_KERNEL_OP(GatedActOp)
NN_KERNEL_OP(AttentionOp)
NN_KERNEL_OP(RotaryOp)
NN_KERNEL_OP(ReduceOp)
NN_KERNEL_OP(ArgReduceOp)
NN_KERNEL_OP(ReshapeOp)
NN_KERNEL_OP(UnsqueezeOp)
NN_KERNEL_OP(SqueezeOp)
NN_KERNEL_OP(FlattenOp)
NN_KERNEL_OP(TransposeOp)
NN_KERNEL_OP(ConcatOp)
NN_KERNEL_OP(SliceOp)
NN_KERNEL_OP(GatherOp)
NN_KERNEL_OP(ExpandOp)
NN_KERNEL_OP(TriluOp)
NN_KERNEL_OP(ShapeOp)
NN_KERNEL_OP(SizeOp)
NN_KERNEL_OP(RangeOp)
NN_KERNEL_OP(ConstantOfShapeOp)
NN_KERNEL_OP(ConvOp)
NN_KERNEL_OP(PoolOp)
NN_KERNEL_OP(GatherElementsOp)
NN_KERNEL_OP(GatherNdOp)
NN_KERNEL_OP(ScatterNdOp)
NN_KERNEL_OP(TileOp)
NN_KERNEL_OP(PadOp)
NN_KERNEL_OP(CumsumOp)
LogicalResult TopkOp::verify() { return verifyKernelOp(getOperation()); }

LogicalResult StateOp::verify() {
  if (!getType().hasStaticShape())
    return emitOpError() << "needs a static shape (the session allocates it once)";
  if (getName().empty())
    return emitOpError() << "needs a name";
  return success();
}

namespace {
LogicalResult verifyLength(Operation *op, Value length) {
  auto t = dyn_cast<RankedTensorType>(length.getType());
  if (!t || !t.getElementType().isInteger(64) || !t.hasStaticShape() || t.getNumElements() != 1)
    return op->emitOpError() << "expects a one-element i64 length, got " << length.getType();
  return success();
}
} // namespace

LogicalResult KvAppendOp::verify() {
  auto cache = getCache().getType(), update = getUpdate().getType();
  if (getResult().getType() != cache)
    return emitOpError() << "result type must be the cache's type";
  if (!cache.hasStaticShape())
    return emitOpError() << "expects a cache of static shape";
  int64_t axis = getAxis();
  // A 16-bit or FP8 cache (qopt-kv-state dtype=f16, bf16, fp8, fp8_e5m2) takes float32 entries, rounded as they are
  // stored; FP8 codes of x / the kv head's scale (`scales`, float32, one per dim 1 of a [batch, heads, capacity,
  // head dim] cache appended along dim 2), or of (x - offsets[h, d]) / it (`offsets`, float32 [heads, head dim]).
  Type element = cache.getElementType();
  const bool fp8 = isa<Float8E4M3FNType, Float8E5M2Type>(element);
  const bool narrowing = update.getElementType().isF32() && (element.isF16() || element.isBF16() || fp8);
  if (update.getRank() != cache.getRank() || axis < 1 || axis >= cache.getRank() ||
      (update.getElementType() != element && !narrowing))
    return emitOpError() << "expects new entries " << update << " of the cache's rank and element type (f32 for "
                         << "an f16, bf16 or FP8 cache), and an axis after the batch dim";
  auto f32Shape = [](Value v, ArrayRef<int64_t> shape) {
    auto t = cast<RankedTensorType>(v.getType());
    return t.getElementType().isF32() && t.getShape() == shape;
  };
  if (fp8) {
    if (cache.getRank() != 4 || axis != 2 || !getScales() || !f32Shape(getScales(), {cache.getDimSize(1)}))
      return emitOpError() << "expects an FP8 cache [batch, kv heads, capacity, head dim] appended along dim 2 "
                           << "with one float32 scale per kv head (`scales`)";
    if (getOffsets() && !f32Shape(getOffsets(), {cache.getDimSize(1), cache.getDimSize(3)}))
      return emitOpError() << "expects `offsets` of float32 [kv heads, head dim]";
  } else if (getScales() || getOffsets()) {
    return emitOpError() << "takes `scales` and `offsets` only with an FP8 cache";
  }
  for (int64_t d = 1; d < cache.getRank(); ++d)
    if (d != axis && !update.isDynamicDim(d) && update.getDimSize(d) != cache.getDimSize(d))
      return emitOpError() << "new entries " << update << " differ from the cache " << cache << " in dim " << d;
  return verifyLength(getOperation(), getLength());
}

LogicalResult KvAdvanceOp::verify() {
  if (getResult().getType() != getLength().getType())
    return emitOpError() << "result type must be the length's type";
  auto sizes = getSizes().getType();
  const int64_t axis = static_cast<int64_t>(getAxis());
  if (sizes.getRank() != 1 || !sizes.getElementType().isInteger(64) || sizes.isDynamicDim(0) || axis < 0 ||
      axis >= sizes.getDimSize(0))
    return emitOpError() << "expects the new entries' sizes as a 1-D i64 tensor with an entry at the axis, got "
                         << sizes;
  return verifyLength(getOperation(), getLength());
}
#undef NN_KERNEL_OP

#define GET_OP_CLASSES
#include "dialects/nn/NNOps.cpp.inc"
