// RUN: %qopt-opt %s -qopt-refine-shapes -split-input-file | FileCheck %s
// A matmul with a constant [K, N] weight fixes its input's last dim to K.

// CHECK-LABEL: func @head_merge
// CHECK: nn.reshape(%{{.+}}, %{{.+}}) : (tensor<?x?x4x16xf32>, tensor<3xi64>) -> tensor<?x?x64xf32>
// CHECK: nn.matmul(%{{.+}}, %{{.+}}) : (tensor<?x?x64xf32>, tensor<64x32xf32>) -> tensor<?x?x32xf32>
func.func @head_merge(%t: tensor<?x?x4x16xf32>, %shape: tensor<3xi64>) -> tensor<?x?x32xf32> {
  %w = nn.constant dense<0.1> : tensor<64x32xf32>
  %m = nn.reshape(%t, %shape) : (tensor<?x?x4x16xf32>, tensor<3xi64>) -> tensor<?x?x?xf32>
  %y = nn.matmul(%m, %w) : (tensor<?x?x?xf32>, tensor<64x32xf32>) -> tensor<?x?x32xf32>
  return %y : tensor<?x?x32xf32>
}

// -----

// A function argument keeps its declared type; a non-constant right operand fixes nothing.
// CHECK-LABEL: func @untouched
// CHECK-SAME: (%{{.+}}: tensor<?x?xf32>, %{{.+}}: tensor<?x?x?xf32>
// CHECK: nn.matmul(%{{.+}}, %{{.+}}) : (tensor<?x?xf32>, tensor<64x32xf32>)
// CHECK: nn.matmul(%{{.+}}, %{{.+}}) : (tensor<?x?x?xf32>, tensor<?x32xf32>)
func.func @untouched(%a: tensor<?x?xf32>, %b: tensor<?x?x?xf32>, %k: tensor<?x32xf32>) -> (tensor<?x32xf32>, tensor<?x?x32xf32>) {
  %w = nn.constant dense<0.1> : tensor<64x32xf32>
  %y = nn.matmul(%a, %w) : (tensor<?x?xf32>, tensor<64x32xf32>) -> tensor<?x32xf32>
  %z = nn.matmul(%b, %k) : (tensor<?x?x?xf32>, tensor<?x32xf32>) -> tensor<?x?x32xf32>
  return %y, %z : tensor<?x32xf32>, tensor<?x?x32xf32>
}
