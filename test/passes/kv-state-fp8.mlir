// RUN: %qopt-opt %s -qopt-kv-state="max-dims=batch=1,past=16,seq=16 dtype=fp8" | FileCheck %s
// RUN: %qopt-opt %s -qopt-kv-state="max-dims=batch=1,past=16,seq=16 dtype=fp8_e5m2" | FileCheck %s --check-prefix=E5M2
// RUN: %qopt-opt %s -qopt-kv-state="max-dims=batch=1,past=16,seq=16 dtype=fp8" -qopt-lower-to-kern -qopt-plan-memory="max-dims=batch=1,seq=16" | FileCheck %s --check-prefix=PLAN
// RUN: %qopt-opt %s -qopt-kv-state="max-dims=batch=1,past=16,seq=16 dtype=fp8" | FileCheck %s --check-prefix=CENTER
// RUN: %qopt-opt %s -qopt-kv-state="max-dims=batch=1,past=16,seq=16 dtype=fp8 center-keys=false" | FileCheck %s --check-prefix=PLAIN
// RUN: sed 's/, qopt.calib_kv = [^}]*//' %s | not %qopt-opt -qopt-kv-state="max-dims=batch=1,past=16,seq=16 dtype=fp8" 2>&1 | FileCheck %s --check-prefix=NOCALIB
// An FP8 KV cache: each cache's codes are x / scale per kv head, scale = the calibrated max |x| of that head
// (qopt-calibrate kv=true's qopt.calib_kv) / the format's largest value (448 for E4M3, 57344 for E5M2; a head whose
// range is 0 gets 1). The scales are float32 constants named after their cache, operands of its append and of the
// attention that reads it; the state holds one byte per entry.

// CHECK-LABEL: func @decoder
// CHECK: nn.state "past.0.key" : tensor<1x2x16x8xf8E4M3FN>
// CHECK: %[[KS:.+]] = nn.constant dense<[9.765625E-4, 1.562500e-02]> : tensor<2xf32> {name = "past.0.key.scales"}
// CHECK: nn.state "past.0.value" : tensor<1x2x16x8xf8E4M3FN>
// CHECK: %[[VS:.+]] = nn.constant dense<[7.812500e-03, 1.000000e+00]> : tensor<2xf32> {name = "past.0.value.scales"}
// CHECK: %[[K:.+]] = nn.kv_append(%{{.+}}) scales(%[[KS]]) : (tensor<1x2x16x8xf8E4M3FN>, tensor<?x2x?x8xf32>, tensor<1xi64>, tensor<2xf32>) -> tensor<1x2x16x8xf8E4M3FN>
// CHECK: %[[V:.+]] = nn.kv_append(%{{.+}}) scales(%[[VS]])
// CHECK: nn.attention(%{{.+}}, %[[K]], %[[V]], %{{.+}}, %{{.+}}) scales(%[[KS]], %[[VS]]) {causal = 1 : i64}
// CHECK-NOT: qopt.calib_kv

// Without the calibrated ranges (no --calib: the attributes removed) an FP8 cache is refused.
// NOCALIB: error: qopt-kv-state: dtype=fp8 needs each cache's calibrated range per kv head (qopt-calibrate kv=true: pass --calib FILE)

// E5M2-LABEL: func @decoder
// E5M2: nn.state "past.0.key" : tensor<1x2x16x8xf8E5M2>
// E5M2: nn.constant dense<[7.62939453E-6, 1.22070313E-4]> : tensor<2xf32> {name = "past.0.key.scales"}

