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
