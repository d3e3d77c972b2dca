// RUN: %qopt-opt %s -qopt-fuse-add-norm -split-input-file | FileCheck %s

// The residual add and the norm of the next block: one launch with both results; the stream's other reader takes
// the sum.
// CHECK-LABEL: func @residual
// CHECK: %[[F:.+]]:2 = kern.launch "add_rms_norm"(%arg0, %arg1, %{{.+}}) {attrs = {epsilon = 1.000000e-05 : f64}} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
// CHECK-NOT: kern.launch "rms_norm"
// CHECK-NOT: kern.launch "binary"{{.*}}"add"
// CHECK: kern.launch "binary"(%[[F]]#1, %[[F]]#0) {attrs = {fn = "mul"}}
func.func @residual(%a: tensor<?x64xf32>, %b: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %w = kern.weight dense<1.5> : tensor<64xf32>
  %s = kern.launch "binary"(%a, %b) {attrs = {fn = "add"}} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %n = kern.launch "rms_norm"(%s, %w) {attrs = {epsilon = 1.0e-5 : f64}} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %y = kern.launch "binary"(%n, %s) {attrs = {fn = "mul"}} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Not an add, or a norm whose scale is computed after the add: left alone.
// CHECK-LABEL: func @no_fusion
// CHECK-NOT: add_rms_norm
func.func @no_fusion(%a: tensor<?x64xf32>, %b: tensor<?x64xf32>, %x: tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  %w = kern.weight dense<1.5> : tensor<64xf32>
  %s = kern.launch "binary"(%a, %b) {attrs = {fn = "sub"}} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %n = kern.launch "rms_norm"(%s, %w) {attrs = {epsilon = 1.0e-5 : f64}} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %t = kern.launch "binary"(%a, %b) {attrs = {fn = "add"}} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %w2 = kern.launch "unary"(%x) {attrs = {fn = "exp"}} : (tensor<64xf32>) -> tensor<64xf32>
  %m = kern.launch "rms_norm"(%t, %w2) {attrs = {epsilon = 1.0e-5 : f64}} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %n, %m : tensor<?x64xf32>, tensor<?x64xf32>
}

// -----

// GPT-2's residual add and LayerNorm (scale and bias): one add_layer_norm launch.
// CHECK-LABEL: func @layer_norm
// CHECK: %[[F:.+]]:2 = kern.launch "add_layer_norm"(%arg0, %arg1, %{{.+}}, %{{.+}}) {attrs = {axis = -1 : i64, epsilon = 1.000000e-05 : f64}} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
// CHECK-NOT: kern.launch "layer_norm"
// CHECK: return %[[F]]#1, %[[F]]#0
func.func @layer_norm(%a: tensor<?x64xf32>, %b: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  %w = kern.weight dense<1.5> : tensor<64xf32>
  %c = kern.weight dense<0.25> : tensor<64xf32>
  %s = kern.launch "binary"(%a, %b) {attrs = {fn = "add"}} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %n = kern.launch "layer_norm"(%s, %w, %c) {attrs = {axis = -1 : i64, epsilon = 1.0e-5 : f64}} : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %n, %s : tensor<?x64xf32>, tensor<?x64xf32>
}
