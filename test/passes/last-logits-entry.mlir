// RUN: %qopt-opt %s -split-input-file -verify-diagnostics -qopt-last-logits-entry | FileCheck %s
// A decoder's `prefill` whose result is an output head's (a linear layer of a constant weight, here then a cast)
// gets a `prefill_last` beside it: the head reads the last position of its input (gather of index -1 along the
// sequence axis), and the head, the cast and the result have a sequence dim of 1. `prefill` is unchanged.

// CHECK-LABEL: func.func @prefill
// CHECK-SAME: -> (tensor<?x?x32xf16> {nn.name = "logits"})
// CHECK-NOT: "gather"
// CHECK: %[[N:.+]] = kern.launch "rms_norm"
// CHECK: kern.launch "matmul"(%[[N]], %{{.+}}) : (tensor<?x?x16xf32>, tensor<16x32xf32>) -> tensor<?x?x32xf32>
// CHECK-LABEL: func.func @prefill_last
// CHECK-SAME: -> (tensor<?x1x32xf16> {nn.name = "logits"})
// CHECK: %[[N2:.+]] = kern.launch "rms_norm"
// CHECK: %[[I:.+]] = kern.weight dense<-1> : tensor<1xi64>
// CHECK: %[[R:.+]] = kern.launch "gather"(%[[N2]], %[[I]]) {attrs = {axis = 1 : i64}} : (tensor<?x?x16xf32>, tensor<1xi64>) -> tensor<?x1x16xf32>
// CHECK: %[[L:.+]] = kern.launch "matmul"(%[[R]], %{{.+}}) : (tensor<?x1x16xf32>, tensor<16x32xf32>) -> tensor<?x1x32xf32>
// CHECK: %[[C:.+]] = kern.launch "cast"(%[[L]]) {{.*}} -> tensor<?x1x32xf16>
// CHECK: return %[[C]] : tensor<?x1x32xf16>
// CHECK-LABEL: func.func @decode
func.func @prefill(%x: tensor<?x?x16xf32> {nn.name = "x"}) -> (tensor<?x?x32xf16> {nn.name = "logits"}) {
  %g = kern.weight dense<1.0> : tensor<16xf32>
  %n = kern.launch "rms_norm"(%x, %g) {attrs = {epsilon = 1.0e-5 : f64}} : (tensor<?x?x16xf32>, tensor<16xf32>) -> tensor<?x?x16xf32>
  %w = kern.weight dense<0.5> : tensor<16x32xf32>
  %l = kern.launch "matmul"(%n, %w) : (tensor<?x?x16xf32>, tensor<16x32xf32>) -> tensor<?x?x32xf32>
  %c = kern.launch "cast"(%l) {attrs = {to = 10 : i64}} : (tensor<?x?x32xf32>) -> tensor<?x?x32xf16>
  return %c : tensor<?x?x32xf16>
}
func.func @decode(%x: tensor<1x1x16xf32> {nn.name = "x"}) -> (tensor<1x1x16xf32> {nn.name = "logits"}) {
  return %x : tensor<1x1x16xf32>
}

// -----

// A result that is not an output head's (here the normalized hidden state, every position of it) leaves the
// module without the entry, and a remark says why.
// CHECK-LABEL: func.func @prefill
// CHECK-NOT: func.func @prefill_last
// expected-remark @below {{no prefill_last entry: result 1 is not an output head's}}
func.func @prefill(%x: tensor<?x?x16xf32> {nn.name = "x"})
    -> (tensor<?x?x32xf32> {nn.name = "logits"}, tensor<?x?x16xf32> {nn.name = "hidden"}) {
  %g = kern.weight dense<1.0> : tensor<16xf32>
  %n = kern.launch "rms_norm"(%x, %g) {attrs = {epsilon = 1.0e-5 : f64}} : (tensor<?x?x16xf32>, tensor<16xf32>) -> tensor<?x?x16xf32>
  %w = kern.weight dense<0.5> : tensor<16x32xf32>
  %l = kern.launch "matmul"(%n, %w) : (tensor<?x?x16xf32>, tensor<16x32xf32>) -> tensor<?x?x32xf32>
  return %l, %n : tensor<?x?x32xf32>, tensor<?x?x16xf32>
}

// -----

// Without a `prefill` entry (a model without a decode entry: its function is `main`) the pass does nothing.
// CHECK-LABEL: func.func @main
// CHECK-NOT: prefill_last
func.func @main(%x: tensor<?x?x16xf32> {nn.name = "x"}) -> (tensor<?x?x32xf32> {nn.name = "logits"}) {
  %w = kern.weight dense<0.5> : tensor<16x32xf32>
  %l = kern.launch "matmul"(%x, %w) : (tensor<?x?x16xf32>, tensor<16x32xf32>) -> tensor<?x?x32xf32>
  return %l : tensor<?x?x32xf32>
}
