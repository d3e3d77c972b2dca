//===- AwqScale.cpp - activation-aware weight scaling (AWQ) ----------------===//
//
// For each group of linear layers that read one input x (q/k/v after the attention norm, gate/up after the MLP
// norm, down after up), AWQ searches per-input-channel scales s = mean|x|^alpha (alpha on a grid over [0, 1),
// normalized so that sqrt(max s * min s) = 1) that minimize the group's output error
//     sum_layers || X W - X diag(1/s) Q(diag(s) W) ||^2
// on the calibrated input rows X, where Q is the round-to-nearest quantizer the rtn pass will apply. The chosen
// s is multiplied into the layers' weights and its inverse folded into the op that produces x: the RMSNorm's
// weight (x = gamma * norm(h)), or the output columns of the previous linear layer when x = act(g) * (h W_up).
// A group whose input has other users (besides ops reading only its shape), or whose producer is neither, is
// left alone (reported as a remark).
// Then, per layer, the clip search picks for each output channel the clipping ratio of its weight range that
// minimizes that channel's output error after quantization (AWQ's auto-clip).
//
// The searches themselves are lib/Numerics/Awq.cpp (shared with qopt-assign-precision, which measures int4
// candidates as this pass will make them). Requires qopt-calibrate's `qopt.calib` on the layers; leaves float
// weights, quantized by qopt-quantize-rtn.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Numerics/QuantFormat.h"
#include "qopt/Passes.h"
#include "passes/LinearLayers.h"
#include "passes/ScaleFold.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/Regex.h"


namespace qopt {
#define GEN_PASS_DEF_AWQSCALEPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

struct Layer {
  nn::MatmulOp mm;
  std::vector<float> w; // [K, N]
  int64_t N = 0;
};

struct AwqScalePass : qopt::impl::AwqScalePassBase<AwqScalePass> {
  using AwqScalePassBase::AwqScalePassBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    // Group the linear layers by their input value, in program order.
    llvm::Regex excludeRe(exclude);
    llvm::MapVector<Value, SmallVector<nn::MatmulOp>> groups;
    int64_t otherPrecision = 0;
    func.walk([&](nn::MatmulOp mm) {
      std::string node = isa<NameLoc>(mm.getLoc()) ? cast<NameLoc>(mm.getLoc()).getName().str() : "";
      bool excluded = !exclude.empty() && (excludeRe.match(layerName(mm)) || excludeRe.match(node));
      // Under mixed precision only the groups given int4 are AWQ's (int8 and float ones keep their weights).
      auto precision = mm->getAttrOfType<DictionaryAttr>("qopt.precision");
      auto choice = precision ? precision.getAs<StringAttr>("choice") : StringAttr();
      if (choice && choice.getValue() != "int4")
        ++otherPrecision;
      else if (isQuantizable(mm) && mm->hasAttr("qopt.calib") && !excluded)
        groups[mm.getLhs()].push_back(mm);
    });
    if (groups.empty() && otherPrecision) // mixed precision gave every layer another format
      return;
    if (groups.empty()) {
      func.emitError() << "qopt-awq-scale: no calibrated linear layer (run qopt-calibrate first)";
      return signalPassFailure();
    }
    for (auto &[x, mms] : groups) {
      for (nn::MatmulOp mm : mms) // AWQ's weights: the quantizer's report names the method after it
        mm->setAttr("qopt.awq", UnitAttr::get(&getContext()));
      if (failed(scaleGroup(x, mms)))
        return signalPassFailure();
    }
    if (clip)
      for (auto &[x, mms] : groups)
        for (nn::MatmulOp mm : mms)
          if (failed(clipLayer(mm)))
            return signalPassFailure();
  }

  // The layer's group size: mixed precision's choice (qopt-assign-precision), else the pass's.
  int64_t groupFor(nn::MatmulOp mm, int64_t K) const {
    if (auto precision = mm->getAttrOfType<DictionaryAttr>("qopt.precision"))
      if (auto g = precision.getAs<IntegerAttr>("group"); g && g.getInt() > 0 && K % g.getInt() == 0)
        return g.getInt();
    return groupSize > 0 && K % groupSize == 0 ? groupSize : K;
  }

