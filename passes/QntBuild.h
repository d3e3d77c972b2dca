//===- QntBuild.h - replace a linear layer by qnt.linear -------------------===//
//
// Shared by the quantizers (rtn, gptq): the packed weight, scales and zero points become dense_resource
// constants named after the layer's weight, and the nn.matmul a qnt.linear with the format's attributes.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_PASSES_QNTBUILD_H
#define QOPT_PASSES_QNTBUILD_H

#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Dialect/Qnt/QntDialect.h"
#include "qopt/Numerics/QuantFormat.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"

namespace qopt {

inline mlir::ElementsAttr blobAttr(mlir::MLIRContext *ctx, llvm::StringRef key, mlir::RankedTensorType type,
                                   const void *data, size_t bytes) {
  auto &mgr = mlir::DenseResourceElementsHandle::getManagerInterface(ctx);
  mlir::AsmResourceBlob blob = mlir::HeapAsmResourceBlob::allocateAndCopyWithAlign(
      llvm::ArrayRef<char>(static_cast<const char *>(data), bytes), 8);
  return mlir::DenseResourceElementsAttr::get(type, mgr.insert(key, std::move(blob)));
}

inline void replaceWithQntLinear(nn::MatmulOp mm, const num::quant::QuantizedWeight &q, const std::string &key) {
  using namespace mlir;
  MLIRContext *ctx = mm.getContext();
  OpBuilder b(mm);
  Location loc = mm.getLoc();
  auto u8 = IntegerType::get(ctx, 8, IntegerType::Unsigned);
  const bool nib = num::quant::isNibbleFormat(q.bits);
  Type welem = nib ? Type(u8) : Type(IntegerType::get(ctx, 8));
  const int64_t N = q.N, packedK = nib ? q.K / 2 : q.K, G = q.groups();
  Value qw = nn::ConstantOp::create(
      b, loc, blobAttr(ctx, key + ".q", RankedTensorType::get({N, packedK}, welem), q.data.data(), q.data.size()),
      b.getStringAttr(key + ".q"));
  Value qs = nn::ConstantOp::create(b, loc,
                                    blobAttr(ctx, key + ".scales", RankedTensorType::get({N, G}, b.getF32Type()),
                                             q.scales.data(), q.scales.size() * sizeof(float)),
                                    b.getStringAttr(key + ".scales"));
  Value qz = q.zeros.empty() ? Value(nn::NoneOp::create(b, loc))
                             : Value(nn::ConstantOp::create(b, loc,
                                                            blobAttr(ctx, key + ".zeros",
                                                                     RankedTensorType::get({N, G}, u8),
                                                                     q.zeros.data(), q.zeros.size()),
                                                            b.getStringAttr(key + ".zeros")));
  auto lin = qnt::LinearOp::create(b, loc, mm.getType(), mm.getLhs(), qw, qs, qz, b.getI64IntegerAttr(q.bits),
                                   b.getI64IntegerAttr(q.groupSize),
                                   b.getI64IntegerAttr(q.symmetric && nib ? 1 : 0));
  auto wc = mm.getRhs().getDefiningOp<nn::ConstantOp>();
  mm.replaceAllUsesWith(lin.getY());
  mm.erase();
  if (wc && wc->use_empty()) {
    // The float weight is dead: release its bytes now rather than when the context goes, so quantizing does not
    // hold the float and the packed model at once. Constants are CSE'd, so no other op holds this resource.
    if (auto res = dyn_cast<DenseResourceElementsAttr>(wc.getValue()))
      res.getRawHandle().getResource()->setBlob(AsmResourceBlob());
    wc.erase();
  }
}

} // namespace qopt

#endif // QOPT_PASSES_QNTBUILD_H
