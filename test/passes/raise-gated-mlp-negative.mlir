// RUN: %qopt-opt %s -qopt-raise-gated-mlp -split-input-file | FileCheck %s
// Products the pass must leave alone.

// SiLU read elsewhere too (its value is needed beside the product).
// CHECK-LABEL: func @silu_shared
// CHECK-NOT: nn.gated_act
func.func @silu_shared(%g: tensor<2x8xf32>, %u: tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>) {
  %s = nn.unary "sigmoid"(%g) : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %a = nn.binary "mul"(%g, %s) : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %y = nn.binary "mul"(%a, %u) : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  return %y, %a : tensor<2x8xf32>, tensor<2x8xf32>
}

// -----

// A broadcast product (up of another shape) is not the gated MLP's elementwise middle.
// CHECK-LABEL: func @broadcast
// CHECK-NOT: nn.gated_act
func.func @broadcast(%g: tensor<2x8xf32>, %u: tensor<8xf32>) -> tensor<2x8xf32> {
  %s = nn.unary "sigmoid"(%g) : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %a = nn.binary "mul"(%g, %s) : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %y = nn.binary "mul"(%a, %u) : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// -----

// Sigmoid of another tensor than the one it multiplies (a GLU with a different gate, not SiLU).
// CHECK-LABEL: func @glu
// CHECK-NOT: nn.gated_act
func.func @glu(%g: tensor<2x8xf32>, %h: tensor<2x8xf32>, %u: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %s = nn.unary "sigmoid"(%h) : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %a = nn.binary "mul"(%g, %s) : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %y = nn.binary "mul"(%a, %u) : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}
