// RUN: %qopt-opt %s -qopt-insert-fp8 -split-input-file | FileCheck %s
// RUN: %qopt-opt %s -qopt-insert-fp8="mode=dynamic" -split-input-file | FileCheck %s --check-prefix=DYN
// RUN: %qopt-opt %s -qopt-insert-fp8 -qopt-lower-to-kern -split-input-file | FileCheck %s --check-prefix=KERN

// Static: the calibrated max |x| (3.5) over E4M3FN's largest value (448) is the input's scale, a constant operand
// named after the layer's weight; lowered, matmul_q's operand 6 (after the absent zeros, norm and residual).
// CHECK-LABEL: func @e4m3
// CHECK: %[[A:.*]] = nn.constant dense<7.812500e-03> : tensor<1xf32> {name = "layers.0.wq.act_scale"}
// CHECK: qnt.linear(%arg0, %[[W:.*]], %[[S:.*]], %{{.*}}, %[[A]]) {act_fp8 = 1 : i64, bits = 8 : i64
// CHECK-SAME: (tensor<?x64xf32>, tensor<32x64xf8E4M3FN>, tensor<32x1xf32>, none, tensor<1xf32>) -> tensor<?x32xf32>
// DYN-LABEL: func @e4m3
// DYN-NOT: act_scale
// DYN: qnt.linear(%arg0, %{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}) {act_fp8 = 2 : i64, bits = 8 : i64
// KERN-LABEL: func @e4m3
// KERN: %[[A:.*]] = kern.weight dense<7.812500e-03> : tensor<1xf32> {name = "layers.0.wq.act_scale"}
// KERN: kern.launch "matmul_q"(%arg0, %{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}, %[[N:[0-9]+]], %[[N]], %[[A]]) {attrs = {act_fp8 = 1 : i64, bits = 8 : i64, group_size = 64 : i64, symmetric = 0 : i64}}
// KERN-SAME: (tensor<?x64xf32>, tensor<32x64xf8E4M3FN>, tensor<32x1xf32>, none, none, none, tensor<1xf32>)
func.func @e4m3(%x: tensor<?x64xf32>) -> tensor<?x32xf32> {
  %w = nn.constant dense<1.0> : tensor<32x64xf8E4M3FN> {name = "layers.0.wq.q"}
  %s = nn.constant dense<0.5> : tensor<32x1xf32> {name = "layers.0.wq.scales"}
  %n = nn.none
  %y = qnt.linear(%x, %w, %s, %n) {bits = 8 : i64, group_size = 64 : i64, qopt.quant = {act_absmax = 3.5 : f32, method = "rtn"}}
      : (tensor<?x64xf32>, tensor<32x64xf8E4M3FN>, tensor<32x1xf32>, none) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// E5M2: 57344 is the format's largest value.
// CHECK-LABEL: func @e5m2
// CHECK: nn.constant dense<1.22070313E-4> : tensor<1xf32> {name = "linear.act_scale"}
// CHECK: act_fp8 = 1 : i64
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
