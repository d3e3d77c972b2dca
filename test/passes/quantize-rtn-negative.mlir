// RUN: %qopt-opt %s -qopt-quantize-rtn="bits=4 group-size=32 exclude=lm_head" -split-input-file | FileCheck %s
// Matmuls the pass must leave in float.

// A non-constant weight (attention scores, a dynamic projection) is not a linear layer.
// CHECK-LABEL: func @activation_product
// CHECK: nn.matmul
// CHECK-NOT: qnt.linear
func.func @activation_product(%q: tensor<?x64xf32>, %k: tensor<64x?xf32>) -> tensor<?x?xf32> {
  %s = nn.matmul(%q, %k) : (tensor<?x64xf32>, tensor<64x?xf32>) -> tensor<?x?xf32>
  return %s : tensor<?x?xf32>
}

// -----

// Excluded by name.
// CHECK-LABEL: func @excluded
// CHECK: nn.matmul
// CHECK-NOT: qnt.linear
func.func @excluded(%x: tensor<?x64xf32>) -> tensor<?x128xf32> {
  %w = nn.constant dense<0.1> : tensor<64x128xf32> {name = "lm_head.weight"}
  %y = nn.matmul(%x, %w) : (tensor<?x64xf32>, tensor<64x128xf32>) -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}

// -----

// A tiny constant matmul (a rotary frequency table, K = 1) is not a weight layer.
// CHECK-LABEL: func @tiny
// CHECK: nn.matmul
// CHECK-NOT: qnt.linear
func.func @tiny(%p: tensor<?x1xf32>) -> tensor<?x32xf32> {
  %f = nn.constant dense<0.5> : tensor<1x32xf32> {name = "rotary_emb.inv_freq"}
  %y = nn.matmul(%p, %f) : (tensor<?x1xf32>, tensor<1x32xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}
