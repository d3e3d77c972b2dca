//===- Calibrate.cpp - statistics of linear layer inputs, through the runtime ===//
//
// The statistics come from running the real compiled model with the runtime (not a separate evaluator), so
// calibration sees exactly the numbers deployment computes; when the CUDA backend exists, calibration can run on
// it unchanged. Memory: X^T X is K x K per layer and the kept rows are max-rows x K per layer.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Numerics/Gemm.h"
#include "qopt/Passes.h"
#include "passes/LinearLayers.h"
#include "passes/ModelRunner.h"

#include "LmDriver.h"
#include "qrt.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>
#include <limits>
#include <unistd.h>

namespace qopt {
#define GEN_PASS_DEF_CALIBRATEPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

// |x| histogram indexed by a float's exponent and top 6 mantissa bits: 64 equal bins per octave, so a percentile
// (the top edge of its bin) is at most 1/64 of the octave's base (<= 1.6%) above the exact value, at the cost of
// one shift per value.
struct AbsHistogram {
  static constexpr int kShift = 17;
  std::vector<uint64_t> counts = std::vector<uint64_t>(size_t(1) << (31 - kShift), 0);
  uint64_t total = 0;

  void add(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      uint32_t bits;
      std::memcpy(&bits, &x[i], sizeof bits);
      ++counts[(bits & 0x7fffffffu) >> kShift];
    }
    total += static_cast<uint64_t>(n);
  }
  // The smallest bin top edge with at least a fraction `p` of the values at or below it.
  float percentile(double p, float absMax) const {
    const uint64_t want = static_cast<uint64_t>(std::ceil(p * static_cast<double>(total)));
    uint64_t seen = 0;
    for (size_t b = 0; b < counts.size(); ++b) {
      seen += counts[b];
      if (seen >= want && seen > 0) {
        uint32_t top = static_cast<uint32_t>(b + 1) << kShift;
        float v;
        std::memcpy(&v, &top, sizeof v);
        return std::min(v, absMax);
      }
    }
    return absMax;
  }
};

// Statistics of one linear-layer input, shared by all layers that read it (q/k/v, gate/up).
struct InputStats {
  int64_t K = 0, rows = 0, nonFinite = 0;
  std::vector<double> absSum;
  std::vector<float> absMax; // per channel (SmoothQuant's migration scales)
  AsmResourceBlob xtx; // f32 [K, K], accumulated in place (sgemm with beta 1), then divided by rows
  std::vector<float> kept;
  float minV = INFINITY, maxV = -INFINITY;
  AbsHistogram hist;

  // withXtx: accumulate X^T X too (K x K floats: 822 MB for a 14336-wide input, only GPTQ reads it).
  void add(const float *data, int64_t rowCount, int64_t k, int64_t perWindow, int64_t maxRows, bool withXtx) {
    if (K == 0) {
      K = k;
      absSum.assign(K, 0.0);
      absMax.assign(K, 0.0f);
      if (withXtx) {
        xtx = HeapAsmResourceBlob::allocate(K * K * sizeof(float), alignof(float), /*dataIsMutable=*/true);
        std::memset(xtx.getMutableData().data(), 0, K * K * sizeof(float));
      }
    }
    for (int64_t r = 0; r < rowCount; ++r)
      for (int64_t c = 0; c < K; ++c) {
        const float v = data[r * K + c];
        nonFinite += !std::isfinite(v);
        absSum[c] += std::fabs(v);
        absMax[c] = std::max(absMax[c], std::fabs(v));
        minV = std::min(minV, v);
        maxV = std::max(maxV, v);
      }
    hist.add(data, rowCount * K);
    if (withXtx)
      num::sgemm(true, false, K, K, rowCount, 1.0f, data, K, data, K, 1.0f,
                 reinterpret_cast<float *>(xtx.getMutableData().data()), K);
    for (int64_t t = 0; t < perWindow && rowCount > 0; ++t) {
      if (static_cast<int64_t>(kept.size()) / K >= maxRows)
        break;
      int64_t r = (t * rowCount) / perWindow;
      kept.insert(kept.end(), data + r * K, data + (r + 1) * K);
    }
    rows += rowCount;
  }
};

