// RUN: %qopt-opt %s -qopt-raise-attention -split-input-file | FileCheck %s
// Near misses of attention that must stay decomposed.

// The softmax runs over the query axis, not the keys.
// CHECK-LABEL: func @wrong_axis
// CHECK-NOT: nn.attention
func.func @wrong_axis(%q: tensor<2x4x7x16xf32>, %k: tensor<2x4x7x16xf32>, %v: tensor<2x4x7x16xf32>) -> tensor<2x4x7x16xf32> {
  %kt = nn.transpose(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<2x4x7x16xf32>) -> tensor<2x4x16x7xf32>
  %s = nn.matmul(%q, %kt) : (tensor<2x4x7x16xf32>, tensor<2x4x16x7xf32>) -> tensor<2x4x7x7xf32>
  %p = nn.softmax(%s) {axis = 2 : i64} : (tensor<2x4x7x7xf32>) -> tensor<2x4x7x7xf32>
  %o = nn.matmul(%p, %v) : (tensor<2x4x7x7xf32>, tensor<2x4x7x16xf32>) -> tensor<2x4x7x16xf32>
  return %o : tensor<2x4x7x16xf32>
}

// -----

// The attention weights are an output too.
// CHECK-LABEL: func @weights_returned
// CHECK-NOT: nn.attention
func.func @weights_returned(%q: tensor<2x4x7x16xf32>, %k: tensor<2x4x7x16xf32>, %v: tensor<2x4x7x16xf32>) -> (tensor<2x4x7x16xf32>, tensor<2x4x7x7xf32>) {
  %kt = nn.transpose(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<2x4x7x16xf32>) -> tensor<2x4x16x7xf32>
  %s = nn.matmul(%q, %kt) : (tensor<2x4x7x16xf32>, tensor<2x4x16x7xf32>) -> tensor<2x4x7x7xf32>
  %p = nn.softmax(%s) : (tensor<2x4x7x7xf32>) -> tensor<2x4x7x7xf32>
  %o = nn.matmul(%p, %v) : (tensor<2x4x7x7xf32>, tensor<2x4x7x16xf32>) -> tensor<2x4x7x16xf32>
  return %o, %p : tensor<2x4x7x16xf32>, tensor<2x4x7x7xf32>
}

// -----

// K is not transposed over its last two dims (the product contracts K's sequence axis with Q's head dim).
// CHECK-LABEL: func @wrong_transpose
// CHECK-NOT: nn.attention
func.func @wrong_transpose(%q: tensor<2x4x7x16xf32>, %k: tensor<2x16x4x7xf32>, %v: tensor<2x4x7x16xf32>) -> tensor<2x4x7x16xf32> {
  %kt = nn.transpose(%k) {perm = array<i64: 0, 2, 1, 3>} : (tensor<2x16x4x7xf32>) -> tensor<2x4x16x7xf32>
  %s = nn.matmul(%q, %kt) : (tensor<2x4x7x16xf32>, tensor<2x4x16x7xf32>) -> tensor<2x4x7x7xf32>
  %p = nn.softmax(%s) : (tensor<2x4x7x7xf32>) -> tensor<2x4x7x7xf32>
  %o = nn.matmul(%p, %v) : (tensor<2x4x7x7xf32>, tensor<2x4x7x16xf32>) -> tensor<2x4x7x16xf32>
  return %o : tensor<2x4x7x16xf32>
}

// -----

// The scale is a tensor, not a scalar constant.
// CHECK-LABEL: func @tensor_scale
// CHECK-NOT: nn.attention
func.func @tensor_scale(%q: tensor<2x4x7x16xf32>, %k: tensor<2x4x7x16xf32>, %v: tensor<2x4x7x16xf32>, %c: tensor<2x4x7x7xf32>) -> tensor<2x4x7x16xf32> {
  %kt = nn.transpose(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<2x4x7x16xf32>) -> tensor<2x4x16x7xf32>
  %s = nn.matmul(%q, %kt) : (tensor<2x4x7x16xf32>, tensor<2x4x16x7xf32>) -> tensor<2x4x7x7xf32>
  %m = nn.binary "mul"(%s, %c) : (tensor<2x4x7x7xf32>, tensor<2x4x7x7xf32>) -> tensor<2x4x7x7xf32>
  %p = nn.softmax(%m) : (tensor<2x4x7x7xf32>) -> tensor<2x4x7x7xf32>
  %o = nn.matmul(%p, %v) : (tensor<2x4x7x7xf32>, tensor<2x4x7x16xf32>) -> tensor<2x4x7x16xf32>
  return %o : tensor<2x4x7x16xf32>
}
