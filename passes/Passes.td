//===- Passes.td - qopt's passes ---------------------------------------------===//
//
// Every pass of qopt, one file each in passes/, flag `qopt-<name>`, test test/passes/<name>.mlir.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_PASSES
#define QOPT_PASSES

include "mlir/Pass/PassBase.td"

def ConvertOnnxPass : Pass<"qopt-convert-onnx", "mlir::func::FuncOp"> {
  let summary = "Convert generic nn.onnx_node ops to nn ops through the op/opset table";
  let description = [{
    Rewrites every `nn.onnx_node` in program order with the handler registered for its op type and the highest
    since-version not above its opset, infers result types (dynamic dims stay `?`) and folds static shape
    sub-graphs to constants. Finally the function's result types are updated from its return operands.

    Before:
    ```mlir
    %0 = nn.onnx_node "Relu"(%x) {attrs = {}, version = 17 : i64} : (tensor<2x3xf32>) -> !nn.unknown
    ```
    After:
    ```mlir
    %0 = nn.unary "relu"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    ```
    Fails, naming the node, op and opset, on an op or version without a handler, or attributes the handler
    rejects.
  }];
  let dependentDialects = ["qopt::nn::NNDialect"];
}

def LowerToKernPass : Pass<"qopt-lower-to-kern", "mlir::func::FuncOp"> {
  let summary = "Lower nn ops to kern.launch ops of the target's kernel table";
  let description = [{
    Each nn kernel op becomes a `kern.launch` of the kernel with its name and attributes (cast and
    constant_of_shape gain their target dtype code), constants become `kern.weight`, absent operands
    `kern.absent`. Requires every `nn.onnx_node` converted.

    Before:
    ```mlir
    %1 = nn.binary "add"(%0, %w) : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    ```
    After:
    ```mlir
    %1 = kern.launch "binary"(%0, %w) {attrs = {fn = "add"}} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    ```
  }];
  let dependentDialects = ["qopt::kern::KernDialect"];
}

def PlanMemoryPass : Pass<"qopt-plan-memory", "mlir::func::FuncOp"> {
  let summary = "Assign every kern.launch result a static offset in one activation arena";
  let description = [{
    Binds each dynamic input dim to its bound (`max-dims`, by the ONNX dim names in `nn.dims`), evaluates every
    result's largest shape with the kernels' own shape functions (computing small integer shape tensors on the
    way), then packs buffers by liveness: largest first, each at the lowest 64-byte aligned offset that does not
    overlap a buffer live at the same time. Graph outputs live to the end.

    After, each launch carries `offsets` and `max_shapes`, the function `kern.arena_bytes`, and each argument
    `kern.max_shape`:
    ```mlir
    %1 = kern.launch "binary"(%0, %w) {attrs = {fn = "add"}, max_shapes = [array<i64: 512, 64>],
                                       offsets = array<i64: 0>} : ...
    ```
    A result whose shape depends on values only known at run time (a Reshape to a shape given as a graph input,
    say), and everything computed from it, is not planned: it gets offset -1 and the runtime allocates it when
    its shape is known. Fails if a dynamic input dim has no bound.
  }];
  let options = [
    ListOption<"maxDims", "max-dims", "std::string", "Bounds of dynamic dims as NAME=N">,
  ];
}

#endif // QOPT_PASSES
