// RUN: %qopt-opt %s -qopt-fuse-rotary -split-input-file | FileCheck %s

// A decode step: the key's rotation moves into kv_append_rotary, the query's into the attention that reads the
// cache (operands 5 and 6, its style as rotary_style); the value's append is untouched.
// CHECK-LABEL: func @decode
// CHECK-NOT: kern.launch "rotary"
// CHECK: %[[K:.+]] = kern.launch "kv_append_rotary"(%{{.+}}, %arg1, %[[LEN:.+]], %arg3, %[[F:.+]]) {attrs = {axis = 2 : i64, style = 1 : i64}} : (tensor<1x2x16x8xf32>, tensor<1x2x1x8xf32>, tensor<1xi64>, tensor<1x1xi64>, tensor<4xf32>) -> tensor<1x2x16x8xf32>
// CHECK: %[[V:.+]] = kern.launch "kv_append"(%{{.+}}, %arg2, %[[LEN]]) {attrs = {axis = 2 : i64}}
// CHECK: kern.launch "attention"(%arg0, %[[K]], %[[V]], %{{.+}}, %[[LEN]], %arg3, %[[F]]) {attrs = {causal = 1 : i64, rotary_style = 1 : i64, scale = 5.000000e-01 : f64}} : (tensor<1x4x1x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, none, tensor<1xi64>, tensor<1x1xi64>, tensor<4xf32>) -> tensor<1x4x1x8xf32>
func.func @decode(%q: tensor<1x4x1x8xf32>, %k: tensor<1x2x1x8xf32>, %v: tensor<1x2x1x8xf32>, %pos: tensor<1x1xi64>) -> tensor<1x4x1x8xf32> {
  %len = kern.state "kv.len" : tensor<1xi64>
  %kc = kern.state "kv.0.key" : tensor<1x2x16x8xf32>
  %vc = kern.state "kv.0.value" : tensor<1x2x16x8xf32>
  %f = kern.weight dense<[1.0, 0.5, 0.25, 0.125]> : tensor<4xf32>
  %qr = kern.launch "rotary"(%q, %pos, %f) {attrs = {style = 1 : i32}} : (tensor<1x4x1x8xf32>, tensor<1x1xi64>, tensor<4xf32>) -> tensor<1x4x1x8xf32>
  %kr = kern.launch "rotary"(%k, %pos, %f) {attrs = {style = 1 : i32}} : (tensor<1x2x1x8xf32>, tensor<1x1xi64>, tensor<4xf32>) -> tensor<1x2x1x8xf32>
  %k1 = kern.launch "kv_append"(%kc, %kr, %len) {attrs = {axis = 2 : i64}} : (tensor<1x2x16x8xf32>, tensor<1x2x1x8xf32>, tensor<1xi64>) -> tensor<1x2x16x8xf32>
  %v1 = kern.launch "kv_append"(%vc, %v, %len) {attrs = {axis = 2 : i64}} : (tensor<1x2x16x8xf32>, tensor<1x2x1x8xf32>, tensor<1xi64>) -> tensor<1x2x16x8xf32>
  %none = kern.absent
  %o = kern.launch "attention"(%qr, %k1, %v1, %none, %len) {attrs = {causal = 1 : i64, scale = 0.5 : f64}} : (tensor<1x4x1x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, none, tensor<1xi64>) -> tensor<1x4x1x8xf32>
  return %o : tensor<1x4x1x8xf32>
}

// -----

