//===- AssignPrecision.cpp - per-layer formats under an average bits budget --===//
//
// Mixed precision: each group of linear layers that read one input (they become one launch: q/k/v, gate/up; or
// a single layer) gets one of int4 (group-wise with 32, 64 or `group-size` inputs per group, quantized later by
// AWQ), int8 (per output channel) or float (stored as 16 bits on a GPU target), so that the model's output
// changes least for an average number of bits per weight.
//
// Sensitivity is measured, not guessed: the float model runs through the runtime on calibration windows and its
// next-token distributions are kept; then, for each group and each quantized candidate, only that group's weights
// are replaced by the values the candidate will run with (a runtime copy per group reads that group's weights
// from buffers of the pass's, every other weight in place) and the mean KL divergence KL(p_float || p_candidate)
// over every position is recorded. int4 values are AWQ's (its scale and clip searches, lib/Numerics/Awq.cpp, on
// qopt-calibrate's rows; int4-method=rtn: round to nearest), int8 round to nearest. The choice is the exact
// solution of the multiple-choice knapsack
//     minimize sum_g KL_g(c_g)  subject to  sum_g bits(c_g) * weights_g <= avg_bits * sum_g weights_g
// by dynamic programming over the budget in 1/20000 steps (then the exact bits of the best totals decide, so the
// budget always holds), treating the groups' effects as additive. bits(c) counts the scales and zero points:
// int4 4 + 24 / group (a float16 scale and a u8 zero point per group; symmetric: 4 + 16 / group; 4 + 40 / group
// where the measured quantization left float16's range and keeps float32 scales, QuantFormat.h), int8 8 + 32 / K,
// float 16.
//
// Each layer gets `qopt.precision = {choice, group, budget, candidates = [{format, group, bits, kl}, ...]}`; float
// choices also get qopt-select-layers' float reason, so every later pass leaves them alone. qopt-awq-scale and
// qopt-quantize-rtn read the choice. Memory: the float distributions of the measured positions (positions x
// vocabulary floats), and one group's float weights (its buffers) and calibrated rows at a time.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Numerics/Gemm.h"
#include "qopt/Numerics/QuantFormat.h"
#include "qopt/Numerics/ThreadPool.h"
#include "qopt/Passes.h"
#include "passes/LinearLayers.h"
#include "passes/ModelRunner.h"
#include "passes/ScaleFold.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/Regex.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace qopt {
#define GEN_PASS_DEF_ASSIGNPRECISIONPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

struct Candidate {
  std::string format; // "int4", "int8", "f16"
  int64_t group = 0;  // int4's group size (K: per channel)
  double bits = 16;
  double kl = 0;
  bool measured = true; // kl through the model (else scaled from the group's measured one: sensitivity=scaled)
};

struct Group {
  SmallVector<nn::MatmulOp> layers;
  SmallVector<std::string> names; // their weights' names
  int64_t K = 0, weights = 0;
  std::vector<Candidate> candidates;
  size_t choice = 0;
};

// Row-wise log-softmax of `rows` rows of `n` logits, in place.
void logSoftmax(float *x, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    float *row = x + r * n;
    float mx = row[0];
    for (int64_t v = 1; v < n; ++v)
      mx = std::max(mx, row[v]);
    double sum = 0;
    for (int64_t v = 0; v < n; ++v)
      sum += std::exp(static_cast<double>(row[v] - mx));
    const float lse = mx + static_cast<float>(std::log(sum));
    for (int64_t v = 0; v < n; ++v)
      row[v] -= lse;
  }
}

struct AssignPrecisionPass : qopt::impl::AssignPrecisionPassBase<AssignPrecisionPass> {
  using AssignPrecisionPassBase::AssignPrecisionPassBase;

  LogicalResult fail(Operation *op, const Twine &msg) {
    op->emitError() << "qopt-assign-precision: " << msg;
    return failure();
  }

  void runOnOperation() override {
    if (failed(run()))
      signalPassFailure();
  }

