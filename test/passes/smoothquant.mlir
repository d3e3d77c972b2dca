// RUN: %qopt-opt %s -qopt-smoothquant -split-input-file -verify-diagnostics | FileCheck %s
// SmoothQuant's scales s = max|X|^0.5 / max|W|^0.5 per input channel. With every weight 0.25 (max|W| = 0.25 in
// every row) and max|X| = [16, 1, 0.25, 4, 1, ...], s = [8, 2, 1, 4, 2, ...]: exact in binary, so the rewritten
// blobs can be checked bit for bit.

// Into the norm's weight: gamma 1 -> 1/s = [0.125, 0.5, 1, 0.25, 0.5, ...]; the weight's rows times s (row 0:
// 2.0). The statistics describe x / s: max_abs [2, 0.5, 0.25, 1, 0.5, ...], min/max -+2, mean_abs 1/s, the
// samples' columns divided by s (the one row [16, 1, 0.25, 4, 1, ...] -> [2, 0.5, 0.25, 1, 0.5, ...]).
// CHECK-LABEL: func @fold_into_norm
func.func @fold_into_norm(%h: tensor<?x16xf32>) -> tensor<?x64xf32> {
  // CHECK: %[[G:.*]] = nn.constant dense_resource<norm.weight.smooth> : tensor<16xf32>
  %g = nn.constant dense<1.0> : tensor<16xf32> {name = "norm.weight"}
  // CHECK: %[[W:.*]] = nn.constant dense_resource<q.weight.smooth> : tensor<16x64xf32>
  %w = nn.constant dense<0.25> : tensor<16x64xf32> {name = "q.weight"}
  // CHECK: %[[X:.*]] = nn.rms_norm(%{{.*}}, %[[G]])
  %x = nn.rms_norm(%h, %g) {epsilon = 1.0e-5 : f64} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
  // CHECK: nn.matmul(%[[X]], %[[W]]) {qopt.calib = {max = 2.000000e+00 : f32, max_abs = dense<[2.000000e+00, 5.000000e-01, 2.500000e-01, 1.000000e+00, 5.000000e-01,
  // CHECK-SAME: mean_abs = dense<[1.250000e-01, 5.000000e-01, 1.000000e+00, 2.500000e-01, 5.000000e-01,
  // CHECK-SAME: min = -2.000000e+00 : f32, samples = dense_resource<q.weight.smooth.samples> : tensor<1x16xf32>, smooth_scale = dense<[8.000000e+00, 2.000000e+00, 1.000000e+00, 4.000000e+00, 2.000000e+00,
  // CHECK-SAME: tokens = 2 : i64}, qopt.smooth}
  %y = nn.matmul(%x, %w) {qopt.calib = {max = 16.0 : f32, max_abs = dense<[16.0, 1.0, 0.25, 4.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]> : tensor<16xf32>, mean_abs = dense<[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]> : tensor<16xf32>, min = -3.0 : f32, samples = dense<[[16.0, 1.0, 0.25, 4.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]> : tensor<1x16xf32>, tokens = 2 : i64}} : (tensor<?x16xf32>, tensor<16x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
// float32 little-endian after the blob's 4-byte alignment word: 0.125, 0.5, 1, 0.25; 2, 2, ...
// CHECK-DAG: norm.weight.smooth: "0x040000000000003E0000003F0000803F0000803E
// CHECK-DAG: q.weight.smooth: "0x04000000000000400000004000000040
// CHECK-DAG: q.weight.smooth.samples: "0x04000000000000400000003F0000803E0000803F0000003F

// -----

// x = silu(gate) * up: 1/s goes into up's output columns. A dead input channel (max|X| = 0) keeps s = 1.
// CHECK-LABEL: func @fold_into_linear
func.func @fold_into_linear(%h: tensor<?x64xf32>, %a: tensor<?x16xf32>) -> tensor<?x64xf32> {
  %wu = nn.constant dense<1.0> : tensor<64x16xf32> {name = "up.weight"}
  %wd = nn.constant dense<0.25> : tensor<16x64xf32> {name = "down.weight"}
  // CHECK: nn.constant dense_resource<up.weight.smooth>
  %u = nn.matmul(%h, %wu) : (tensor<?x64xf32>, tensor<64x16xf32>) -> tensor<?x16xf32>
  %x = nn.binary "mul"(%a, %u) : (tensor<?x16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
  // CHECK: smooth_scale = dense<[1.000000e+00, 2.000000e+00, 2.000000e+00,
  %d = nn.matmul(%x, %wd) {qopt.calib = {max = 1.0 : f32, max_abs = dense<[0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]> : tensor<16xf32>, min = -1.0 : f32, tokens = 2 : i64}} : (tensor<?x16xf32>, tensor<16x64xf32>) -> tensor<?x64xf32>
  return %d : tensor<?x64xf32>
}
// up's row 0 divided by s: 1, 0.5, 0.5
// CHECK-DAG: up.weight.smooth: "0x040000000000803F0000003F0000003F

// -----

// Nothing to fold into (x is a function argument): left alone, with a remark.
// CHECK-LABEL: func @no_producer
// CHECK-NOT: qopt.smooth
func.func @no_producer(%x: tensor<?x16xf32>) -> tensor<?x64xf32> {
  %w = nn.constant dense<0.25> : tensor<16x64xf32> {name = "o.weight"}
  // expected-remark@+1 {{SmoothQuant: no norm weight or previous linear layer to fold the scale of 'o.weight' into; not smoothed}}
  %y = nn.matmul(%x, %w) {qopt.calib = {max = 16.0 : f32, max_abs = dense<[16.0, 1.0, 0.25, 4.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]> : tensor<16xf32>, min = -3.0 : f32, tokens = 2 : i64}} : (tensor<?x16xf32>, tensor<16x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
