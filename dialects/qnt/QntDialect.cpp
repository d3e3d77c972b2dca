//===- QntDialect.cpp - qnt dialect registration and verifiers -------------===//
#include "qopt/Dialect/Qnt/QntDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace qopt::qnt;

#include "dialects/qnt/QntOpsDialect.cpp.inc"

void QntDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/qnt/QntOps.cpp.inc"
      >();
}

LogicalResult LinearOp::verify() {
  auto x = dyn_cast<RankedTensorType>(getX().getType());
  auto w = dyn_cast<RankedTensorType>(getWeight().getType());
  auto s = dyn_cast<RankedTensorType>(getScales().getType());
  auto y = dyn_cast<RankedTensorType>(getY().getType());
  if (!x || !w || !s || !y || x.getRank() < 1 || w.getRank() != 2 || s.getRank() != 2 || !w.hasStaticShape() ||
      !s.hasStaticShape())
    return emitOpError() << "expects ranked x, and 2-D static weight and scales";
  int64_t K = x.getShape().back(), bits = getBits(), g = getGroupSize();
  if (ShapedType::isDynamic(K))
    return emitOpError() << "expects a static input size (last dim of x)";
  if (bits != 3 && bits != 4 && bits != 8)
    return emitOpError() << "expects bits 3, 4 or 8, got " << bits;
  if (g <= 0 || K % g != 0)
    return emitOpError() << "group_size " << g << " does not divide the input size " << K;
  const bool nib = bits != 8; // int3 and int4 are stored in nibbles
  int64_t N = w.getDimSize(0), packedK = nib ? K / 2 : K;
  Type wElem = nib ? Type(IntegerType::get(getContext(), 8, IntegerType::Unsigned))
                         : Type(IntegerType::get(getContext(), 8));
  // 8-bit weights are int8 codes or FP8 (E4M3FN, E5M2) codes.
  if (bits == 8 && isa<Float8E4M3FNType, Float8E5M2Type>(w.getElementType()))
    wElem = w.getElementType();
  if (w.getElementType() != wElem || w.getDimSize(1) != packedK)
    return emitOpError() << "expects a packed weight of type " << RankedTensorType::get({N, packedK}, wElem)
                         << ", got " << w;
  const bool perTensor = g == K && s.getShape() == ArrayRef<int64_t>{1, 1};
  // Nibble formats' scales may be float16 (values that are float16: QuantFormat.h); 8-bit ones are float32.
  if (!(s.getElementType().isF32() || (nib && s.getElementType().isF16())) ||
      (!perTensor && (s.getDimSize(0) != N || s.getDimSize(1) != K / g)))
    return emitOpError() << "expects scales of type "
                         << RankedTensorType::get({N, K / g}, Float32Type::get(getContext()))
                         << (nib ? " or f16" : "") << (g == K ? " (or 1x1 per tensor)" : "") << ", got " << s;
  bool needZeros = nib && !getSymmetric();
  auto z = dyn_cast<RankedTensorType>(getZeros().getType());
  if (needZeros != static_cast<bool>(z) || (z && z != RankedTensorType::get(s.getShape(), w.getElementType())))
    return emitOpError() << (needZeros ? "expects ui8 zero points shaped like the scales"
                                       : "expects no zero points (none) for a symmetric format");
  const int64_t actFp8 = getActFp8(), actInt8 = getActInt8(), act = actFp8 ? actFp8 : actInt8;
  if (actFp8 < 0 || actFp8 > 2 || (actFp8 && !isa<Float8E4M3FNType, Float8E5M2Type>(w.getElementType())) ||
      actInt8 < 0 || actInt8 > 2 || (actInt8 && (actFp8 || !w.getElementType().isSignlessInteger(8))) ||
      (act == 1) != static_cast<bool>(getActScale()))
    return emitOpError() << "expects act_fp8 (FP8 weights) or act_int8 (int8 weights): 0 (float x), 1 (static, "
                            "with an act_scale operand) or 2 (dynamic)";
  if (Value a = getActScale()) {
    auto at = dyn_cast<RankedTensorType>(a.getType());
    if (!at || at.getShape() != ArrayRef<int64_t>{1} || !at.getElementType().isF32())
      return emitOpError() << "expects the static activation scale as tensor<1xf32>, got " << a.getType();
    DenseElementsAttr value; // a constant's value, where it is one: positive
    if (matchPattern(a, m_Constant(&value)) && !(*value.getValues<float>().begin() > 0.0f))
      return emitOpError() << "expects a positive static activation scale, got " << *value.getValues<float>().begin();
  }
  if (y.getRank() != x.getRank() || y.getShape().back() != N || !y.getElementType().isF32())
    return emitOpError() << "expects a f32 result [.., " << N << "], got " << y;
  return success();
}

#define GET_OP_CLASSES
#include "dialects/qnt/QntOps.cpp.inc"