  LogicalResult run() {
    ModuleOp module = getOperation();
    auto funcs = module.getOps<func::FuncOp>();
    if (funcs.empty())
      return fail(module, "no function");
    func::FuncOp func = *funcs.begin();
    if (!(avgBits > 0))
      return fail(func, "avg-bits must be positive (e.g. 4.5)");
    if (calib.empty())
      return fail(func, "sensitivities need calibration data (pass --calib FILE)");
    if (int4Method != "awq" && int4Method != "gptq" && int4Method != "awq-gptq" && int4Method != "rtn")
      return fail(func, "int4-method must be awq, gptq, awq-gptq or rtn, got '" + int4Method + "'");
    if (windows <= 0 || seqLen < 2)
      return fail(func, "windows must be > 0 and seq-len >= 2");
    if (sensitivity != "kl" && sensitivity != "scaled")
      return fail(func, "sensitivity must be kl or scaled, got '" + sensitivity + "'");
    llvm::Regex excludeRe(exclude);
    std::string reErr;
    if (!exclude.empty() && !excludeRe.isValid(reErr))
      return fail(func, "invalid exclude regex '" + exclude + "': " + reErr);
    llvm::MapVector<Value, Group> groups;
    func.walk([&](nn::MatmulOp mm) {
      std::string node = isa<NameLoc>(mm.getLoc()) ? cast<NameLoc>(mm.getLoc()).getName().str() : "";
      if (!isQuantizable(mm) || (!exclude.empty() && (excludeRe.match(layerName(mm)) || excludeRe.match(node))))
        return;
      Group &g = groups[mm.getLhs()];
      auto wt = cast<RankedTensorType>(mm.getRhs().getType());
      g.layers.push_back(mm);
      g.names.push_back(layerName(mm));
      g.K = wt.getDimSize(0);
      g.weights += wt.getNumElements();
    });
    if (groups.empty())
      return fail(func, "no linear layer to assign a format to");
    int64_t total = 0;
    // int4 at each group size that divides K (per channel otherwise; each effective size once), int8, float.
    for (auto &[x, g] : groups) {
      std::vector<int64_t> sizes;
      for (int64_t gs : {int64_t(32), int64_t(64), groupSize.getValue()}) {
        const int64_t eff = gs > 0 && g.K % gs == 0 ? gs : g.K;
        if (!llvm::is_contained(sizes, eff))
          sizes.push_back(eff);
      }
      for (int64_t gs : sizes)
        g.candidates.push_back({"int4", gs, 4.0 + (symmetric ? 16.0 : 24.0) / static_cast<double>(gs)});
      g.candidates.push_back({"int8", g.K, 8.0 + 32.0 / static_cast<double>(g.K)});
      g.candidates.push_back({"f16", 0, 16.0});
      total += g.weights;
    }
    double least = 0;
    for (auto &[x, g] : groups) {
      double cheapest = 16;
      for (const Candidate &c : g.candidates)
        cheapest = std::min(cheapest, c.bits);
      least += cheapest * static_cast<double>(g.weights);
    }
    least /= static_cast<double>(total);
    if (avgBits < least)
      return fail(func, "avg-bits " + std::to_string(avgBits) + " is below the smallest average these layers can "
                        "take (all int4: " + std::to_string(least) + ")");
    if (int4Method != "rtn" || sensitivity == "scaled")
      for (auto &[x, g] : groups)
        if (!g.layers.front()->hasAttr("qopt.calib"))
          return fail(g.layers.front(), missingRows(g));
    if (failed(measure(module, func, groups)))
      return failure();
    if (failed(choose(func, groups, total)))
      return failure();
    annotate(groups);
    return success();
  }