  LogicalResult scaleGroup(Value x, ArrayRef<nn::MatmulOp> group) {
    SmallVector<nn::MatmulOp> mms(group.begin(), group.end());
    std::vector<float> X, meanAbs;
    int64_t S = 0;
    if (!calibSamples(mms.front(), X, S, meanAbs))
      return mms.front().emitError() << "qopt-awq-scale: the layer's qopt.calib has no samples";
    const int64_t K = static_cast<int64_t>(meanAbs.size());
    // Where can 1/s go? Into the op that produces x (passes/ScaleFold.h).
    ScaleSink sink;
    std::string why;
    if (!sink.find(x, mms, why)) {
      mms.front().emitRemark() << "AWQ: " << why << "; not scaled";
      return success();
    }
    std::vector<Layer> layers;
    for (nn::MatmulOp mm : mms) {
      Layer l;
      l.mm = mm;
      SmallVector<int64_t> shape;
      if (!readFloats(mm.getRhs(), l.w, shape))
        return mm.emitError() << "qopt-awq-scale: unreadable weight";
      std::string err;
      if (!num::quant::checkFinite(l.w.data(), shape[0], shape[1], err))
        return mm.emitError() << "qopt-awq-scale: '" << layerName(mm) << "': " << err;
      l.N = shape[1];
      layers.push_back(std::move(l));
    }
    // Grid search of alpha (lib/Numerics/Awq.cpp).
    std::vector<num::quant::AwqLayerView> views;
    for (Layer &l : layers)
      views.push_back({l.w.data(), l.N, groupFor(l.mm, K)});
    std::vector<float> bestS;
    std::string err;
    if (!num::quant::awqSearchScales(X.data(), S, K, meanAbs.data(), views, static_cast<int>(bits), symmetric,
                                     static_cast<int>(grid), bestS, err))
      return mms.front().emitError() << "qopt-awq-scale: " << err;
    // Apply: W <- diag(s) W, and 1/s into the producer.
    for (Layer &l : layers) {
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < l.N; ++n)
          l.w[k * l.N + n] *= bestS[k];
      setFloats(l.mm.getRhs().getDefiningOp<nn::ConstantOp>(), l.mm, l.w, ".awq");
    }
    sink.divideInput(bestS, ".awq");
    // The layers' inputs changed by 1/s: keep their samples consistent for the clip search.
    for (Layer &l : layers) {
      auto calib = l.mm->getAttrOfType<DictionaryAttr>("qopt.calib");
      SmallVector<NamedAttribute> attrs(calib.getValue());
      attrs.push_back(NamedAttribute(StringAttr::get(&getContext(), "awq_scale"),
                                     DenseElementsAttr::get(RankedTensorType::get({K}, Float32Type::get(&getContext())),
                                                            ArrayRef<float>(bestS))));
      l.mm->setAttr("qopt.calib", DictionaryAttr::get(&getContext(), attrs));
    }
    return success();
  }

  // Per output channel, clip each group's weights to the ratio in {1, 0.95, ..., 0.5} of their largest magnitude
  // that minimizes that channel's output error after quantization.
  LogicalResult clipLayer(nn::MatmulOp mm) {
    std::vector<float> X, meanAbs, w;
    int64_t S = 0;
    if (!calibSamples(mm, X, S, meanAbs))
      return success();
    SmallVector<int64_t> shape;
    if (!readFloats(mm.getRhs(), w, shape))
      return success();
    const int64_t K = shape[0], N = shape[1], group = groupFor(mm, K);
    auto calib = mm->getAttrOfType<DictionaryAttr>("qopt.calib");
    if (auto s = dyn_cast_or_null<DenseElementsAttr>(calib.get("awq_scale"))) {
      std::vector<float> sv(s.getValues<float>().begin(), s.getValues<float>().end());
      for (int64_t r = 0; r < S; ++r) // the scaled layer sees x / s
        for (int64_t k = 0; k < K; ++k)
          X[r * K + k] /= sv[k];
    }
    std::string err;
    if (!num::quant::awqClip(X.data(), S, K, w.data(), N, static_cast<int>(bits), group, symmetric, err))
      return mm.emitError() << "qopt-awq-scale: " << err;
    setFloats(mm.getRhs().getDefiningOp<nn::ConstantOp>(), mm, w, ".clip");
    return success();
  }
};

} // namespace
