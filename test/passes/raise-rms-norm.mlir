// RUN: %qopt-opt %s -qopt-raise-rms-norm -split-input-file | FileCheck %s
// RUN: %qopt-opt %s -qopt-raise-rms-norm -split-input-file | %qopt-opt -split-input-file | FileCheck %s --check-prefix=ROUND
// The forms exporters write for RMSNorm: each becomes one nn.rms_norm and the decomposition is erased.

// llama2.c / HF Llama: x * Reciprocal(Sqrt(Mean(Pow(x, 2)) + eps)), then scale * n.
// CHECK-LABEL: func @reciprocal_sqrt
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x64xf32>)
// CHECK: %[[W:.+]] = nn.constant dense<5.000000e-01> : tensor<64xf32>
// CHECK-NEXT: %[[Y:.+]] = nn.rms_norm(%[[X]], %[[W]]) {epsilon = 9.9999997473787516E-6 : f64}
// CHECK-NOT: nn.reduce
// CHECK-NOT: nn.unary
// CHECK-NEXT: return %[[Y]]
// ROUND-LABEL: func @reciprocal_sqrt
// ROUND: nn.rms_norm
func.func @reciprocal_sqrt(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
  %w = nn.constant dense<0.5> : tensor<64xf32>
  %two = nn.constant dense<2.0> : tensor<f32>
  %eps = nn.constant dense<1.0e-5> : tensor<f32>
  %sq = nn.binary "pow"(%x, %two) : (tensor<?x?x64xf32>, tensor<f32>) -> tensor<?x?x64xf32>
  %m = nn.reduce(%sq) {axes = array<i64: -1>, kind = "mean"} : (tensor<?x?x64xf32>) -> tensor<?x?x1xf32>
  %a = nn.binary "add"(%m, %eps) : (tensor<?x?x1xf32>, tensor<f32>) -> tensor<?x?x1xf32>
  %s = nn.unary "sqrt"(%a) : (tensor<?x?x1xf32>) -> tensor<?x?x1xf32>
  %r = nn.unary "reciprocal"(%s) : (tensor<?x?x1xf32>) -> tensor<?x?x1xf32>
  %n = nn.binary "mul"(%x, %r) : (tensor<?x?x64xf32>, tensor<?x?x1xf32>) -> tensor<?x?x64xf32>
  %y = nn.binary "mul"(%w, %n) : (tensor<64xf32>, tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
  return %y : tensor<?x?x64xf32>
}

// -----

// x * x for the square, Div by the root, the mean's axis written as a positive index, scale on the right.
// CHECK-LABEL: func @div_mul_square
// CHECK-SAME: (%[[X:.+]]: tensor<3x8xf32>)
// CHECK: %[[Y:.+]] = nn.rms_norm(%[[X]], %{{.+}}) {epsilon = 9.9999999747524271E-7 : f64}
// CHECK-NEXT: return %[[Y]]
func.func @div_mul_square(%x: tensor<3x8xf32>) -> tensor<3x8xf32> {
  %w = nn.constant dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]> : tensor<8xf32>
  %eps = nn.constant dense<1.0e-6> : tensor<1xf32>
  %sq = nn.binary "mul"(%x, %x) : (tensor<3x8xf32>, tensor<3x8xf32>) -> tensor<3x8xf32>
  %m = nn.reduce(%sq) {axes = array<i64: 1>, kind = "mean"} : (tensor<3x8xf32>) -> tensor<3x1xf32>
  %a = nn.binary "add"(%eps, %m) : (tensor<1xf32>, tensor<3x1xf32>) -> tensor<3x1xf32>
  %s = nn.unary "sqrt"(%a) : (tensor<3x1xf32>) -> tensor<3x1xf32>
  %n = nn.binary "div"(%x, %s) : (tensor<3x8xf32>, tensor<3x1xf32>) -> tensor<3x8xf32>
  %y = nn.binary "mul"(%n, %w) : (tensor<3x8xf32>, tensor<8xf32>) -> tensor<3x8xf32>
  return %y : tensor<3x8xf32>
}

// -----

// No scale after the normalization: the op gets a constant one of the last dim's size.
// CHECK-LABEL: func @no_scale
// CHECK: %[[ONE:.+]] = nn.constant dense<1.000000e+00> : tensor<8xf32>
// CHECK: nn.rms_norm(%{{.+}}, %[[ONE]])
func.func @no_scale(%x: tensor<3x8xf32>) -> tensor<3x8xf32> {
  %two = nn.constant dense<2.0> : tensor<f32>
  %eps = nn.constant dense<1.0e-5> : tensor<f32>
  %sq = nn.binary "pow"(%x, %two) : (tensor<3x8xf32>, tensor<f32>) -> tensor<3x8xf32>
  %m = nn.reduce(%sq) {axes = array<i64: -1>, kind = "mean"} : (tensor<3x8xf32>) -> tensor<3x1xf32>
  %a = nn.binary "add"(%m, %eps) : (tensor<3x1xf32>, tensor<f32>) -> tensor<3x1xf32>
  %s = nn.unary "sqrt"(%a) : (tensor<3x1xf32>) -> tensor<3x1xf32>
  %r = nn.unary "reciprocal"(%s) : (tensor<3x1xf32>) -> tensor<3x1xf32>
  %n = nn.binary "mul"(%r, %x) : (tensor<3x1xf32>, tensor<3x8xf32>) -> tensor<3x8xf32>
  return %n : tensor<3x8xf32>
}
