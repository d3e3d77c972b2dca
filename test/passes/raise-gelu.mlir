// RUN: %qopt-opt %s -qopt-raise-gelu -split-input-file | FileCheck %s
// GELU as exporters write it: exact (erf) and GPT-2's tanh approximation, factors in several groupings.

// torch: x * 0.5 * (1 + erf(x / sqrt(2))).
// CHECK-LABEL: func @erf_div
// CHECK-SAME: (%[[X:.+]]: tensor<?x256xf32>)
// CHECK-NEXT: %[[Y:.+]] = nn.gelu erf(%[[X]]) : (tensor<?x256xf32>) -> tensor<?x256xf32>
// CHECK-NEXT: return %[[Y]]
func.func @erf_div(%x: tensor<?x256xf32>) -> tensor<?x256xf32> {
  %sqrt2 = nn.constant dense<1.41421354> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %half = nn.constant dense<0.5> : tensor<f32>
  %d = nn.binary "div"(%x, %sqrt2) : (tensor<?x256xf32>, tensor<f32>) -> tensor<?x256xf32>
  %e = nn.unary "erf"(%d) : (tensor<?x256xf32>) -> tensor<?x256xf32>
  %a = nn.binary "add"(%e, %one) : (tensor<?x256xf32>, tensor<f32>) -> tensor<?x256xf32>
  %h = nn.binary "mul"(%x, %half) : (tensor<?x256xf32>, tensor<f32>) -> tensor<?x256xf32>
  %y = nn.binary "mul"(%h, %a) : (tensor<?x256xf32>, tensor<?x256xf32>) -> tensor<?x256xf32>
  return %y : tensor<?x256xf32>
}

// -----

// 0.5 * (x * (1 + erf(x * 0.7071))), the multiplications grouped the other way.
// CHECK-LABEL: func @erf_mul_outer_half
// CHECK: nn.gelu erf(%{{.+}}) : (tensor<4x8xf32>)
// CHECK-NOT: nn.unary
func.func @erf_mul_outer_half(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %c = nn.constant dense<0.707106769> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %half = nn.constant dense<0.5> : tensor<f32>
  %d = nn.binary "mul"(%c, %x) : (tensor<f32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %e = nn.unary "erf"(%d) : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %a = nn.binary "add"(%one, %e) : (tensor<f32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %p = nn.binary "mul"(%x, %a) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %y = nn.binary "mul"(%half, %p) : (tensor<f32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// GPT-2 (gelu_new) as torch 2.11 exports it.
// CHECK-LABEL: func @tanh
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x256xf32>)
// CHECK-NEXT: %[[Y:.+]] = nn.gelu tanh(%[[X]])
// CHECK-NEXT: return %[[Y]]
func.func @tanh(%x: tensor<?x?x256xf32>) -> tensor<?x?x256xf32> {
  %half = nn.constant dense<0.5> : tensor<f32>
  %three = nn.constant dense<3.0> : tensor<f32>
  %c = nn.constant dense<0.044715> : tensor<f32>
  %k = nn.constant dense<0.797884583> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %h = nn.binary "mul"(%x, %half) : (tensor<?x?x256xf32>, tensor<f32>) -> tensor<?x?x256xf32>
  %p = nn.binary "pow"(%x, %three) : (tensor<?x?x256xf32>, tensor<f32>) -> tensor<?x?x256xf32>
  %q = nn.binary "mul"(%p, %c) : (tensor<?x?x256xf32>, tensor<f32>) -> tensor<?x?x256xf32>
  %s = nn.binary "add"(%x, %q) : (tensor<?x?x256xf32>, tensor<?x?x256xf32>) -> tensor<?x?x256xf32>
  %t = nn.binary "mul"(%s, %k) : (tensor<?x?x256xf32>, tensor<f32>) -> tensor<?x?x256xf32>
  %th = nn.unary "tanh"(%t) : (tensor<?x?x256xf32>) -> tensor<?x?x256xf32>
  %a = nn.binary "add"(%th, %one) : (tensor<?x?x256xf32>, tensor<f32>) -> tensor<?x?x256xf32>
  %y = nn.binary "mul"(%h, %a) : (tensor<?x?x256xf32>, tensor<?x?x256xf32>) -> tensor<?x?x256xf32>
  return %y : tensor<?x?x256xf32>
}
