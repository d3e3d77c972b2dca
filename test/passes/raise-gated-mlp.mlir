// RUN: %qopt-opt %s -qopt-raise-gelu -qopt-raise-gated-mlp -split-input-file | FileCheck %s
// The gated MLP's middle: SwiGLU from Sigmoid/Mul, GeGLU from a raised GELU.

// CHECK-LABEL: func @swiglu
// CHECK-SAME: (%[[G:.+]]: tensor<?x?x172xf32>, %[[U:.+]]: tensor<?x?x172xf32>)
// CHECK-NEXT: %[[Y:.+]] = nn.gated_act silu(%[[G]], %[[U]])
// CHECK-NEXT: return %[[Y]]
func.func @swiglu(%g: tensor<?x?x172xf32>, %u: tensor<?x?x172xf32>) -> tensor<?x?x172xf32> {
  %s = nn.unary "sigmoid"(%g) : (tensor<?x?x172xf32>) -> tensor<?x?x172xf32>
  %a = nn.binary "mul"(%g, %s) : (tensor<?x?x172xf32>, tensor<?x?x172xf32>) -> tensor<?x?x172xf32>
  %y = nn.binary "mul"(%a, %u) : (tensor<?x?x172xf32>, tensor<?x?x172xf32>) -> tensor<?x?x172xf32>
  return %y : tensor<?x?x172xf32>
}

// -----

// up * (sigmoid(g) * g): operand orders swapped.
// CHECK-LABEL: func @swiglu_swapped
// CHECK-SAME: (%[[G:.+]]: tensor<2x8xf32>, %[[U:.+]]: tensor<2x8xf32>)
// CHECK-NEXT: nn.gated_act silu(%[[G]], %[[U]])
func.func @swiglu_swapped(%g: tensor<2x8xf32>, %u: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %s = nn.unary "sigmoid"(%g) : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %a = nn.binary "mul"(%s, %g) : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %y = nn.binary "mul"(%u, %a) : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// -----

// GeGLU (tanh): the GELU is raised first, then fused with the up projection.
// CHECK-LABEL: func @geglu
// CHECK-SAME: (%[[G:.+]]: tensor<2x8xf32>, %[[U:.+]]: tensor<2x8xf32>)
// CHECK-NEXT: nn.gated_act gelu_tanh(%[[G]], %[[U]])
func.func @geglu(%g: tensor<2x8xf32>, %u: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %half = nn.constant dense<0.5> : tensor<f32>
  %three = nn.constant dense<3.0> : tensor<f32>
  %c = nn.constant dense<0.044715> : tensor<f32>
  %k = nn.constant dense<0.797884583> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %h = nn.binary "mul"(%g, %half) : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %p = nn.binary "pow"(%g, %three) : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %q = nn.binary "mul"(%p, %c) : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %s = nn.binary "add"(%g, %q) : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %t = nn.binary "mul"(%s, %k) : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %th = nn.unary "tanh"(%t) : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %a = nn.binary "add"(%th, %one) : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %act = nn.binary "mul"(%h, %a) : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %y = nn.binary "mul"(%act, %u) : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}
