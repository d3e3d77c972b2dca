//===- Gptq.cpp - GPTQ weight quantization of calibrated linear layers -----===//
//
// Each layer's Hessian H = X^T X / rows comes from its `qopt.calib` statistics when they hold one (`xtx`), else the
// pass measures it: it runs the float model through the runtime on the calibration windows, accumulating X^T X
// for as many distinct layer inputs as fit `hessian-memory` at a time (K x K floats each: 822 MB for a 14336-wide
// input, about 32 GB over all of Llama-3-8B's inputs), quantizes those layers, frees their Hessians and goes on
// with the next inputs. Every run over the data is of the float model as it was before this pass, so the result
// does not depend on the budget, only the number of runs does.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Dialect/Qnt/QntDialect.h"
#include "qopt/Numerics/Gemm.h"
#include "qopt/Numerics/QuantFormat.h"
#include "qopt/Passes.h"
#include "passes/LinearLayers.h"
#include "passes/ModelRunner.h"
#include "passes/QntBuild.h"

#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Regex.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <unistd.h>

namespace qopt {
#define GEN_PASS_DEF_GPTQPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

struct Layer {
  nn::MatmulOp mm;
  nn::ConstantOp weight;
  std::string name;
};

struct GptqPass : qopt::impl::GptqPassBase<GptqPass> {
  using GptqPassBase::GptqPassBase;

  void runOnOperation() override {
    if (failed(run()))
      signalPassFailure();
  }

  LogicalResult run() {
    ModuleOp module = getOperation();
    const bool fp8 = format == "e4m3" || format == "e5m2";
    if ((format != "int" && !fp8) || (fp8 && bits != 8))
      return module.emitError() << "qopt-gptq: format must be int, e4m3 or e5m2 (FP8 with bits 8), got '" << format
                                << "' with bits " << static_cast<int64_t>(bits);
    if (!(hessianMemory > 0))
      return module.emitError() << "qopt-gptq: hessian-memory must be a positive number of MB";
    llvm::Regex excludeRe(exclude);
    std::string reErr;
    if (!exclude.empty() && !excludeRe.isValid(reErr))
      return module.emitError() << "qopt-gptq: invalid exclude regex '" << exclude << "': " << reErr;
    SmallVector<Layer> layers;
    module.walk([&](nn::MatmulOp mm) {
      nn::ConstantOp wc = linearWeight(mm);
      if (!wc || !isQuantizable(mm))
        return;
      std::string name = layerName(mm);
      std::string node = isa<NameLoc>(mm.getLoc()) ? cast<NameLoc>(mm.getLoc()).getName().str() : "";
      if (!exclude.empty() && (excludeRe.match(name) || excludeRe.match(node)))
        return;
      layers.push_back({mm, wc, name});
    });

    // Layers whose statistics hold X^T X are quantized with it; the others' Hessians are measured, by input.
    llvm::MapVector<Value, SmallVector<size_t>> measured;
    for (auto [i, l] : llvm::enumerate(layers)) {
      auto calibAttr = l.mm->getAttrOfType<DictionaryAttr>("qopt.calib");
      auto xtx = calibAttr ? dyn_cast_or_null<ElementsAttr>(calibAttr.get("xtx")) : ElementsAttr();
      if (!xtx) {
        measured[l.mm.getLhs()].push_back(i);
        continue;
      }
      num::Tensor h;
      std::vector<uint8_t> storage;
      const int64_t K = cast<RankedTensorType>(l.mm.getRhs().getType()).getDimSize(0);
      if (!nn::readConstant(xtx, h, storage) || h.rank() != 2 || h.shape[0] != K || h.shape[1] != K)
        return l.mm.emitError() << "qopt-gptq: layer '" << l.name << "' has an X^T X that is not f32 [" << K
                                << ", " << K << "]";
      if (failed(quantize(l, static_cast<const float *>(h.data))))
        return failure();
    }
    if (measured.empty())
      return success();
    return measureAndQuantize(module, layers, measured);
  }

