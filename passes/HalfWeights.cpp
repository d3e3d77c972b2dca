//===- HalfWeights.cpp - float layers stored as float16 for a GPU target ----===//
//
// A GPU reads a float layer's weights at memory speed: float16 halves the bytes. For a CUDA target (unless
// `--float-weights=f32`), every float32 linear weight becomes float16 in the layout the 16-bit linear kernels read,
// and every float32 embedding table float16 with a cast of the gathered rows:
//   kern.launch "matmul"(x, W[K, N])              -> kern.launch "matmul_q"(x, W16[N, K]) {bits = 16}
//   kern.launch "linear_split"(x, W[K, N])        -> kern.launch "matmul_q_split"(x, W16[N, K]) {bits = 16}
//   kern.launch "gather"(T[V, C], ids)            -> kern.launch "cast"(kern.launch "gather"(T16, ids)) {to = f32}
// Activations stay float32, so the model's results change only by the weights' rounding; the CPU runs the same
// model.bin (matmul_q converts 16-bit weights exactly). A linear_split with a bias keeps float32 (matmul_q_split
// has no bias operand yet). Weights shared by several entries are converted once (the writer stores one copy);
// float32 originals no longer used are released.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Dialect/NN/ConstantStorage.h"
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Numerics/ThreadPool.h"
#include "qopt/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/xxhash.h"

#include <algorithm>

namespace qopt {
#define GEN_PASS_DEF_HALFWEIGHTSPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

kern::WeightOp weightOf(Value v) { return v ? v.getDefiningOp<kern::WeightOp>() : kern::WeightOp(); }

// A static float32 weight of this rank, or null.
kern::WeightOp floatWeight(Value v, int64_t rank) {
  auto w = weightOf(v);
  auto t = w ? dyn_cast<RankedTensorType>(w.getType()) : RankedTensorType();
  return t && t.getRank() == rank && t.hasStaticShape() && t.getElementType().isF32() ? w : kern::WeightOp();
}

struct HalfWeightsPass : qopt::impl::HalfWeightsPassBase<HalfWeightsPass> {
  using HalfWeightsPassBase::HalfWeightsPassBase;
  // (float32 value, transposed) -> its float16 version, shared by every entry that reads it.
  DenseMap<std::pair<Attribute, int>, ElementsAttr> converted;
  DenseSet<Attribute> replaced;
  DenseMap<uint64_t, SmallVector<ElementsAttr, 1>> byContent; // float16 weights made so far, by content hash
  DenseMap<Attribute, StringAttr> names;                        // the name each float16 weight is stored under

  static ArrayRef<char> bytesOf(ElementsAttr attr) {
    AsmResourceBlob *blob = cast<DenseResourceElementsAttr>(attr).getRawHandle().getBlob();
    return blob ? blob->getData() : ArrayRef<char>();
  }

  Type halfElement() {
    return dtype == "bf16" ? Type(BFloat16Type::get(&getContext())) : Type(Float16Type::get(&getContext()));
  }

