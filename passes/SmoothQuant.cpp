//===- SmoothQuant.cpp - migrate activation outliers into the weights -------===//
//
// SmoothQuant (Xiao et al., 2023) for W8A8: per-token int8 activations lose the small channels of a row whose
// range a few outlier channels set. For each group of linear layers that read one input x (q/k/v, gate/up, down,
// o), the per-input-channel scales
//     s_k = max|X_k|^alpha / max|W_k|^(1 - alpha)
// (max|X_k| from qopt-calibrate's `max_abs`, max|W_k| over row k of every layer of the group) divide x and
// multiply the weights' rows: x W = (x / s)(diag(s) W), the same function in float, with x's channel ranges
// flattened and the weights' rows a little less even. 1/s folds into the op that produces x exactly as AWQ's
// scales do (passes/ScaleFold.h): the norm's weight, the previous linear layer's output columns, or a
// multiplication after a parameter-free activation. alpha (the migration strength, 0.5 by default) trades the
// activations' range against the weights'.
//
// The layers' calibration statistics are rewritten for the scaled input (max_abs, mean_abs, min and max, the
// samples' columns and X^T X), so that what reads them later (quantization's output error, AWQ, GPTQ) sees x / s.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/ConstantStorage.h"
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Passes.h"
#include "passes/LinearLayers.h"
#include "passes/ScaleFold.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/Regex.h"

#include <cmath>

namespace qopt {
#define GEN_PASS_DEF_SMOOTHQUANTPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

std::vector<float> floatsOf(DictionaryAttr d, StringRef key) {
  auto e = d ? dyn_cast_or_null<DenseElementsAttr>(d.get(key)) : DenseElementsAttr();
  return e ? std::vector<float>(e.getValues<float>().begin(), e.getValues<float>().end()) : std::vector<float>();
}

// A float32 statistic [.., K] (samples [S, K], or X^T X [K, K] when `square`) with its columns divided by s (and
// its rows too when `square`), as a new resource `key`; null if it cannot be read.
Attribute divided(MLIRContext *ctx, Attribute stat, ArrayRef<float> s, bool square, const std::string &key) {
  auto e = dyn_cast<ElementsAttr>(stat);
  num::Tensor t;
  std::vector<uint8_t> storage;
  const int64_t K = static_cast<int64_t>(s.size());
  if (!e || !nn::readConstant(e, t, storage) || t.dtype != num::DType::F32 || t.rank() != 2 || t.shape[1] != K ||
      (square && t.shape[0] != K))
    return nullptr;
  std::vector<float> v(static_cast<const float *>(t.data), static_cast<const float *>(t.data) + t.numel());
  for (int64_t r = 0; r < t.shape[0]; ++r)
    for (int64_t k = 0; k < K; ++k)
      v[r * K + k] /= square ? s[r] * s[k] : s[k];
  auto &mgr = DenseResourceElementsHandle::getManagerInterface(ctx);
  AsmResourceBlob blob = nn::copyConstantBlob(
      ArrayRef<char>(reinterpret_cast<const char *>(v.data()), v.size() * sizeof(float)), alignof(float));
  return DenseResourceElementsAttr::get(cast<ShapedType>(e.getType()), mgr.insert(key, std::move(blob)));
}

struct SmoothQuantPass : qopt::impl::SmoothQuantPassBase<SmoothQuantPass> {
  using SmoothQuantPassBase::SmoothQuantPassBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (!(alpha >= 0.0 && alpha <= 1.0)) {
      func.emitError() << "qopt-smoothquant: alpha must be in [0, 1], got " << alpha;
      return signalPassFailure();
    }
    llvm::Regex excludeRe(exclude);
    std::string reErr;
    if (!exclude.empty() && !excludeRe.isValid(reErr)) {
      func.emitError() << "qopt-smoothquant: invalid exclude regex '" << exclude << "': " << reErr;
      return signalPassFailure();
    }
    llvm::MapVector<Value, SmallVector<nn::MatmulOp>> groups;
    func.walk([&](nn::MatmulOp mm) {
      std::string node = isa<NameLoc>(mm.getLoc()) ? cast<NameLoc>(mm.getLoc()).getName().str() : "";
      bool excluded = !exclude.empty() && (excludeRe.match(layerName(mm)) || excludeRe.match(node));
      if (isQuantizable(mm) && mm->hasAttr("qopt.calib") && !excluded)
        groups[mm.getLhs()].push_back(mm);
    });
    if (groups.empty()) {
      func.emitError() << "qopt-smoothquant: no calibrated linear layer (run qopt-calibrate first)";
      return signalPassFailure();
    }
    for (auto &[x, mms] : groups)
      if (failed(smoothGroup(x, mms)))
        return signalPassFailure();
  }

