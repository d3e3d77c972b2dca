// RUN: %qopt-opt %s | %qopt-opt | FileCheck %s
// RUN: %qopt-opt %s --canonicalize | FileCheck %s --check-prefix=CANON

// CHECK-LABEL: func @program
// CHECK-SAME: kern.arena_bytes = 256
func.func @program(%x: tensor<?x4xf32> {nn.name = "x", kern.max_shape = array<i64: 8, 4>}) -> tensor<?x4xf32>
    attributes {kern.arena_bytes = 256 : i64} {
  // CHECK: %[[W:.*]] = kern.weight dense<1.000000e+00> : tensor<4xf32> {name = "w"}
  %w = kern.weight dense<1.0> : tensor<4xf32> {name = "w"}
  // CHECK: %[[N:.*]] = kern.absent
  %n = kern.absent
  // CHECK: kern.launch "binary"(%{{.*}}, %[[W]]) {attrs = {fn = "add"}, max_shapes = [array<i64: 8, 4>], offsets = array<i64: 0>}
  %0 = kern.launch "binary"(%x, %w) {attrs = {fn = "add"}, max_shapes = [array<i64: 8, 4>], offsets = array<i64: 0>}
      : (tensor<?x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  // CHECK: kern.launch "trilu"(%{{.*}}, %[[N]])
  %1 = kern.launch "trilu"(%0, %n) : (tensor<?x4xf32>, none) -> tensor<?x4xf32>
  // Several results.
  // CHECK: kern.launch "topk"
  %k = kern.weight dense<2> : tensor<1xi64>
  %2:2 = kern.launch "topk"(%1, %k) : (tensor<?x4xf32>, tensor<1xi64>) -> (tensor<?x2xf32>, tensor<?x2xi64>)
  return %1 : tensor<?x4xf32>
}

// Session state and its in-place updates; an in-place launch is kept by canonicalization though its result is
// unused (it writes the state), a pure one is not.
// CHECK-LABEL: func @state
// CHECK: %[[L:.*]] = kern.state "kv.length" {offset = 0 : i64} : tensor<1xi64>
// CHECK: kern.launch "kv_advance"(%[[L]], %{{.*}})
// CHECK: kern.launch "unary"
// CANON-LABEL: func @state
// CANON: %[[L:.*]] = kern.state "kv.length"
// CANON: kern.launch "kv_advance"(%[[L]], %{{.*}})
// CANON-NOT: kern.launch "unary"
func.func @state(%x: tensor<1x2x3x4xf32>, %sizes: tensor<4xi64>) {
  %len = kern.state "kv.length" {offset = 0 : i64} : tensor<1xi64>
  %0 = kern.launch "kv_advance"(%len, %sizes) {attrs = {axis = 2 : i64}} : (tensor<1xi64>, tensor<4xi64>) -> tensor<1xi64>
  %1 = kern.launch "unary"(%x) {attrs = {fn = "exp"}} : (tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32>
  return
}
