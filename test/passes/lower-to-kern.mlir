// RUN: %qopt-opt %s -qopt-lower-to-kern | FileCheck %s

// CHECK-LABEL: func @lower
func.func @lower(%x: tensor<?x4xf32>) -> tensor<?x4xi64> {
  // CHECK: %[[W:.*]] = kern.weight dense<2.000000e+00> : tensor<4xf32>
  %w = nn.constant dense<2.0> : tensor<4xf32>
  // CHECK: %[[A:.*]] = kern.launch "binary"(%{{.*}}, %[[W]]) {attrs = {fn = "mul"}}
  %0 = nn.binary "mul"(%x, %w) : (tensor<?x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  // Cast gains its target dtype code (7 = int64).
  // CHECK: kern.launch "cast"(%[[A]]) {attrs = {to = 7 : i64}}
  %1 = nn.cast(%0) : (tensor<?x4xf32>) -> tensor<?x4xi64>
  // CHECK: %[[N:.*]] = kern.absent
  %none = nn.none
  %s = nn.constant dense<[0]> : tensor<1xi64>
  // CHECK: kern.launch "slice"(%{{.*}}, %{{.*}}, %{{.*}}, %[[N]], %[[N]])
  %2 = nn.slice(%1, %s, %s, %none, %none) : (tensor<?x4xi64>, tensor<1xi64>, tensor<1xi64>, none, none) -> tensor<?x4xi64>
  return %2 : tensor<?x4xi64>
}