  // Measures the Hessians of `measured`'s inputs (in their order, as many at a time as fit the budget) on the
  // float model and quantizes their layers.
  LogicalResult measureAndQuantize(ModuleOp module, MutableArrayRef<Layer> layers,
                                   const llvm::MapVector<Value, SmallVector<size_t>> &measured) {
    Layer first = layers[measured.front().second.front()];
    if (calib.empty())
      return first.mm.emitError() << "qopt-gptq: layer '" << first.name << "' has no X^T X: give the pass "
                                  << "calibration data (calib) to measure it, or run qopt-calibrate with xtx first";
    auto funcs = module.getOps<func::FuncOp>();
    func::FuncOp func = *funcs.begin();
    for (auto &[x, idx] : measured)
      if (layers[idx.front()].mm->getParentOfType<func::FuncOp>() != func)
        return layers[idx.front()].mm.emitError()
               << "qopt-gptq: layer '" << layers[idx.front()].name
               << "' has no X^T X and is not in the model's first function, which the pass runs to measure it";
    int64_t L = 0;
    std::vector<std::vector<int32_t>> windows;
    std::string err;
    if (!calibrationLength(module, seqLen, L, err) ||
        !calibrationWindows(module, calib, tokenizer, samples, L, seed, windows, err))
      return func.emitError() << "qopt-gptq: " << err;
    // The float model every pass measures: quantizing a layer below must not change the Hessians after it.
    IRMapping map;
    OwningOpRef<ModuleOp> original = cast<ModuleOp>(module->clone(map));
    auto entries = measured.getArrayRef();
    SmallVector<Value> inputs; // in `original`
    SmallVector<int64_t> widths;
    for (auto &[x, idx] : entries) {
      inputs.push_back(map.lookup(x));
      widths.push_back(cast<RankedTensorType>(layers[idx.front()].mm.getRhs().getType()).getDimSize(0));
    }
    const double budget = hessianMemory * 1048576.0; // bytes
    const bool tty = progress && isatty(2);
    int64_t round = 0; // runs so far, for the progress line and the remark
    for (size_t at = 0; at < entries.size();) {
      // The next inputs whose K x K floats fit the budget (at least one).
      size_t end = at;
      for (double bytes = 0; end < entries.size(); ++end) {
        const double need = static_cast<double>(widths[end]) * static_cast<double>(widths[end]) * sizeof(float);
        if (end > at && bytes + need > budget)
          break;
        bytes += need;
      }
      ArrayRef<Value> values = ArrayRef<Value>(inputs).slice(at, end - at);
      ++round;
      std::vector<std::vector<float>> sums(values.size());
      std::vector<int64_t> rows(values.size(), 0);
      for (size_t j = 0; j < values.size(); ++j)
        sums[j].assign(static_cast<size_t>(widths[at + j] * widths[at + j]), 0.0f);
      {
        OwningOpRef<ModuleOp> copy = cloneWithOutputs(*original, values, "qopt.gptq.");
        ModelRunner runner;
        if (!runner.open(*copy, L, err))
          return func.emitError() << "qopt-gptq: " << err;
        for (size_t w = 0; w < windows.size(); ++w) {
          if (tty)
            llvm::errs() << "\rqopt: GPTQ Hessians, run " << round << ": window " << (w + 1) << "/"
                         << windows.size();
          runner.lm.resetCache();
          if (!runner.lm.forward(windows[w], 0, nullptr, err))
            return func.emitError() << "qopt-gptq: " << err;
          for (size_t j = 0; j < values.size(); ++j) {
            qrt_tensor x;
            const std::string name = "qopt.gptq." + std::to_string(j);
            if (qrt_status st = qrt_session_get_output(runner.session, name.c_str(), &x)) {
              InFlightDiagnostic d = func.emitError() << "qopt-gptq: " << qrt_status_message(st);
              qrt_status_free(st);
              return d;
            }
            const int64_t K = widths[at + j], n = qrt::numel(x) / K;
            const auto *data = static_cast<const float *>(x.data);
            for (int64_t i = 0; i < n * K; ++i)
              if (!std::isfinite(data[i])) {
                Layer l = layers[entries[at + j].second.front()];
                return l.mm.emitError() << "qopt-gptq: the input of '" << l.name << "' has non-finite values "
                                        << "(NaN or Inf) on the calibration data: the float model overflows";
              }
            num::sgemm(true, false, K, K, n, 1.0f, data, K, data, K, 1.0f, sums[j].data(), K);
            rows[j] += n;
          }
        }
        if (tty)
          llvm::errs() << "\n";
      }
      for (size_t j = 0; j < values.size(); ++j) {
        const double n = static_cast<double>(std::max<int64_t>(rows[j], 1));
        for (float &v : sums[j])
          v = static_cast<float>(v / n);
        for (size_t i : entries[at + j].second)
          if (failed(quantize(layers[i], sums[j].data(), /*release=*/false)))
            return failure();
        std::vector<float>().swap(sums[j]);
      }
      at = end;
    }
    if (round > 1) {
      double total = 0;
      for (int64_t K : widths)
        total += static_cast<double>(K) * static_cast<double>(K) * sizeof(float);
      std::string msg;
      llvm::raw_string_ostream os(msg);
      os << "qopt-gptq: the Hessians of " << entries.size() << " layer inputs ("
         << llvm::format("%.1f", total / 1048576.0) << " MB) took " << round << " runs over the calibration data to fit "
         << llvm::format("%g", static_cast<double>(hessianMemory)) << " MB at a time";
      mlir::emitRemark(func.getLoc()) << msg;
    }
    // The float weights of the quantized layers, which the measured copy shared, can go now.
    original = nullptr;
    llvm::SetVector<Operation *> weights; // once each: layers may share a constant
    for (auto &[x, idx] : entries)
      for (size_t i : idx)
        weights.insert(layers[i].weight);
    for (Operation *c : weights)
      releaseDeadConstant(cast<nn::ConstantOp>(c));
    return success();
  }

