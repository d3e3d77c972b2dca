// RUN: %qopt-opt %s -qopt-lower-to-kern -qopt-fuse-linears -split-input-file | FileCheck %s
// Float linear layers reading one input become one linear_split launch with the weights side by side.

// CHECK-LABEL: func @qkv
// CHECK: %[[W:.+]] = kern.weight dense_resource<{{.+}}> : tensor<8x10xf32> {name = "wq+wk+wv"}
// CHECK: %[[R:.+]]:3 = kern.launch "linear_split"(%{{.+}}, %[[W]]) {attrs = {num_outputs = 3 : i64, splits = array<i64: 4, 4, 2>}}
// CHECK-SAME: -> (tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x2xf32>)
// CHECK: kern.launch "binary"(%[[R]]#0, %[[R]]#1)
// CHECK-NOT: kern.launch "matmul"
func.func @qkv(%x: tensor<?x8xf32>) -> (tensor<?x4xf32>, tensor<?x2xf32>) {
  %wq = nn.constant dense<0.5> : tensor<8x4xf32> {name = "wq"}
  %wk = nn.constant dense<0.25> : tensor<8x4xf32> {name = "wk"}
  %wv = nn.constant dense<0.125> : tensor<8x2xf32> {name = "wv"}
  %q = nn.matmul(%x, %wq) : (tensor<?x8xf32>, tensor<8x4xf32>) -> tensor<?x4xf32>
  %k = nn.matmul(%x, %wk) : (tensor<?x8xf32>, tensor<8x4xf32>) -> tensor<?x4xf32>
  %v = nn.matmul(%x, %wv) : (tensor<?x8xf32>, tensor<8x2xf32>) -> tensor<?x2xf32>
  %s = nn.binary "add"(%q, %k) : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x4xf32>
  return %s, %v : tensor<?x4xf32>, tensor<?x2xf32>
}

// -----

// A single layer, and layers reading different inputs, stay as they are.
// CHECK-LABEL: func @apart
// CHECK-COUNT-2: kern.launch "matmul"
// CHECK-NOT: linear_split
func.func @apart(%x: tensor<?x8xf32>, %y: tensor<?x8xf32>) -> (tensor<?x4xf32>, tensor<?x4xf32>) {
  %wq = nn.constant dense<0.5> : tensor<8x4xf32> {name = "wq"}
  %wk = nn.constant dense<0.25> : tensor<8x4xf32> {name = "wk"}
  %q = nn.matmul(%x, %wq) : (tensor<?x8xf32>, tensor<8x4xf32>) -> tensor<?x4xf32>
  %k = nn.matmul(%y, %wk) : (tensor<?x8xf32>, tensor<8x4xf32>) -> tensor<?x4xf32>
  return %q, %k : tensor<?x4xf32>, tensor<?x4xf32>
}

// -----

