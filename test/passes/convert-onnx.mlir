// RUN: %qopt-opt %s -qopt-convert-onnx -split-input-file | FileCheck %s
// One case per op family: generic ONNX nodes become nn ops with inferred types; static shape arithmetic folds.

// CHECK-LABEL: func @elementwise
func.func @elementwise(%a: tensor<2x3xf32>, %b: tensor<3xf32>) -> (!nn.unknown, !nn.unknown, !nn.unknown) {
  // CHECK: %[[ADD:.*]] = nn.binary "add"(%{{.*}}, %{{.*}}) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %0 = nn.onnx_node "Add"(%a, %b) {attrs = {}, version = 17 : i64} : (tensor<2x3xf32>, tensor<3xf32>) -> !nn.unknown
  // CHECK: nn.unary "sigmoid"(%[[ADD]])
  %1 = nn.onnx_node "Sigmoid"(%0) {attrs = {}, version = 17 : i64} : (!nn.unknown) -> !nn.unknown
  // CHECK: nn.unary "leaky_relu"({{.*}}) {alpha = 0.20000000298023224 : f64}
  %2 = nn.onnx_node "LeakyRelu"(%1) {attrs = {alpha = 0.2 : f32}, version = 16 : i64} : (!nn.unknown) -> !nn.unknown
  // CHECK: nn.binary "greater_equal"{{.*}} -> tensor<2x3xi1>
  %3 = nn.onnx_node "GreaterOrEqual"(%2, %b) {attrs = {}, version = 16 : i64} : (!nn.unknown, tensor<3xf32>) -> !nn.unknown
  return %1, %2, %3 : !nn.unknown, !nn.unknown, !nn.unknown
}

// -----

// CHECK-LABEL: func @variadic
func.func @variadic(%a: tensor<4xf32>, %b: tensor<4xf32>, %c: tensor<4xf32>) -> !nn.unknown {
  // Mean(a, b, c) = ((a + b) + c) / 3
  // CHECK: nn.binary "add"
  // CHECK: nn.binary "add"
  // CHECK: %[[N:.*]] = nn.constant dense<3.000000e+00> : tensor<f32>
  // CHECK: nn.binary "div"(%{{.*}}, %[[N]])
  %0 = nn.onnx_node "Mean"(%a, %b, %c) {attrs = {}, version = 13 : i64} : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> !nn.unknown
  return %0 : !nn.unknown
}

// -----

// CHECK-LABEL: func @gemm
func.func @gemm(%a: tensor<4x3xf32>, %b: tensor<5x3xf32>, %c: tensor<5xf32>) -> !nn.unknown {
  // CHECK: %[[BT:.*]] = nn.transpose(%{{.*}}) {perm = array<i64: 1, 0>} : (tensor<5x3xf32>) -> tensor<3x5xf32>
  // CHECK: %[[M:.*]] = nn.matmul(%{{.*}}, %[[BT]]) : (tensor<4x3xf32>, tensor<3x5xf32>) -> tensor<4x5xf32>
  // CHECK: nn.binary "mul"(%[[M]]
  // CHECK: nn.binary "add"
  %0 = nn.onnx_node "Gemm"(%a, %b, %c) {attrs = {transB = 1 : i64, alpha = 2.0 : f32}, version = 13 : i64} : (tensor<4x3xf32>, tensor<5x3xf32>, tensor<5xf32>) -> !nn.unknown
  return %0 : !nn.unknown
}

// -----

