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

// CHECK-LABEL: func @vision_and_indexing
func.func @vision_and_indexing(%x: tensor<?x3x8x8xf32>, %w: tensor<4x3x3x3xf32>, %i: tensor<2x2xi64>,
                               %u: tensor<2xf32>, %v: tensor<4x4xf32>) {
  %none = nn.none
  // CHECK: nn.conv{{.*}} -> tensor<?x4x8x8xf32>
  %0 = nn.conv(%x, %w, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<?x3x8x8xf32>, tensor<4x3x3x3xf32>, none) -> tensor<?x4x8x8xf32>
  // CHECK: nn.pool{{.*}}kind = "max"{{.*}} -> tensor<?x4x4x4xf32>
  %1 = nn.pool(%0) {kind = "max", kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>} : (tensor<?x4x8x8xf32>) -> tensor<?x4x4x4xf32>
  // CHECK: nn.pool{{.*}}global = 1{{.*}} -> tensor<?x4x1x1xf32>
  %2 = nn.pool(%1) {kind = "avg", global = 1 : i64} : (tensor<?x4x4x4xf32>) -> tensor<?x4x1x1xf32>
  // CHECK: nn.gather_elements
  %3 = nn.gather_elements(%v, %i) {axis = 1 : i64} : (tensor<4x4xf32>, tensor<2x2xi64>) -> tensor<2x2xf32>
  // CHECK: nn.gather_nd{{.*}} -> tensor<2xf32>
  %4 = nn.gather_nd(%v, %i) : (tensor<4x4xf32>, tensor<2x2xi64>) -> tensor<2xf32>
  // CHECK: nn.scatter_nd
  %5 = nn.scatter_nd(%v, %i, %u) {reduction = "add"} : (tensor<4x4xf32>, tensor<2x2xi64>, tensor<2xf32>) -> tensor<4x4xf32>
  %reps = nn.constant dense<[2, 1]> : tensor<2xi64>
  // CHECK: nn.tile{{.*}} -> tensor<8x4xf32>
  %6 = nn.tile(%v, %reps) : (tensor<4x4xf32>, tensor<2xi64>) -> tensor<8x4xf32>
  %pads = nn.constant dense<[0, 1, 0, 1]> : tensor<4xi64>
  // CHECK: nn.pad{{.*}}mode = "reflect"{{.*}} -> tensor<4x6xf32>
  %7 = nn.pad(%v, %pads, %none) {mode = "reflect"} : (tensor<4x4xf32>, tensor<4xi64>, none) -> tensor<4x6xf32>
  %k = nn.constant dense<3> : tensor<1xi64>
  // CHECK: nn.topk{{.*}} -> (tensor<4x3xf32>, tensor<4x3xi64>)
  %8:2 = nn.topk(%v, %k) : (tensor<4x4xf32>, tensor<1xi64>) -> (tensor<4x3xf32>, tensor<4x3xi64>)
  %ax = nn.constant dense<0> : tensor<i64>
  // CHECK: nn.cumsum{{.*}}exclusive = 1
  %9 = nn.cumsum(%v, %ax) {exclusive = 1 : i64} : (tensor<4x4xf32>, tensor<i64>) -> tensor<4x4xf32>
  return
}

// An FP8 KV cache's append and attention with their scales (and the keys' offsets) as operands.
// CHECK-LABEL: func @fp8_cache
func.func @fp8_cache(%q: tensor<1x4x1x8xf32>, %x: tensor<1x2x1x8xf32>) -> tensor<1x4x1x8xf32> {
  %len = nn.state "kv.length" : tensor<1xi64>
  %k = nn.state "kv.0.key" : tensor<1x2x16x8xf8E4M3FN>
  %v = nn.state "kv.0.value" : tensor<1x2x16x8xf8E4M3FN>
  %ks = nn.constant dense<[0.5, 0.25]> : tensor<2xf32>
  %vs = nn.constant dense<[0.125, 1.0]> : tensor<2xf32>
  %ko = nn.constant dense<1.0> : tensor<2x8xf32>
  %none = nn.none
  // CHECK: %[[K:.+]] = nn.kv_append(%{{.+}}, %{{.+}}, %{{.+}}) scales(%[[KS:.+]]) offsets(%{{.+}}) : (tensor<1x2x16x8xf8E4M3FN>, tensor<1x2x1x8xf32>, tensor<1xi64>, tensor<2xf32>, tensor<2x8xf32>) -> tensor<1x2x16x8xf8E4M3FN>
  %k1 = nn.kv_append(%k, %x, %len) scales(%ks) offsets(%ko) : (tensor<1x2x16x8xf8E4M3FN>, tensor<1x2x1x8xf32>, tensor<1xi64>, tensor<2xf32>, tensor<2x8xf32>) -> tensor<1x2x16x8xf8E4M3FN>
  // CHECK: %[[V:.+]] = nn.kv_append(%{{.+}}, %{{.+}}, %{{.+}}) scales(%[[VS:.+]]) : (tensor<1x2x16x8xf8E4M3FN>
  %v1 = nn.kv_append(%v, %x, %len) scales(%vs) : (tensor<1x2x16x8xf8E4M3FN>, tensor<1x2x1x8xf32>, tensor<1xi64>, tensor<2xf32>) -> tensor<1x2x16x8xf8E4M3FN>
  // CHECK: nn.attention(%{{.+}}, %[[K]], %[[V]], %{{.+}}, %{{.+}}) scales(%[[KS]], %[[VS]]) {causal = 1 : i64}
  %o = nn.attention(%q, %k1, %v1, %none, %len) scales(%ks, %vs) {causal = 1 : i64} : (tensor<1x4x1x8xf32>, tensor<1x2x16x8xf8E4M3FN>, tensor<1x2x16x8xf8E4M3FN>, none, tensor<1xi64>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x4x1x8xf32>
  return %o : tensor<1x4x1x8xf32>
}
