//===- InsertFp8.cpp - FP8 activations for FP8-weight linear layers (W8A8) -===//
//
// Marks every qnt.linear whose weights are FP8 codes to quantize its input to the same FP8 format: with one
// static scale from the calibration range of that input (max |x| / the format's largest value), or with a scale
// per row computed at run time. The kernels then multiply FP8 by FP8 with float32 accumulation; on the CPU the
// input is rounded to FP8 exactly as the GPU conversion does (Fp8.h) before the product.
//
//===----------------------------------------------------------------------===//
#include "passes/QntBuild.h"
#include "qopt/Dialect/Qnt/QntDialect.h"
#include "qopt/Numerics/Fp8.h"
#include "qopt/Passes.h"


namespace qopt {
#define GEN_PASS_DEF_INSERTFP8PASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

struct InsertFp8Pass : qopt::impl::InsertFp8PassBase<InsertFp8Pass> {
  using InsertFp8PassBase::InsertFp8PassBase;

  void runOnOperation() override {
    if (mode != "static" && mode != "dynamic") {
      getOperation().emitError() << "qopt-insert-fp8: mode must be static or dynamic, got '" << mode << "'";
      return signalPassFailure();
    }
    WalkResult r = getOperation().walk([&](qnt::LinearOp lin) {
      Type we = cast<RankedTensorType>(lin.getWeight().getType()).getElementType();
      if (!isa<Float8E4M3FNType, Float8E5M2Type>(we))
        return WalkResult::advance(); // integer codes stay weight-only
      if (mode == "dynamic") {
        lin.setActFp8(2);
        return WalkResult::advance();
      }
      auto info = lin->getAttrOfType<DictionaryAttr>("qopt.quant");
      auto absmax = info ? info.getAs<FloatAttr>("act_absmax") : FloatAttr();
      if (!absmax) {
        lin.emitError() << "qopt-insert-fp8: no calibration range for this layer's input (static scales need "
                           "qopt-calibrate before quantization; or use mode=dynamic)";
        return WalkResult::interrupt();
      }
      const float top = num::fp8Max(isa<Float8E4M3FNType>(we) ? num::Fp8Format::E4M3FN : num::Fp8Format::E5M2);
      const float a = static_cast<float>(absmax.getValueAsDouble());
      lin.setActFp8(1);
      setStaticActScale(lin, a > 0.0f ? a / top : 1.0f);
      return WalkResult::advance();
    });
    if (r.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
