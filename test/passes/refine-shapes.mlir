// RUN: %qopt-opt %s -qopt-refine-shapes -split-input-file | FileCheck %s
// A matmul with a constant [K, N] weight fixes its input's last dim to K.

// CHECK-LABEL: func @head_merge
// CHECK: nn.reshape(%{{.+}}, %{{.+}}) : (tensor<?x?x4x16xf32>, tensor<3xi64>) -> tensor<?x?x64xf32>
// CHECK: nn.matmul(%{{.+}}, %{{.+}}) : (tensor<?x?x64xf32>, tensor<64x32xf32>) -> tensor<?x?x32xf32>
func.func @head_merge(%t: tensor<?x?x4x16xf32>, %shape: tensor<3xi64>) -> tensor<?x?x32xf32> {
  %w = nn.constant dense<0.1> : tensor<64x32xf32>
  %m = nn.reshape(%t, %shape) : (tensor<?x?x4x16xf32>, tensor<3xi64>) -> tensor<?x?x?xf32>
  %y = nn.matmul(%m, %w) : (tensor<?x?x?xf32>, tensor<64x32xf32>) -> tensor<?x?x32xf32>
  return %y : tensor<?x?x32xf32>
}

// -----

// A function argument keeps its declared type; a non-constant right operand fixes nothing.
// CHECK-LABEL: func @untouched
// CHECK-SAME: (%{{.+}}: tensor<?x?xf32>, %{{.+}}: tensor<?x?x?xf32>
// CHECK: nn.matmul(%{{.+}}, %{{.+}}) : (tensor<?x?xf32>, tensor<64x32xf32>)
// CHECK: nn.matmul(%{{.+}}, %{{.+}}) : (tensor<?x?x?xf32>, tensor<?x32xf32>)
func.func @untouched(%a: tensor<?x?xf32>, %b: tensor<?x?x?xf32>, %k: tensor<?x32xf32>) -> (tensor<?x32xf32>, tensor<?x?x32xf32>) {
  %w = nn.constant dense<0.1> : tensor<64x32xf32>
  %y = nn.matmul(%a, %w) : (tensor<?x?xf32>, tensor<64x32xf32>) -> tensor<?x32xf32>
  %z = nn.matmul(%b, %k) : (tensor<?x?x?xf32>, tensor<?x32xf32>) -> tensor<?x?x32xf32>
  return %y, %z : tensor<?x32xf32>, tensor<?x?x32xf32>
}

// -----

// The heads dim of a reshape to [Shape(x)[0], Shape(x)[1], -1, 16] does not depend on the input sizes: sampling
// the shape arithmetic at two sizes finds it is 4 (op-by-op inference cannot: the -1 divides by unknown dims).
// CHECK-LABEL: func @sampled_heads
// CHECK: nn.reshape(%{{.+}}, %{{.+}}) : (tensor<?x?x64xf32>, tensor<4xi64>) -> tensor<?x?x4x16xf32>
func.func @sampled_heads(%x: tensor<?x?x64xf32> {nn.dims = ["batch", "sequence"]}) -> tensor<?x?x?x16xf32> {
  %i0 = nn.constant dense<0> : tensor<i64>
  %i1 = nn.constant dense<1> : tensor<i64>
  %tail = nn.constant dense<[-1, 16]> : tensor<2xi64>
  %s = nn.shape(%x) : (tensor<?x?x64xf32>) -> tensor<3xi64>
  %b = nn.gather(%s, %i0) : (tensor<3xi64>, tensor<i64>) -> tensor<i64>
  %n = nn.gather(%s, %i1) : (tensor<3xi64>, tensor<i64>) -> tensor<i64>
  %b1 = nn.unsqueeze(%b) {axes = array<i64: 0>} : (tensor<i64>) -> tensor<1xi64>
  %n1 = nn.unsqueeze(%n) {axes = array<i64: 0>} : (tensor<i64>) -> tensor<1xi64>
  %shape = nn.concat(%b1, %n1, %tail) {axis = 0 : i64} : (tensor<1xi64>, tensor<1xi64>, tensor<2xi64>) -> tensor<4xi64>
  %r = nn.reshape(%x, %shape) : (tensor<?x?x64xf32>, tensor<4xi64>) -> tensor<?x?x?x16xf32>
  return %r : tensor<?x?x?x16xf32>
}
