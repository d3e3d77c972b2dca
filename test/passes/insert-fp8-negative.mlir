// RUN: %qopt-opt %s -qopt-insert-fp8 -split-input-file -verify-diagnostics
// RUN: not %qopt-opt %s -qopt-insert-fp8="mode=per-channel" -split-input-file 2>&1 | FileCheck %s --check-prefix=MODE
// MODE: qopt-insert-fp8: mode must be static or dynamic, got 'per-channel'

// Static scales need the input's calibrated range.
func.func @uncalibrated(%x: tensor<?x64xf32>, %w: tensor<32x64xf8E4M3FN>, %s: tensor<32x1xf32>) -> tensor<?x32xf32> {
  %n = nn.none
  // expected-error@+1 {{qopt-insert-fp8: no calibration range for this layer's input (static scales need qopt-calibrate before quantization; or use mode=dynamic)}}
  %y = qnt.linear(%x, %w, %s, %n) {bits = 8 : i64, group_size = 64 : i64, qopt.quant = {method = "rtn"}}
      : (tensor<?x64xf32>, tensor<32x64xf8E4M3FN>, tensor<32x1xf32>, none) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// The op's own check: FP8 activations need FP8 weights.
func.func @int_codes(%x: tensor<?x64xf32>, %w: tensor<32x64xi8>, %s: tensor<32x1xf32>) -> tensor<?x32xf32> {
  %n = nn.none
  // expected-error@+1 {{expects act_fp8 (FP8 weights) or act_int8 (int8 weights): 0 (float x), 1 (static, with an act_scale operand) or 2 (dynamic)}}
  %y = qnt.linear(%x, %w, %s, %n) {act_fp8 = 2 : i64, bits = 8 : i64, group_size = 64 : i64}
      : (tensor<?x64xf32>, tensor<32x64xi8>, tensor<32x1xf32>, none) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Static activations take their scale as an operand: none for act_fp8 = 1 is an error, as is one for 2.
func.func @static_without_scale(%x: tensor<?x64xf32>, %w: tensor<32x64xf8E4M3FN>, %s: tensor<32x1xf32>) -> tensor<?x32xf32> {
  %n = nn.none
  // expected-error@+1 {{expects act_fp8 (FP8 weights) or act_int8 (int8 weights): 0 (float x), 1 (static, with an act_scale operand) or 2 (dynamic)}}
  %y = qnt.linear(%x, %w, %s, %n) {act_fp8 = 1 : i64, bits = 8 : i64, group_size = 64 : i64}
      : (tensor<?x64xf32>, tensor<32x64xf8E4M3FN>, tensor<32x1xf32>, none) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

func.func @dynamic_with_scale(%x: tensor<?x64xf32>, %w: tensor<32x64xf8E4M3FN>, %s: tensor<32x1xf32>, %a: tensor<1xf32>) -> tensor<?x32xf32> {
  %n = nn.none
  // expected-error@+1 {{expects act_fp8 (FP8 weights) or act_int8 (int8 weights): 0 (float x), 1 (static, with an act_scale operand) or 2 (dynamic)}}
  %y = qnt.linear(%x, %w, %s, %n, %a) {act_fp8 = 2 : i64, bits = 8 : i64, group_size = 64 : i64}
      : (tensor<?x64xf32>, tensor<32x64xf8E4M3FN>, tensor<32x1xf32>, none, tensor<1xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

func.func @scale_of_two(%x: tensor<?x64xf32>, %w: tensor<32x64xf8E4M3FN>, %s: tensor<32x1xf32>, %a: tensor<2xf32>) -> tensor<?x32xf32> {
  %n = nn.none
  // expected-error@+1 {{expects the static activation scale as tensor<1xf32>, got 'tensor<2xf32>'}}
  %y = qnt.linear(%x, %w, %s, %n, %a) {act_fp8 = 1 : i64, bits = 8 : i64, group_size = 64 : i64}
      : (tensor<?x64xf32>, tensor<32x64xf8E4M3FN>, tensor<32x1xf32>, none, tensor<2xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

func.func @zero_scale(%x: tensor<?x64xf32>, %w: tensor<32x64xf8E4M3FN>, %s: tensor<32x1xf32>) -> tensor<?x32xf32> {
  %n = nn.none
  %a = nn.constant dense<0.0> : tensor<1xf32>
  // expected-error@+1 {{expects a positive static activation scale, got 0.000000e+00}}
  %y = qnt.linear(%x, %w, %s, %n, %a) {act_fp8 = 1 : i64, bits = 8 : i64, group_size = 64 : i64}
      : (tensor<?x64xf32>, tensor<32x64xf8E4M3FN>, tensor<32x1xf32>, none, tensor<1xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}
