//===- ResourceCheck.h - a dense_resource blob must hold its type's bytes ---===//
//
// MLIR checks neither when it parses a `dense_resource<key>` nor when it reads the blob that the blob's size fits
// the tensor type, so a hand-edited or truncated .mlir could hand a short blob to the folder, the quantizers or the
// model.bin writer. nn.constant and kern.weight verify it with this one rule: a blob that is present holds
// numElements x ceil(bit width / 8) bytes (i1 is a byte per element, as MLIR stores it). An absent blob (an elided
// `__elided__` weight, or a resource the file never provides) is left to the consumer that needs the bytes.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_DIALECT_RESOURCECHECK_H
#define QOPT_DIALECT_RESOURCECHECK_H

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/Operation.h"

namespace qopt {

inline mlir::LogicalResult verifyResourceSize(mlir::Operation *op, mlir::Attribute value) {
  auto res = llvm::dyn_cast<mlir::DenseResourceElementsAttr>(value);
  if (!res)
    return mlir::success();
  const mlir::AsmResourceBlob *blob = res.getRawHandle().getBlob();
  auto type = llvm::cast<mlir::ShapedType>(res.getType());
  mlir::Type elem = type.getElementType();
  if (!blob || !type.hasStaticShape() || !elem.isIntOrFloat())
    return mlir::success();
  uint64_t bytes = static_cast<uint64_t>(type.getNumElements()) * ((elem.getIntOrFloatBitWidth() + 7) / 8);
  if (blob->getData().size() != bytes)
    return op->emitOpError() << "resource '" << res.getRawHandle().getKey() << "' holds " << blob->getData().size()
                             << " bytes, but " << type << " needs " << bytes;
  return mlir::success();
}

} // namespace qopt

#endif // QOPT_DIALECT_RESOURCECHECK_H
