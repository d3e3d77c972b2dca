//===- QuantizeRtn.cpp - round-to-nearest weight quantization --------------===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Dialect/Qnt/QntDialect.h"
#include "qopt/Numerics/QuantFormat.h"
#include "qopt/Passes.h"
#include "passes/LinearLayers.h"

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

// A packed tensor as a dense_resource blob (weights can be large; never inline attributes).
ElementsAttr blobAttr(MLIRContext *ctx, StringRef key, RankedTensorType type, const void *data, size_t bytes) {
  auto &mgr = DenseResourceElementsHandle::getManagerInterface(ctx);
  AsmResourceBlob blob = HeapAsmResourceBlob::allocateAndCopyWithAlign(
      ArrayRef<char>(static_cast<const char *>(data), bytes), 8);
  return DenseResourceElementsAttr::get(type, mgr.insert(key, std::move(blob)));
}

std::string nodeName(Operation *op) {
  if (auto nl = dyn_cast<NameLoc>(op->getLoc()))
    return nl.getName().str();
  return "";
}

struct QuantizeRtnPass : qopt::impl::QuantizeRtnPassBase<QuantizeRtnPass> {
  using QuantizeRtnPassBase::QuantizeRtnPassBase;

  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    if (bits != 4 && bits != 8) {
      getOperation().emitError() << "qopt-quantize-rtn: bits must be 4 or 8, got " << bits;
      return signalPassFailure();
    }
    llvm::Regex excludeRe(exclude);
    std::string reErr;
    if (!exclude.empty() && !excludeRe.isValid(reErr)) {
      getOperation().emitError() << "qopt-quantize-rtn: invalid exclude regex '" << exclude << "': " << reErr;
      return signalPassFailure();
    }
    SmallVector<nn::MatmulOp> todo;
    getOperation().walk([&](nn::MatmulOp mm) { todo.push_back(mm); });
    for (nn::MatmulOp mm : todo) {
      nn::ConstantOp wc = linearWeight(mm);
      if (!wc)
        continue; // not a linear layer with a constant weight
      auto wt = cast<RankedTensorType>(mm.getRhs().getType());
      std::string wname = wc.getName() ? wc.getName()->str() : "", node = nodeName(mm);
      if (!exclude.empty() && (excludeRe.match(wname) || excludeRe.match(node)))
        continue;
      const int64_t K = wt.getDimSize(0), N = wt.getDimSize(1);
      int64_t group = groupSize > 0 ? groupSize : K;
      if (K % group != 0 || (bits == 4 && K % 2 != 0)) {
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
      if (!num::quant::quantizeRtn(static_cast<const float *>(w.data), K, N, bits, group, sym, q, err)) {
        mm.emitError() << "cannot quantize '" << wname << "': " << err;
        return signalPassFailure();
      }
      OpBuilder b(mm);
      Location loc = mm.getLoc();
      auto u8 = IntegerType::get(ctx, 8, IntegerType::Unsigned);
      Type welem = bits == 4 ? Type(u8) : Type(IntegerType::get(ctx, 8));
      int64_t packedK = bits == 4 ? K / 2 : K, G = K / group;
      std::string key = wname.empty() ? "qweight" : wname;
      Value qw = nn::ConstantOp::create(b, loc, blobAttr(ctx, key + ".q", RankedTensorType::get({N, packedK}, welem),
                                                        q.data.data(), q.data.size()),
                                        b.getStringAttr(key + ".q"));
      Value qs = nn::ConstantOp::create(
          b, loc, blobAttr(ctx, key + ".scales", RankedTensorType::get({N, G}, b.getF32Type()), q.scales.data(),
                           q.scales.size() * sizeof(float)),
          b.getStringAttr(key + ".scales"));
      Value qz = q.zeros.empty()
                     ? Value(nn::NoneOp::create(b, loc))
                     : Value(nn::ConstantOp::create(
                           b, loc, blobAttr(ctx, key + ".zeros", RankedTensorType::get({N, G}, u8), q.zeros.data(),
                                            q.zeros.size()),
                           b.getStringAttr(key + ".zeros")));
      auto lin = qnt::LinearOp::create(b, loc, mm.getType(), mm.getLhs(), qw, qs, qz, b.getI64IntegerAttr(bits),
                                       b.getI64IntegerAttr(group), b.getI64IntegerAttr(sym && bits == 4 ? 1 : 0));
      mm.replaceAllUsesWith(lin.getY());
      mm.erase();
      if (wc->use_empty())
        wc.erase();
    }
  }
};

} // namespace