  ElementsAttr toHalf(kern::WeightOp w, bool transpose) {
    auto key = std::make_pair(Attribute(w.getValue()), transpose ? 1 : 0);
    if (auto it = converted.find(key); it != converted.end())
      return it->second;
    num::Tensor t;
    std::vector<uint8_t> storage;
    if (!nn::readConstant(w.getValue(), t, storage))
      return {};
    auto type = cast<RankedTensorType>(w.getType());
    SmallVector<int64_t> shape(type.getShape());
    const float *src = static_cast<const float *>(t.data);
    const int64_t count = t.numel();
    // Converted straight into the blob the attribute will own (weights are most of a model's memory: no copies;
    // file-backed, ConstantStorage.h), split over the thread pool.
    AsmResourceBlob blob = nn::allocateConstantBlob(static_cast<size_t>(count) * sizeof(uint16_t), 8);
    uint16_t *half = reinterpret_cast<uint16_t *>(blob.getMutableData().data());
    const bool bf16 = dtype == "bf16";
    auto round = [bf16](float v) { return bf16 ? num::floatToBf16(v) : num::floatToHalf(v); };
    if (transpose) { // [K, N] -> [N, K], in tiles so that both sides stay in cache
      const int64_t K = shape[0], N = shape[1];
      constexpr int64_t kTile = 64;
      num::defaultThreadPool().parallelFor((N + kTile - 1) / kTile, [&](int64_t begin, int64_t end) {
        for (int64_t n0 = begin * kTile; n0 < std::min(N, end * kTile); n0 += kTile)
          for (int64_t k0 = 0; k0 < K; k0 += kTile)
            for (int64_t n = n0; n < std::min(N, n0 + kTile); ++n)
              for (int64_t k = k0; k < std::min(K, k0 + kTile); ++k)
                half[n * K + k] = round(src[k * N + n]);
      });
      std::swap(shape[0], shape[1]);
    } else {
      num::defaultThreadPool().parallelFor(count, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
          half[i] = round(src[i]);
      });
    }
    // Equal float16 contents are one weight: a tied output head ([C, V], transposed) and embedding table ([V, C])
    // become the same bytes, which model.bin then stores once.
    auto halfType = RankedTensorType::get(shape, halfElement());
    ArrayRef<char> bytes = blob.getData();
    const uint64_t hash = llvm::xxh3_64bits(
        ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()));
    for (ElementsAttr other : byContent[hash])
      if (other.getType() == halfType && bytesOf(other) == bytes) {
        converted[key] = other;
        replaced.insert(w.getValue());
        return other;
      }
    std::string name = (w.getName() ? w.getName()->str() : std::string("weight")) + (bf16 ? ".bf16" : ".f16");
    auto &mgr = DenseResourceElementsHandle::getManagerInterface(&getContext());
    ElementsAttr attr = DenseResourceElementsAttr::get(halfType, mgr.insert(name, std::move(blob)));
    converted[key] = attr;
    names[attr] = w.getNameAttr();
    byContent[hash].push_back(attr);
    replaced.insert(w.getValue());
    return attr;
  }

  Value halfWeight(OpBuilder &b, kern::WeightOp w, bool transpose) {
    ElementsAttr attr = toHalf(w, transpose);
    if (!attr)
      return {};
    return kern::WeightOp::create(b, w.getLoc(), attr, names.lookup(attr)); // the first reader's name
  }

  void runOnOperation() override {
    if (dtype != "f16" && dtype != "bf16") {
      getOperation().emitError() << "qopt-half-weights: dtype must be f16 or bf16, got '" << dtype << "'";
      return signalPassFailure();
    }
    // The readers of one weight (the same layer in the prefill and the decode entry) one after the other, in the
    // order the weights are first read.
    SmallVector<kern::LaunchOp> launches;
    llvm::MapVector<Attribute, SmallVector<kern::LaunchOp, 2>> byWeight;
    getOperation().walk([&](kern::LaunchOp l) {
      StringRef k = l.getKernel();
      if (k != "matmul" && k != "linear_split" && k != "gather")
        return;
      auto w = weightOf(l.getOperand(k == "gather" ? 0 : 1));
      if (w)
        byWeight[w.getValue()].push_back(l);
      else
        launches.push_back(l);
    });
    for (auto &[attr, readers] : byWeight)
      launches.append(readers.begin(), readers.end());
    // Readers of each weight over every entry: a float32 weight's bytes go as soon as its last reader reads the
    // float16 copy, so the model is never held in both precisions at once (an 8B model's fused float32 q/k/v and
    // gate/up matrices alone are 18 GB).
    DenseMap<Attribute, int64_t> readers;
    getOperation().walk([&](kern::WeightOp w) {
      readers[w.getValue()] += static_cast<int64_t>(std::distance(w->use_begin(), w->use_end()));
    });
    auto dropReader = [&](kern::WeightOp w) {
      Attribute v = w.getValue();
      if (w->use_empty())
        w.erase();
      if (--readers[v] == 0 && replaced.contains(v))
        if (auto res = dyn_cast<DenseResourceElementsAttr>(v))
          res.getRawHandle().getResource()->setBlob(AsmResourceBlob());
    };
    for (kern::LaunchOp l : launches) {
      OpBuilder b(l);
      StringRef k = l.getKernel();
      if (k == "gather") {
        auto table = floatWeight(l.getOperand(0), 2);
        auto axis = l.getAttrs().getAs<IntegerAttr>("axis");
        auto rt = dyn_cast<RankedTensorType>(l.getResult(0).getType());
        if (!table || (axis && axis.getInt() != 0) || !rt || l.getNumOperands() != 2)
          continue;
        Value half = halfWeight(b, table, /*transpose=*/false);
        if (!half)
          continue;
        auto halfRows = RankedTensorType::get(rt.getShape(), halfElement());
        auto gather = kern::LaunchOp::create(b, l.getLoc(), TypeRange{halfRows}, l.getKernelAttr(),
                                             ValueRange{half, l.getOperand(1)}, l.getAttrs(), StringAttr(),
                                             DenseI64ArrayAttr(), ArrayAttr());
        NamedAttribute to = b.getNamedAttr("to", b.getI64IntegerAttr(static_cast<int64_t>(num::DType::F32)));
        auto rows = kern::LaunchOp::create(b, l.getLoc(), TypeRange{rt}, b.getStringAttr("cast"),
                                           ValueRange{gather.getResult(0)}, b.getDictionaryAttr({to}), StringAttr(),
                                           DenseI64ArrayAttr(), ArrayAttr());
        l.getResult(0).replaceAllUsesWith(rows.getResult(0));
        l.erase();
        dropReader(table);
        continue;
      }
      // matmul / linear_split: x [.., K] times a float32 weight [K, N].
      auto w = floatWeight(l.getOperand(1), 2);
      auto xt = dyn_cast<RankedTensorType>(l.getOperand(0).getType());
      if (!w || !xt || xt.getRank() < 1 || !xt.getElementType().isF32() ||
          xt.getShape().back() != cast<RankedTensorType>(w.getType()).getDimSize(0))
        continue;
      if (k == "linear_split" && l.getNumOperands() > 2 && !isa<NoneType>(l.getOperand(2).getType()))
        continue; // a bias: matmul_q_split has none yet
      if (k == "matmul" && l.getNumOperands() != 2)
        continue;
      Value half = halfWeight(b, w, /*transpose=*/true);
      if (!half)
        continue;
      SmallVector<NamedAttribute> attrs(l.getAttrs().getValue());
      attrs.push_back(b.getNamedAttr("bits", b.getI64IntegerAttr(16)));
      attrs.push_back(b.getNamedAttr("group_size", b.getI64IntegerAttr(xt.getShape().back())));
      auto q = kern::LaunchOp::create(b, l.getLoc(), l.getResultTypes(),
                                      b.getStringAttr(k == "matmul" ? "matmul_q" : "matmul_q_split"),
                                      ValueRange{l.getOperand(0), half}, b.getDictionaryAttr(attrs), StringAttr(),
                                      DenseI64ArrayAttr(), ArrayAttr());
      l->replaceAllUsesWith(q->getResults());
      l.erase();
      dropReader(w);
    }
    // The float32 originals nothing reads any more (in any entry) go, and their bytes with them.
    SmallVector<kern::WeightOp> dead;
    DenseSet<Attribute> live;
    getOperation().walk([&](kern::WeightOp w) {
      if (w->use_empty())
        dead.push_back(w);
      else
        live.insert(w.getValue());
    });
    for (kern::WeightOp w : dead) {
      Attribute v = w.getValue();
      w.erase();
      if (replaced.contains(v) && !live.contains(v))
        if (auto res = dyn_cast<DenseResourceElementsAttr>(v))
          res.getRawHandle().getResource()->setBlob(AsmResourceBlob());
    }
  }
};

} // namespace
