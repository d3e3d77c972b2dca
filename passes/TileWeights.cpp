//===- TileWeights.cpp - quantized weights in the GPU's tile layout ----------===//
//
// The GPU's few-row products (decode: qGemvRow, qGemvMma, qGemvStaged) take a weight in tiles of 16 rows and chunks
// of 64 bytes of each row, a warp's lane 4 g + q holding word q of rows g and g + 8 of its tile. In the rows'
// order a warp load gathers 64 bytes from each of 8 rows; QuantFormat.h's tile layouts put the bytes of one such
// load next to each other (512 contiguous bytes) and a tile's chunks one after the other, the order in which the
// kernels read them. For a CUDA target, every weight of codes whose readers all take it is permuted and each reader
// gets `weight_layout`:
//   kern.launch "matmul_q"(x, W[N, R], S, Z) {bits = 4}  ->  kern.launch "matmul_q"(x, T, S, Z) {bits = 4,
//                                                                                   weight_layout = 1}
// with T the same bytes in tiles of 16 consecutive rows (1), or, where a gated product reads the weight (its gate
// and up rows stacked, a thread holding gate channel c and up channel N / 2 + c), in tiles pairing rows n and
// N / 2 + n (2); a prompt's matmul_q_split over the same weight reads it there too. Shapes, dtypes, scales and zero
// points are unchanged; the CPU backend reads either layout (its rows unpacked one at a time), so the model.bin
// still runs and checks on the CPU.
//
// Taken: int3/int4 (nibbles) and int8 codes, and FP8 codes that a gated product reads (a one-row FP8 product that is
// not gated runs qGemvHalf, which streams whole rows); weights of 16 * n rows of whole 64-byte chunks with scale
// groups of whole 16-byte words (the kernels' condition; others run qLinearQ, which reads rows). Not taken:
// float16 weights (qGemvHalf's rows), W8A8 products (act_fp8, act_int8: the library's 8-bit GEMMs read rows), a
// weight with any other reader. A weight read by several entries is permuted once; the original bytes are released
// once nothing reads them.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Dialect/NN/ConstantStorage.h"
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Numerics/QuantFormat.h"
#include "qopt/Numerics/ThreadPool.h"
#include "qopt/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/MapVector.h"

namespace qopt {
#define GEN_PASS_DEF_TILEWEIGHTSPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

bool isProduct(StringRef k) { return k == "matmul_q" || k == "matmul_q_split" || k == "matmul_q_gated"; }

// How a weight's readers can take a tile layout: not at all, or the codes' kind (FP8 codes need a gated reader).
struct Reading {
  bool ok = true, fp8 = false, gated = false;
};

// Folds reader `l` (reading the weight as `operand`) into `r`.
void addReader(Reading &r, kern::LaunchOp l, unsigned operand) {
  auto type = operand == 1 && isProduct(l.getKernel()) ? dyn_cast<RankedTensorType>(l.getOperand(1).getType())
                                                        : RankedTensorType();
  if (!type || type.getRank() != 2 || !type.hasStaticShape() || !type.getElementType().isIntOrFloat()) {
    r.ok = false;
    return;
  }
  DictionaryAttr attrs = l.getAttrs();
  auto intAttr = [&](StringRef name) {
    auto a = attrs.getAs<IntegerAttr>(name);
    return a ? a.getInt() : 0;
  };
  const int64_t bits = intAttr("bits") ? intAttr("bits") : 4;
  Type e = type.getElementType();
  const bool fp8 = isa<Float8E4M3FNType, Float8E5M2Type>(e);
  const bool codes = (num::quant::isNibbleFormat(bits) && e.isUnsignedInteger(8)) ||
                     (bits == 8 && (e.isSignlessInteger(8) || fp8));
  const int64_t rowBytes = type.getDimSize(1) * (e.getIntOrFloatBitWidth() / 8);
  const int64_t group = intAttr("group_size"), wordK = bits == 8 ? 16 : 32; // k per 16-byte word
  if (!codes || intAttr("act_fp8") || intAttr("act_int8") || attrs.get("weight_layout") ||
      !num::quant::canTileRows(type.getDimSize(0), rowBytes) || (group && group % wordK != 0)) {
    r.ok = false;
    return;
  }
  r.fp8 = fp8;
  r.gated |= l.getKernel() == "matmul_q_gated";
}

struct TileWeightsPass : qopt::impl::TileWeightsPassBase<TileWeightsPass> {
  void runOnOperation() override {
    // Every kern.weight by value (one value read by several entries is one weight), and how all its uses read it.
    llvm::MapVector<Attribute, SmallVector<kern::WeightOp, 2>> weights;
    DenseMap<Attribute, Reading> readings;
    getOperation().walk([&](kern::WeightOp w) {
      weights[w.getValue()].push_back(w);
      Reading &r = readings[w.getValue()];
      for (OpOperand &use : w->getUses()) {
        auto l = dyn_cast<kern::LaunchOp>(use.getOwner());
        if (!l) {
          r.ok = false;
          continue;
        }
        addReader(r, l, use.getOperandNumber());
      }
    });
    auto &mgr = DenseResourceElementsHandle::getManagerInterface(&getContext());
    for (auto &[value, ops] : weights) {
      const Reading &r = readings[value];
      if (!r.ok || (r.fp8 && !r.gated) || ops.front()->use_empty())
        continue;
      const int64_t layout = r.gated ? num::quant::kPairedTileLayout : num::quant::kTileLayout;
      num::Tensor t;
      std::vector<uint8_t> storage;
      if (!nn::readConstant(value, t, storage)) {
        ops.front().emitError() << "cannot read this weight: " << nn::unreadableConstantReason(value);
        return signalPassFailure();
      }
      const int64_t N = t.shape[0], rowBytes = static_cast<int64_t>(t.bytes()) / N;
      // Permuted straight into the blob the new value owns (file-backed where large: ConstantStorage.h), rows
      // split over the thread pool (a 70B model's codes are 35 GB).
      AsmResourceBlob blob = nn::allocateConstantBlob(t.bytes(), 64);
      const uint8_t *rows = static_cast<const uint8_t *>(t.data);
      uint8_t *tiles = reinterpret_cast<uint8_t *>(blob.getMutableData().data());
      num::defaultThreadPool().parallelFor(N, [&](int64_t begin, int64_t end) {
        for (int64_t n = begin; n < end; ++n)
          num::quant::tileRow(layout, rows + n * rowBytes, n, N, rowBytes, tiles);
      });
      auto type = cast<RankedTensorType>(cast<TypedAttr>(value).getType());
      kern::WeightOp first = ops.front();
      std::string name = (first.getName() ? first.getName()->str() : std::string("weight")) + ".tiles";
      ElementsAttr tiled = DenseResourceElementsAttr::get(type, mgr.insert(name, std::move(blob)));
      OpBuilder b(&getContext());
      for (kern::WeightOp w : ops) {
        w.setValueAttr(tiled);
        for (Operation *user : w->getUsers()) {
          auto l = cast<kern::LaunchOp>(user);
          NamedAttrList attrs(l.getAttrs());
          attrs.set("weight_layout", b.getI64IntegerAttr(layout));
          l.setAttrsAttr(attrs.getDictionary(&getContext()));
        }
      }
      // Nothing reads the rows' bytes any more: release them (a large model holds one copy of its codes).
      storage.clear();
      if (auto res = dyn_cast<DenseResourceElementsAttr>(value))
        res.getRawHandle().getResource()->setBlob(AsmResourceBlob());
    }
  }
};

} // namespace
