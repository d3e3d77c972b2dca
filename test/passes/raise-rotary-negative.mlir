// RUN: %qopt-opt %s -qopt-raise-rotary -split-input-file | FileCheck %s
// Near misses of a rotary embedding.

// The halves are swapped without negation: not a rotation.
// CHECK-LABEL: func @no_neg
// CHECK-NOT: nn.rotary
func.func @no_neg(%x: tensor<2x4x3x4xf32>, %c: tensor<1x1x3x4xf32>, %s: tensor<1x1x3x4xf32>) -> tensor<2x4x3x4xf32> {
  %lo_s = nn.constant dense<0> : tensor<1xi64>
  %mid = nn.constant dense<2> : tensor<1xi64>
  %end = nn.constant dense<4> : tensor<1xi64>
  %ax = nn.constant dense<3> : tensor<1xi64>
  %st = nn.constant dense<1> : tensor<1xi64>
  %a = nn.binary "mul"(%x, %c) : (tensor<2x4x3x4xf32>, tensor<1x1x3x4xf32>) -> tensor<2x4x3x4xf32>
  %x1 = nn.slice(%x, %lo_s, %mid, %ax, %st) : (tensor<2x4x3x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x4x3x2xf32>
  %x2 = nn.slice(%x, %mid, %end, %ax, %st) : (tensor<2x4x3x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x4x3x2xf32>
  %r = nn.concat(%x2, %x1) {axis = 3 : i64} : (tensor<2x4x3x2xf32>, tensor<2x4x3x2xf32>) -> tensor<2x4x3x4xf32>
  %b = nn.binary "mul"(%r, %s) : (tensor<2x4x3x4xf32>, tensor<1x1x3x4xf32>) -> tensor<2x4x3x4xf32>
  %y = nn.binary "add"(%a, %b) : (tensor<2x4x3x4xf32>, tensor<2x4x3x4xf32>) -> tensor<2x4x3x4xf32>
  return %y : tensor<2x4x3x4xf32>
}

// -----

// Rotation with cos/sin tables that are inputs, not computed from positions: nothing to fuse the angles from.
// CHECK-LABEL: func @table_inputs
// CHECK-NOT: nn.rotary
func.func @table_inputs(%x: tensor<2x4x3x4xf32>, %c: tensor<1x1x3x4xf32>, %s: tensor<1x1x3x4xf32>) -> tensor<2x4x3x4xf32> {
  %lo_s = nn.constant dense<0> : tensor<1xi64>
  %mid = nn.constant dense<2> : tensor<1xi64>
  %end = nn.constant dense<4> : tensor<1xi64>
  %ax = nn.constant dense<3> : tensor<1xi64>
  %st = nn.constant dense<1> : tensor<1xi64>
  %a = nn.binary "mul"(%x, %c) : (tensor<2x4x3x4xf32>, tensor<1x1x3x4xf32>) -> tensor<2x4x3x4xf32>
  %x1 = nn.slice(%x, %lo_s, %mid, %ax, %st) : (tensor<2x4x3x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x4x3x2xf32>
  %x2 = nn.slice(%x, %mid, %end, %ax, %st) : (tensor<2x4x3x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x4x3x2xf32>
  %n = nn.unary "neg"(%x2) : (tensor<2x4x3x2xf32>) -> tensor<2x4x3x2xf32>
  %r = nn.concat(%n, %x1) {axis = 3 : i64} : (tensor<2x4x3x2xf32>, tensor<2x4x3x2xf32>) -> tensor<2x4x3x4xf32>
  %b = nn.binary "mul"(%r, %s) : (tensor<2x4x3x4xf32>, tensor<1x1x3x4xf32>) -> tensor<2x4x3x4xf32>
  %y = nn.binary "add"(%a, %b) : (tensor<2x4x3x4xf32>, tensor<2x4x3x4xf32>) -> tensor<2x4x3x4xf32>
  return %y : tensor<2x4x3x4xf32>
}
