//===- OnnxSchema.h - check an nn.onnx_node against ONNX's operator schemas ----===//
#ifndef QOPT_IMPORT_ONNXSCHEMA_H
#define QOPT_IMPORT_ONNXSCHEMA_H

#include "mlir/Support/LogicalResult.h"

namespace qopt::nn {
class OnnxNodeOp;
}

namespace qopt {

// Checks a default-domain node against the ONNX library's schema for its opset: the number of inputs and outputs,
// that no required input is left empty, that every required attribute is present, and that every attribute is
// one the op defines, of the type it defines. The conversion handlers may then take what the schema guarantees
// for granted. Opsets newer than the library's schemas get the count checks that do not change across versions
// (the minimum inputs and outputs) only. Emits an error naming the op and what is wrong.
mlir::LogicalResult verifyOnnxSchema(nn::OnnxNodeOp node);

} // namespace qopt

#endif // QOPT_IMPORT_ONNXSCHEMA_H