// CHECK-LABEL: func @reduce_versions
func.func @reduce_versions(%x: tensor<2x8xf32>) -> (!nn.unknown, !nn.unknown) {
  // Opset 13 takes axes as an attribute, opset 18 as an input.
  // CHECK: nn.reduce(%{{.*}}) {axes = array<i64: -1>, kind = "mean"} : (tensor<2x8xf32>) -> tensor<2x1xf32>
  %0 = nn.onnx_node "ReduceMean"(%x) {attrs = {axes = array<i64: -1>}, version = 13 : i64} : (tensor<2x8xf32>) -> !nn.unknown
  %axes = nn.constant dense<[0]> : tensor<1xi64>
  // CHECK: nn.reduce(%{{.*}}) {axes = array<i64: 0>, keepdims = 0 : i64, kind = "max"} : (tensor<2x8xf32>) -> tensor<8xf32>
  %1 = nn.onnx_node "ReduceMax"(%x, %axes) {attrs = {keepdims = 0 : i64}, version = 18 : i64} : (tensor<2x8xf32>, tensor<1xi64>) -> !nn.unknown
  return %0, %1 : !nn.unknown, !nn.unknown
}

// -----

// CHECK-LABEL: func @dynamic_reshape
func.func @dynamic_reshape(%x: tensor<?x?x64xf32>) -> !nn.unknown {
  // The shape sub-graph keeps its dynamic entries, but the reshape still learns the static ones.
  %s = nn.onnx_node "Shape"(%x) {attrs = {}, version = 17 : i64} : (tensor<?x?x64xf32>) -> !nn.unknown
  %i0 = nn.constant dense<0> : tensor<i64>
  %d0 = nn.onnx_node "Gather"(%s, %i0) {attrs = {axis = 0 : i64}, version = 13 : i64} : (!nn.unknown, tensor<i64>) -> !nn.unknown
  %ax = nn.constant dense<[0]> : tensor<1xi64>
  %u0 = nn.onnx_node "Unsqueeze"(%d0, %ax) {attrs = {}, version = 13 : i64} : (!nn.unknown, tensor<1xi64>) -> !nn.unknown
  %rest = nn.constant dense<[-1, 8, 8]> : tensor<3xi64>
  %shape = nn.onnx_node "Concat"(%u0, %rest) {attrs = {axis = 0 : i64}, version = 13 : i64} : (!nn.unknown, tensor<3xi64>) -> !nn.unknown
  // CHECK: nn.reshape({{.*}}) : (tensor<?x?x64xf32>, tensor<4xi64>) -> tensor<?x?x8x8xf32>
  %r = nn.onnx_node "Reshape"(%x, %shape) {attrs = {}, version = 14 : i64} : (tensor<?x?x64xf32>, !nn.unknown) -> !nn.unknown
  return %r : !nn.unknown
}

// -----

// CHECK-LABEL: func @static_shape_folds
func.func @static_shape_folds(%x: tensor<2x3x4xf32>) -> !nn.unknown {
  %s = nn.onnx_node "Shape"(%x) {attrs = {start = 1 : i64}, version = 15 : i64} : (tensor<2x3x4xf32>) -> !nn.unknown
  // CHECK-NOT: nn.shape
  // CHECK: nn.reshape(%{{.*}}, %{{.*}}) : (tensor<2x3x4xf32>, tensor<2xi64>) -> tensor<3x8xf32>
  %m = nn.constant dense<[1, 2]> : tensor<2xi64>
  %t = nn.onnx_node "Mul"(%s, %m) {attrs = {}, version = 14 : i64} : (!nn.unknown, tensor<2xi64>) -> !nn.unknown
  %r = nn.onnx_node "Reshape"(%x, %t) {attrs = {}, version = 14 : i64} : (tensor<2x3x4xf32>, !nn.unknown) -> !nn.unknown
  return %r : !nn.unknown
}

// -----

// CHECK-LABEL: func @split
func.func @split(%x: tensor<6x4xf32>) -> (!nn.unknown, !nn.unknown) {
  %sizes = nn.constant dense<[2, 4]> : tensor<2xi64>
  // CHECK: nn.slice{{.*}} -> tensor<2x4xf32>
  // CHECK: nn.slice{{.*}} -> tensor<4x4xf32>
  %0:2 = nn.onnx_node "Split"(%x, %sizes) {attrs = {axis = 0 : i64}, version = 13 : i64} : (tensor<6x4xf32>, tensor<2xi64>) -> (!nn.unknown, !nn.unknown)
  return %0#0, %0#1 : !nn.unknown, !nn.unknown
}

// -----