  LogicalResult smoothGroup(Value x, SmallVector<nn::MatmulOp> mms) {
    auto calib = mms.front()->getAttrOfType<DictionaryAttr>("qopt.calib");
    std::vector<float> xMax = floatsOf(calib, "max_abs");
    if (xMax.empty())
      return mms.front().emitError() << "qopt-smoothquant: the layer's qopt.calib has no max_abs";
    const int64_t K = static_cast<int64_t>(xMax.size());
    ScaleSink sink;
    std::string why;
    if (!sink.find(x, mms, why)) {
      mms.front().emitRemark() << "SmoothQuant: " << why << "; not smoothed";
      return success();
    }
    // max |W| per input channel over the group, then the scales.
    std::vector<std::vector<float>> weights(mms.size());
    std::vector<int64_t> widths(mms.size());
    std::vector<float> wMax(K, 0.0f);
    for (size_t i = 0; i < mms.size(); ++i) {
      SmallVector<int64_t> shape;
      if (!readFloats(mms[i].getRhs(), weights[i], shape) || shape.size() != 2 || shape[0] != K)
        return mms[i].emitError() << "qopt-smoothquant: unreadable weight";
      widths[i] = shape[1];
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < shape[1]; ++n)
          wMax[k] = std::max(wMax[k], std::fabs(weights[i][k * shape[1] + n]));
    }
    std::vector<float> s(K, 1.0f);
    for (int64_t k = 0; k < K; ++k) {
      if (!(xMax[k] > 0.0f) || !(wMax[k] > 0.0f)) // a dead channel: nothing to balance
        continue;
      const double v = std::pow(static_cast<double>(xMax[k]), alpha) / std::pow(static_cast<double>(wMax[k]), 1.0 - alpha);
      s[k] = static_cast<float>(std::clamp(v, 1e-5, 1e5));
    }
    for (size_t i = 0; i < mms.size(); ++i) {
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < widths[i]; ++n)
          weights[i][k * widths[i] + n] *= s[k];
      setFloats(mms[i].getRhs().getDefiningOp<nn::ConstantOp>(), mms[i], weights[i], ".smooth");
    }
    sink.divideInput(s, ".smooth");
    // The statistics of x / s.
    std::vector<float> meanAbs = floatsOf(calib, "mean_abs");
    float top = 0.0f;
    for (int64_t k = 0; k < K; ++k) {
      xMax[k] /= s[k];
      top = std::max(top, xMax[k]);
      if (static_cast<int64_t>(meanAbs.size()) == K)
        meanAbs[k] /= s[k];
    }
    Builder b(&getContext());
    auto vec = [&](ArrayRef<float> v) {
      return DenseElementsAttr::get(RankedTensorType::get({K}, b.getF32Type()), v);
    };
    SmallVector<NamedAttribute> attrs;
    for (NamedAttribute a : calib.getValue()) {
      StringRef name = a.getName().strref();
      if (name == "samples" || name == "xtx") {
        if (Attribute d = divided(&getContext(), a.getValue(), s, name == "xtx", sink.layer + ".smooth." + name.str()))
          attrs.push_back(b.getNamedAttr(name, d));
        continue;
      }
      if (name == "max_abs")
        attrs.push_back(b.getNamedAttr(name, vec(xMax)));
      else if (name == "mean_abs" && static_cast<int64_t>(meanAbs.size()) == K)
        attrs.push_back(b.getNamedAttr(name, vec(meanAbs)));
      else if (name == "min")
        attrs.push_back(b.getNamedAttr(name, b.getF32FloatAttr(-top)));
      else if (name == "max")
        attrs.push_back(b.getNamedAttr(name, b.getF32FloatAttr(top)));
      else
        attrs.push_back(a);
    }
    attrs.push_back(b.getNamedAttr("smooth_scale", vec(s)));
    DictionaryAttr updated = b.getDictionaryAttr(attrs);
    for (nn::MatmulOp mm : mms) {
      mm->setAttr("qopt.calib", updated);
      mm->setAttr("qopt.smooth", b.getUnitAttr());
    }
    return success();
  }
};

} // namespace