  // GPTQ of one layer with its Hessian `h` ([K, K]); the nn.matmul becomes a qnt.linear. Without `release` the
  // float weight's constant stays (the float model measured later shares its bytes) for the caller to release.
  LogicalResult quantize(Layer l, const float *h, bool release = true) {
    num::Tensor w;
    std::vector<uint8_t> ws;
    if (!nn::readConstant(l.weight.getValue(), w, ws))
      return l.mm.emitError() << "qopt-gptq: cannot read the weight of '" << l.name << "'";
    const int64_t K = w.shape[0], N = w.shape[1];
    int64_t group = groupSize > 0 ? groupSize : K, layerBits = bits;
    bool sym = symmetric;
    // Mixed precision (qopt-assign-precision) chose this layer's format: int4 with its group, or int8 per channel.
    if (auto precision = l.mm->getAttrOfType<DictionaryAttr>("qopt.precision")) {
      auto choice = precision.getAs<StringAttr>("choice");
      auto chosenGroup = precision.getAs<IntegerAttr>("group");
      if (format != "int" || !choice || (choice.getValue() != "int4" && choice.getValue() != "int8"))
        return l.mm.emitError() << "qopt-gptq: '" << l.name << "' has a mixed-precision choice GPTQ cannot "
                                << "quantize (int4 or int8 with integer codes)";
      layerBits = choice.getValue() == "int4" ? 4 : 8;
      sym = layerBits == 8 || symmetric;
      group = layerBits == 8 || !chosenGroup || chosenGroup.getInt() <= 0 ? K : chosenGroup.getInt();
    }
    if (K % group != 0 || (num::quant::isNibbleFormat(layerBits) && K % 2 != 0)) {
      l.mm.emitWarning() << "group size " << group << " does not divide the input size " << K << " of '" << l.name
                         << "': quantized per channel";
      group = K;
    }
    num::quant::GptqOptions opt;
    opt.damp = damp;
    opt.blockSize = blockSize;
    opt.actOrder = actOrder;
    opt.fp8 = format != "int";
    opt.fp8Format = format == "e5m2" ? num::Fp8Format::E5M2 : num::Fp8Format::E4M3FN;
    num::quant::QuantizedWeight q;
    std::string err;
    if (!num::quant::quantizeGptq(static_cast<const float *>(w.data), h, K, N, static_cast<int>(layerBits), group,
                                  sym, opt, q, err))
      return l.mm.emitError() << "qopt-gptq: '" << l.name << "': " << err;
    replaceWithQntLinear(l.mm, static_cast<const float *>(w.data), q, l.name.empty() ? "qweight" : l.name,
                         l.mm->hasAttr("qopt.awq") ? "awq+gptq" : "gptq", release);
    return success();
  }
};
} // namespace
