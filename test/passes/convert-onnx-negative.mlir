// RUN: %qopt-opt %s -qopt-convert-onnx -split-input-file -verify-diagnostics
// Nodes the importer must reject, each with a message naming the op and its opset.

func.func @unknown_op(%x: tensor<2xf32>) -> !nn.unknown {
  // expected-error@+1 {{ONNX FancyOp (opset 17): unsupported op}}
  %0 = nn.onnx_node "FancyOp"(%x) {attrs = {}, version = 17 : i64} : (tensor<2xf32>) -> !nn.unknown
  return %0 : !nn.unknown
}

// -----

func.func @old_opset(%x: tensor<2xf32>) -> !nn.unknown {
  // expected-error@+1 {{ONNX Gelu (opset 17): no handler for this opset version (earliest supported: 20)}}
  %0 = nn.onnx_node "Gelu"(%x) {attrs = {}, version = 17 : i64} : (tensor<2xf32>) -> !nn.unknown
  return %0 : !nn.unknown
}

// -----

func.func @custom_domain(%x: tensor<2xf32>) -> !nn.unknown {
  // expected-error@+1 {{ONNX Foo: custom domain 'com.example' is not supported}}
  %0 = nn.onnx_node "Foo"(%x) {attrs = {}, domain = "com.example", version = 1 : i64} : (tensor<2xf32>) -> !nn.unknown
  return %0 : !nn.unknown
}

// -----

func.func @dynamic_axes(%x: tensor<2x1xf32>, %axes: tensor<1xi64>) -> !nn.unknown {
  // expected-error@+1 {{ONNX Squeeze (opset 13): axes must be a compile-time constant}}
  %0 = nn.onnx_node "Squeeze"(%x, %axes) {attrs = {}, version = 13 : i64} : (tensor<2x1xf32>, tensor<1xi64>) -> !nn.unknown
  return %0 : !nn.unknown
}

// -----

func.func @bad_shapes(%x: tensor<2x3xf32>, %y: tensor<5xf32>) -> !nn.unknown {
  // expected-error@+1 {{'nn.binary' op operand shapes do not broadcast: dim 3 vs 5}}
  %0 = nn.onnx_node "Add"(%x, %y) {attrs = {}, version = 14 : i64} : (tensor<2x3xf32>, tensor<5xf32>) -> !nn.unknown
  return %0 : !nn.unknown
}

// -----

func.func @einsum_ellipsis(%x: tensor<2x3x3xf32>) -> !nn.unknown {
  // expected-error@+1 {{ONNX Einsum (opset 12): equation '...ii->...i': ellipsis is not supported}}
  %0 = nn.onnx_node "Einsum"(%x) {attrs = {equation = "...ii->...i"}, version = 12 : i64} : (tensor<2x3x3xf32>) -> !nn.unknown
  return %0 : !nn.unknown
}