  // KL of each group's int4 and int8 candidates, through the runtime.
  LogicalResult measure(ModuleOp module, func::FuncOp func, llvm::MapVector<Value, Group> &groups) {
    std::string err;
    std::vector<std::vector<int32_t>> all;
    if (!loadTokenWindows(calib, tokenizer, logitsVocab(func), seqLen, all, err))
      return fail(func, err);
    if (all.empty())
      return fail(func, "'" + calib + "' has no window of at least 2 tokens");
    pickWindows(all, seed, windows);
    // Log-probabilities at every position of the windows, through `runner`.
    int64_t vocab = 0;
    auto run = [&](ModelRunner &runner, std::vector<float> &out) -> bool {
      out.clear();
      for (const std::vector<int32_t> &w : all) {
        qrt_tensor logits;
        runner.lm.resetCache();
        if (!runner.lm.forward(w, 0, &logits, err))
          return false;
        vocab = logits.shape[2];
        const auto *p = static_cast<const float *>(logits.data);
        const size_t at = out.size();
        out.insert(out.end(), p, p + logits.shape[1] * vocab);
        logSoftmax(out.data() + at, logits.shape[1], vocab);
      }
      return true;
    };
    std::vector<float> ref, got;
    {
      OwningOpRef<ModuleOp> copy = module.clone(); // the float model (clones share the weights' storage)
      ModelRunner runner;
      if (!runner.open(*copy, seqLen, err) || !run(runner, ref))
        return fail(func, err);
    }
    const int64_t positions = static_cast<int64_t>(ref.size()) / std::max<int64_t>(vocab, 1);
    // One group at a time, a runtime copy whose only weights of ours are that group's: they are read from
    // buffers that each candidate fills, every other weight in place. Memory: one group's float weights.
    for (auto &[x, g] : groups) {
      std::vector<std::vector<float>> buffers(g.names.size());
      std::vector<const float *> originals(g.names.size(), nullptr);
      auto redirect = [&](const std::string &name, const void *data, uint64_t bytes) -> const void * {
        auto it = llvm::find(g.names, name);
        if (it == g.names.end() || bytes % sizeof(float))
          return nullptr;
        const size_t i = static_cast<size_t>(it - g.names.begin());
        originals[i] = static_cast<const float *>(data);
        buffers[i].resize(bytes / sizeof(float));
        return buffers[i].data();
      };
      OwningOpRef<ModuleOp> copy = module.clone();
      ModelRunner runner;
      if (!runner.open(*copy, seqLen, err, redirect))
        return fail(func, err);
      for (size_t i = 0; i < g.names.size(); ++i)
        if (!originals[i])
          return fail(g.layers[i], "the runtime copy has no weight named '" + g.names[i] + "'");
      std::vector<float> hessian; // int4-method=gptq: the group's, once
      // sensitivity=scaled: only the candidate of fewest bits runs through the model; each candidate's squared
      // output error on the calibrated rows, ||X (W - W_c)||^2 over the group's layers, scales its KL.
      const bool scaled = sensitivity == "scaled";
      size_t measuredOne = g.candidates.size();
      for (size_t c = 0; scaled && c < g.candidates.size(); ++c)
        if (g.candidates[c].format != "f16" &&
            (measuredOne == g.candidates.size() || g.candidates[c].bits < g.candidates[measuredOne].bits))
          measuredOne = c;
      std::vector<float> rows, meanAbs;
      int64_t S = 0;
      if (scaled && (!calibSamples(g.layers.front(), rows, S, meanAbs) || S == 0 ||
                     static_cast<int64_t>(meanAbs.size()) != g.K))
        return fail(g.layers.front(), missingRows(g));
      std::vector<double> outputError(g.candidates.size(), 0.0);
      for (size_t c = 0; c < g.candidates.size(); ++c) {
        Candidate &cand = g.candidates[c];
        if (cand.format == "f16")
          continue; // the reference (KL 0)
        if (failed(candidateWeights(x, g, cand, originals, buffers, hessian)))
          return failure();
        if (scaled && failed(squaredOutputError(g, rows, S, originals, buffers, outputError[c])))
          return failure();
        if (scaled && c != measuredOne) {
          cand.measured = false;
          continue;
        }
        if (!run(runner, got))
          return fail(func, err);
        double kl = 0;
        for (size_t j = 0; j < ref.size(); ++j)
          kl += std::exp(static_cast<double>(ref[j])) * (static_cast<double>(ref[j]) - got[j]);
        cand.kl = std::max(0.0, kl / static_cast<double>(positions));
      }
      if (scaled) {
        const double measuredKl = g.candidates[measuredOne].kl, base = outputError[measuredOne];
        for (size_t c = 0; c < g.candidates.size(); ++c)
          if (!g.candidates[c].measured)
            g.candidates[c].kl = base > 0 ? measuredKl * outputError[c] / base : 0.0;
      }
    }
    return success();
  }

