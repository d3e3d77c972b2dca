// RUN: %qopt-opt %s -qopt-quantize-rtn="bits=4 group-size=32" -split-input-file -verify-diagnostics | FileCheck %s
// RUN: %qopt-opt %s -qopt-quantize-rtn="bits=8 group-size=0" -split-input-file 2>/dev/null | FileCheck %s --check-prefix=INT8
// RUN: %qopt-opt %s -qopt-quantize-rtn="bits=4 per-tensor=true" -split-input-file 2>/dev/null | FileCheck %s --check-prefix=TENSOR
// RUN: %qopt-opt %s -qopt-quantize-rtn="bits=8 group-size=0 format=e4m3" -split-input-file 2>/dev/null | FileCheck %s --check-prefix=FP8
// RUN: %qopt-opt %s -qopt-quantize-rtn="bits=8 group-size=0 format=e5m2" -split-input-file 2>/dev/null | FileCheck %s --check-prefix=E5M2
// RUN: not %qopt-opt %s -qopt-quantize-rtn="bits=4 format=e4m3" -split-input-file 2>&1 | FileCheck %s --check-prefix=FMT
// FMT: qopt-quantize-rtn: format must be int, e4m3 or e5m2 (FP8 with bits 8, not per tensor), got 'e4m3' with bits 4

// CHECK-LABEL: func @linear
// INT8-LABEL: func @linear
// TENSOR-LABEL: func @linear
// FP8-LABEL: func @linear
// E5M2-LABEL: func @linear
// FP8 codes, one scale per channel (0.234375 is the channel's largest value: code 448, exact).
// FP8: %[[Q:.*]] = nn.constant dense_resource<mlp.up.weight.q> : tensor<32x64xf8E4M3FN>
// FP8: %[[S:.*]] = nn.constant dense_resource<mlp.up.weight.scales> : tensor<32x1xf32>
// FP8: %[[N:.*]] = nn.none
// FP8: qnt.linear(%{{.*}}, %[[Q]], %[[S]], %[[N]]) {bits = 8 : i64, group_size = 64 : i64, qopt.quant = {method = "rtn", weight_error = 0.000000e+00 : f32}}
// E5M2: nn.constant dense_resource<mlp.up.weight.q> : tensor<32x64xf8E5M2>
// TENSOR-DAG: %[[Q:.*]] = nn.constant dense_resource<mlp.up.weight.q> : tensor<32x32xui8>
// TENSOR-DAG: %[[S:.*]] = nn.constant dense_resource<mlp.up.weight.scales> : tensor<1x1xf16>
// TENSOR-DAG: %[[Z:.*]] = nn.constant dense_resource<mlp.up.weight.zeros> : tensor<1x1xui8>
// TENSOR: qnt.linear(%{{.*}}, %[[Q]], %[[S]], %[[Z]]) {bits = 4 : i64, group_size = 64 : i64, qopt.quant = {method = "rtn", weight_error = 0.000000e+00 : f32}}
func.func @linear(%x: tensor<?x64xf32>) -> tensor<?x32xf32> {
  %w = nn.constant dense<0.234375> : tensor<64x32xf32> {name = "mlp.up.weight"}
  // int4 scales are float16 values, stored as float16 (int8's and FP8's stay float32).
  // CHECK-DAG: %[[Q:.*]] = nn.constant dense_resource<mlp.up.weight.q> : tensor<32x32xui8>
  // CHECK-DAG: %[[S:.*]] = nn.constant dense_resource<mlp.up.weight.scales> : tensor<32x2xf16>
  // CHECK-DAG: %[[Z:.*]] = nn.constant dense_resource<mlp.up.weight.zeros> : tensor<32x2xui8>
  // A group of one repeated value whose scale (value / 15) is a float16 value is exact (the grid holds 0 and the
  // value: 0.234375 / 15 = 2^-6); the quantizer records its error.
  // CHECK: qnt.linear(%{{.*}}, %[[Q]], %[[S]], %[[Z]]) {bits = 4 : i64, group_size = 32 : i64, qopt.quant = {method = "rtn", weight_error = 0.000000e+00 : f32}}
  // CHECK-NOT: nn.matmul
  // INT8: %[[Q:.*]] = nn.constant dense_resource<mlp.up.weight.q> : tensor<32x64xi8>
  // INT8: %[[S:.*]] = nn.constant dense_resource<mlp.up.weight.scales> : tensor<32x1xf32>
  // INT8: %[[N:.*]] = nn.none
  // INT8: qnt.linear(%{{.*}}, %[[Q]], %[[S]], %[[N]]) {bits = 8 : i64, group_size = 64 : i64, qopt.quant = {method = "rtn", weight_error = 0.000000e+00 : f32}}
  %y = nn.matmul(%x, %w) : (tensor<?x64xf32>, tensor<64x32xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// A group size that does not divide K falls back to per channel, with a warning naming the layer.
// CHECK-LABEL: func @fallback
func.func @fallback(%x: tensor<?x48xf32>) -> tensor<?x32xf32> {
  %w = nn.constant dense<0.5> : tensor<48x32xf32> {name = "odd.weight"}
  // expected-warning@+2 {{group size 32 does not divide the input size 48 of 'odd.weight': quantized per channel}}
  // CHECK: qnt.linear{{.*}}group_size = 48 : i64
  %y = nn.matmul(%x, %w) : (tensor<?x48xf32>, tensor<48x32xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Weights so small that a scale falls below float16's normal range (2^-14): the layer keeps float32 scales (and
// the values as computed), so nothing underflows.
// CHECK-LABEL: func @tiny
func.func @tiny(%x: tensor<?x64xf32>) -> tensor<?x32xf32> {
  %w = nn.constant dense<1.5e-5> : tensor<64x32xf32> {name = "tiny.weight"}
  // CHECK: nn.constant dense_resource<tiny.weight.scales> : tensor<32x2xf32>
  // CHECK: qnt.linear{{.*}}weight_error = 0.000000e+00 : f32
  %y = nn.matmul(%x, %w) : (tensor<?x64xf32>, tensor<64x32xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}
