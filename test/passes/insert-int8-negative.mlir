// RUN: %qopt-opt %s -qopt-insert-int8="mode=static" -split-input-file -verify-diagnostics
// RUN: not %qopt-opt %s -qopt-insert-int8="mode=per-channel" -split-input-file 2>&1 | FileCheck %s --check-prefix=MODE
// MODE: qopt-insert-int8: mode must be static or dynamic, got 'per-channel'

// Static scales need the input's calibrated range.
func.func @uncalibrated(%x: tensor<?x64xf32>, %w: tensor<32x64xi8>, %s: tensor<32x1xf32>) -> tensor<?x32xf32> {
  %n = nn.none
  // expected-error@+1 {{qopt-insert-int8: no calibration range for this layer's input (static scales need qopt-calibrate before quantization; or use mode=dynamic)}}
  %y = qnt.linear(%x, %w, %s, %n) {bits = 8 : i64, group_size = 64 : i64, qopt.quant = {method = "rtn"}}
      : (tensor<?x64xf32>, tensor<32x64xi8>, tensor<32x1xf32>, none) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// The op's own check: INT8 activations need int8 weights.
func.func @fp8_codes(%x: tensor<?x64xf32>, %w: tensor<32x64xf8E4M3FN>, %s: tensor<32x1xf32>) -> tensor<?x32xf32> {
  %n = nn.none
  // expected-error@+1 {{expects act_fp8 (FP8 weights) or act_int8 (int8 weights): 0 (float x), 1 (static, with an act_scale operand) or 2 (dynamic)}}
  %y = qnt.linear(%x, %w, %s, %n) {act_int8 = 2 : i64, bits = 8 : i64, group_size = 64 : i64}
      : (tensor<?x64xf32>, tensor<32x64xf8E4M3FN>, tensor<32x1xf32>, none) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}
