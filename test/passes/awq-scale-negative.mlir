// RUN: %qopt-opt %s -qopt-awq-scale="bits=4 group-size=16 clip=false" -split-input-file -verify-diagnostics | FileCheck %s
// Groups AWQ must not rescale: where 1/s cannot be folded without changing another computation.

// The input also feeds a non-linear op: folding 1/s into the norm would change it.
// CHECK-LABEL: func @other_user
// CHECK: nn.constant dense<1.000000e+00> : tensor<16xf32>
// CHECK-NOT: awq_scale
func.func @other_user(%n: tensor<?x16xf32>) -> (tensor<?x64xf32>, tensor<?x16xf32>) {
  %g = nn.constant dense<1.0> : tensor<16xf32> {name = "norm.weight"}
  %w = nn.constant dense<0.1> : tensor<16x64xf32> {name = "q.weight"}
  %x = nn.binary "mul"(%g, %n) : (tensor<16xf32>, tensor<?x16xf32>) -> tensor<?x16xf32>
  // expected-remark@+1 {{AWQ: input of 'q.weight' has other users; not scaled}}
  %q = nn.matmul(%x, %w) {qopt.calib = {mean_abs = dense<[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]> : tensor<16xf32>, samples = dense<[[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5], [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]]> : tensor<2x16xf32>, tokens = 2 : i64}} : (tensor<?x16xf32>, tensor<16x64xf32>) -> tensor<?x64xf32>
  %e = nn.unary "exp"(%x) : (tensor<?x16xf32>) -> tensor<?x16xf32>
  return %q, %e : tensor<?x64xf32>, tensor<?x16xf32>
}

// -----

// The input comes straight from a function argument: nothing to fold into.
// CHECK-LABEL: func @no_producer
// CHECK-NOT: awq_scale
func.func @no_producer(%x: tensor<?x16xf32>) -> tensor<?x64xf32> {
  %w = nn.constant dense<0.1> : tensor<16x64xf32> {name = "o.weight"}
  // expected-remark@+1 {{AWQ: no norm weight or previous linear layer to fold the scale of 'o.weight' into; not scaled}}
  %y = nn.matmul(%x, %w) {qopt.calib = {mean_abs = dense<[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]> : tensor<16xf32>, samples = dense<[[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5], [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]]> : tensor<2x16xf32>, tokens = 2 : i64}} : (tensor<?x16xf32>, tensor<16x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// The attention weights are computed from V itself: scaling V would change them, so o_proj stays unscaled.
// CHECK-LABEL: func @weights_depend_on_value
// CHECK-NOT: awq_scale
func.func @weights_depend_on_value(%h: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %wv = nn.constant dense<0.3> : tensor<64x16xf32> {name = "v.weight"}
  %wo = nn.constant dense<0.1> : tensor<16x64xf32> {name = "o.weight"}
  %split = nn.constant dense<[-1, 2, 8]> : tensor<3xi64>
  %merge = nn.constant dense<[-1, 16]> : tensor<2xi64>
  %v = nn.matmul(%h, %wv) : (tensor<?x64xf32>, tensor<64x16xf32>) -> tensor<?x16xf32>
  %vr = nn.reshape(%v, %split) : (tensor<?x16xf32>, tensor<3xi64>) -> tensor<?x2x8xf32>
  %vt = nn.transpose(%vr) {perm = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
  %kt = nn.transpose(%vt) {perm = array<i64: 0, 2, 1>} : (tensor<2x?x8xf32>) -> tensor<2x8x?xf32>
  %s = nn.matmul(%vt, %kt) : (tensor<2x?x8xf32>, tensor<2x8x?xf32>) -> tensor<2x?x?xf32>
  %a = nn.matmul(%s, %vt) : (tensor<2x?x?xf32>, tensor<2x?x8xf32>) -> tensor<2x?x8xf32>
  %at = nn.transpose(%a) {perm = array<i64: 1, 0, 2>} : (tensor<2x?x8xf32>) -> tensor<?x2x8xf32>
  %x = nn.reshape(%at, %merge) : (tensor<?x2x8xf32>, tensor<2xi64>) -> tensor<?x16xf32>
  // expected-remark@+1 {{AWQ: no norm weight or previous linear layer to fold the scale of 'o.weight' into; not scaled}}
  %o = nn.matmul(%x, %wo) {qopt.calib = {mean_abs = dense<[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]> : tensor<16xf32>, samples = dense<[[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5], [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]]> : tensor<2x16xf32>, tokens = 2 : i64}} : (tensor<?x16xf32>, tensor<16x64xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Grouped-query attention: one value head serves two query heads (expanded), so o's channels are not v's
// columns one to one.
// CHECK-LABEL: func @grouped_query
// CHECK-NOT: awq_scale
func.func @grouped_query(%h: tensor<?x128xf32>, %p: tensor<2x?x?xf32>) -> tensor<?x64xf32> {
  %wv = nn.constant dense<0.3> : tensor<128x8xf32> {name = "v.weight"}
  %wo = nn.constant dense<0.1> : tensor<16x64xf32> {name = "o.weight"}
  %split = nn.constant dense<[-1, 1, 8]> : tensor<3xi64>
  %rep = nn.constant dense<[2, 1, 1]> : tensor<3xi64>
  %merge = nn.constant dense<[-1, 16]> : tensor<2xi64>
  %v = nn.matmul(%h, %wv) : (tensor<?x128xf32>, tensor<128x8xf32>) -> tensor<?x8xf32>
  %vr = nn.reshape(%v, %split) : (tensor<?x8xf32>, tensor<3xi64>) -> tensor<?x1x8xf32>
  %vt = nn.transpose(%vr) {perm = array<i64: 1, 0, 2>} : (tensor<?x1x8xf32>) -> tensor<1x?x8xf32>
  %ve = nn.tile(%vt, %rep) : (tensor<1x?x8xf32>, tensor<3xi64>) -> tensor<2x?x8xf32>
  %a = nn.matmul(%p, %ve) : (tensor<2x?x?xf32>, tensor<2x?x8xf32>) -> tensor<2x?x8xf32>
  %at = nn.transpose(%a) {perm = array<i64: 1, 0, 2>} : (tensor<2x?x8xf32>) -> tensor<?x2x8xf32>
  %x = nn.reshape(%at, %merge) : (tensor<?x2x8xf32>, tensor<2xi64>) -> tensor<?x16xf32>
  // expected-remark@+1 {{AWQ: no norm weight or previous linear layer to fold the scale of 'o.weight' into; not scaled}}
  %o = nn.matmul(%x, %wo) {qopt.calib = {mean_abs = dense<[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]> : tensor<16xf32>, samples = dense<[[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5], [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]]> : tensor<2x16xf32>, tokens = 2 : i64}} : (tensor<?x16xf32>, tensor<16x64xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// expected-error@+1 {{qopt-awq-scale: no calibrated linear layer (run qopt-calibrate first)}}
func.func @uncalibrated(%x: tensor<?x16xf32>) -> tensor<?x64xf32> {
  %w = nn.constant dense<0.1> : tensor<16x64xf32>
  %y = nn.matmul(%x, %w) : (tensor<?x16xf32>, tensor<16x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
