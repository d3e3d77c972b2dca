// RUN: %qopt-opt %s -qopt-raise-gelu -split-input-file | FileCheck %s
// Near misses of GELU that must stay decomposed.

// The erf's argument is scaled by 0.5, not 1/sqrt(2).
// CHECK-LABEL: func @wrong_constant
// CHECK-NOT: nn.gelu
// CHECK: nn.unary "erf"
func.func @wrong_constant(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %c = nn.constant dense<0.5> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %half = nn.constant dense<0.5> : tensor<f32>
  %d = nn.binary "mul"(%x, %c) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %e = nn.unary "erf"(%d) : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %a = nn.binary "add"(%e, %one) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %h = nn.binary "mul"(%x, %half) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %y = nn.binary "mul"(%h, %a) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// The product is with another tensor than the erf's input.
// CHECK-LABEL: func @other_factor
// CHECK-NOT: nn.gelu
func.func @other_factor(%x: tensor<4x8xf32>, %z: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %c = nn.constant dense<0.707106769> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %half = nn.constant dense<0.5> : tensor<f32>
  %d = nn.binary "mul"(%x, %c) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %e = nn.unary "erf"(%d) : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %a = nn.binary "add"(%e, %one) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %h = nn.binary "mul"(%z, %half) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %y = nn.binary "mul"(%h, %a) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// 1 + erf(.) is also used elsewhere: raising would have to keep it anyway.
// CHECK-LABEL: func @shared
// CHECK-NOT: nn.gelu
func.func @shared(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %c = nn.constant dense<0.707106769> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %half = nn.constant dense<0.5> : tensor<f32>
  %d = nn.binary "mul"(%x, %c) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %e = nn.unary "erf"(%d) : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %a = nn.binary "add"(%e, %one) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %h = nn.binary "mul"(%x, %half) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %y = nn.binary "mul"(%h, %a) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %y, %a : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// The tanh form with the cubic coefficient of another approximation.
// CHECK-LABEL: func @tanh_wrong_cubic
// CHECK-NOT: nn.gelu
func.func @tanh_wrong_cubic(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %half = nn.constant dense<0.5> : tensor<f32>
  %three = nn.constant dense<3.0> : tensor<f32>
  %c = nn.constant dense<0.05> : tensor<f32>
  %k = nn.constant dense<0.797884583> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %h = nn.binary "mul"(%x, %half) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %p = nn.binary "pow"(%x, %three) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %q = nn.binary "mul"(%p, %c) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %s = nn.binary "add"(%x, %q) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %t = nn.binary "mul"(%s, %k) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %th = nn.unary "tanh"(%t) : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %a = nn.binary "add"(%th, %one) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %y = nn.binary "mul"(%h, %a) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}
