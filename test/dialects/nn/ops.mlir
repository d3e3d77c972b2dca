// RUN: %qopt-opt %s | %qopt-opt | FileCheck %s
// Every nn op round-trips through its printed form.

// CHECK-LABEL: func @elementwise
func.func @elementwise(%x: tensor<2x3xf32>, %y: tensor<3xf32>, %c: tensor<2x3xi1>) -> tensor<2x3xf32> {
  // CHECK: nn.unary "leaky_relu"(%{{.*}}) {alpha = 1.000000e-01 : f64}
  %0 = nn.unary "leaky_relu"(%x) {alpha = 0.1 : f64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: nn.binary "add"
  %1 = nn.binary "add"(%0, %y) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: nn.binary "less"{{.*}} -> tensor<2x3xi1>
  %2 = nn.binary "less"(%1, %y) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
  // CHECK: nn.where
  %3 = nn.where(%2, %1, %x) : (tensor<2x3xi1>, tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: nn.cast{{.*}} -> tensor<2x3xi64>
  %4 = nn.cast(%3) : (tensor<2x3xf32>) -> tensor<2x3xi64>
  // CHECK: nn.unary "isnan"{{.*}} -> tensor<2x3xi1>
  %5 = nn.unary "isnan"(%3) : (tensor<2x3xf32>) -> tensor<2x3xi1>
  return %3 : tensor<2x3xf32>
}

// CHECK-LABEL: func @linalg
func.func @linalg(%x: tensor<?x4x8xf32>, %w: tensor<8x16xf32>, %g: tensor<16xf32>) -> tensor<?x4xi64> {
  // CHECK: nn.matmul{{.*}} -> tensor<?x4x16xf32>
  %0 = nn.matmul(%x, %w) : (tensor<?x4x8xf32>, tensor<8x16xf32>) -> tensor<?x4x16xf32>
  // CHECK: nn.softmax{{.*}}axis = 1
  %1 = nn.softmax(%0) {axis = 1 : i64} : (tensor<?x4x16xf32>) -> tensor<?x4x16xf32>
  // CHECK: nn.layer_norm
  %2 = nn.layer_norm(%1, %g) {epsilon = 1.0e-6 : f64} : (tensor<?x4x16xf32>, tensor<16xf32>) -> tensor<?x4x16xf32>
  // CHECK: nn.reduce{{.*}}kind = "mean"{{.*}} -> tensor<?x4x1xf32>
  %3 = nn.reduce(%2) {kind = "mean", axes = array<i64: -1>} : (tensor<?x4x16xf32>) -> tensor<?x4x1xf32>
  // CHECK: nn.arg_reduce{{.*}} -> tensor<?x4xi64>
  %4 = nn.arg_reduce(%2) {kind = "max", axis = 2 : i64, keepdims = 0 : i64} : (tensor<?x4x16xf32>) -> tensor<?x4xi64>
  return %4 : tensor<?x4xi64>
}

// CHECK-LABEL: func @shapes
func.func @shapes(%x: tensor<?x6xf32>, %i: tensor<3xi64>, %s: tensor<2xi64>) -> tensor<?xi64> {
  // CHECK: nn.shape{{.*}} -> tensor<2xi64>
  %0 = nn.shape(%x) : (tensor<?x6xf32>) -> tensor<2xi64>
  // CHECK: nn.reshape
  %1 = nn.reshape(%x, %0) : (tensor<?x6xf32>, tensor<2xi64>) -> tensor<?x?xf32>
  // CHECK: nn.transpose{{.*}}perm = array<i64: 1, 0>
  %2 = nn.transpose(%x) {perm = array<i64: 1, 0>} : (tensor<?x6xf32>) -> tensor<6x?xf32>
  // CHECK: nn.unsqueeze
  %3 = nn.unsqueeze(%2) {axes = array<i64: 0>} : (tensor<6x?xf32>) -> tensor<1x6x?xf32>
  // CHECK: nn.squeeze
  %4 = nn.squeeze(%3) {axes = array<i64: 0>} : (tensor<1x6x?xf32>) -> tensor<6x?xf32>
  // CHECK: nn.flatten
  %5 = nn.flatten(%3) : (tensor<1x6x?xf32>) -> tensor<1x?xf32>
  // CHECK: nn.concat
  %6 = nn.concat(%x, %x) {axis = 0 : i64} : (tensor<?x6xf32>, tensor<?x6xf32>) -> tensor<?x6xf32>
  %none = nn.none
  // CHECK: nn.slice
  %7 = nn.slice(%x, %s, %s, %none, %none) : (tensor<?x6xf32>, tensor<2xi64>, tensor<2xi64>, none, none) -> tensor<?x?xf32>
  // CHECK: nn.gather{{.*}}axis = 1
  %8 = nn.gather(%x, %i) {axis = 1 : i64} : (tensor<?x6xf32>, tensor<3xi64>) -> tensor<?x3xf32>
  // CHECK: nn.expand
  %9 = nn.expand(%x, %s) : (tensor<?x6xf32>, tensor<2xi64>) -> tensor<?x6xf32>
  // CHECK: nn.trilu
  %10 = nn.trilu(%x, %none) {upper = 0 : i64} : (tensor<?x6xf32>, none) -> tensor<?x6xf32>
  // CHECK: nn.size
  %11 = nn.size(%x) : (tensor<?x6xf32>) -> tensor<i64>
  // CHECK: nn.range
  %12 = nn.range(%11, %11, %11) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
  // CHECK: nn.constant_of_shape{{.*}} -> tensor<?x?xf32>
  %13 = nn.constant_of_shape(%s) {value = 1.0 : f64} : (tensor<2xi64>) -> tensor<?x?xf32>
  return %12 : tensor<?xi64>
}

// CHECK-LABEL: func @generic
func.func @generic(%x: tensor<2xf32>) {
  // CHECK: nn.onnx_node "Relu"(%{{.*}}) {attrs = {}, version = 17 : i64} : (tensor<2xf32>) -> !nn.unknown
  %0 = nn.onnx_node "Relu"(%x) {attrs = {}, version = 17 : i64} : (tensor<2xf32>) -> !nn.unknown
  // CHECK: nn.constant dense<1.000000e+00> : tensor<2xf32>
  %1 = nn.constant dense<1.0> : tensor<2xf32>
  return
}
