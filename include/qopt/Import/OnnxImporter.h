//===- OnnxImporter.h - ONNX models into the nn dialect --------------------===//
//
// Import is two steps. importOnnxModel() reads the protobuf (and mmaps external data) and builds a func.func of
// generic `nn.onnx_node` ops, one per NodeProto, with initializers as `nn.constant dense_resource` blobs that
// reference the file's memory. convertOnnxNode() then maps each generic op through the op/opset handler table to
// nn ops (the `qopt-convert-onnx` pass runs it over a function).
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_IMPORT_ONNXIMPORTER_H
#define QOPT_IMPORT_ONNXIMPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <map>
#include <string>

namespace qopt {

namespace nn {
class OnnxNodeOp;
}

struct OnnxImportOptions {
  // Largest single tensor the importer accepts, in bytes; a bound on what a hostile file can make us allocate.
  uint64_t maxTensorBytes = uint64_t(64) << 30;
};

// Errors are emitted as diagnostics on `ctx` (located at the file or node) and yield a null module.
mlir::OwningOpRef<mlir::ModuleOp> importOnnxModel(mlir::MLIRContext *ctx, const std::string &path,
                                                  const OnnxImportOptions &options = {});

// The same for a serialized ModelProto in memory (received over a network, say). `path` is where it came from:
// it names the model in diagnostics, and its directory is where external data files are looked up.
mlir::OwningOpRef<mlir::ModuleOp> importOnnxModelFromMemory(mlir::MLIRContext *ctx, llvm::ArrayRef<char> bytes,
                                                            const std::string &path,
                                                            const OnnxImportOptions &options = {});

// Reads a serialized TensorProto file (as in ONNX backend test data sets) into a constant attribute.
mlir::FailureOr<mlir::ElementsAttr> importOnnxTensorFile(mlir::MLIRContext *ctx, const std::string &path);

// Rewrites one generic node into nn ops. Emits an error naming the node, op and opset version on failure.
mlir::LogicalResult convertOnnxNode(nn::OnnxNodeOp node);

// The first and last default-domain opset versions the importer handles.
constexpr int64_t kMinOnnxOpset = 13;
constexpr int64_t kMaxOnnxOpset = 21;

} // namespace qopt

#endif // QOPT_IMPORT_ONNXIMPORTER_H
