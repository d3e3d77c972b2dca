// RUN: %qopt-opt %s -qopt-raise-rotary -split-input-file | FileCheck %s
// Rotary embeddings as exporters write them become nn.rotary; the cos/sin tables go with them.

// scripts/llama2c_to_onnx.py: angles MatMul(Unsqueeze(Cast(P), 2), inv_freq), tables unsqueezed at the heads axis.
// CHECK-LABEL: func @llama2c
// CHECK-SAME: (%[[X:.+]]: tensor<?x8x?x8xf32>, %[[P:.+]]: tensor<?x?xi64>)
// CHECK: %[[F:.+]] = nn.constant
// CHECK-NEXT: %[[Y:.+]] = nn.rotary rotate_half(%[[X]], %[[P]], %[[F]]) : (tensor<?x8x?x8xf32>, tensor<?x?xi64>, tensor<1x4xf32>) -> tensor<?x8x?x8xf32>
// CHECK-NEXT: return %[[Y]]
func.func @llama2c(%x: tensor<?x8x?x8xf32>, %p: tensor<?x?xi64>) -> tensor<?x8x?x8xf32> {
  %inv = nn.constant dense<[[1.0, 0.1, 0.01, 0.001]]> : tensor<1x4xf32>
  %lo_s = nn.constant dense<0> : tensor<1xi64>
  %mid = nn.constant dense<4> : tensor<1xi64>
  %hi_e = nn.constant dense<9223372036854775807> : tensor<1xi64>
  %ax = nn.constant dense<-1> : tensor<1xi64>
  %st = nn.constant dense<1> : tensor<1xi64>
  %pf = nn.cast(%p) : (tensor<?x?xi64>) -> tensor<?x?xf32>
  %pu = nn.unsqueeze(%pf) {axes = array<i64: 2>} : (tensor<?x?xf32>) -> tensor<?x?x1xf32>
  %f = nn.matmul(%pu, %inv) : (tensor<?x?x1xf32>, tensor<1x4xf32>) -> tensor<?x?x4xf32>
  %e = nn.concat(%f, %f) {axis = -1 : i64} : (tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %cos = nn.unary "cos"(%e) : (tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
  %sin = nn.unary "sin"(%e) : (tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
  %c = nn.unsqueeze(%cos) {axes = array<i64: 1>} : (tensor<?x?x8xf32>) -> tensor<?x1x?x8xf32>
  %s = nn.unsqueeze(%sin) {axes = array<i64: 1>} : (tensor<?x?x8xf32>) -> tensor<?x1x?x8xf32>
  %a = nn.binary "mul"(%x, %c) : (tensor<?x8x?x8xf32>, tensor<?x1x?x8xf32>) -> tensor<?x8x?x8xf32>
  %x1 = nn.slice(%x, %lo_s, %mid, %ax, %st) : (tensor<?x8x?x8xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x8x?x4xf32>
  %x2 = nn.slice(%x, %mid, %hi_e, %ax, %st) : (tensor<?x8x?x8xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x8x?x4xf32>
  %n = nn.unary "neg"(%x2) : (tensor<?x8x?x4xf32>) -> tensor<?x8x?x4xf32>
  %r = nn.concat(%n, %x1) {axis = -1 : i64} : (tensor<?x8x?x4xf32>, tensor<?x8x?x4xf32>) -> tensor<?x8x?x8xf32>
  %b = nn.binary "mul"(%r, %s) : (tensor<?x8x?x8xf32>, tensor<?x1x?x8xf32>) -> tensor<?x8x?x8xf32>
  %y = nn.binary "add"(%a, %b) : (tensor<?x8x?x8xf32>, tensor<?x8x?x8xf32>) -> tensor<?x8x?x8xf32>
  return %y : tensor<?x8x?x8xf32>
}

// -----

// HF: angles Transpose(MatMul(inv_freq [1, 2, 1], Cast(P) [1, 1, S])); positions squeezed to [1, S].
// CHECK-LABEL: func @hf
// CHECK-SAME: (%[[X:.+]]: tensor<2x4x3x4xf32>, %[[P:.+]]: tensor<1x1x3xi64>)
// CHECK: %[[SQ:.+]] = nn.squeeze(%[[P]]) {axes = array<i64: 1>} : (tensor<1x1x3xi64>) -> tensor<1x3xi64>
// CHECK-NEXT: nn.rotary rotate_half(%[[X]], %[[SQ]], %{{.+}})
func.func @hf(%x: tensor<2x4x3x4xf32>, %p: tensor<1x1x3xi64>) -> tensor<2x4x3x4xf32> {
  %inv = nn.constant dense<[[[1.0], [0.01]]]> : tensor<1x2x1xf32>
  %lo_s = nn.constant dense<0> : tensor<1xi64>
  %mid = nn.constant dense<2> : tensor<1xi64>
  %end = nn.constant dense<4> : tensor<1xi64>
  %ax = nn.constant dense<3> : tensor<1xi64>
  %st = nn.constant dense<1> : tensor<1xi64>
  %pf = nn.cast(%p) : (tensor<1x1x3xi64>) -> tensor<1x1x3xf32>
  %m = nn.matmul(%inv, %pf) : (tensor<1x2x1xf32>, tensor<1x1x3xf32>) -> tensor<1x2x3xf32>
  %f = nn.transpose(%m) {perm = array<i64: 0, 2, 1>} : (tensor<1x2x3xf32>) -> tensor<1x3x2xf32>
  %e = nn.concat(%f, %f) {axis = -1 : i64} : (tensor<1x3x2xf32>, tensor<1x3x2xf32>) -> tensor<1x3x4xf32>
  %cos = nn.unary "cos"(%e) : (tensor<1x3x4xf32>) -> tensor<1x3x4xf32>
  %sin = nn.unary "sin"(%e) : (tensor<1x3x4xf32>) -> tensor<1x3x4xf32>
  %c = nn.unsqueeze(%cos) {axes = array<i64: 1>} : (tensor<1x3x4xf32>) -> tensor<1x1x3x4xf32>
  %s = nn.unsqueeze(%sin) {axes = array<i64: 1>} : (tensor<1x3x4xf32>) -> tensor<1x1x3x4xf32>
  %a = nn.binary "mul"(%c, %x) : (tensor<1x1x3x4xf32>, tensor<2x4x3x4xf32>) -> tensor<2x4x3x4xf32>
  %x1 = nn.slice(%x, %lo_s, %mid, %ax, %st) : (tensor<2x4x3x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x4x3x2xf32>
  %x2 = nn.slice(%x, %mid, %end, %ax, %st) : (tensor<2x4x3x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x4x3x2xf32>
  %n = nn.unary "neg"(%x2) : (tensor<2x4x3x2xf32>) -> tensor<2x4x3x2xf32>
  %r = nn.concat(%n, %x1) {axis = 3 : i64} : (tensor<2x4x3x2xf32>, tensor<2x4x3x2xf32>) -> tensor<2x4x3x4xf32>
  %b = nn.binary "mul"(%s, %r) : (tensor<1x1x3x4xf32>, tensor<2x4x3x4xf32>) -> tensor<2x4x3x4xf32>
  %y = nn.binary "add"(%b, %a) : (tensor<2x4x3x4xf32>, tensor<2x4x3x4xf32>) -> tensor<2x4x3x4xf32>
  return %y : tensor<2x4x3x4xf32>
}