// A prompt (dynamic query rows): the keys still rotate as they are stored (the reader of their shape, for the cache
// length, reads the unrotated keys'), the queries keep their rotary launch.
// CHECK-LABEL: func @prefill
// CHECK: %[[QR:.+]] = kern.launch "rotary"(%arg0, %arg3, %{{.+}}) {attrs = {style = 0 : i32}}
// CHECK: kern.launch "kv_append_rotary"(%{{.+}}, %arg1, %{{.+}}, %arg3, %{{.+}}) {attrs = {axis = 2 : i64, style = 0 : i64}}
// CHECK: kern.launch "shape"(%arg1)
// CHECK: kern.launch "attention"(%[[QR]], %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}) {attrs = {causal = 1 : i64, scale = 5.000000e-01 : f64}}
func.func @prefill(%q: tensor<1x4x?x8xf32>, %k: tensor<1x2x?x8xf32>, %v: tensor<1x2x?x8xf32>, %pos: tensor<1x?xi64>) -> (tensor<1x4x?x8xf32>, tensor<4xi64>) {
  %len = kern.state "kv.len" : tensor<1xi64>
  %kc = kern.state "kv.0.key" : tensor<1x2x16x8xf32>
  %vc = kern.state "kv.0.value" : tensor<1x2x16x8xf32>
  %f = kern.weight dense<[1.0, 0.5, 0.25, 0.125]> : tensor<4xf32>
  %qr = kern.launch "rotary"(%q, %pos, %f) {attrs = {style = 0 : i32}} : (tensor<1x4x?x8xf32>, tensor<1x?xi64>, tensor<4xf32>) -> tensor<1x4x?x8xf32>
  %kr = kern.launch "rotary"(%k, %pos, %f) {attrs = {style = 0 : i32}} : (tensor<1x2x?x8xf32>, tensor<1x?xi64>, tensor<4xf32>) -> tensor<1x2x?x8xf32>
  %k1 = kern.launch "kv_append"(%kc, %kr, %len) {attrs = {axis = 2 : i64}} : (tensor<1x2x16x8xf32>, tensor<1x2x?x8xf32>, tensor<1xi64>) -> tensor<1x2x16x8xf32>
  %v1 = kern.launch "kv_append"(%vc, %v, %len) {attrs = {axis = 2 : i64}} : (tensor<1x2x16x8xf32>, tensor<1x2x?x8xf32>, tensor<1xi64>) -> tensor<1x2x16x8xf32>
  %sizes = kern.launch "shape"(%kr) : (tensor<1x2x?x8xf32>) -> tensor<4xi64>
  %none = kern.absent
  %o = kern.launch "attention"(%qr, %k1, %v1, %none, %len) {attrs = {causal = 1 : i64, scale = 0.5 : f64}} : (tensor<1x4x?x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, none, tensor<1xi64>) -> tensor<1x4x?x8xf32>
  return %o, %sizes : tensor<1x4x?x8xf32>, tensor<4xi64>
}

// -----

// Not fused: a rotated row read twice (returned too), an append along another axis, attention with a mask.
// CHECK-LABEL: func @no_fusion
// CHECK-COUNT-3: kern.launch "rotary"
// CHECK-NOT: kv_append_rotary
// CHECK-NOT: rotary_style
func.func @no_fusion(%q: tensor<1x4x1x8xf32>, %k: tensor<1x2x1x8xf32>, %pos: tensor<1x1xi64>, %m: tensor<1x1x1x16xi1>, %k2: tensor<1x1x2x8xf32>, %pos2: tensor<1x2xi64>) -> (tensor<1x2x1x8xf32>, tensor<1x4x1x8xf32>, tensor<1x16x2x8xf32>) {
  %len = kern.state "kv.len" : tensor<1xi64>
  %kc = kern.state "kv.0.key" : tensor<1x2x16x8xf32>
  %kc1 = kern.state "kv.1.key" : tensor<1x16x2x8xf32>
  %f = kern.weight dense<[1.0, 0.5, 0.25, 0.125]> : tensor<4xf32>
  %kr = kern.launch "rotary"(%k, %pos, %f) {attrs = {style = 0 : i32}} : (tensor<1x2x1x8xf32>, tensor<1x1xi64>, tensor<4xf32>) -> tensor<1x2x1x8xf32>
  %k1 = kern.launch "kv_append"(%kc, %kr, %len) {attrs = {axis = 2 : i64}} : (tensor<1x2x16x8xf32>, tensor<1x2x1x8xf32>, tensor<1xi64>) -> tensor<1x2x16x8xf32>
  %kt = kern.launch "rotary"(%k2, %pos2, %f) {attrs = {style = 0 : i32}} : (tensor<1x1x2x8xf32>, tensor<1x2xi64>, tensor<4xf32>) -> tensor<1x1x2x8xf32>
  %k2c = kern.launch "kv_append"(%kc1, %kt, %len) {attrs = {axis = 1 : i64}} : (tensor<1x16x2x8xf32>, tensor<1x1x2x8xf32>, tensor<1xi64>) -> tensor<1x16x2x8xf32>
  %qr = kern.launch "rotary"(%q, %pos, %f) {attrs = {style = 0 : i32}} : (tensor<1x4x1x8xf32>, tensor<1x1xi64>, tensor<4xf32>) -> tensor<1x4x1x8xf32>
  %o = kern.launch "attention"(%qr, %k1, %k1, %m) {attrs = {scale = 0.5 : f64}} : (tensor<1x4x1x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x1x1x16xi1>) -> tensor<1x4x1x8xf32>
  return %kr, %o, %k2c : tensor<1x2x1x8xf32>, tensor<1x4x1x8xf32>, tensor<1x16x2x8xf32>
}