ElementsAttr floatBlob(MLIRContext *ctx, StringRef key, ArrayRef<int64_t> shape, AsmResourceBlob blob) {
  auto &mgr = DenseResourceElementsHandle::getManagerInterface(ctx);
  return DenseResourceElementsAttr::get(RankedTensorType::get(shape, Float32Type::get(ctx)),
                                        mgr.insert(key, std::move(blob)));
}

ElementsAttr floatBlob(MLIRContext *ctx, StringRef key, ArrayRef<int64_t> shape, ArrayRef<float> data) {
  return floatBlob(ctx, key, shape,
                   HeapAsmResourceBlob::allocateAndCopyWithAlign(
                       ArrayRef<char>(reinterpret_cast<const char *>(data.data()), data.size() * sizeof(float)),
                       alignof(float)));
}

// The KV caches' concatenations (a rank-4 graph input joined with new entries, read by attention as k or v), in
// the function's order: with kv=true their new entries' max |x| per kv head is recorded.
SmallVector<nn::ConcatOp> kvConcats(func::FuncOp f) {
  SmallVector<nn::ConcatOp> out;
  f.walk([&](nn::ConcatOp c) {
    auto past = dyn_cast<BlockArgument>(c->getOperand(0));
    auto type = dyn_cast<RankedTensorType>(c.getType());
    if (!past || c->getNumOperands() != 2 || !type || type.getRank() != 4)
      return;
    for (OpOperand &use : c->getUses())
      if (isa<nn::AttentionOp>(use.getOwner()) && (use.getOperandNumber() == 1 || use.getOperandNumber() == 2)) {
        out.push_back(c);
        return;
      }
  });
  return out;
}

struct CalibratePass : qopt::impl::CalibratePassBase<CalibratePass> {
  using CalibratePassBase::CalibratePassBase;

  LogicalResult fail(Operation *op, const Twine &msg) {
    op->emitError() << "qopt-calibrate: " << msg;
    return failure();
  }

  void runOnOperation() override {
    if (failed(run()))
      signalPassFailure();
  }