  // sum over the group's layers of ||X (W - W_c)||^2, X its `S` calibrated rows, W the float weights and W_c the
  // candidate's (`buffers`): the change of the layers' outputs, whose square a KL divergence follows to second order.
  LogicalResult squaredOutputError(const Group &g, const std::vector<float> &X, int64_t S,
                                   ArrayRef<const float *> originals, const std::vector<std::vector<float>> &buffers,
                                   double &out) {
    out = 0;
    for (size_t i = 0; i < g.layers.size(); ++i) {
      nn::MatmulOp mm = g.layers[i];
      const int64_t K = g.K, N = cast<RankedTensorType>(mm.getRhs().getType()).getDimSize(1);
      std::vector<float> diff(static_cast<size_t>(K * N)), y(static_cast<size_t>(S * N));
      for (int64_t j = 0; j < K * N; ++j)
        diff[j] = originals[i][j] - buffers[i][j];
      if (!num::sgemm(false, false, S, N, K, 1.0f, X.data(), K, diff.data(), N, 0.0f, y.data(), N,
                      &num::defaultThreadPool()))
        return fail(mm, "cannot compute the candidate's output error (out of memory?)");
      for (float v : y)
        out += static_cast<double>(v) * v;
    }
    return success();
  }

  std::string missingRows(const Group &g) const {
    if (int4Method == "rtn") // only sensitivity=scaled needs them
      return "sensitivity=scaled weighs candidates by their output error on qopt-calibrate's input rows on '" +
             g.names.front() + "' (run qopt-calibrate first, or sensitivity=kl)";
    return "int4-method=" + int4Method + " measures candidates as " +
           (int4Method == "awq" ? "AWQ" : int4Method == "gptq" ? "GPTQ" : "AWQ and GPTQ") +
           " will quantize them, which needs qopt-calibrate's input rows on '" + g.names.front() +
           "' (run qopt-calibrate first, or int4-method=rtn)";
  }

