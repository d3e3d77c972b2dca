// RUN: %qopt-opt %s -qopt-kv-state="max-dims=batch=1,past=32,seq=32" -split-input-file -verify-diagnostics | FileCheck %s
// Caches that cannot move into state: the graph is left as it is, with a note saying why.

// The past's shape is read along its dynamic batch dim (the cache's batch is its capacity, not the run's), and no
// other input has a dim of that name to read the run's batch from.
// CHECK-LABEL: func @past_shape_read
// CHECK-NOT: nn.state
// CHECK: nn.concat
// expected-remark @below {{the KV cache stays in the graph's inputs and outputs: 'past.0.key''s shape is read along its dynamic batch dim, which no other input has}}
func.func @past_shape_read(%q: tensor<?x4x?x8xf32> {nn.dims = ["rows", "", "seq", ""], nn.name = "q"},
                           %nk: tensor<?x2x?x8xf32> {nn.dims = ["rows", "", "seq", ""], nn.name = "new_k"},
                           %pk: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "past", ""], nn.name = "past.0.key"})
    -> (tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<4xi64>) {
  %none = nn.none
  %k = nn.concat(%pk, %nk) {axis = 2 : i64} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  %o = nn.attention(%q, %k, %k, %none) {causal = 1 : i64} : (tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>, none) -> tensor<?x4x?x8xf32>
  %s = nn.shape(%pk) : (tensor<?x2x?x8xf32>) -> tensor<4xi64>
  return %o, %k, %s : tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<4xi64>
}

// -----

// The past's values are read by more than the concatenation (a shape read is fine: see kv-state.mlir).
// CHECK-LABEL: func @past_value_read
// CHECK-NOT: nn.state
// expected-remark @below {{'past.0.key' is read by more than the concatenation with the new entries and shape reads}}
func.func @past_value_read(%q: tensor<?x4x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "q"},
                           %nk: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "new_k"},
                           %pk: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "past", ""], nn.name = "past.0.key"})
    -> (tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) {
  %none = nn.none
  %k = nn.concat(%pk, %nk) {axis = 2 : i64} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  %o = nn.attention(%q, %k, %k, %none) {causal = 1 : i64} : (tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>, none) -> tensor<?x4x?x8xf32>
  %e = nn.unary "exp"(%pk) : (tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  return %o, %k, %e : tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>
}

// -----

// Attention with a mask over the cached positions.
// CHECK-LABEL: func @masked
// CHECK-NOT: nn.state
// expected-remark @below {{'past.0.key''s attention has a mask (its size follows the cached length)}}
func.func @masked(%q: tensor<?x4x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "q"},
                  %nk: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "new_k"},
                  %pk: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "past", ""], nn.name = "past.0.key"},
                  %m: tensor<?x1x?x?xf32> {nn.dims = ["batch", "", "seq", "total"], nn.name = "mask"})
    -> (tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>) {
  %k = nn.concat(%pk, %nk) {axis = 2 : i64} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  %o = nn.attention(%q, %k, %k, %m) : (tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x1x?x?xf32>) -> tensor<?x4x?x8xf32>
  return %o, %k : tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>
}

// -----

// The concatenation feeds something other than attention (a decomposed attention: --raise=false).
// CHECK-LABEL: func @not_attention
// CHECK-NOT: nn.state
// expected-remark @below {{'past.0.key''s concatenation is read by nn.transpose (only attention and the graph's outputs can read a cache held as state)}}
func.func @not_attention(%nk: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "new_k"},
                         %pk: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "past", ""], nn.name = "past.0.key"})
    -> (tensor<?x2x8x?xf32>, tensor<?x2x?x8xf32>) {
  %k = nn.concat(%pk, %nk) {axis = 2 : i64} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  %t = nn.transpose(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<?x2x?x8xf32>) -> tensor<?x2x8x?xf32>
  return %t, %k : tensor<?x2x8x?xf32>, tensor<?x2x?x8xf32>
}

// -----

// Another input has the past dim (an attention mask over past + new positions would need it).
// CHECK-LABEL: func @past_dim_elsewhere
// CHECK-NOT: nn.state
// expected-remark @below {{input 2 also has the past dim 'past'}}
func.func @past_dim_elsewhere(%q: tensor<?x4x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "q"},
                              %nk: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "new_k"},
                              %p: tensor<?x?xi64> {nn.dims = ["batch", "past"], nn.name = "past_positions"},
                              %pk: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "past", ""], nn.name = "past.0.key"})
    -> (tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>) {
  %none = nn.none
  %k = nn.concat(%pk, %nk) {axis = 2 : i64} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  %o = nn.attention(%q, %k, %k, %none) : (tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>, none) -> tensor<?x4x?x8xf32>
  return %o, %k : tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>
}

// -----

// No bound for the past dim.
// expected-error @below {{dynamic dim 2 ('other') of a KV cache input has no bound: pass --max-dim other=N}}
func.func @no_bound(%q: tensor<?x4x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "q"},
                    %nk: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "seq", ""], nn.name = "new_k"},
                    %pk: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "other", ""], nn.name = "past.0.key"})
    -> (tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>) {
  %none = nn.none
  %k = nn.concat(%pk, %nk) {axis = 2 : i64} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  %o = nn.attention(%q, %k, %k, %none) : (tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>, none) -> tensor<?x4x?x8xf32>
  return %o, %k : tensor<?x4x?x8xf32>, tensor<?x2x?x8xf32>
}
