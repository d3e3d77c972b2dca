// RUN: not %qopt-opt %s -qopt-calibrate="calib=x.txt" 2>&1 | FileCheck %s
// CHECK: error: qopt-calibrate: the model has no linear layer with a constant weight (an nn.matmul whose right operand is a 2-D f32 constant)
func.func @f(%x: tensor<?x64xf32>, %w: tensor<64x32xf32>) -> tensor<?x32xf32> {
  %y = nn.matmul(%x, %w) : (tensor<?x64xf32>, tensor<64x32xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}
