// RUN: not %qopt %s -o %t.bin 2>&1 | FileCheck %s
// IR printed without --emit-weights has its weights elided; compiling it says so instead of calling the weight's
// element type unsupported. (A blob of the wrong size is refused by the nn.constant verifier: nn/invalid.mlir.)

// CHECK: qopt: error: {{.*}}elided-weight.mlir:{{.*}}cannot read this weight: its resource '__elided__' has no data (the IR was printed with weights elided: print it with --emit-weights)
func.func @main(%x: tensor<2x4xf32>) -> tensor<2x3xf32> {
  %w = nn.constant dense_resource<__elided__> : tensor<4x3xf32>
  %y = nn.matmul(%x, %w) : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}