// CHECK-LABEL: func @softmax_cast_where
func.func @softmax_cast_where(%x: tensor<2x5xf32>, %i: tensor<2x5xi64>) -> (!nn.unknown, !nn.unknown) {
  // CHECK: nn.softmax(%{{.*}}) {log = 1 : i64}
  %0 = nn.onnx_node "LogSoftmax"(%x) {attrs = {}, version = 13 : i64} : (tensor<2x5xf32>) -> !nn.unknown
  // CHECK: nn.cast(%{{.*}}) : (tensor<2x5xi64>) -> tensor<2x5xf32>
  %1 = nn.onnx_node "Cast"(%i) {attrs = {to = 1 : i64}, version = 13 : i64} : (tensor<2x5xi64>) -> !nn.unknown
  return %0, %1 : !nn.unknown, !nn.unknown
}

// -----

// CHECK-LABEL: func @conv_pool
func.func @conv_pool(%x: tensor<1x2x5x5xf32>, %w: tensor<3x2x3x3xf32>) -> (!nn.unknown, !nn.unknown, !nn.unknown) {
  // auto_pad SAME_UPPER becomes explicit pads.
  // CHECK: nn.conv({{.*}}) {dilations = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 1, 1>} {{.*}} -> tensor<1x3x5x5xf32>
  %0 = nn.onnx_node "Conv"(%x, %w) {attrs = {auto_pad = "SAME_UPPER"}, version = 11 : i64} : (tensor<1x2x5x5xf32>, tensor<3x2x3x3xf32>) -> !nn.unknown
  // CHECK: nn.pool({{.*}}) {ceil_mode = 1 : i64{{.*}}kernel_shape = array<i64: 2, 2>, kind = "max"{{.*}} -> tensor<1x3x3x3xf32>
  %1 = nn.onnx_node "MaxPool"(%0) {attrs = {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, ceil_mode = 1 : i64}, version = 12 : i64} : (!nn.unknown) -> !nn.unknown
  // CHECK: nn.pool({{.*}}) {global = 1 : i64, kind = "avg"} {{.*}} -> tensor<1x3x1x1xf32>
  %2 = nn.onnx_node "GlobalAveragePool"(%1) {attrs = {}, version = 1 : i64} : (!nn.unknown) -> !nn.unknown
  return %0, %1, %2 : !nn.unknown, !nn.unknown, !nn.unknown
}

// -----

// A strided window over a dynamic dim stays dynamic, also for a stride of 16 (a ViT patch embedding over images of
// any size) and 39 (found by fuzzing: evaluating shapes at two close stand-in sizes took such dims for static).
// CHECK-LABEL: func @strided_dynamic
func.func @strided_dynamic(%x: tensor<1x3x?x?xf32>, %w: tensor<8x3x16x16xf32>, %w2: tensor<8x3x3x3xf32>) -> (!nn.unknown, !nn.unknown) {
  // CHECK: nn.conv({{.*}}) {{.*}} -> tensor<1x8x?x?xf32>
  %0 = nn.onnx_node "Conv"(%x, %w) {attrs = {strides = array<i64: 16, 16>}, version = 11 : i64} : (tensor<1x3x?x?xf32>, tensor<8x3x16x16xf32>) -> !nn.unknown
  // CHECK: nn.conv({{.*}}) {{.*}} -> tensor<1x8x?x?xf32>
  %1 = nn.onnx_node "Conv"(%x, %w2) {attrs = {strides = array<i64: 39, 2>, pads = array<i64: 1, 0, 1, 0>}, version = 11 : i64} : (tensor<1x3x?x?xf32>, tensor<8x3x3x3xf32>) -> !nn.unknown
  return %0, %1 : !nn.unknown, !nn.unknown
}

// -----

