// RUN: %qopt-opt %s -qopt-raise-rms-norm -split-input-file | FileCheck %s
// Near misses the pass must leave decomposed: each changes the function computed.

// The mean runs over the first dim, not the last.
// CHECK-LABEL: func @wrong_axis
// CHECK-NOT: nn.rms_norm
// CHECK: nn.reduce
func.func @wrong_axis(%x: tensor<3x8xf32>) -> tensor<3x8xf32> {
  %two = nn.constant dense<2.0> : tensor<f32>
  %eps = nn.constant dense<1.0e-5> : tensor<f32>
  %sq = nn.binary "pow"(%x, %two) : (tensor<3x8xf32>, tensor<f32>) -> tensor<3x8xf32>
  %m = nn.reduce(%sq) {axes = array<i64: 0>, kind = "mean"} : (tensor<3x8xf32>) -> tensor<1x8xf32>
  %a = nn.binary "add"(%m, %eps) : (tensor<1x8xf32>, tensor<f32>) -> tensor<1x8xf32>
  %s = nn.unary "sqrt"(%a) : (tensor<1x8xf32>) -> tensor<1x8xf32>
  %r = nn.unary "reciprocal"(%s) : (tensor<1x8xf32>) -> tensor<1x8xf32>
  %n = nn.binary "mul"(%x, %r) : (tensor<3x8xf32>, tensor<1x8xf32>) -> tensor<3x8xf32>
  return %n : tensor<3x8xf32>
}

// -----

// The square is a cube.
// CHECK-LABEL: func @cube
// CHECK-NOT: nn.rms_norm
func.func @cube(%x: tensor<3x8xf32>) -> tensor<3x8xf32> {
  %three = nn.constant dense<3.0> : tensor<f32>
  %eps = nn.constant dense<1.0e-5> : tensor<f32>
  %sq = nn.binary "pow"(%x, %three) : (tensor<3x8xf32>, tensor<f32>) -> tensor<3x8xf32>
  %m = nn.reduce(%sq) {axes = array<i64: -1>, kind = "mean"} : (tensor<3x8xf32>) -> tensor<3x1xf32>
  %a = nn.binary "add"(%m, %eps) : (tensor<3x1xf32>, tensor<f32>) -> tensor<3x1xf32>
  %s = nn.unary "sqrt"(%a) : (tensor<3x1xf32>) -> tensor<3x1xf32>
  %r = nn.unary "reciprocal"(%s) : (tensor<3x1xf32>) -> tensor<3x1xf32>
  %n = nn.binary "mul"(%x, %r) : (tensor<3x8xf32>, tensor<3x1xf32>) -> tensor<3x8xf32>
  return %n : tensor<3x8xf32>
}

// -----

// The statistics come from another tensor than the one normalized.
// CHECK-LABEL: func @other_tensor
// CHECK-NOT: nn.rms_norm
func.func @other_tensor(%x: tensor<3x8xf32>, %z: tensor<3x8xf32>) -> tensor<3x8xf32> {
  %two = nn.constant dense<2.0> : tensor<f32>
  %eps = nn.constant dense<1.0e-5> : tensor<f32>
  %sq = nn.binary "pow"(%z, %two) : (tensor<3x8xf32>, tensor<f32>) -> tensor<3x8xf32>
  %m = nn.reduce(%sq) {axes = array<i64: -1>, kind = "mean"} : (tensor<3x8xf32>) -> tensor<3x1xf32>
  %a = nn.binary "add"(%m, %eps) : (tensor<3x1xf32>, tensor<f32>) -> tensor<3x1xf32>
  %s = nn.unary "sqrt"(%a) : (tensor<3x1xf32>) -> tensor<3x1xf32>
  %r = nn.unary "reciprocal"(%s) : (tensor<3x1xf32>) -> tensor<3x1xf32>
  %n = nn.binary "mul"(%x, %r) : (tensor<3x8xf32>, tensor<3x1xf32>) -> tensor<3x8xf32>
  return %n : tensor<3x8xf32>
}

// -----

// A sum instead of a mean (an L2 normalization, not RMS).
// CHECK-LABEL: func @sum
// CHECK-NOT: nn.rms_norm
func.func @sum(%x: tensor<3x8xf32>) -> tensor<3x8xf32> {
  %two = nn.constant dense<2.0> : tensor<f32>
  %eps = nn.constant dense<1.0e-5> : tensor<f32>
  %sq = nn.binary "pow"(%x, %two) : (tensor<3x8xf32>, tensor<f32>) -> tensor<3x8xf32>
  %m = nn.reduce(%sq) {axes = array<i64: -1>, kind = "sum"} : (tensor<3x8xf32>) -> tensor<3x1xf32>
  %a = nn.binary "add"(%m, %eps) : (tensor<3x1xf32>, tensor<f32>) -> tensor<3x1xf32>
  %s = nn.unary "sqrt"(%a) : (tensor<3x1xf32>) -> tensor<3x1xf32>
  %r = nn.unary "reciprocal"(%s) : (tensor<3x1xf32>) -> tensor<3x1xf32>
  %n = nn.binary "mul"(%x, %r) : (tensor<3x8xf32>, tensor<3x1xf32>) -> tensor<3x8xf32>
  return %n : tensor<3x8xf32>
}

// -----

// A per-row (not per-channel) multiplier after the norm is not its scale: raised without it.
// CHECK-LABEL: func @row_scale
// CHECK: %[[N:.+]] = nn.rms_norm
// CHECK: nn.binary "mul"(%[[N]], %{{.+}})
func.func @row_scale(%x: tensor<3x8xf32>, %v: tensor<3x1xf32>) -> tensor<3x8xf32> {
  %two = nn.constant dense<2.0> : tensor<f32>
  %eps = nn.constant dense<1.0e-5> : tensor<f32>
  %sq = nn.binary "pow"(%x, %two) : (tensor<3x8xf32>, tensor<f32>) -> tensor<3x8xf32>
  %m = nn.reduce(%sq) {axes = array<i64: -1>, kind = "mean"} : (tensor<3x8xf32>) -> tensor<3x1xf32>
  %a = nn.binary "add"(%m, %eps) : (tensor<3x1xf32>, tensor<f32>) -> tensor<3x1xf32>
  %s = nn.unary "sqrt"(%a) : (tensor<3x1xf32>) -> tensor<3x1xf32>
  %r = nn.unary "reciprocal"(%s) : (tensor<3x1xf32>) -> tensor<3x1xf32>
  %n = nn.binary "mul"(%x, %r) : (tensor<3x8xf32>, tensor<3x1xf32>) -> tensor<3x8xf32>
  %y = nn.binary "mul"(%n, %v) : (tensor<3x8xf32>, tensor<3x1xf32>) -> tensor<3x8xf32>
  return %y : tensor<3x8xf32>
}
