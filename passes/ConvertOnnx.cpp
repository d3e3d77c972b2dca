//===- ConvertOnnx.cpp - nn.onnx_node to nn ops ----------------------------===//
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Import/OnnxImporter.h"
#include "qopt/Passes.h"

namespace qopt {
#define GEN_PASS_DEF_CONVERTONNXPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;

namespace {
struct ConvertOnnxPass : qopt::impl::ConvertOnnxPassBase<ConvertOnnxPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    SmallVector<qopt::nn::OnnxNodeOp> nodes;
    func.walk([&](qopt::nn::OnnxNodeOp op) { nodes.push_back(op); });
    // Program order: each node's operands are converted before it is.
    for (auto node : nodes)
      if (failed(qopt::convertOnnxNode(node)))
        return signalPassFailure();
    // Unused absent-operand markers left behind by handlers.
    func.walk([](qopt::nn::NoneOp op) {
      if (op->use_empty())
        op->erase();
    });
    auto ret = cast<func::ReturnOp>(func.getBody().back().getTerminator());
    func.setFunctionType(FunctionType::get(&getContext(), func.getArgumentTypes(), ret.getOperandTypes()));
  }
};
} // namespace
