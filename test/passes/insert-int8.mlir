// RUN: %qopt-opt %s -qopt-insert-int8 -split-input-file | FileCheck %s
// RUN: %qopt-opt %s -qopt-insert-int8="mode=static" -split-input-file | FileCheck %s --check-prefix=STATIC
// RUN: %qopt-opt %s -qopt-insert-int8 -qopt-lower-to-kern -split-input-file | FileCheck %s --check-prefix=KERN

// Dynamic (the default): a scale per row at run time. Static: the calibrated max |x| (3.5) / 127.
// CHECK-LABEL: func @int8
// CHECK: qnt.linear({{.*}}) {act_int8 = 2 : i64, bits = 8 : i64
// CHECK-NOT: act_scale
// STATIC-LABEL: func @int8
// STATIC: %[[A:.*]] = nn.constant dense<0.027559055> : tensor<1xf32> {name = "linear.act_scale"}
// STATIC: qnt.linear(%arg0, %arg1, %arg2, %{{.*}}, %[[A]]) {act_int8 = 1 : i64, bits = 8 : i64
// KERN-LABEL: func @int8
// KERN: kern.launch "matmul_q"({{.*}}) {attrs = {act_int8 = 2 : i64, bits = 8 : i64, group_size = 64 : i64, symmetric = 0 : i64}
func.func @int8(%x: tensor<?x64xf32>, %w: tensor<32x64xi8>, %s: tensor<32x1xf32>) -> tensor<?x32xf32> {
  %n = nn.none
  %y = qnt.linear(%x, %w, %s, %n) {bits = 8 : i64, group_size = 64 : i64, qopt.quant = {act_absmax = 3.5 : f32, method = "rtn"}}
      : (tensor<?x64xf32>, tensor<32x64xi8>, tensor<32x1xf32>, none) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Other formats (int4, FP8) are left alone.
// CHECK-LABEL: func @others
// CHECK-NOT: act_int8
// STATIC-LABEL: func @others
// STATIC-NOT: act_int8
func.func @others(%x: tensor<?x64xf32>, %w: tensor<32x32xui8>, %s: tensor<32x2xf32>, %z: tensor<32x2xui8>,
                  %w8: tensor<32x64xf8E4M3FN>, %s8: tensor<32x1xf32>) -> (tensor<?x32xf32>, tensor<?x32xf32>) {
  %n = nn.none
  %y = qnt.linear(%x, %w, %s, %z) {bits = 4 : i64, group_size = 32 : i64, qopt.quant = {act_absmax = 3.5 : f32}}
      : (tensor<?x64xf32>, tensor<32x32xui8>, tensor<32x2xf32>, tensor<32x2xui8>) -> tensor<?x32xf32>
  %y8 = qnt.linear(%x, %w8, %s8, %n) {bits = 8 : i64, group_size = 64 : i64, qopt.quant = {act_absmax = 3.5 : f32}}
      : (tensor<?x64xf32>, tensor<32x64xf8E4M3FN>, tensor<32x1xf32>, none) -> tensor<?x32xf32>
  return %y, %y8 : tensor<?x32xf32>, tensor<?x32xf32>
}