// A linear stacked by the model (Phi-3's qkv_proj) and cut by slices of its last dim into consecutive pieces (the
// last to INT64_MAX, "the end"): the split launch over its own weight, the slices gone.
// CHECK-LABEL: func @sliced
// CHECK: %[[S:.+]]:3 = kern.launch "linear_split"(%arg0, %{{.+}}) {attrs = {num_outputs = 3 : i64, splits = array<i64: 4, 4, 4>}} : (tensor<?x8xf32>, tensor<8x12xf32>) -> (tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>)
// CHECK-NOT: "slice"
// CHECK: return %[[S]]#2, %[[S]]#0, %[[S]]#1
func.func @sliced(%x: tensor<?x8xf32>) -> (tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>) {
  %w = kern.weight dense<0.5> : tensor<8x12xf32>
  %y = kern.launch "matmul"(%x, %w) : (tensor<?x8xf32>, tensor<8x12xf32>) -> tensor<?x12xf32>
  %c0 = kern.weight dense<0> : tensor<1xi64>
  %c4 = kern.weight dense<4> : tensor<1xi64>
  %c8 = kern.weight dense<8> : tensor<1xi64>
  %end = kern.weight dense<9223372036854775807> : tensor<1xi64>
  %ax = kern.weight dense<-1> : tensor<1xi64>
  %st = kern.weight dense<1> : tensor<1xi64>
  %v = kern.launch "slice"(%y, %c8, %end, %ax, %st) : (tensor<?x12xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4xf32>
  %q = kern.launch "slice"(%y, %c0, %c4, %ax, %st) : (tensor<?x12xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4xf32>
  %k = kern.launch "slice"(%y, %c4, %c8, %ax, %st) : (tensor<?x12xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4xf32>
  return %v, %q, %k : tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>
}

// -----

// GPT-2's Gemm on 2-D rows, reshaped back before the slices (static shapes, as in a decode entry): the pieces come
// out of the split in the rows' shape and are reshaped (views) to the slices'.
// CHECK-LABEL: func @sliced_rows
// CHECK: %[[S:.+]]:2 = kern.launch "linear_split"(%arg0, %{{.+}}) {{.*}} : (tensor<2x8xf32>, tensor<8x12xf32>) -> (tensor<2x6xf32>, tensor<2x6xf32>)
// CHECK: kern.launch "reshape"(%[[S]]#0, %{{.+}}) : (tensor<2x6xf32>, tensor<3xi64>) -> tensor<1x2x6xf32>
// CHECK: kern.launch "reshape"(%[[S]]#1, %{{.+}}) : (tensor<2x6xf32>, tensor<3xi64>) -> tensor<1x2x6xf32>
// CHECK-NOT: "slice"
func.func @sliced_rows(%x: tensor<2x8xf32>) -> (tensor<1x2x6xf32>, tensor<1x2x6xf32>) {
  %w = kern.weight dense<0.5> : tensor<8x12xf32>
  %y = kern.launch "matmul"(%x, %w) : (tensor<2x8xf32>, tensor<8x12xf32>) -> tensor<2x12xf32>
  %s = kern.weight dense<[1, 2, 12]> : tensor<3xi64>
  %r = kern.launch "reshape"(%y, %s) : (tensor<2x12xf32>, tensor<3xi64>) -> tensor<1x2x12xf32>
  %c0 = kern.weight dense<0> : tensor<1xi64>
  %c6 = kern.weight dense<6> : tensor<1xi64>
  %c12 = kern.weight dense<12> : tensor<1xi64>
  %ax = kern.weight dense<2> : tensor<1xi64>
  %n = kern.absent
  %a = kern.launch "slice"(%r, %c0, %c6, %ax, %n) : (tensor<1x2x12xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, none) -> tensor<1x2x6xf32>
  %b = kern.launch "slice"(%r, %c6, %c12, %ax, %n) : (tensor<1x2x12xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, none) -> tensor<1x2x6xf32>
  return %a, %b : tensor<1x2x6xf32>, tensor<1x2x6xf32>
}

// -----

// Slices that leave a gap (or overlap): not a partition, left alone.
// CHECK-LABEL: func @sliced_gap
// CHECK: kern.launch "matmul"
// CHECK-COUNT-2: kern.launch "slice"
func.func @sliced_gap(%x: tensor<?x8xf32>) -> (tensor<?x4xf32>, tensor<?x4xf32>) {
  %w = kern.weight dense<0.5> : tensor<8x12xf32>
  %y = kern.launch "matmul"(%x, %w) : (tensor<?x8xf32>, tensor<8x12xf32>) -> tensor<?x12xf32>
  %c0 = kern.weight dense<0> : tensor<1xi64>
  %c4 = kern.weight dense<4> : tensor<1xi64>
  %c8 = kern.weight dense<8> : tensor<1xi64>
  %c12 = kern.weight dense<12> : tensor<1xi64>
  %ax = kern.weight dense<-1> : tensor<1xi64>
  %n = kern.absent
  %q = kern.launch "slice"(%y, %c0, %c4, %ax, %n) : (tensor<?x12xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, none) -> tensor<?x4xf32>
  %v = kern.launch "slice"(%y, %c8, %c12, %ax, %n) : (tensor<?x12xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, none) -> tensor<?x4xf32>
  return %q, %v : tensor<?x4xf32>, tensor<?x4xf32>
}

// -----

// Qwen2's q/k/v each add a bias (their only reader): the biases go side by side with the weights into the split
// launch, which adds them after the product; the adds go.
// CHECK-LABEL: func @biases
// CHECK: %[[B:.+]] = kern.weight dense<[1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00, 2.000000e+00, 2.000000e+00]> : tensor<6xf32>
// CHECK: %[[S:.+]]:2 = kern.launch "linear_split"(%arg0, %{{.+}}, %[[B]]) {attrs = {num_outputs = 2 : i64, splits = array<i64: 4, 2>}}
// CHECK-NOT: "binary"
// CHECK: return %[[S]]#0, %[[S]]#1
func.func @biases(%x: tensor<?x8xf32>) -> (tensor<?x4xf32>, tensor<?x2xf32>) {
  %wq = kern.weight dense<0.5> : tensor<8x4xf32>
  %wk = kern.weight dense<0.25> : tensor<8x2xf32>
  %bq = kern.weight dense<1.0> : tensor<4xf32>
  %bk = kern.weight dense<2.0> : tensor<2xf32>
  %q = kern.launch "matmul"(%x, %wq) : (tensor<?x8xf32>, tensor<8x4xf32>) -> tensor<?x4xf32>
  %k = kern.launch "matmul"(%x, %wk) : (tensor<?x8xf32>, tensor<8x2xf32>) -> tensor<?x2xf32>
  %qb = kern.launch "binary"(%q, %bq) {attrs = {fn = "add"}} : (tensor<?x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  %kb = kern.launch "binary"(%bk, %k) {attrs = {fn = "add"}} : (tensor<2xf32>, tensor<?x2xf32>) -> tensor<?x2xf32>
  return %qb, %kb : tensor<?x4xf32>, tensor<?x2xf32>
}

// -----

// Quantized layers whose scales differ in type (float16, and float32 for a layer whose scales left float16's
// range) fuse with their scales stacked as float32, the float16 ones widened exactly (0.5 = 0x3F000000).
// CHECK-LABEL: func @mixed_scales
// CHECK: kern.weight dense_resource<"wq.scales+wk.scales"> : tensor<8x2xf32>
// CHECK: kern.launch "matmul_q_split"
// CHECK: "wq.scales+wk.scales": "0x080000000000003F0000003F0000003F0000003F0000003F0000003F0000003F0000003F0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E"
func.func @mixed_scales(%x: tensor<?x8xf32>) -> (tensor<?x4xf32>, tensor<?x4xf32>) {
  %w = nn.constant dense<17> : tensor<4x4xui8> {name = "wq.q"}
  %s16 = nn.constant dense<0.5> : tensor<4x2xf16> {name = "wq.scales"}
  %s32 = nn.constant dense<0.25> : tensor<4x2xf32> {name = "wk.scales"}
  %z = nn.constant dense<8> : tensor<4x2xui8> {name = "wq.zeros"}
  %q = qnt.linear(%x, %w, %s16, %z) {bits = 4 : i64, group_size = 4 : i64} : (tensor<?x8xf32>, tensor<4x4xui8>, tensor<4x2xf16>, tensor<4x2xui8>) -> tensor<?x4xf32>
  %k = qnt.linear(%x, %w, %s32, %z) {bits = 4 : i64, group_size = 4 : i64} : (tensor<?x8xf32>, tensor<4x4xui8>, tensor<4x2xf32>, tensor<4x2xui8>) -> tensor<?x4xf32>
  return %q, %k : tensor<?x4xf32>, tensor<?x4xf32>
}

// -----

// W8A8 with static activation scales: layers whose scales are equal fuse, the launch keeping one of them as
// operand 6; a layer whose scale differs, or whose activations are dynamic, stays apart.
// CHECK-LABEL: func @static_activations
// CHECK: %[[A:.+]] = kern.weight dense<5.000000e-02> : tensor<1xf32> {name = "wq.act_scale"}
// CHECK: kern.launch "matmul_q_split"(%arg0, %{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}, %[[N:[0-9]+]], %[[N]], %[[A]]) {attrs = {act_int8 = 1 : i64, bits = 8 : i64, group_size = 8 : i64, num_outputs = 2 : i64, splits = array<i64: 4, 4>, symmetric = 1 : i64}}
// CHECK-SAME: (tensor<?x8xf32>, tensor<8x8xi8>, tensor<8x1xf32>, none, none, none, tensor<1xf32>)
// CHECK-DAG: kern.launch "matmul_q"(%arg0, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}) {attrs = {act_int8 = 1 : i64
// CHECK-DAG: kern.launch "matmul_q"(%arg0, %{{.+}}, %{{.+}}, %{{.+}}) {attrs = {act_int8 = 2 : i64
// CHECK-NOT: kern.launch
func.func @static_activations(%x: tensor<?x8xf32>) -> (tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>) {
  %w = nn.constant dense<3> : tensor<4x8xi8> {name = "w.q"}
  %s = nn.constant dense<0.25> : tensor<4x1xf32> {name = "w.scales"}
  %n = nn.none
  %aq = nn.constant dense<0.05> : tensor<1xf32> {name = "wq.act_scale"}
  %ak = nn.constant dense<0.05> : tensor<1xf32> {name = "wk.act_scale"}
  %ao = nn.constant dense<0.07> : tensor<1xf32> {name = "wo.act_scale"}
  %q = qnt.linear(%x, %w, %s, %n, %aq) {act_int8 = 1 : i64, bits = 8 : i64, group_size = 8 : i64, symmetric = 1 : i64} : (tensor<?x8xf32>, tensor<4x8xi8>, tensor<4x1xf32>, none, tensor<1xf32>) -> tensor<?x4xf32>
  %k = qnt.linear(%x, %w, %s, %n, %ak) {act_int8 = 1 : i64, bits = 8 : i64, group_size = 8 : i64, symmetric = 1 : i64} : (tensor<?x8xf32>, tensor<4x8xi8>, tensor<4x1xf32>, none, tensor<1xf32>) -> tensor<?x4xf32>
  %o = qnt.linear(%x, %w, %s, %n, %ao) {act_int8 = 1 : i64, bits = 8 : i64, group_size = 8 : i64, symmetric = 1 : i64} : (tensor<?x8xf32>, tensor<4x8xi8>, tensor<4x1xf32>, none, tensor<1xf32>) -> tensor<?x4xf32>
  %d = qnt.linear(%x, %w, %s, %n) {act_int8 = 2 : i64, bits = 8 : i64, group_size = 8 : i64, symmetric = 1 : i64} : (tensor<?x8xf32>, tensor<4x8xi8>, tensor<4x1xf32>, none) -> tensor<?x4xf32>
  return %q, %k, %o, %d : tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>
}
