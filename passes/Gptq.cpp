//===- Gptq.cpp - GPTQ weight quantization of calibrated linear layers -----===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Dialect/Qnt/QntDialect.h"
#include "qopt/Numerics/QuantFormat.h"
#include "qopt/Passes.h"
#include "passes/LinearLayers.h"
#include "passes/QntBuild.h"

#include "llvm/Support/Regex.h"

namespace qopt {
#define GEN_PASS_DEF_GPTQPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {
struct GptqPass : qopt::impl::GptqPassBase<GptqPass> {
  using GptqPassBase::GptqPassBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    const bool fp8 = format != "int";
    if ((fp8 && format != "e4m3" && format != "e5m2") || (fp8 && bits != 8)) {
      func.emitError() << "qopt-gptq: format must be int, e4m3 or e5m2 (FP8 with bits 8), got '" << format
                       << "' with bits " << static_cast<int64_t>(bits);
      return signalPassFailure();
    }
    llvm::Regex excludeRe(exclude);
    SmallVector<nn::MatmulOp> candidates;
    func.walk([&](nn::MatmulOp mm) { candidates.push_back(mm); });
    for (nn::MatmulOp mm : candidates) {
      nn::ConstantOp wc = linearWeight(mm);
      if (!wc || !isQuantizable(mm))
        continue;
      std::string name = layerName(mm);
      std::string node = isa<NameLoc>(mm.getLoc()) ? cast<NameLoc>(mm.getLoc()).getName().str() : "";
      if (!exclude.empty() && (excludeRe.match(name) || excludeRe.match(node)))
        continue;
      auto calib = mm->getAttrOfType<DictionaryAttr>("qopt.calib");
      auto xtx = calib ? dyn_cast_or_null<ElementsAttr>(calib.get("xtx")) : ElementsAttr();
      if (!xtx) {
        mm.emitError() << "qopt-gptq: layer '" << name << "' has no X^T X (run qopt-calibrate first)";
        return signalPassFailure();
      }
      num::Tensor w, h;
      std::vector<uint8_t> ws, hs;
      if (!nn::readConstant(wc.getValue(), w, ws) || !nn::readConstant(xtx, h, hs))
        continue;
      const int64_t K = w.shape[0], N = w.shape[1];
      int64_t group = groupSize > 0 ? groupSize : K;
      if (K % group != 0 || (num::quant::isNibbleFormat(bits) && K % 2 != 0)) {
        mm.emitWarning() << "group size " << group << " does not divide the input size " << K << " of '" << name
                         << "': quantized per channel";
        group = K;
      }
      num::quant::GptqOptions opt;
      opt.damp = damp;
      opt.blockSize = blockSize;
      opt.actOrder = actOrder;
      opt.fp8 = fp8;
      opt.fp8Format = format == "e5m2" ? num::Fp8Format::E5M2 : num::Fp8Format::E4M3FN;
      num::quant::QuantizedWeight q;
      std::string err;
      if (!num::quant::quantizeGptq(static_cast<const float *>(w.data), static_cast<const float *>(h.data), K, N,
                                    static_cast<int>(bits), group, symmetric, opt, q, err)) {
        mm.emitError() << "qopt-gptq: '" << name << "': " << err;
        return signalPassFailure();
      }
      replaceWithQntLinear(mm, static_cast<const float *>(w.data), q, name.empty() ? "qweight" : name, "gptq");
    }
  }
};
} // namespace
