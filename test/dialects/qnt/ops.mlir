// RUN: %qopt-opt %s | %qopt-opt | FileCheck %s

// CHECK-LABEL: func @linear
func.func @linear(%x: tensor<?x64xf32>, %w4: tensor<16x32xui8>, %s: tensor<16x2xf32>, %z: tensor<16x2xui8>,
                  %w8: tensor<16x64xi8>, %s8: tensor<16x1xf32>) -> (tensor<?x16xf32>, tensor<?x16xf32>) {
  // CHECK: qnt.linear(%{{.*}}) {bits = 4 : i64, group_size = 32 : i64} : (tensor<?x64xf32>, tensor<16x32xui8>, tensor<16x2xf32>, tensor<16x2xui8>) -> tensor<?x16xf32>
  %0 = qnt.linear(%x, %w4, %s, %z) {bits = 4 : i64, group_size = 32 : i64} : (tensor<?x64xf32>, tensor<16x32xui8>, tensor<16x2xf32>, tensor<16x2xui8>) -> tensor<?x16xf32>
  %none = nn.none
  // CHECK: qnt.linear{{.*}}bits = 8 : i64, group_size = 64 : i64, symmetric = 1 : i64
  %1 = qnt.linear(%x, %w8, %s8, %none) {bits = 8 : i64, group_size = 64 : i64, symmetric = 1 : i64} : (tensor<?x64xf32>, tensor<16x64xi8>, tensor<16x1xf32>, none) -> tensor<?x16xf32>
  return %0, %1 : tensor<?x16xf32>, tensor<?x16xf32>
}

// int4 with float16 scales (the quantizers' layout where every scale is a normal float16 value).
// CHECK-LABEL: func @half_scales
func.func @half_scales(%x: tensor<?x64xf32>, %w4: tensor<16x32xui8>, %s: tensor<16x2xf16>, %z: tensor<16x2xui8>) -> tensor<?x16xf32> {
  // CHECK: qnt.linear(%{{.*}}) {bits = 4 : i64, group_size = 32 : i64} : (tensor<?x64xf32>, tensor<16x32xui8>, tensor<16x2xf16>, tensor<16x2xui8>) -> tensor<?x16xf32>
  %0 = qnt.linear(%x, %w4, %s, %z) {bits = 4 : i64, group_size = 32 : i64} : (tensor<?x64xf32>, tensor<16x32xui8>, tensor<16x2xf16>, tensor<16x2xui8>) -> tensor<?x16xf32>
  return %0 : tensor<?x16xf32>
}

// Per tensor: one scale and zero point for the whole weight (group_size = K, scales and zeros 1x1). The
// quantizers' qopt.quant record round-trips too.
// CHECK-LABEL: func @per_tensor
func.func @per_tensor(%x: tensor<?x64xf32>, %w4: tensor<16x32xui8>, %s: tensor<1x1xf32>, %z: tensor<1x1xui8>) -> tensor<?x16xf32> {
  // CHECK: qnt.linear(%{{.*}}) {bits = 4 : i64, group_size = 64 : i64, qopt.quant = {method = "rtn", output_error = 2.500000e-02 : f32, weight_error = 1.000000e-01 : f32}} : (tensor<?x64xf32>, tensor<16x32xui8>, tensor<1x1xf32>, tensor<1x1xui8>) -> tensor<?x16xf32>
  %0 = qnt.linear(%x, %w4, %s, %z) {bits = 4 : i64, group_size = 64 : i64, qopt.quant = {method = "rtn", weight_error = 0.1 : f32, output_error = 0.025 : f32}} : (tensor<?x64xf32>, tensor<16x32xui8>, tensor<1x1xf32>, tensor<1x1xui8>) -> tensor<?x16xf32>
  return %0 : tensor<?x16xf32>
}

