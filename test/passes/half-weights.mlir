// RUN: %qopt-opt %s --qopt-half-weights --split-input-file | FileCheck %s

// A float32 linear weight [K, N] becomes float16 [N, K] under matmul_q {bits = 16}; an embedding table float16
// with a cast of the gathered rows. The values are the weights rounded to float16 (transposed: row n is column n).
// CHECK-LABEL: func.func @linear
// CHECK-DAG: %[[W:.*]] = kern.weight dense_resource<{{.*}}> : tensor<3x2xf16> {name = "w"}
// CHECK: %[[Y:.*]] = kern.launch "matmul_q"(%arg0, %[[W]]) {attrs = {bits = 16 : i64, group_size = 2 : i64}} : (tensor<?x2xf32>, tensor<3x2xf16>) -> tensor<?x3xf32>
// CHECK: return %[[Y]]
// The blob (after its 4-byte alignment header): rows [1, 4], [2, 5], [3, 6] as little-endian float16.
// CHECK: w.f16: "0x08000000003C00440040004500420046"
func.func @linear(%x: tensor<?x2xf32>) -> tensor<?x3xf32> {
  %w = kern.weight dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32> {name = "w"}
  %y = kern.launch "matmul"(%x, %w) : (tensor<?x2xf32>, tensor<2x3xf32>) -> tensor<?x3xf32>
  return %y : tensor<?x3xf32>
}

// -----

// CHECK-LABEL: func.func @embedding
// CHECK: %[[T:.*]] = kern.weight dense_resource<{{.*}}> : tensor<4x2xf16> {name = "table"}
// CHECK: %[[G:.*]] = kern.launch "gather"(%[[T]], %arg0) {attrs = {axis = 0 : i64}} : (tensor<4x2xf16>, tensor<1x3xi64>) -> tensor<1x3x2xf16>
// CHECK: %[[R:.*]] = kern.launch "cast"(%[[G]]) {attrs = {to = 1 : i64}} : (tensor<1x3x2xf16>) -> tensor<1x3x2xf32>
// CHECK: return %[[R]]
func.func @embedding(%ids: tensor<1x3xi64>) -> tensor<1x3x2xf32> {
  %t = kern.weight dense<[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]> : tensor<4x2xf32> {name = "table"}
  %g = kern.launch "gather"(%t, %ids) {attrs = {axis = 0 : i64}} : (tensor<4x2xf32>, tensor<1x3xi64>) -> tensor<1x3x2xf32>
  return %g : tensor<1x3x2xf32>
}

// -----

// A tied output head (the table's transpose) and the table become one float16 weight, stored once.
// CHECK-LABEL: func.func @tied
// CHECK: %[[T:.*]] = kern.weight dense_resource<[[BLOB:.*]]> : tensor<2x2xf16> {name = "embed"}
// CHECK: kern.launch "gather"(%[[T]]
// CHECK: %[[H:.*]] = kern.weight dense_resource<[[BLOB]]> : tensor<2x2xf16> {name = "embed"}
// CHECK: kern.launch "matmul_q"(%{{.*}}, %[[H]])
func.func @tied(%ids: tensor<1x1xi64>) -> tensor<1x1x2xf32> {
  %t = kern.weight dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32> {name = "embed"}
  %h = kern.weight dense<[[1.0, 3.0], [2.0, 4.0]]> : tensor<2x2xf32> {name = "lm_head"}
  %g = kern.launch "gather"(%t, %ids) {attrs = {axis = 0 : i64}} : (tensor<2x2xf32>, tensor<1x1xi64>) -> tensor<1x1x2xf32>
  %y = kern.launch "matmul"(%g, %h) : (tensor<1x1x2xf32>, tensor<2x2xf32>) -> tensor<1x1x2xf32>
  return %y : tensor<1x1x2xf32>
}

// -----

// Not rewritten: a product of two activations, a linear_split with a bias, a float64 weight, a gather on axis 1.
// CHECK-LABEL: func.func @untouched
// CHECK: kern.launch "matmul"(%arg0, %arg1)
// CHECK: kern.launch "linear_split"(%arg0, %{{.*}}, %{{.*}})
// CHECK: kern.launch "matmul"(%arg2, %{{.*}}) : (tensor<1x2xf64>, tensor<2x2xf64>)
// CHECK: kern.launch "gather"(%{{.*}}, %arg3) {attrs = {axis = 1 : i64}}
// CHECK-NOT: f16
func.func @untouched(%a: tensor<1x2xf32>, %b: tensor<2x2xf32>, %c: tensor<1x2xf64>, %i: tensor<1xi64>) -> (tensor<1x2xf32>, tensor<1x1xf32>, tensor<1x1xf32>, tensor<1x2xf64>, tensor<2x1xf32>) {
  %p = kern.launch "matmul"(%a, %b) : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %w = kern.weight dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32> {name = "w"}
  %bias = kern.weight dense<[0.5, 0.25]> : tensor<2xf32> {name = "b"}
  %s:2 = kern.launch "linear_split"(%a, %w, %bias) {attrs = {splits = array<i64: 1, 1>, num_outputs = 2 : i64}} : (tensor<1x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> (tensor<1x1xf32>, tensor<1x1xf32>)
  %d = kern.weight dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf64> {name = "d"}
  %e = kern.launch "matmul"(%c, %d) : (tensor<1x2xf64>, tensor<2x2xf64>) -> tensor<1x2xf64>
  %t = kern.weight dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32> {name = "t"}
  %g = kern.launch "gather"(%t, %i) {attrs = {axis = 1 : i64}} : (tensor<2x2xf32>, tensor<1xi64>) -> tensor<2x1xf32>
  return %p, %s#0, %s#1, %e, %g : tensor<1x2xf32>, tensor<1x1xf32>, tensor<1x1xf32>, tensor<1x2xf64>, tensor<2x1xf32>
}
