// RUN: %qopt-opt %s -qopt-kv-state="max-dims=batch=2,past=32,seq=32" -split-input-file | FileCheck %s
// RUN: %qopt-opt %s -qopt-kv-state="max-dims=batch=2,past=32,seq=32" -split-input-file -qopt-lower-to-kern -qopt-plan-memory="max-dims=batch=2,seq=32" | FileCheck %s --check-prefix=PLAN
// RUN: %qopt-opt %s -qopt-kv-state="max-dims=batch=2,past=32,seq=32 dtype=f16" -split-input-file -qopt-lower-to-kern -qopt-plan-memory="max-dims=batch=2,seq=32" | FileCheck %s --check-prefix=F16
// RUN: %qopt-opt %s -qopt-kv-state="max-dims=batch=2,past=32,seq=32 dtype=bf16" -split-input-file -qopt-lower-to-kern -qopt-plan-memory="max-dims=batch=2,seq=32" | FileCheck %s --check-prefix=BF16
// RUN: not %qopt-opt %s -qopt-kv-state="max-dims=batch=2,past=32,seq=32 dtype=f8" -split-input-file 2>&1 | FileCheck %s --check-prefix=BADTYPE
// A two-layer decoder's cache (GQA: 4 query heads, 2 kv heads) as session state.

// CHECK-LABEL: func @decoder
// The past inputs and present outputs are gone; the logits stay.
// CHECK-SAME: (%[[Q:.+]]: tensor<?x4x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "q"}, %[[NK:[^:]+]]: tensor<?x2x?x8xf32> {{.*}}, %[[NV:[^:]+]]: tensor<?x2x?x8xf32> {{.*}}) -> (tensor<?x4x?x8xf32> {nn.name = "out"})
// CHECK-NEXT: %[[LEN:.+]] = nn.state "kv.length" : tensor<1xi64>
// Each cache at its full capacity: the batch bound by the past dim's bound, in input order.
// CHECK-NEXT: %[[K0:.+]] = nn.state "past.0.key" : tensor<2x2x32x8xf32>
// CHECK-NEXT: %[[V0:.+]] = nn.state "past.0.value" : tensor<2x2x32x8xf32>
// CHECK-NEXT: %[[K1:.+]] = nn.state "past.1.key" : tensor<2x2x32x8xf32>
// CHECK-NEXT: %[[V1:.+]] = nn.state "past.1.value" : tensor<2x2x32x8xf32>
// CHECK: %[[AK0:.+]] = nn.kv_append(%[[K0]], %[[NK]], %[[LEN]])
// CHECK: %[[SZ:.+]] = nn.shape(%[[NK]]) : (tensor<?x2x?x8xf32>) -> tensor<4xi64>
// CHECK: %[[AV0:.+]] = nn.kv_append(%[[V0]], %[[NV]], %[[LEN]])
// CHECK: %[[O0:.+]] = nn.attention(%[[Q]], %[[AK0]], %[[AV0]], %{{.+}}, %[[LEN]]) {causal = 1 : i64, scale = 5.000000e-01 : f64}
// CHECK: nn.kv_append(%[[K1]]
// CHECK: nn.kv_append(%[[V1]]
// CHECK: %[[O1:.+]] = nn.attention(%[[O0]], %{{.+}}, %{{.+}}, %{{.+}}, %[[LEN]])
// The length advances by the new tokens (their count read from the first new entries' shape), after the last
// reader.
// CHECK-NEXT: nn.kv_advance(%[[LEN]], %[[SZ]])
// CHECK-NEXT: return %[[O1]] : tensor<?x4x?x8xf32>
// CHECK-NOT: nn.concat

// PLAN-LABEL: func @decoder
// PLAN-SAME: kern.state_bytes = 16448
// PLAN: kern.state "kv.length" {offset = 0 : i64} : tensor<1xi64>
// PLAN: kern.state "past.0.key" {offset = 64 : i64} : tensor<2x2x32x8xf32>
// PLAN: kern.state "past.0.value" {offset = 4160 : i64}
// PLAN: kern.launch "kv_append"(%{{.+}}) {attrs = {axis = 2 : i64}, max_shapes = [array<i64: 2, 2, 32, 8>], offsets = array<i64: 64>}
// PLAN: kern.launch "attention"
// PLAN: kern.launch "kv_advance"(%{{.+}}) {attrs = {axis = 2 : i64}, max_shapes = [array<i64: 1>], offsets = array<i64: 0>}

