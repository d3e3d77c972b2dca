//===- KvState.cpp - a decoder's KV cache as session state ------------------===//
//
// Matches past inputs concatenated with new keys/values along the sequence axis, read by attention and returned
// as present outputs, and turns each into an nn.state written in place by nn.kv_append; one state length,
// advanced at the end of the run, says how many positions the caches hold. See Passes.td for the contract.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Numerics/Fp8.h"
#include "qopt/Passes.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/BitVector.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringMap.h"

#include <algorithm>
#include <cmath>

namespace qopt {
#define GEN_PASS_DEF_KVSTATEPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

struct Cache {
  BlockArgument past;
  nn::ConcatOp concat;
  int64_t axis = 0;
  SmallVector<unsigned> results; // the function results returning the concat (present outputs)
  SmallVector<nn::ShapeOp> shapes; // reads of the past's shape (how many positions the cache holds)
};

// The dims [start, end) that `shape` reads of a rank-`rank` input (ONNX Shape: negative counts from the end, out
// of range clamps).
std::pair<int64_t, int64_t> shapeRange(nn::ShapeOp shape, int64_t rank) {
  auto norm = [&](std::optional<uint64_t> v, int64_t dflt) {
    if (!v)
      return dflt;
    int64_t d = static_cast<int64_t>(*v);
    return std::clamp<int64_t>(d < 0 ? d + rank : d, 0, rank);
  };
  return {norm(shape.getStart(), 0), norm(shape.getEnd(), rank)};
}

StringRef dimName(func::FuncOp func, unsigned arg, int64_t d) {
  auto names = func.getArgAttrOfType<ArrayAttr>(arg, "nn.dims");
  if (!names || d >= static_cast<int64_t>(names.size()))
    return {};
  return cast<StringAttr>(names[d]).getValue();
}

// An input other than the caches with a dim of this name, and that dim's index: where a run's size of that dim can
// be read (ONNX names a symbolic dim once: inputs sharing the name share the size). Null if none.
std::pair<BlockArgument, int64_t> dimSource(func::FuncOp func, StringRef name, ArrayRef<BlockArgument> caches) {
  if (name.empty())
    return {};
  for (BlockArgument arg : func.getArguments()) {
    if (llvm::is_contained(caches, arg))
      continue;
    auto names = func.getArgAttrOfType<ArrayAttr>(arg.getArgNumber(), "nn.dims");
    for (auto [d, a] : llvm::enumerate(names ? names.getValue() : ArrayRef<Attribute>()))
      if (cast<StringAttr>(a).getValue() == name)
        return {arg, static_cast<int64_t>(d)};
  }
  return {};
}

struct KvStatePass : qopt::impl::KvStatePassBase<KvStatePass> {
  using KvStatePassBase::KvStatePassBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    auto ret = cast<func::ReturnOp>(func.getBody().back().getTerminator());