// CHECK-LABEL: func @pad_topk_cumsum
func.func @pad_topk_cumsum(%x: tensor<3x4xf32>) -> (!nn.unknown, !nn.unknown, !nn.unknown, !nn.unknown) {
  // Opset 18 Pad with axes: pads for the named dims only, expanded to all dims.
  %p = nn.constant dense<[1, 2]> : tensor<2xi64>
  %ax = nn.constant dense<[1]> : tensor<1xi64>
  %none = nn.none
  // CHECK: %[[P:.*]] = nn.constant dense<[0, 1, 0, 2]> : tensor<4xi64>
  // CHECK: nn.pad(%{{.*}}, %[[P]], %{{.*}}) {{.*}} -> tensor<3x7xf32>
  %0 = nn.onnx_node "Pad"(%x, %p, %none, %ax) {attrs = {}, version = 18 : i64} : (tensor<3x4xf32>, tensor<2xi64>, none, tensor<1xi64>) -> !nn.unknown
  %k = nn.constant dense<2> : tensor<1xi64>
  // CHECK: nn.topk({{.*}}) {{.*}} -> (tensor<3x2xf32>, tensor<3x2xi64>)
  %1:2 = nn.onnx_node "TopK"(%x, %k) {attrs = {largest = 0 : i64}, version = 11 : i64} : (tensor<3x4xf32>, tensor<1xi64>) -> (!nn.unknown, !nn.unknown)
  %a = nn.constant dense<1> : tensor<i64>
  // CHECK: nn.cumsum({{.*}}) {reverse = 1 : i64}
  %2 = nn.onnx_node "CumSum"(%x, %a) {attrs = {reverse = 1 : i64}, version = 14 : i64} : (tensor<3x4xf32>, tensor<i64>) -> !nn.unknown
  return %0, %1#0, %1#1, %2 : !nn.unknown, !nn.unknown, !nn.unknown, !nn.unknown
}

// -----

// CHECK-LABEL: func @old_softmax
func.func @old_softmax(%x: tensor<2x3x4xf32>) -> !nn.unknown {
  // Before opset 13, Softmax normalizes over every dim from axis on: flatten, softmax, reshape back.
  // CHECK: nn.flatten({{.*}}) : (tensor<2x3x4xf32>) -> tensor<2x12xf32>
  // CHECK: nn.softmax({{.*}}) : (tensor<2x12xf32>) -> tensor<2x12xf32>
  // CHECK: nn.reshape({{.*}}) : (tensor<2x12xf32>, tensor<3xi64>) -> tensor<2x3x4xf32>
  %0 = nn.onnx_node "Softmax"(%x) {attrs = {}, version = 11 : i64} : (tensor<2x3x4xf32>) -> !nn.unknown
  return %0 : !nn.unknown
}

// -----

// CHECK-LABEL: func @einsum
func.func @einsum(%q: tensor<2x4x3xf32>, %k: tensor<2x5x3xf32>) -> (!nn.unknown, !nn.unknown) {
  // Attention scores: batch b, contract d, free i (q) and j (k).
  // CHECK: nn.transpose(%{{.*}}) {perm = array<i64: 0, 2, 1>} : (tensor<2x5x3xf32>) -> tensor<2x3x5xf32>
  // CHECK: nn.matmul({{.*}}) : (tensor<2x4x3xf32>, tensor<2x3x5xf32>) -> tensor<2x4x5xf32>
  %0 = nn.onnx_node "Einsum"(%q, %k) {attrs = {equation = "bid,bjd->bij"}, version = 12 : i64} : (tensor<2x4x3xf32>, tensor<2x5x3xf32>) -> !nn.unknown
  // One operand: sum over d, then transpose.
  // CHECK: nn.reduce({{.*}}) {axes = array<i64: 2>, keepdims = 0 : i64, kind = "sum"} : (tensor<2x4x3xf32>) -> tensor<2x4xf32>
  // CHECK: nn.transpose({{.*}}) {perm = array<i64: 1, 0>} : (tensor<2x4xf32>) -> tensor<4x2xf32>
  %1 = nn.onnx_node "Einsum"(%q) {attrs = {equation = "bid->ib"}, version = 12 : i64} : (tensor<2x4x3xf32>) -> !nn.unknown
  return %0, %1 : !nn.unknown, !nn.unknown
}