// dtype=f16: the caches hold float16 (half the state bytes); the appends take the float32 entries and attention
// reads the float16 caches.
// F16-LABEL: func @decoder
// F16-SAME: kern.state_bytes = 8256
// F16: kern.state "past.0.key" {offset = 64 : i64} : tensor<2x2x32x8xf16>
// F16: kern.state "past.0.value" {offset = 2112 : i64} : tensor<2x2x32x8xf16>
// F16: kern.launch "kv_append"(%{{.+}}) {{.*}} : (tensor<2x2x32x8xf16>, tensor<?x2x?x8xf32>, tensor<1xi64>) -> tensor<2x2x32x8xf16>
// F16: kern.launch "attention"(%{{.+}}) {{.*}} : (tensor<?x4x?x8xf32>, tensor<2x2x32x8xf16>, tensor<2x2x32x8xf16>, none, tensor<1xi64>) -> tensor<?x4x?x8xf32>
// bf16: the same bytes, bfloat16 elements (qopt's --act-dtype=bf16).
// BF16-LABEL: func @decoder
// BF16-SAME: kern.state_bytes = 8256
// BF16: kern.state "past.0.key" {offset = 64 : i64} : tensor<2x2x32x8xbf16>
// BF16: kern.launch "kv_append"(%{{.+}}) {{.*}} : (tensor<2x2x32x8xbf16>, tensor<?x2x?x8xf32>, tensor<1xi64>) -> tensor<2x2x32x8xbf16>
// BF16: kern.launch "attention"(%{{.+}}) {{.*}} : (tensor<?x4x?x8xf32>, tensor<2x2x32x8xbf16>, tensor<2x2x32x8xbf16>, none, tensor<1xi64>) -> tensor<?x4x?x8xf32>
// BADTYPE: error: qopt-kv-state: dtype must be f32, f16, bf16, fp8 or fp8_e5m2, got 'f8'
func.func @decoder(%q: tensor<?x4x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "q"},
                   %nk: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "new_k"},
                   %nv: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "new_v"},
                   %pk0: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "past", ""], nn.name = "past.0.key"},
                   %pv0: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "past", ""], nn.name = "past.0.value"},
                   %pk1: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "past", ""], nn.name = "past.1.key"},
                   %pv1: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "past", ""], nn.name = "past.1.value"})
    -> (tensor<?x4x?x8xf32> {nn.name = "out"}, tensor<?x2x?x8xf32> {nn.name = "present.0.key"},
        tensor<?x2x?x8xf32> {nn.name = "present.0.value"}, tensor<?x2x?x8xf32> {nn.name = "present.1.key"},
        tensor<?x2x?x8xf32> {nn.name = "present.1.value"}) {
  %none = nn.none
  %k0 = nn.concat(%pk0, %nk) {axis = 2 : i64} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  %v0 = nn.concat(%pv0, %nv) {axis = 2 : i64} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  %o0 = nn.attention(%q, %k0, %v0, %none) {causal = 1 : i64, scale = 0.5 : f64} : (tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>, none) -> tensor<?x4x?x8xf32>
  %k1 = nn.concat(%pk1, %nk) {axis = 2 : i64} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  %v1 = nn.concat(%pv1, %nv) {axis = 2 : i64} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  %o1 = nn.attention(%o0, %k1, %v1, %none) {causal = 1 : i64, scale = 0.5 : f64} : (tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>, none) -> tensor<?x4x?x8xf32>
  return %o1, %k0, %v0, %k1, %v1 : tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>
}

// -----

// A graph without cache inputs is not touched.
// CHECK-LABEL: func @no_cache
// CHECK-NOT: nn.state
// CHECK: nn.attention(%{{[^,]+}}, %{{[^,]+}}, %{{[^,]+}}, %{{[^,]+}}) {causal = 1 : i64}
func.func @no_cache(%q: tensor<1x4x6x8xf32>, %k: tensor<1x2x6x8xf32>, %v: tensor<1x2x6x8xf32>) -> tensor<1x4x6x8xf32> {
  %none = nn.none
  %o = nn.attention(%q, %k, %v, %none) {causal = 1 : i64} : (tensor<1x4x6x8xf32>, tensor<1x2x6x8xf32>, tensor<1x2x6x8xf32>, none) -> tensor<1x4x6x8xf32>
  return %o : tensor<1x4x6x8xf32>
}

// -----

