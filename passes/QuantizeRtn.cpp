//===- QuantizeRtn.cpp - round-to-nearest weight quantization --------------===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Dialect/Qnt/QntDialect.h"
#include "qopt/Numerics/QuantFormat.h"
#include "qopt/Passes.h"
#include "passes/LinearLayers.h"
#include "passes/QntBuild.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/Support/Regex.h"

namespace qopt {
#define GEN_PASS_DEF_QUANTIZERTNPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

std::string nodeName(Operation *op) {
  if (auto nl = dyn_cast<NameLoc>(op->getLoc()))
    return nl.getName().str();
  return "";
}

struct QuantizeRtnPass : qopt::impl::QuantizeRtnPassBase<QuantizeRtnPass> {
  using QuantizeRtnPassBase::QuantizeRtnPassBase;

  void runOnOperation() override {
    if (!num::quant::isSupportedBits(bits)) {
      getOperation().emitError() << "qopt-quantize-rtn: bits must be 3, 4 or 8, got " << bits;
      return signalPassFailure();
    }
    const bool fp8 = format != "int";
    const num::Fp8Format fp8Format = format == "e5m2" ? num::Fp8Format::E5M2 : num::Fp8Format::E4M3FN;
    if ((fp8 && format != "e4m3" && format != "e5m2") || (fp8 && (bits != 8 || perTensor))) {
      getOperation().emitError() << "qopt-quantize-rtn: format must be int, e4m3 or e5m2 (FP8 with bits 8, not "
                                    "per tensor), got '"
                                 << format << "' with bits " << static_cast<int64_t>(bits)
                                 << (perTensor ? " per tensor" : "");
      return signalPassFailure();
    }
    llvm::Regex excludeRe(exclude);
    std::string reErr;
    if (!exclude.empty() && !excludeRe.isValid(reErr)) {
      getOperation().emitError() << "qopt-quantize-rtn: invalid exclude regex '" << exclude << "': " << reErr;
      return signalPassFailure();
    }
    SmallVector<nn::MatmulOp> candidates;
    getOperation().walk([&](nn::MatmulOp mm) { candidates.push_back(mm); });
    for (nn::MatmulOp mm : candidates) {
      nn::ConstantOp wc = linearWeight(mm);
      if (!wc || !isQuantizable(mm))
        continue; // not a linear layer with a constant weight, or one qopt-select-layers keeps in float
      auto wt = cast<RankedTensorType>(mm.getRhs().getType());
      std::string wname = wc.getName() ? wc.getName()->str() : "", node = nodeName(mm);
      if (!exclude.empty() && (excludeRe.match(wname) || excludeRe.match(node)))
        continue;
      const int64_t K = wt.getDimSize(0), N = wt.getDimSize(1);
      // Mixed precision (qopt-assign-precision) chose this layer's format: int8 layers per channel.
      auto precision = mm->getAttrOfType<DictionaryAttr>("qopt.precision");
      auto choice = precision ? precision.getAs<StringAttr>("choice") : StringAttr();
      auto chosenGroup = precision ? precision.getAs<IntegerAttr>("group") : IntegerAttr();
      const int64_t bits = choice && choice.getValue() == "int8" ? 8 : this->bits;
      int64_t group = chosenGroup && chosenGroup.getInt() > 0 ? chosenGroup.getInt()
                      : groupSize > 0 && !perTensor       ? groupSize
                                                          : K;
      if (K % group != 0 || (num::quant::isNibbleFormat(bits) && K % 2 != 0)) {
        mm.emitWarning() << "group size " << group << " does not divide the input size " << K << " of '"
                         << (wname.empty() ? node : wname) << "': quantized per channel";
        group = K;
      }
      num::Tensor w;
      std::vector<uint8_t> storage;
      if (!nn::readConstant(wc.getValue(), w, storage))
        continue;
      num::quant::QuantizedWeight q;
      std::string err;
      bool sym = bits == 8 || symmetric;
      const float *wd = static_cast<const float *>(w.data);
      if (fp8 ? !num::quant::quantizeFp8(wd, K, N, fp8Format, group, q, err)
          : perTensor ? !num::quant::quantizeRtnPerTensor(wd, K, N, bits, sym, q, err)
                      : !num::quant::quantizeRtn(wd, K, N, bits, group, sym, q, err)) {
        mm.emitError() << "cannot quantize '" << wname << "': " << err;
        return signalPassFailure();
      }
      replaceWithQntLinear(mm, static_cast<const float *>(w.data), q, wname.empty() ? "qweight" : wname,
                           mm->hasAttr("qopt.awq")      ? "awq"
                           : mm->hasAttr("qopt.smooth") ? "smoothquant"
                                                        : "rtn");
    }
  }
};

} // namespace