  // The weights group `g` runs with under quantized candidate `cand`, into `buffers`, as the quantizer will make
  // them. int4-method=awq (qopt-awq-scale, then qopt-quantize-rtn): int4 W_eff = diag(1/s) Q(clip(diag(s) W)),
  // AWQ's scales s for the group (1 where x's producer cannot take 1/s) and each layer's clipping searched on the
  // calibrated rows of x / s, then rounded to nearest (in float, x / s times diag(s) W is x W: the scale's fold into
  // the producer is what makes this the model's function); int8 rounded to nearest. int4-method=gptq (qopt-gptq):
  // int4 and int8 by GPTQ with the Hessian of the calibrated rows, X^T X / rows (`hessian`, computed once per group;
  // qopt-gptq's own Hessians see every calibration token, these the kept rows). int4-method=awq-gptq (qopt-awq-scale,
  // then qopt-gptq): int4 as awq, its scaled and clipped weights rounded by GPTQ with the Hessian of x / s; int8 as
  // gptq. int4-method=rtn: round to nearest.
  LogicalResult candidateWeights(Value x, Group &g, Candidate &cand, ArrayRef<const float *> originals,
                                 std::vector<std::vector<float>> &buffers, std::vector<float> &hessian) {
    const int bits = cand.format == "int4" ? 4 : 8;
    const bool awq = bits == 4 && (int4Method == "awq" || int4Method == "awq-gptq"),
               gptq = int4Method == "gptq" || int4Method == "awq-gptq";
    std::vector<float> X, meanAbs, s(static_cast<size_t>(g.K), 1.0f);
    int64_t S = 0;
    std::string err;
    if ((awq || (gptq && hessian.empty())) &&
        (!calibSamples(g.layers.front(), X, S, meanAbs) || static_cast<int64_t>(meanAbs.size()) != g.K))
      return fail(g.layers.front(), missingRows(g));
    // X^T X / S of the calibrated rows (as they are now) into `h`: GPTQ's Hessian.
    auto gram = [&](std::vector<float> &h) {
      h.resize(static_cast<size_t>(g.K * g.K));
      if (num::sgemm(true, false, g.K, g.K, S, 1.0f / static_cast<float>(S), X.data(), g.K, X.data(), g.K, 0.0f,
                     h.data(), g.K, &num::defaultThreadPool()))
        return success();
      return fail(g.layers.front(), "cannot compute the Hessian of the calibrated rows (out of memory?)");
    };
    if (gptq && hessian.empty() && failed(gram(hessian)))
      return failure();
    if (awq) {
      ScaleSink sink;
      std::string why;
      if (sink.find(x, g.layers, why)) {
        std::vector<num::quant::AwqLayerView> views;
        for (size_t i = 0; i < g.layers.size(); ++i)
          views.push_back({originals[i], cast<RankedTensorType>(g.layers[i].getRhs().getType()).getDimSize(1),
                           cand.group});
        if (!num::quant::awqSearchScales(X.data(), S, g.K, meanAbs.data(), views, bits, symmetric,
                                         static_cast<int>(awqGrid), s, err))
          return fail(g.layers.front(), err);
      }
      for (int64_t r = 0; r < S; ++r) // the scaled layers read x / s
        for (int64_t k = 0; k < g.K; ++k)
          X[r * g.K + k] /= s[k];
    }
    std::vector<float> scaledHessian; // awq-gptq's int4: the Hessian of the rows the scaled layers read
    if (awq && gptq && failed(gram(scaledHessian)))
      return failure();
    for (size_t i = 0; i < g.layers.size(); ++i) {
      const int64_t K = g.K, N = cast<RankedTensorType>(g.layers[i].getRhs().getType()).getDimSize(1);
      const float *w = originals[i];
      // AWQ's scaled and clipped weights (int4 under awq and awq-gptq), then rounded to nearest or by GPTQ.
      std::vector<float> scaled;
      if (awq) {
        scaled.assign(w, w + K * N);
        for (int64_t k = 0; k < K; ++k)
          for (int64_t n = 0; n < N; ++n)
            scaled[k * N + n] *= s[k];
        if (!num::quant::awqClip(X.data(), S, K, scaled.data(), N, bits, cand.group, symmetric, err))
          return fail(g.layers[i], err);
        w = scaled.data();
      }
      num::quant::QuantizedWeight q;
      if (gptq) {
        num::quant::GptqOptions opt;
        opt.actOrder = actOrder;
        if (!num::quant::quantizeGptq(w, awq ? scaledHessian.data() : hessian.data(), K, N, bits, cand.group,
                                      bits == 8 || symmetric, opt, q, err))
          return fail(g.layers[i], err);
      } else if (!num::quant::quantizeRtn(w, K, N, bits, cand.group, bits == 8 || symmetric, q, err)) {
        return fail(g.layers[i], err);
      }
      if (bits == 4 && !q.halfScales) // scales outside float16's range: the layer keeps float32 ones
        cand.bits = 4.0 + (symmetric ? 32.0 : 40.0) / static_cast<double>(cand.group);
      float *out = buffers[i].data();
      num::quant::dequantize(q, out);
      if (awq)
        for (int64_t k = 0; k < K; ++k)
          for (int64_t n = 0; n < N; ++n)
            out[k * N + n] /= s[k];
    }
    return success();
  }

