// RUN: %qopt-opt %s -qopt-insert-fp8 -split-input-file | FileCheck %s
// RUN: %qopt-opt %s -qopt-insert-fp8="mode=dynamic" -split-input-file | FileCheck %s --check-prefix=DYN
// RUN: %qopt-opt %s -qopt-insert-fp8 -qopt-lower-to-kern -split-input-file | FileCheck %s --check-prefix=KERN

// Static: the calibrated max |x| (3.5) over E4M3FN's largest value (448) is the input's scale.
// CHECK-LABEL: func @e4m3
// CHECK: qnt.linear({{.*}}) {act_fp8 = 1 : i64, act_scale = 7.812500e-03 : f32, bits = 8 : i64
// DYN-LABEL: func @e4m3
// DYN: qnt.linear({{.*}}) {act_fp8 = 2 : i64, bits = 8 : i64
// DYN-NOT: act_scale
// KERN-LABEL: func @e4m3
// KERN: kern.launch "matmul_q"({{.*}}) {attrs = {act_fp8 = 1 : i64, act_scale = 7.812500e-03 : f32, bits = 8 : i64, group_size = 64 : i64, symmetric = 0 : i64}
func.func @e4m3(%x: tensor<?x64xf32>, %w: tensor<32x64xf8E4M3FN>, %s: tensor<32x1xf32>) -> tensor<?x32xf32> {
  %n = nn.none
  %y = qnt.linear(%x, %w, %s, %n) {bits = 8 : i64, group_size = 64 : i64, qopt.quant = {act_absmax = 3.5 : f32, method = "rtn"}}
      : (tensor<?x64xf32>, tensor<32x64xf8E4M3FN>, tensor<32x1xf32>, none) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// E5M2: 57344 is the format's largest value.
// CHECK-LABEL: func @e5m2
// CHECK: act_fp8 = 1 : i64, act_scale = 1.22070313E-4 : f32
func.func @e5m2(%x: tensor<?x64xf32>, %w: tensor<32x64xf8E5M2>, %s: tensor<32x1xf32>) -> tensor<?x32xf32> {
  %n = nn.none
  %y = qnt.linear(%x, %w, %s, %n) {bits = 8 : i64, group_size = 64 : i64, qopt.quant = {act_absmax = 7.0 : f32, method = "rtn"}}
      : (tensor<?x64xf32>, tensor<32x64xf8E5M2>, tensor<32x1xf32>, none) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Integer codes stay weight-only, calibrated or not.
// CHECK-LABEL: func @int8
// CHECK-NOT: act_fp8
// DYN-LABEL: func @int8
// DYN-NOT: act_fp8
func.func @int8(%x: tensor<?x64xf32>, %w: tensor<32x64xi8>, %s: tensor<32x1xf32>) -> tensor<?x32xf32> {
  %n = nn.none
  %y = qnt.linear(%x, %w, %s, %n) {bits = 8 : i64, group_size = 64 : i64, qopt.quant = {act_absmax = 3.5 : f32, method = "rtn"}}
      : (tensor<?x64xf32>, tensor<32x64xi8>, tensor<32x1xf32>, none) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}
