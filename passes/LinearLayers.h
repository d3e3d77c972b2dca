//===- LinearLayers.h - which matmuls are weight layers --------------------===//
//
// The quantization passes (calibrate, rtn, awq, gptq) agree on what a linear layer is: an nn.matmul whose right
// operand is a constant 2-D f32 weight [K, N] contracted with the last dim of a f32 input, big enough to be worth
// quantizing (a rotary frequency table with K = 1 is not).
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_PASSES_LINEARLAYERS_H
#define QOPT_PASSES_LINEARLAYERS_H

#include "qopt/Dialect/NN/NNDialect.h"

#include <string>

namespace qopt {

constexpr int64_t kMinQuantizedK = 16;
constexpr int64_t kMinQuantizedElements = 1024;

// The constant 2-D weight [K, N] of `mm`, contracted with the last dim of its input and big enough to quantize,
// whatever its float type; else null.
inline nn::ConstantOp weightLayerConstant(nn::MatmulOp mm) {
  auto wc = mm.getRhs().getDefiningOp<nn::ConstantOp>();
  auto wt = llvm::dyn_cast<mlir::RankedTensorType>(mm.getRhs().getType());
  auto xt = llvm::dyn_cast<mlir::RankedTensorType>(mm.getLhs().getType());
  if (!wc || !wt || !xt || wt.getRank() != 2 || !llvm::isa<mlir::FloatType>(wt.getElementType()) ||
      xt.getElementType() != wt.getElementType() || xt.getRank() < 1 || xt.getShape().back() != wt.getDimSize(0))
    return nullptr;
  if (wt.getDimSize(0) < kMinQuantizedK || wt.getNumElements() < kMinQuantizedElements)
    return nullptr;
  return wc;
}

// The constant weight of `mm` if it is a linear layer (float32), else null.
inline nn::ConstantOp linearWeight(nn::MatmulOp mm) {
  nn::ConstantOp wc = weightLayerConstant(mm);
  return wc && wc.getType().getElementType().isF32() ? wc : nullptr;
}

// The constant weight of `mm` if it would be a linear layer but for its float type (float16 or bfloat16 weights
// and activations: qopt quantizes float32 graphs), else null; reports name these layers rather than skip them.
inline nn::ConstantOp otherFloatWeight(nn::MatmulOp mm) {
  nn::ConstantOp wc = weightLayerConstant(mm);
  return wc && !wc.getType().getElementType().isF32() ? wc : nullptr;
}

// Set by qopt-select-layers on linear layers that stay in float: why, as a sentence.
constexpr const char *kFloatReasonAttr = "qopt.float_reason";

// A linear layer that quantization should change: not marked to stay in float.
inline bool isQuantizable(nn::MatmulOp mm) { return linearWeight(mm) && !mm->hasAttr(kFloatReasonAttr); }

// The layer's name for reports and --exclude: the weight's initializer name, else the node name.
inline std::string layerName(nn::MatmulOp mm) {
  if (auto wc = mm.getRhs().getDefiningOp<nn::ConstantOp>())
    if (wc.getName())
      return wc.getName()->str();
  if (auto nl = llvm::dyn_cast<mlir::NameLoc>(mm.getLoc()))
    return nl.getName().str();
  return "";
}

} // namespace qopt

#endif // QOPT_PASSES_LINEARLAYERS_H
