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
