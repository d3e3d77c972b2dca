//===- FuseRotary.cpp - rotary embeddings into the launches that read them ---===//
//
// A decoder rotates its keys and queries just before it stores and reads them:
//   %kr = kern.launch "rotary"(%k, %pos, %f)               %c' = kern.launch "kv_append_rotary"(%c, %k, %len,
//   %c' = kern.launch "kv_append"(%c, %kr, %len)     ->                                         %pos, %f)
// and, for one query row per head over the KV state (a decode step),
//   %qr = kern.launch "rotary"(%q, %pos, %f)               %o = kern.launch "attention"(%q, %k, %v, %none, %len,
//   %o = kern.launch "attention"(%qr, %k, %v, %none, %len) ->                                 %pos, %f)
// (positions and inv_freq after the reader's operands: an FP8 cache's scales and offsets come before them) so
// that the rotation happens where the row is loaded anyway, without a launch and a round trip of its own. The
// fused kernels run the rotary family's own code on the CPU, so their results equal the two launches' bit for bit.
// Queries of a prompt keep their rotary launch: its cost is one launch per prompt chunk, and the tensor-core
// attention loads its queries as mma fragments, where the pairs a rotation mixes are in other lanes.
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Numerics/Kernels.h"
#include "qopt/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"

namespace qopt {
#define GEN_PASS_DEF_FUSEROTARYPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

bool isAbsent(Value v) { return v.getDefiningOp<kern::AbsentOp>() != nullptr; }

// One query row per head, a cache length and no mask (and an FP8 cache's two scales): the launch the decode
// attention kernels take.
bool isDecodeAttention(kern::LaunchOp attention) {
  const unsigned n = attention.getNumOperands();
  if ((n != 5 && n != 7) || !isAbsent(attention.getOperand(3)) || isAbsent(attention.getOperand(4)))
    return false;
  auto q = dyn_cast<RankedTensorType>(attention.getOperand(0).getType());
  return q && q.getRank() == 4 && q.hasStaticShape() && q.getDimSize(2) == 1;
}

int64_t intAttr(kern::LaunchOp l, StringRef name, int64_t dflt) {
  auto a = l.getAttrs().getAs<IntegerAttr>(name);
  return a ? a.getInt() : dflt;
}

struct FuseRotaryPass : qopt::impl::FuseRotaryPassBase<FuseRotaryPass> {
  void runOnOperation() override {
    SmallVector<kern::LaunchOp> rotaries;
    getOperation().walk([&](kern::LaunchOp l) {
      if (l.getKernel() == "rotary" && l.getNumOperands() == 3 && l.getNumResults() == 1 && !l.getVariant())
        rotaries.push_back(l);
    });
    for (kern::LaunchOp rotary : rotaries) {
      // Readers of the rotated row's shape alone (the cache length's advance reads the new keys' shape) read the
      // unrotated row's, which is the same.
      for (OpOperand &use : llvm::make_early_inc_range(rotary.getResult(0).getUses()))
        if (auto l = dyn_cast<kern::LaunchOp>(use.getOwner()))
          if (const num::KernelFamily *k = num::lookupFamily(l.getKernel().str()); k && k->readsShapesOnly)
            use.set(rotary.getOperand(0));
      if (!rotary.getResult(0).hasOneUse())
        continue;
      OpOperand &use = *rotary.getResult(0).use_begin();
      auto reader = dyn_cast<kern::LaunchOp>(use.getOwner());
      if (!reader || reader.getVariant())
        continue;
      auto type = dyn_cast<RankedTensorType>(rotary.getResult(0).getType());
      if (!type)
        continue;
      const int64_t style = intAttr(rotary, "style", -1), rank = type.getRank();
      int64_t axis = reader.getKernel() == "kv_append" ? intAttr(reader, "axis", 2) : 0;
      if (axis < 0)
        axis += rank;
      OpBuilder b(reader);
      SmallVector<NamedAttribute> attrs(reader.getAttrs().getValue());
      SmallVector<Value> operands(reader.getOperands());
      StringRef kernel;
      if (reader.getKernel() == "kv_append" && use.getOperandNumber() == 1 && reader.getNumOperands() <= 5 &&
          rank == 4 && axis == 2) {
        kernel = "kv_append_rotary";
        attrs.push_back(b.getNamedAttr("style", b.getI64IntegerAttr(style)));
      } else if (reader.getKernel() == "attention" && use.getOperandNumber() == 0 && isDecodeAttention(reader)) {
        kernel = "attention";
        attrs.push_back(b.getNamedAttr("rotary_style", b.getI64IntegerAttr(style)));
      } else {
        continue;
      }
      operands[use.getOperandNumber()] = rotary.getOperand(0);
      operands.push_back(rotary.getOperand(1));
      operands.push_back(rotary.getOperand(2));
      auto fused = kern::LaunchOp::create(b, reader.getLoc(), reader.getResultTypes(), b.getStringAttr(kernel),
                                          operands, b.getDictionaryAttr(attrs), StringAttr(), DenseI64ArrayAttr(),
                                          ArrayAttr());
      reader.getResult(0).replaceAllUsesWith(fused.getResult(0));
      reader.erase();
      rotary.erase();
    }
  }
};

} // namespace
