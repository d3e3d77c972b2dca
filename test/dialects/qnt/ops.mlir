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