// Hugging Face's pattern: a static batch of 1, the concatenation along axis -2, and the past's shape read for the
// number of cached positions (positions = range(0, new) + that number). The shape read becomes the state's
// length (with the static dims it also reads as constants).
// CHECK-LABEL: func @hf_positions
// CHECK-SAME: (%{{.+}}: tensor<1x4x?x8xf32> {{.*}}, %{{[^:]+}}: tensor<1x2x?x8xf32> {{.*}}) -> (tensor<1x4x?x8xf32> {nn.name = "out"}, tensor<2xi64> {nn.name = "dims"}, tensor<?xi64> {nn.name = "positions"})
// CHECK-NEXT: %[[LEN:.+]] = nn.state "kv.length" : tensor<1xi64>
// CHECK-NEXT: nn.state "past.0.key" : tensor<1x2x32x8xf32>
// CHECK: %[[P:.+]] = nn.squeeze(%[[LEN]]) : (tensor<1xi64>) -> tensor<i64>
// CHECK: %[[TWO:.+]] = nn.constant dense<2> : tensor<1xi64>
// CHECK: %[[DIMS:.+]] = nn.concat(%[[TWO]], %[[LEN]]) {axis = 0 : i64} : (tensor<1xi64>, tensor<1xi64>) -> tensor<2xi64>
// CHECK: nn.binary "add"(%{{.+}}, %[[P]])
// CHECK: nn.kv_append
// CHECK: nn.attention
// CHECK: return %{{.+}}, %[[DIMS]]
// CHECK-NOT: nn.shape(%
func.func @hf_positions(%q: tensor<1x4x?x8xf32> {nn.dims = ["", "", "seq", ""], nn.name = "q"},
                        %nk: tensor<1x2x?x8xf32> {nn.dims = ["", "", "seq", ""], nn.name = "new_k"},
                        %pk: tensor<1x2x?x8xf32> {nn.dims = ["", "", "past", ""], nn.name = "past.0.key"})
    -> (tensor<1x4x?x8xf32> {nn.name = "out"}, tensor<1x2x?x8xf32> {nn.name = "present.0.key"}, tensor<2xi64> {nn.name = "dims"}, tensor<?xi64> {nn.name = "positions"}) {
  %none = nn.none
  %len = nn.shape(%pk) {start = 2 : i64, end = 3 : i64} : (tensor<1x2x?x8xf32>) -> tensor<1xi64>
  %p = nn.squeeze(%len) : (tensor<1xi64>) -> tensor<i64>
  %dims = nn.shape(%pk) {start = 1 : i64, end = -1 : i64} : (tensor<1x2x?x8xf32>) -> tensor<2xi64>
  %n = nn.shape(%nk) {start = 2 : i64, end = 3 : i64} : (tensor<1x2x?x8xf32>) -> tensor<1xi64>
  %ns = nn.squeeze(%n) : (tensor<1xi64>) -> tensor<i64>
  %zero = nn.constant dense<0> : tensor<i64>
  %one = nn.constant dense<1> : tensor<i64>
  %r = nn.range(%zero, %ns, %one) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
  %pos = nn.binary "add"(%r, %p) : (tensor<?xi64>, tensor<i64>) -> tensor<?xi64>
  %k = nn.concat(%pk, %nk) {axis = -2 : i64} : (tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>) -> tensor<1x2x?x8xf32>
  %o = nn.attention(%q, %k, %k, %none) {causal = 1 : i64} : (tensor<1x4x?x8xf32>, tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>, none) -> tensor<1x4x?x8xf32>
  return %o, %k, %dims, %pos : tensor<1x4x?x8xf32>, tensor<1x2x?x8xf32>, tensor<2xi64>, tensor<?xi64>
}

// -----

// The past's whole shape read with a dynamic batch (eager-attention exports size their mask by it): the run's
// batch comes from another input with that dim (ONNX names a symbolic dim once), the past dim from the length.
// CHECK-LABEL: func @batch_from_input
// CHECK-NEXT: %[[LEN:.+]] = nn.state "kv.length" : tensor<1xi64>
// CHECK: %[[B:.+]] = nn.shape(%arg0) {end = 1 : i64, start = 0 : i64} : (tensor<?x4x?x8xf32>) -> tensor<1xi64>
// CHECK: %[[H:.+]] = nn.constant dense<2> : tensor<1xi64>
// CHECK: %[[D:.+]] = nn.constant dense<8> : tensor<1xi64>
// CHECK: %[[S:.+]] = nn.concat(%[[B]], %[[H]], %[[LEN]], %[[D]]) {axis = 0 : i64} : (tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<4xi64>
// CHECK: return %{{.+}}, %[[S]]
func.func @batch_from_input(%q: tensor<?x4x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "q"},
                            %nk: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "new_k"},
                            %pk: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "past", ""], nn.name = "past.0.key"})
    -> (tensor<?x4x?x8xf32> {nn.name = "out"}, tensor<?x2x?x8xf32> {nn.name = "present.0.key"}, tensor<4xi64> {nn.name = "past_shape"}) {
  %none = nn.none
  %s = nn.shape(%pk) : (tensor<?x2x?x8xf32>) -> tensor<4xi64>
  %k = nn.concat(%pk, %nk) {axis = 2 : i64} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  %o = nn.attention(%q, %k, %k, %none) {causal = 1 : i64} : (tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>, none) -> tensor<?x4x?x8xf32>
  return %o, %k, %s : tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<4xi64>
}