    // Candidates: inputs whose readers include a concat that takes them first. An input read by concat(past, x)
    // but not fitting the rest of the pattern is a cache we cannot move: say why and change nothing.
    SmallVector<Cache> caches;
    std::string reason;
    // Every input a concat takes first: a cache (or one that cannot move), never the source of a run's dim size.
    SmallVector<BlockArgument> pastInputs;
    for (BlockArgument arg : func.getArguments())
      if (llvm::any_of(arg.getUsers(), [&](Operation *u) {
            auto c = dyn_cast<nn::ConcatOp>(u);
            return c && c.getNumOperands() == 2 && c.getOperand(0) == arg;
          }))
        pastInputs.push_back(arg);
    for (BlockArgument arg : func.getArguments()) {
      auto concat = llvm::find_if(arg.getUsers(), [&](Operation *u) {
        auto c = dyn_cast<nn::ConcatOp>(u);
        return c && c.getNumOperands() == 2 && c.getOperand(0) == arg;
      });
      if (concat == arg.getUsers().end())
        continue;
      Cache c;
      c.past = arg;
      c.concat = cast<nn::ConcatOp>(*concat);
      auto type = cast<RankedTensorType>(arg.getType());
      c.axis = static_cast<int64_t>(c.concat.getAxis()); // I64Attr reads as uint64_t
      if (c.axis < 0)
        c.axis += type.getRank();
      std::string name = "input " + std::to_string(arg.getArgNumber());
      if (auto n = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "nn.name"))
        name = "'" + n.str() + "'";
      // Besides the concatenation, a past may be read for its shape: the cached length (HF's positions and mask
      // come from it), or static dims.
      for (Operation *user : arg.getUsers()) {
        if (user == c.concat.getOperation())
          continue;
        auto shape = dyn_cast<nn::ShapeOp>(user);
        if (!shape) {
          reason = name + " is read by more than the concatenation with the new entries and shape reads";
          break;
        }
        c.shapes.push_back(shape);
      }
      if (!reason.empty())
        break;
      if (c.axis < 1 || !type.isDynamicDim(c.axis) || dimName(func, arg.getArgNumber(), c.axis).empty()) {
        reason = name + " is not concatenated along a named dynamic dim after the batch";
        break;
      }
      bool fits = true;
      for (int64_t d = 1; d < type.getRank(); ++d)
        fits &= d == c.axis || !type.isDynamicDim(d);
      if (!fits) {
        reason = name + " has dynamic dims other than the batch and the sequence";
        break;
      }
      // A dynamic dim other than the past's (the batch) is read from another input with that dim.
      for (nn::ShapeOp shape : c.shapes) {
        auto [start, end] = shapeRange(shape, type.getRank());
        for (int64_t d = start; d < end; ++d)
          fits &= d == c.axis || !type.isDynamicDim(d) ||
                  dimSource(func, dimName(func, arg.getArgNumber(), d), pastInputs).first;
      }
      if (!fits) {
        reason = name + "'s shape is read along its dynamic batch dim, which no other input has";
        break;
      }
      for (OpOperand &use : c.concat->getUses()) {
        Operation *user = use.getOwner();
        if (user == ret) {
          c.results.push_back(use.getOperandNumber());
          continue;
        }
        auto attn = dyn_cast<nn::AttentionOp>(user);
        if (!attn || (use.getOperandNumber() != 1 && use.getOperandNumber() != 2)) {
          reason = name + "'s concatenation is read by " + user->getName().getStringRef().str() +
                   " (only attention and the graph's outputs can read a cache held as state)";
          break;
        }
        if (!isa<NoneType>(attn.getMask().getType()) || attn.getCacheLength()) {
          reason = name + "'s attention has a mask (its size follows the cached length)";
          break;
        }
      }
      if (!reason.empty())
        break;
      caches.push_back(c);
    }
    if (caches.empty() && reason.empty())
      return;
    // One cached length for all: the caches share their past dim, which no other input has.
    if (reason.empty()) {
      StringRef pastDim = dimName(func, caches[0].past.getArgNumber(), caches[0].axis);
      llvm::SmallPtrSet<Value, 16> isCache;
      for (const Cache &c : caches) {
        isCache.insert(c.past);
        if (dimName(func, c.past.getArgNumber(), c.axis) != pastDim)
          reason = "the caches' past dims have different names";
      }
      for (BlockArgument arg : func.getArguments()) {
        if (isCache.contains(arg))
          continue;
        auto names = func.getArgAttrOfType<ArrayAttr>(arg.getArgNumber(), "nn.dims");
        for (Attribute a : names ? names.getValue() : ArrayRef<Attribute>())
          if (cast<StringAttr>(a).getValue() == pastDim)
            reason = "input " + std::to_string(arg.getArgNumber()) + " also has the past dim '" + pastDim.str() +
                     "' (an attention mask over the cached positions)";
      }
      // Every attention that reads a cache reads caches for both k and v.
      for (const Cache &c : caches)
        for (Operation *user : c.concat->getUsers())
          if (auto attn = dyn_cast<nn::AttentionOp>(user)) {
            auto fromCache = [&](Value v) {
              auto cc = v.getDefiningOp<nn::ConcatOp>();
              return cc && isCache.contains(cc.getOperand(0));
            };
            if (!fromCache(attn.getK()) || !fromCache(attn.getV()))
              reason = "an attention reads a cache for only one of its keys and values";
          }
    }
    if (!reason.empty()) {
      func.emitRemark() << "the KV cache stays in the graph's inputs and outputs: " << reason;
      return;
    }

