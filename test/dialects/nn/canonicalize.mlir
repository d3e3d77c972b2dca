// RUN: %qopt-opt %s -canonicalize -split-input-file | FileCheck %s
// Ops with constant operands fold through the CPU reference kernels; static shapes fold to constants.

// CHECK-LABEL: func @shape_subgraph
func.func @shape_subgraph(%x: tensor<2x?x8xf32>) -> tensor<3xi64> {
  // Shape of a partly dynamic tensor does not fold, but a gather of its static entry does.
  // CHECK-NOT: nn.gather
  %s = nn.shape(%x) : (tensor<2x?x8xf32>) -> tensor<3xi64>
  %i = nn.constant dense<2> : tensor<1xi64>
  %d = nn.gather(%s, %i) : (tensor<3xi64>, tensor<1xi64>) -> tensor<1xi64>
  %c = nn.constant dense<[4, 2]> : tensor<2xi64>
  %r = nn.concat(%c, %d) {axis = 0 : i64} : (tensor<2xi64>, tensor<1xi64>) -> tensor<3xi64>
  // CHECK: %[[R:.*]] = nn.constant dense<[4, 2, 8]> : tensor<3xi64>
  // CHECK: return %[[R]]
  return %r : tensor<3xi64>
}

// -----

// CHECK-LABEL: func @arith
func.func @arith() -> (tensor<3xf32>, tensor<3xi1>, tensor<?xi64>) {
  %a = nn.constant dense<[1.0, 4.0, 9.0]> : tensor<3xf32>
  %b = nn.unary "sqrt"(%a) : (tensor<3xf32>) -> tensor<3xf32>
  %c = nn.binary "greater"(%b, %a) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xi1>
  %s = nn.constant dense<0> : tensor<i64>
  %l = nn.constant dense<8> : tensor<i64>
  %d = nn.constant dense<2> : tensor<i64>
  %r = nn.range(%s, %l, %d) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
  // CHECK-DAG: nn.constant dense<[1.000000e+00, 2.000000e+00, 3.000000e+00]> : tensor<3xf32>
  // CHECK-DAG: nn.constant dense<false> : tensor<3xi1>
  // Range's result type is dynamic, so it stays an op (its operands are known: the runtime computes it once).
  // CHECK-DAG: nn.range
  return %b, %c, %r : tensor<3xf32>, tensor<3xi1>, tensor<?xi64>
}

// -----

// CHECK-LABEL: func @static_shape
func.func @static_shape(%x: tensor<2x3xf32>) -> tensor<2xi64> {
  // CHECK: nn.constant dense<[2, 3]> : tensor<2xi64>
  %s = nn.shape(%x) : (tensor<2x3xf32>) -> tensor<2xi64>
  return %s : tensor<2xi64>
}
