//===- InsertInt8.cpp - INT8 activations for int8-weight linear layers (W8A8) --===//
//
// Marks every qnt.linear whose weights are int8 codes to quantize its input to int8 as well: with a scale per row
// computed at run time (max |x| of the row / 127: SmoothQuant's per-token scheme) or one static scale from the
// calibrated range of that input. The kernels then multiply int8 by int8 with int32 accumulation; on the CPU the
// input is rounded to int8 exactly as the GPU conversion does (quant::roundToInt8) before the product.
//
//===----------------------------------------------------------------------===//
#include "passes/QntBuild.h"
#include "qopt/Dialect/Qnt/QntDialect.h"
#include "qopt/Numerics/QuantFormat.h"
#include "qopt/Passes.h"


namespace qopt {
#define GEN_PASS_DEF_INSERTINT8PASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

struct InsertInt8Pass : qopt::impl::InsertInt8PassBase<InsertInt8Pass> {
  using InsertInt8PassBase::InsertInt8PassBase;

  void runOnOperation() override {
    if (mode != "static" && mode != "dynamic") {
      getOperation().emitError() << "qopt-insert-int8: mode must be static or dynamic, got '" << mode << "'";
      return signalPassFailure();
    }
    WalkResult r = getOperation().walk([&](qnt::LinearOp lin) {
      if (lin.getBits() != 8 || !cast<RankedTensorType>(lin.getWeight().getType()).getElementType().isSignlessInteger(8))
        return WalkResult::advance(); // other formats stay as they are
      if (mode == "dynamic") {
        lin.setActInt8(2);
        return WalkResult::advance();
      }
      auto info = lin->getAttrOfType<DictionaryAttr>("qopt.quant");
      auto absmax = info ? info.getAs<FloatAttr>("act_absmax") : FloatAttr();
      if (!absmax) {
        lin.emitError() << "qopt-insert-int8: no calibration range for this layer's input (static scales need "
                           "qopt-calibrate before quantization; or use mode=dynamic)";
        return WalkResult::interrupt();
      }
      const float a = static_cast<float>(absmax.getValueAsDouble());
      lin.setActInt8(1);
      setStaticActScale(lin, a > 0.0f ? a / num::quant::kInt8Max : 1.0f);
      return WalkResult::advance();
    });
    if (r.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