    const bool fp8 = dtype == "fp8" || dtype == "fp8_e5m2";
    if (dtype != "f32" && dtype != "f16" && dtype != "bf16" && !fp8) {
      func.emitError() << "qopt-kv-state: dtype must be f32, f16, bf16, fp8 or fp8_e5m2, got '" << dtype << "'";
      return signalPassFailure();
    }
    llvm::StringMap<int64_t> bounds;
    std::string error;
    if (!parseDimBounds(maxDims, bounds, error)) {
      func.emitError() << error;
      return signalPassFailure();
    }
    auto bound = [&](const Cache &c, int64_t d, int64_t &out) {
      auto type = cast<RankedTensorType>(c.past.getType());
      if (!type.isDynamicDim(d)) {
        out = type.getDimSize(d);
        return true;
      }
      StringRef name = dimName(func, c.past.getArgNumber(), d);
      auto it = bounds.find(name);
      if (name.empty() || it == bounds.end()) {
        func.emitError() << "dynamic dim " << d << " ('" << name << "') of a KV cache input has no bound: pass "
                         << "--max-dim " << (name.empty() ? "NAME" : name) << "=N";
        return false;
      }
      out = it->second;
      return true;
    };

    OpBuilder b(&getContext());
    b.setInsertionPointToStart(&func.getBody().front());
    auto lenType = RankedTensorType::get({1}, b.getI64Type());
    Value length = nn::StateOp::create(b, func.getLoc(), lenType, b.getStringAttr("kv.length"));
    Operation *lastState = length.getDefiningOp();
    llvm::BitVector erasedArgs(func.getNumArguments()), erasedResults(func.getNumResults());
    for (Cache &c : caches) {
      auto type = cast<RankedTensorType>(c.past.getType());
      SmallVector<int64_t> shape(type.getShape());
      if (!bound(c, 0, shape[0]) || !bound(c, c.axis, shape[c.axis]))
        return signalPassFailure();
      auto name = func.getArgAttrOfType<StringAttr>(c.past.getArgNumber(), "nn.name");
      Type element = type.getElementType();
      if (dtype != "f32" && !element.isF32()) {
        func.emitError() << "qopt-kv-state: dtype=" << dtype << " stores float32 caches; this cache is " << type;
        return signalPassFailure();
      }
      // FP8: per kv head, scale = calibrated max |x| / the format's largest value (a head never seen nonzero: 1).
      // A key cache (center-keys) stores x - offset, offset[h, d] channel d's calibrated mean, under a scale from
      // the centered range: attention's scores then differ by q . offset, the same for every key of a query, which
      // softmax cancels, while the codes spend their precision on what varies from key to key. (The mean, not the
      // middle of the range: outliers that widen a channel's range would move its middle away from most keys.)
      SmallVector<double> scales, offsets;
      if (fp8) {
        auto amax = c.concat->getAttrOfType<DenseElementsAttr>("qopt.calib_kv");
        if (type.getRank() != 4 || c.axis != 2) {
          func.emitError() << "qopt-kv-state: an FP8 cache is [batch, kv heads, past, head dim] concatenated along "
                           << "dim 2; this one is " << type << " along dim " << c.axis;
          return signalPassFailure();
        }
        if (!amax || amax.getNumElements() != shape[1]) {
          func.emitError() << "qopt-kv-state: dtype=" << dtype << " needs each cache's calibrated range per kv head "
                           << "(qopt-calibrate kv=true: pass --calib FILE)";
          return signalPassFailure();
        }
        const double top = num::fp8Max(dtype == "fp8" ? num::Fp8Format::E4M3FN : num::Fp8Format::E5M2);
        for (float m : amax.getValues<float>())
          scales.push_back(m > 0.0f && std::isfinite(m) ? static_cast<double>(m) / top : 1.0);
        bool keys = centerKeys;
        for (OpOperand &use : c.concat->getUses())
          if (use.getOwner() != ret)
            keys = keys && isa<nn::AttentionOp>(use.getOwner()) && use.getOperandNumber() == 1;
        auto range = c.concat->getAttrOfType<DenseElementsAttr>("qopt.calib_kv_range");
        const int64_t H = shape[1], D = shape[3];
        if (keys && range && range.getType().getShape() == ArrayRef<int64_t>{3, H, D}) {
          const SmallVector<float> r(range.getValues<float>());
          offsets.assign(static_cast<size_t>(H * D), 0.0);
          for (int64_t h = 0; h < H; ++h) {
            double half = 0.0;
            for (int64_t d = 0; d < D; ++d) {
              const double lo = r[h * D + d], hi = r[(H + h) * D + d], mean = r[(2 * H + h) * D + d];
              if (!(std::isfinite(lo) && std::isfinite(hi) && std::isfinite(mean) && lo <= hi))
                continue; // a channel never seen: no offset
              offsets[h * D + d] = std::clamp(mean, lo, hi);
              half = std::max(half, std::max(hi - offsets[h * D + d], offsets[h * D + d] - lo));
            }
            scales[h] = half > 0.0 ? half / top : scales[h];
          }
        }
      }
      if (dtype == "f16")
        element = b.getF16Type();
      else if (dtype == "bf16")
        element = b.getBF16Type();
      else if (dtype == "fp8")
        element = b.getType<Float8E4M3FNType>();
      else if (fp8)
        element = b.getType<Float8E5M2Type>();
      b.setInsertionPointAfter(lastState);
      const std::string stateName = name ? name.str() : "kv." + std::to_string(c.past.getArgNumber());
      auto state = nn::StateOp::create(b, c.past.getLoc(), RankedTensorType::get(shape, element),
                                       b.getStringAttr(stateName));
      lastState = state;
      // An FP8 cache's scales (and key offsets) as float32 constants that its append and its readers take as
      // operands: data of the model, not of the kernels that read them.
      auto floats = [&](ArrayRef<double> values, ArrayRef<int64_t> dims, StringRef suffix) -> Value {
        SmallVector<float> f(values.begin(), values.end());
        auto t = RankedTensorType::get(dims, b.getF32Type());
        auto op = nn::ConstantOp::create(b, c.past.getLoc(), t, DenseElementsAttr::get(t, ArrayRef<float>(f)),
                                         b.getStringAttr(stateName + "." + suffix.str()));
        lastState = op;
        return op;
      };
      Value scaleTensor = fp8 ? floats(scales, {shape[1]}, "scales") : Value();
      Value offsetTensor = !offsets.empty() ? floats(offsets, {shape[1], shape[3]}, "offsets") : Value();
      b.setInsertionPoint(c.concat);
      Value update = c.concat.getOperand(1);
      auto append = nn::KvAppendOp::create(b, c.concat.getLoc(), state.getType(), state, update, length, scaleTensor,
                                           offsetTensor, b.getI64IntegerAttr(c.axis));
      SmallVector<std::pair<nn::AttentionOp, unsigned>> reads;
      for (OpOperand &use : c.concat->getUses())
        if (auto attn = dyn_cast<nn::AttentionOp>(use.getOwner()))
          reads.push_back({attn, use.getOperandNumber()});
      SmallVector<nn::AttentionOp> readers;
      for (auto [attn, operand] : reads) {
        readers.push_back(attn);
        if (fp8)
          (operand == 1 ? attn.getKScalesMutable() : attn.getVScalesMutable()).assign(scaleTensor);
      }
      c.concat.getResult().replaceUsesWithIf(append.getResult(), [&](OpOperand &use) { return use.getOwner() != ret; });
      // A read of the past's shape: its static dims, and the cached length for the past dim.
      for (nn::ShapeOp shape : c.shapes) {
        auto [start, end] = shapeRange(shape, type.getRank());
        b.setInsertionPoint(shape);
        SmallVector<Value> pieces;
        SmallVector<int64_t> run; // static dims not yet emitted
        auto flush = [&]() {
          if (run.empty())
            return;
          auto t = RankedTensorType::get({static_cast<int64_t>(run.size())}, b.getI64Type());
          pieces.push_back(nn::ConstantOp::create(b, shape.getLoc(), t, DenseElementsAttr::get(t, ArrayRef(run)),
                                                  StringAttr()));
          run.clear();
        };
        for (int64_t d = start; d < end; ++d) {
          if (d != c.axis && !type.isDynamicDim(d)) {
            run.push_back(type.getDimSize(d));
            continue;
          }
          flush();
          if (d == c.axis) {
            pieces.push_back(length);
            continue;
          }
          auto [src, at] = dimSource(func, dimName(func, c.past.getArgNumber(), d), pastInputs);
          pieces.push_back(nn::ShapeOp::create(b, shape.getLoc(), RankedTensorType::get({1}, b.getI64Type()), src,
                                               b.getI64IntegerAttr(at), b.getI64IntegerAttr(at + 1)));
        }
        flush();
        auto resultType = cast<RankedTensorType>(shape.getType());
        Value dims = pieces.size() == 1 ? pieces[0]
                     : pieces.empty()
                         ? Value(nn::ConstantOp::create(b, shape.getLoc(), resultType,
                                                        DenseElementsAttr::get(resultType, ArrayRef<int64_t>{}),
                                                        StringAttr()))
                         : Value(nn::ConcatOp::create(b, shape.getLoc(), resultType, pieces, b.getI64IntegerAttr(0)));
        shape.getResult().replaceAllUsesWith(dims);
        shape.erase();
      }
      for (nn::AttentionOp attn : readers)
        if (!attn.getCacheLength())
          attn.getCacheLengthMutable().assign(length);
      for (unsigned r : c.results)
        erasedResults.set(r);
      erasedArgs.set(c.past.getArgNumber());
    }
    // The length advances once every reader has seen it: last, before the return, by the new entries' size along
    // the sequence axis (read from their shape, taken where they are made, so that they need not stay alive).
    Cache &first = *llvm::min_element(caches, [](const Cache &a, const Cache &c) {
      return a.concat->isBeforeInBlock(c.concat);
    });
    Value update = first.concat.getOperand(1);
    b.setInsertionPoint(first.concat);
    auto rank = cast<RankedTensorType>(update.getType()).getRank();
    Value sizes = nn::ShapeOp::create(b, first.concat.getLoc(), RankedTensorType::get({rank}, b.getI64Type()), update,
                                      IntegerAttr(), IntegerAttr());
    b.setInsertionPoint(ret);
    nn::KvAdvanceOp::create(b, func.getLoc(), lenType, length, sizes, b.getI64IntegerAttr(first.axis));
    ret->eraseOperands(erasedResults);
    for (Cache &c : caches)
      c.concat.erase();
    if (failed(func.eraseResults(erasedResults)) || failed(func.eraseArguments(erasedArgs))) {
      func.emitError() << "cannot remove the KV cache inputs and outputs";
      return signalPassFailure();
    }
  }
};

} // namespace