// A quarter of the float32 state (two caches of 1 x 2 x 16 x 8 bytes after the 64-byte length); the scales are
// weights, launch operands (the appends' operand 3, attention's 5 and 6), not attributes.
// PLAN-LABEL: func @decoder
// PLAN-SAME: kern.state_bytes = 576
// PLAN: kern.state "past.0.key" {offset = 64 : i64} : tensor<1x2x16x8xf8E4M3FN>
// PLAN: %[[KS:.+]] = kern.weight dense<[9.765625E-4, 1.562500e-02]> : tensor<2xf32> {name = "past.0.key.scales"}
// PLAN: kern.state "past.0.value" {offset = 320 : i64} : tensor<1x2x16x8xf8E4M3FN>
// PLAN: %[[VS:.+]] = kern.weight dense<[7.812500e-03, 1.000000e+00]> : tensor<2xf32> {name = "past.0.value.scales"}
// PLAN: kern.launch "kv_append"(%{{.+}}, %{{.+}}, %{{.+}}, %[[KS]]) {attrs = {axis = 2 : i64}, max_shapes
// PLAN: kern.launch "attention"(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[KS]], %[[VS]]) {attrs = {causal = 1 : i64, masked_value
func.func @decoder(%q: tensor<?x4x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "q"},
                   %nk: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "new_k"},
                   %nv: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "new_v"},
                   %pk0: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "past", ""], nn.name = "past.0.key"},
                   %pv0: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "past", ""], nn.name = "past.0.value"})
    -> (tensor<?x4x?x8xf32> {nn.name = "out"}, tensor<?x2x?x8xf32> {nn.name = "present.0.key"},
        tensor<?x2x?x8xf32> {nn.name = "present.0.value"}) {
  %none = nn.none
  %k0 = nn.concat(%pk0, %nk) {axis = 2 : i64, qopt.calib_kv = dense<[0.4375, 7.0]> : tensor<2xf32>} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  %v0 = nn.concat(%pv0, %nv) {axis = 2 : i64, qopt.calib_kv = dense<[3.5, 0.0]> : tensor<2xf32>} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  %o0 = nn.attention(%q, %k0, %v0, %none) {causal = 1 : i64} : (tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>, none) -> tensor<?x4x?x8xf32>
  return %o0, %k0, %v0 : tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>
}

// Keys with calibrated channel ranges (qopt.calib_kv_range: minima, maxima, means per kv head and channel) are
// stored centered: offsets = the channel means (head 0: 0.25 then zeros; head 1: -3), each head's scale its largest
// distance from them / 448 (head 0: 0.75 from channel 0's minimum; head 1: 4). Values keep their plain scales
// (a value offset would shift the outputs, which softmax does not cancel). center-keys=false: the plain scales.
// CENTER-LABEL: func @centered
// CENTER: %[[KS:.+]] = nn.constant dense<[0.00167410716, 0.00892857183]> : tensor<2xf32> {name = "past.0.key.scales"}
// CENTER: %[[KO:.+]] = nn.constant dense<{{\[}}[2.500000e-01, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00], [-3.000000e+00, -3.000000e+00, -3.000000e+00, -3.000000e+00, -3.000000e+00, -3.000000e+00, -3.000000e+00, -3.000000e+00]]> : tensor<2x8xf32> {name = "past.0.key.offsets"}
// CENTER: %[[VS:.+]] = nn.constant dense<0.00446428591> : tensor<2xf32> {name = "past.0.value.scales"}
// CENTER: nn.kv_append(%{{.+}}) scales(%[[KS]]) offsets(%[[KO]])
// CENTER: nn.kv_append(%{{.+}}) scales(%[[VS]]) :
// CENTER: nn.attention(%{{.+}}) scales(%[[KS]], %[[VS]]) {causal = 1 : i64}
// PLAIN-LABEL: func @centered
// PLAIN-NOT: offsets
// PLAIN: nn.constant dense<1.562500e-02> : tensor<2xf32> {name = "past.0.key.scales"}
// PLAIN: nn.kv_append(%{{.+}}) scales(%{{.+}}) :
func.func @centered(%q: tensor<?x4x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "q"},
                    %nk: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "new_k"},
                    %nv: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "new_v"},
                    %pk0: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "past", ""], nn.name = "past.0.key"},
                    %pv0: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "past", ""], nn.name = "past.0.value"})
    -> (tensor<?x4x?x8xf32> {nn.name = "out"}, tensor<?x2x?x8xf32> {nn.name = "present.0.key"},
        tensor<?x2x?x8xf32> {nn.name = "present.0.value"}) {
  %none = nn.none
  %k0 = nn.concat(%pk0, %nk) {axis = 2 : i64, qopt.calib_kv = dense<[7.0, 7.0]> : tensor<2xf32>, qopt.calib_kv_range = dense<[[[-0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5], [-7.0, -7.0, -7.0, -7.0, -7.0, -7.0, -7.0, -7.0]], [[0.375, 0.375, 0.375, 0.375, 0.375, 0.375, 0.375, 0.375], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]], [[0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [-3.0, -3.0, -3.0, -3.0, -3.0, -3.0, -3.0, -3.0]]]> : tensor<3x2x8xf32>} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  %v0 = nn.concat(%pv0, %nv) {axis = 2 : i64, qopt.calib_kv = dense<[2.0, 2.0]> : tensor<2xf32>, qopt.calib_kv_range = dense<[[[-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0], [-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0]], [[2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0], [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]], [[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]]]> : tensor<3x2x8xf32>} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  %o0 = nn.attention(%q, %k0, %v0, %none) {causal = 1 : i64} : (tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>, none) -> tensor<?x4x?x8xf32>
  return %o0, %k0, %v0 : tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>
}