  LogicalResult run() {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    auto funcs = module.getOps<func::FuncOp>();
    if (funcs.empty())
      return fail(module, "no function to calibrate");
    func::FuncOp func = *funcs.begin();
    if (calib.empty())
      return fail(func, "no calibration data (pass --calib FILE)");
    if (samples <= 0 || maxRows < 0)
      return fail(func, "samples must be > 0 and max-rows >= 0");
    Builder b(ctx);

    // The layers, grouped by the input they read: one set of statistics per distinct input.
    SmallVector<nn::MatmulOp> layers;
    func.walk([&](nn::MatmulOp mm) {
      if (isQuantizable(mm))
        layers.push_back(mm);
    });
    if (layers.empty())
      return fail(func, "the model has no linear layer with a constant weight (an nn.matmul whose right operand "
                        "is a 2-D f32 constant)");
    llvm::MapVector<Value, SmallVector<size_t>> inputs; // input -> indices into `layers`
    for (auto [i, mm] : llvm::enumerate(layers))
      inputs[mm.getLhs()].push_back(i);

    // The calibration model: a copy whose extra outputs are those inputs (then, with kv, the caches' new entries),
    // without the logits (the vocabulary projection is the largest activation and often the largest weight;
    // nothing here needs it).
    SmallVector<Value> measured;
    for (auto &entry : inputs)
      measured.push_back(entry.first);
    SmallVector<nn::ConcatOp> caches;
    if (kv) {
      caches = kvConcats(func);
      if (caches.empty())
        return fail(func, "no KV cache to calibrate (a [batch, kv heads, past, head dim] input concatenated with "
                          "new keys or values that attention reads)");
      for (nn::ConcatOp c : caches)
        measured.push_back(c->getOperand(1));
    }
    OwningOpRef<ModuleOp> copy = cloneWithOutputs(module, measured, "qopt.calib.");

    // Windows no longer than the model can take (its context bound), 512 tokens unless asked for more.
    int64_t L = 0;
    std::string err;
    if (!calibrationLength(module, seqLen, L, err))
      return fail(func, err);
    // The model.bin holds only the program: its weights stay in this process's constants (external weights), so
    // calibrating needs no second copy of the model. `copy` must outlive the runner for that.
    ModelRunner runner;
    if (!runner.open(*copy, L, err))
      return fail(func, err);
    std::vector<std::vector<int32_t>> windows;
    if (!calibrationWindows(module, calib, tokenizer, samples, L, seed, windows, err))
      return fail(func, err);
    qrt::LmDriver &lm = runner.lm;
    qrt_session *session = runner.session;
    auto check = [&](qrt_status st) {
      if (!st)
        return true;
      (void)fail(func, qrt_status_message(st));
      qrt_status_free(st);
      return false;
    };

    std::vector<InputStats> stats(inputs.size());
    std::vector<std::vector<float>> kvMax(caches.size()); // per kv head
    // Per kv head and channel (head dim): the lowest, then the highest value, then the mean, [3, Hkv, D] (the
    // means summed in double until the end).
    std::vector<std::vector<float>> kvRange(caches.size());
    std::vector<std::vector<double>> kvSum(caches.size());
    std::vector<int64_t> kvCount(caches.size(), 0);
    std::vector<int64_t> kvNonFinite(caches.size(), 0);
    const bool tty = progress && isatty(2);
    const int64_t perWindow = maxRows > 0 ? (maxRows + windows.size() - 1) / windows.size() : 0;
    for (size_t w = 0; w < windows.size(); ++w) {
      if (tty)
        llvm::errs() << "\rqopt: calibrating " << (w + 1) << "/" << windows.size() << " windows";
      lm.resetCache();
      if (!lm.forward(windows[w], 0, nullptr, err))
        return fail(func, err);
      for (size_t g = 0; g < stats.size(); ++g) {
        qrt_tensor x;
        std::string name = "qopt.calib." + std::to_string(g);
        if (!check(qrt_session_get_output(session, name.c_str(), &x)))
          return failure();
        const int64_t K = x.shape[x.rank - 1];
        stats[g].add(static_cast<const float *>(x.data), qrt::numel(x) / std::max<int64_t>(K, 1), K, perWindow,
                     maxRows, xtx);
      }
      for (size_t i = 0; i < caches.size(); ++i) {
        qrt_tensor x;
        std::string name = "qopt.calib." + std::to_string(inputs.size() + i);
        if (!check(qrt_session_get_output(session, name.c_str(), &x)))
          return failure();
        const int64_t H = x.shape[1], D = x.shape[3], inner = x.shape[2] * D;
        kvMax[i].resize(static_cast<size_t>(H), 0.0f);
        if (kvRange[i].empty()) {
          kvRange[i].assign(static_cast<size_t>(H * D), std::numeric_limits<float>::infinity());
          kvRange[i].resize(static_cast<size_t>(2 * H * D), -std::numeric_limits<float>::infinity());
          kvSum[i].assign(static_cast<size_t>(H * D), 0.0);
        }
        kvCount[i] += x.shape[0] * x.shape[2];
        const float *data = static_cast<const float *>(x.data);
        for (int64_t bh = 0; bh < x.shape[0] * H; ++bh) {
          float *lo = kvRange[i].data() + (bh % H) * D, *hi = lo + H * D;
          double *sum = kvSum[i].data() + (bh % H) * D;
          for (int64_t j = 0; j < inner; ++j) {
            const float v = data[bh * inner + j];
            kvNonFinite[i] += !std::isfinite(v);
            kvMax[i][bh % H] = std::max(kvMax[i][bh % H], std::fabs(v));
            lo[j % D] = std::min(lo[j % D], v), hi[j % D] = std::max(hi[j % D], v);
            sum[j % D] += v;
          }
        }
      }
    }
    if (tty)
      llvm::errs() << "\n";
    // The runtime's arena and the lowered copy are not needed any more: free them before the attributes grow.
    runner.close();
    copy = nullptr;

    for (auto [g, entry] : llvm::enumerate(inputs))
      if (stats[g].nonFinite)
        return fail(layers[entry.second.front()],
                    "the input of '" + layerName(layers[entry.second.front()]) + "' has " +
                        std::to_string(stats[g].nonFinite) +
                        " non-finite values (NaN or Inf) on the calibration data: the float model overflows");
    for (auto [i, c] : llvm::enumerate(caches)) {
      if (kvNonFinite[i])
        return fail(c, "a KV cache's new entries have " + std::to_string(kvNonFinite[i]) +
                           " non-finite values (NaN or Inf) on the calibration data: the float model overflows");
      c->setAttr("qopt.calib_kv", DenseElementsAttr::get(
                                      RankedTensorType::get({static_cast<int64_t>(kvMax[i].size())}, b.getF32Type()),
                                      ArrayRef<float>(kvMax[i])));
      const auto cacheType = cast<RankedTensorType>(c.getType());
      const int64_t H = cacheType.getDimSize(1), D = cacheType.getDimSize(3);
      if (static_cast<int64_t>(kvRange[i].size()) == 2 * H * D && kvCount[i] > 0) { // each channel's extremes, mean
        for (double sum : kvSum[i])
          kvRange[i].push_back(static_cast<float>(sum / static_cast<double>(kvCount[i])));
        auto rangeType = RankedTensorType::get({3, H, D}, b.getF32Type());
        c->setAttr("qopt.calib_kv_range", DenseElementsAttr::get(rangeType, ArrayRef<float>(kvRange[i])));
      }
    }
    for (auto [g, entry] : llvm::enumerate(inputs)) {
      InputStats &st = stats[g];
      const double n = std::max<int64_t>(st.rows, 1);
      std::vector<float> meanAbs(st.K);
      for (int64_t k = 0; k < st.K; ++k)
        meanAbs[k] = static_cast<float>(st.absSum[k] / n);
      if (xtx) {
        auto *sums = reinterpret_cast<float *>(st.xtx.getMutableData().data());
        for (int64_t j = 0; j < st.K * st.K; ++j)
          sums[j] = static_cast<float>(sums[j] / n);
      }
      const float absMax = std::max(std::fabs(st.minV), std::fabs(st.maxV));
      std::string key = layerName(layers[entry.second.front()]);
      SmallVector<NamedAttribute> attrs{
          b.getNamedAttr("tokens", b.getI64IntegerAttr(st.rows)),
          b.getNamedAttr("min", b.getF32FloatAttr(st.minV)),
          b.getNamedAttr("max", b.getF32FloatAttr(st.maxV)),
          b.getNamedAttr("abs_p99", b.getF32FloatAttr(st.hist.percentile(0.99, absMax))),
          b.getNamedAttr("abs_p999", b.getF32FloatAttr(st.hist.percentile(0.999, absMax))),
          b.getNamedAttr("abs_p9999", b.getF32FloatAttr(st.hist.percentile(0.9999, absMax))),
          b.getNamedAttr("mean_abs", DenseElementsAttr::get(RankedTensorType::get({st.K}, b.getF32Type()),
                                                            ArrayRef<float>(meanAbs))),
          b.getNamedAttr("max_abs", DenseElementsAttr::get(RankedTensorType::get({st.K}, b.getF32Type()),
                                                           ArrayRef<float>(st.absMax))),
          b.getNamedAttr("samples", floatBlob(ctx, key + ".samples",
                                              {static_cast<int64_t>(st.kept.size()) / st.K, st.K}, st.kept))};
      if (xtx)
        attrs.push_back(b.getNamedAttr("xtx", floatBlob(ctx, key + ".xtx", {st.K, st.K}, std::move(st.xtx))));
      st = InputStats(); // the blobs hold copies now
      DictionaryAttr dict = b.getDictionaryAttr(attrs);
      for (size_t i : entry.second)
        layers[i]->setAttr("qopt.calib", dict);
    }
    return success();
  }
};

} // namespace
