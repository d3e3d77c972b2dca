// RUN: %qopt-opt %s -qopt-awq-scale="bits=4 group-size=16" -split-input-file -verify-diagnostics | FileCheck %s
// AWQ folds its per-channel scales into the op producing the layers' input: a norm weight, or the previous
// linear layer's output columns. The weights are rewritten as new blobs named *.awq (and *.clip after clipping).

// CHECK-LABEL: func @fold_into_norm
func.func @fold_into_norm(%n: tensor<?x16xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  // CHECK: %[[G:.*]] = nn.constant dense_resource<norm.weight.awq> : tensor<16xf32>
  %g = nn.constant dense<1.0> : tensor<16xf32> {name = "norm.weight"}
  %wq = nn.constant dense<0.1> : tensor<16x64xf32> {name = "q.weight"}
  %wk = nn.constant dense<0.2> : tensor<16x64xf32> {name = "k.weight"}
  // CHECK: %[[X:.*]] = nn.binary "mul"(%[[G]], %{{.*}})
  %x = nn.binary "mul"(%g, %n) : (tensor<16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
  // CHECK: nn.matmul(%[[X]], %{{.*}}) {{.*}}awq_scale = dense<
  // CHECK: nn.matmul(%[[X]], %{{.*}}) {{.*}}awq_scale = dense<
  %q = nn.matmul(%x, %wq) {qopt.calib = {mean_abs = dense<[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]> : tensor<16xf32>, samples = dense<[[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5], [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]]> : tensor<2x16xf32>, tokens = 2 : i64}} : (tensor<?x16xf32>, tensor<16x64xf32>) -> tensor<?x64xf32>
  %k = nn.matmul(%x, %wk) {qopt.calib = {mean_abs = dense<[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]> : tensor<16xf32>, samples = dense<[[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5], [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]]> : tensor<2x16xf32>, tokens = 2 : i64}} : (tensor<?x16xf32>, tensor<16x64xf32>) -> tensor<?x64xf32>
  return %q, %k : tensor<?x64xf32>, tensor<?x64xf32>
}
// CHECK-DAG: q.weight.awq: "0x
// CHECK-DAG: k.weight.awq: "0x
// CHECK-DAG: norm.weight.awq: "0x

// -----

// x = silu(gate) * up: the scale of down's input goes into up's output columns.
// CHECK-LABEL: func @fold_into_linear
func.func @fold_into_linear(%h: tensor<?x64xf32>, %a: tensor<?x16xf32>) -> tensor<?x64xf32> {
  %wu = nn.constant dense<0.3> : tensor<64x16xf32> {name = "up.weight"}
  %wd = nn.constant dense<0.1> : tensor<16x64xf32> {name = "down.weight"}
  // CHECK: %[[WU:.*]] = nn.constant dense_resource<up.weight.awq> : tensor<64x16xf32>
  // CHECK: %[[U:.*]] = nn.matmul(%{{.*}}, %[[WU]])
  %u = nn.matmul(%h, %wu) : (tensor<?x64xf32>, tensor<64x16xf32>) -> tensor<?x16xf32>
  %x = nn.binary "mul"(%a, %u) : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
  // CHECK: nn.matmul{{.*}}awq_scale
  %d = nn.matmul(%x, %wd) {qopt.calib = {mean_abs = dense<[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]> : tensor<16xf32>, samples = dense<[[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5], [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]]> : tensor<2x16xf32>, tokens = 2 : i64}} : (tensor<?x16xf32>, tensor<16x64xf32>) -> tensor<?x64xf32>
  return %d : tensor<?x64xf32>
}

// -----

// o_proj's input is v_proj's output split into 2 heads of 8, through P x V with a KV cache, and merged back:
// channel c of o's input is column c of v's output, so the scale goes into v's weight columns and its bias.
// A shape-only user of the norm output does not block the q/v group.
// CHECK-LABEL: func @fold_into_value_projection
func.func @fold_into_value_projection(%h: tensor<?x64xf32>, %p: tensor<2x?x?xf32>, %past: tensor<2x?x8xf32>) -> (tensor<?x64xf32>, tensor<2x?x8xf32>, tensor<2xi64>) {
  %wv = nn.constant dense<0.3> : tensor<64x16xf32> {name = "v.weight"}
  %bv = nn.constant dense<0.5> : tensor<16xf32> {name = "v.bias"}
  %wo = nn.constant dense<0.1> : tensor<16x64xf32> {name = "o.weight"}
  %split = nn.constant dense<[-1, 2, 8]> : tensor<3xi64>
  %merge = nn.constant dense<[-1, 16]> : tensor<2xi64>
  // CHECK-DAG: %[[WV:.*]] = nn.constant dense_resource<v.weight.awq> : tensor<64x16xf32>
  // CHECK-DAG: %[[BV:.*]] = nn.constant dense_resource<v.bias.awq> : tensor<16xf32>
  // CHECK: %[[V:.*]] = nn.matmul(%{{.*}}, %[[WV]])
  // CHECK: nn.binary "add"(%[[V]], %[[BV]])
  %v0 = nn.matmul(%h, %wv) : (tensor<?x64xf32>, tensor<64x16xf32>) -> tensor<?x16xf32>
  %v = nn.binary "add"(%v0, %bv) : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
  %shape = nn.shape(%v) : (tensor<?x16xf32>) -> tensor<2xi64>
  %vr = nn.reshape(%v, %split) : (tensor<?x16xf32>, tensor<3xi64>) -> tensor<?x2x8xf32>
  %vt = nn.transpose(%vr) {perm = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
  %cache = nn.concat(%past, %vt) {axis = 1 : i64} : (tensor<2x?x8xf32>, tensor<2x?x8xf32>) -> tensor<2x?x8xf32>
  %a = nn.matmul(%p, %cache) : (tensor<2x?x?xf32>, tensor<2x?x8xf32>) -> tensor<2x?x8xf32>
  %at = nn.transpose(%a) {perm = array<i64: 1, 0, 2>} : (tensor<2x?x8xf32>) -> tensor<?x2x8xf32>
  %x = nn.reshape(%at, %merge) : (tensor<?x2x8xf32>, tensor<2xi64>) -> tensor<?x16xf32>
  // CHECK: nn.matmul{{.*}}awq_scale
  %o = nn.matmul(%x, %wo) {qopt.calib = {mean_abs = dense<[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]> : tensor<16xf32>, samples = dense<[[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5], [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]]> : tensor<2x16xf32>, tokens = 2 : i64}} : (tensor<?x16xf32>, tensor<16x64xf32>) -> tensor<?x64xf32>
  return %o, %cache, %shape : tensor<?x64xf32>, tensor<2x?x8xf32>, tensor<2xi64>
}
