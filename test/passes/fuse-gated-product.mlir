// RUN: %qopt-opt %s -qopt-fuse-gated-product -split-input-file | FileCheck %s

// A decode step's gate/up product (one static row) and its gated activation: one matmul_q_gated launch with the
// product's attributes (less the splits) and the activation.
// CHECK-LABEL: func @decode
// CHECK: %[[H:.+]] = kern.launch "matmul_q_gated"(%arg0, %{{.+}}, %{{.+}}, %{{.+}}) {attrs = {activation = 2 : i32, bits = 4 : i64, group_size = 32 : i64, symmetric = 0 : i64}} : (tensor<1x1x64xf32>, tensor<96x32xui8>, tensor<96x2xf32>, tensor<96x2xui8>) -> tensor<1x1x48xf32>
// CHECK-NOT: gated_act
// CHECK: return %[[H]]
func.func @decode(%x: tensor<1x1x64xf32>) -> tensor<1x1x48xf32> {
  %w = kern.weight dense<17> : tensor<96x32xui8>
  %s = kern.weight dense<0.01> : tensor<96x2xf32>
  %z = kern.weight dense<8> : tensor<96x2xui8>
  %p:2 = kern.launch "matmul_q_split"(%x, %w, %s, %z) {attrs = {bits = 4 : i64, group_size = 32 : i64, num_outputs = 2 : i64, splits = array<i64: 48, 48>, symmetric = 0 : i64}} : (tensor<1x1x64xf32>, tensor<96x32xui8>, tensor<96x2xf32>, tensor<96x2xui8>) -> (tensor<1x1x48xf32>, tensor<1x1x48xf32>)
  %h = kern.launch "gated_act"(%p#0, %p#1) {attrs = {activation = 2 : i32}} : (tensor<1x1x48xf32>, tensor<1x1x48xf32>) -> tensor<1x1x48xf32>
  return %h : tensor<1x1x48xf32>
}

// -----

// Float16 weights (a CUDA target's float layers, after qopt-half-weights), 16 static rows: fused.
// CHECK-LABEL: func @half
// CHECK: kern.launch "matmul_q_gated"(%arg0, %{{.+}}) {attrs = {activation = 0 : i32, bits = 16 : i64}} : (tensor<16x64xf32>, tensor<96x64xf16>) -> tensor<16x48xf32>
func.func @half(%x: tensor<16x64xf32>) -> tensor<16x48xf32> {
  %w = kern.weight dense<0.5> : tensor<96x64xf16>
  %p:2 = kern.launch "matmul_q_split"(%x, %w) {attrs = {bits = 16 : i64, num_outputs = 2 : i64, splits = array<i64: 48, 48>}} : (tensor<16x64xf32>, tensor<96x64xf16>) -> (tensor<16x48xf32>, tensor<16x48xf32>)
  %h = kern.launch "gated_act"(%p#0, %p#1) {attrs = {activation = 0 : i32}} : (tensor<16x48xf32>, tensor<16x48xf32>) -> tensor<16x48xf32>
  return %h : tensor<16x48xf32>
}

// -----

// Not fused: a prompt's rows (dynamic), 17 rows, the gate read elsewhere too, the operands swapped, three outputs.
// CHECK-LABEL: func @no_fusion
// CHECK-NOT: matmul_q_gated
// CHECK-COUNT-5: kern.launch "gated_act"
func.func @no_fusion(%x: tensor<?x64xf32>, %y: tensor<17x64xf32>, %r: tensor<2x64xf32>) -> (tensor<?x48xf32>, tensor<17x48xf32>, tensor<2x48xf32>, tensor<2x48xf32>, tensor<2x48xf32>, tensor<2x48xf32>) {
  %w = kern.weight dense<0.5> : tensor<96x64xf16>
  %w3 = kern.weight dense<0.5> : tensor<144x64xf16>
  %a:2 = kern.launch "matmul_q_split"(%x, %w) {attrs = {bits = 16 : i64, num_outputs = 2 : i64, splits = array<i64: 48, 48>}} : (tensor<?x64xf32>, tensor<96x64xf16>) -> (tensor<?x48xf32>, tensor<?x48xf32>)
  %ha = kern.launch "gated_act"(%a#0, %a#1) {attrs = {activation = 0 : i32}} : (tensor<?x48xf32>, tensor<?x48xf32>) -> tensor<?x48xf32>
  %b:2 = kern.launch "matmul_q_split"(%y, %w) {attrs = {bits = 16 : i64, num_outputs = 2 : i64, splits = array<i64: 48, 48>}} : (tensor<17x64xf32>, tensor<96x64xf16>) -> (tensor<17x48xf32>, tensor<17x48xf32>)
  %hb = kern.launch "gated_act"(%b#0, %b#1) {attrs = {activation = 0 : i32}} : (tensor<17x48xf32>, tensor<17x48xf32>) -> tensor<17x48xf32>
  %c:2 = kern.launch "matmul_q_split"(%r, %w) {attrs = {bits = 16 : i64, num_outputs = 2 : i64, splits = array<i64: 48, 48>}} : (tensor<2x64xf32>, tensor<96x64xf16>) -> (tensor<2x48xf32>, tensor<2x48xf32>)
  %hc = kern.launch "gated_act"(%c#0, %c#1) {attrs = {activation = 0 : i32}} : (tensor<2x48xf32>, tensor<2x48xf32>) -> tensor<2x48xf32>
  %d:2 = kern.launch "matmul_q_split"(%r, %w) {attrs = {bits = 16 : i64, num_outputs = 2 : i64, splits = array<i64: 48, 48>}} : (tensor<2x64xf32>, tensor<96x64xf16>) -> (tensor<2x48xf32>, tensor<2x48xf32>)
  %hd = kern.launch "gated_act"(%d#1, %d#0) {attrs = {activation = 0 : i32}} : (tensor<2x48xf32>, tensor<2x48xf32>) -> tensor<2x48xf32>
  %e:3 = kern.launch "matmul_q_split"(%r, %w3) {attrs = {bits = 16 : i64, num_outputs = 3 : i64, splits = array<i64: 48, 48, 48>}} : (tensor<2x64xf32>, tensor<144x64xf16>) -> (tensor<2x48xf32>, tensor<2x48xf32>, tensor<2x48xf32>)
  %he = kern.launch "gated_act"(%e#0, %e#1) {attrs = {activation = 0 : i32}} : (tensor<2x48xf32>, tensor<2x48xf32>) -> tensor<2x48xf32>
  return %ha, %hb, %hc, %c#0, %hd, %he : tensor<?x48xf32>, tensor<17x48xf32>, tensor<2x48xf32>, tensor<2x48xf32>, tensor<2x48xf32>, tensor<2x48xf32>
}