  // The multiple-choice knapsack, by dynamic programming over the budget. Costs are whole steps (rounded up), so
  // the table spans the budget plus one step per group: the rounding cannot exclude an assignment that fits
  // exactly; the exact bits of each reachable total then decide, least KL first.
  LogicalResult choose(func::FuncOp func, llvm::MapVector<Value, Group> &groups, int64_t total) {
    constexpr int64_t kSteps = 20000;
    const double budget = avgBits * static_cast<double>(total), unit = budget / kSteps; // bits per step
    std::vector<Group *> list;
    for (auto &[x, g] : groups)
      list.push_back(&g);
    const size_t G = list.size();
    const int64_t C = kSteps + static_cast<int64_t>(G);
    auto cost = [&](const Group &g, const Candidate &c) {
      return static_cast<int64_t>(std::ceil(c.bits * static_cast<double>(g.weights) / unit - 1e-9));
    };
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> best(C + 1, inf), next(C + 1);
    std::vector<std::vector<uint8_t>> pick(G, std::vector<uint8_t>(C + 1, 0));
    best[0] = 0;
    for (size_t i = 0; i < G; ++i) {
      std::fill(next.begin(), next.end(), inf);
      for (size_t c = 0; c < list[i]->candidates.size(); ++c) {
        const int64_t w = cost(*list[i], list[i]->candidates[c]);
        for (int64_t b = 0; b + w <= C; ++b)
          if (best[b] < inf && best[b] + list[i]->candidates[c].kl < next[b + w]) {
            next[b + w] = best[b] + list[i]->candidates[c].kl;
            pick[i][b + w] = static_cast<uint8_t>(c);
          }
      }
      best.swap(next);
    }
    std::vector<int64_t> order;
    for (int64_t b = 0; b <= C; ++b)
      if (best[b] < inf)
        order.push_back(b);
    std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return best[x] < best[y]; });
    for (int64_t end : order) {
      std::vector<size_t> choice(G);
      double bits = 0;
      for (size_t i = G, at = static_cast<size_t>(end); i-- > 0;) {
        choice[i] = pick[i][at];
        bits += list[i]->candidates[choice[i]].bits * static_cast<double>(list[i]->weights);
        at -= static_cast<size_t>(cost(*list[i], list[i]->candidates[choice[i]]));
      }
      if (bits <= budget * (1 + 1e-12)) {
        for (size_t i = 0; i < G; ++i)
          list[i]->choice = choice[i];
        return success();
      }
    }
    return fail(func, "no assignment fits avg-bits " + std::to_string(avgBits));
  }

  void annotate(llvm::MapVector<Value, Group> &groups) {
    Builder b(&getContext());
    for (auto &[x, g] : groups) {
      SmallVector<Attribute> cands;
      for (const Candidate &c : g.candidates)
        cands.push_back(b.getDictionaryAttr({b.getNamedAttr("format", b.getStringAttr(c.format)),
                                             b.getNamedAttr("group", b.getI64IntegerAttr(c.group)),
                                             b.getNamedAttr("bits", b.getF32FloatAttr(static_cast<float>(c.bits))),
                                             b.getNamedAttr("kl", b.getF32FloatAttr(static_cast<float>(c.kl))),
                                             b.getNamedAttr("measured", b.getBoolAttr(c.measured))}));
      const Candidate &chosen = g.candidates[g.choice];
      auto dict = b.getDictionaryAttr({b.getNamedAttr("choice", b.getStringAttr(chosen.format)),
                                       b.getNamedAttr("group", b.getI64IntegerAttr(chosen.group)),
                                       b.getNamedAttr("budget", b.getF32FloatAttr(static_cast<float>(avgBits))),
                                       b.getNamedAttr("candidates", b.getArrayAttr(cands))});
      for (nn::MatmulOp mm : g.layers) {
        mm->setAttr("qopt.precision", dict);
        if (chosen.format == "f16")
          mm->setAttr(kFloatReasonAttr, b.getStringAttr("kept in float by mixed precision (the quantized "
                                                        "candidates' measured KL is in the report)"));
      }
    }
  }
};

} // namespace
