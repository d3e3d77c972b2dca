// RUN: %qopt-opt %s -split-input-file -verify-diagnostics

func.func @bad_broadcast(%x: tensor<2x3xf32>, %y: tensor<4xf32>) {
  // expected-error@+1 {{'nn.binary' op operand shapes do not broadcast: dim 3 vs 4}}
  %0 = nn.binary "add"(%x, %y) : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @wrong_result(%x: tensor<2x3xf32>) {
  // expected-error@+1 {{'nn.unary' op result type 'tensor<3x2xf32>' does not match inferred 'tensor<2x3xf32>'}}
  %0 = nn.unary "exp"(%x) : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return
}

// -----

func.func @matmul_k(%x: tensor<2x3xf32>, %w: tensor<4x5xf32>) {
  // expected-error@+1 {{'nn.matmul' op contracting dims differ: 3 vs 4}}
  %0 = nn.matmul(%x, %w) : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32>
  return
}

// -----

func.func @perm(%x: tensor<2x3xf32>) {
  // expected-error@+1 {{'nn.transpose' op perm is not a permutation}}
  %0 = nn.transpose(%x) {perm = array<i64: 0, 0>} : (tensor<2x3xf32>) -> tensor<2x2xf32>
  return
}

// -----

func.func @axis(%x: tensor<2x3xf32>) {
  // expected-error@+1 {{'nn.reduce' op axis 2 is out of range for rank 2}}
  %0 = nn.reduce(%x) {kind = "sum", axes = array<i64: 2>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @reshape_count(%x: tensor<2x3xf32>) {
  %s = nn.constant dense<[4, 2]> : tensor<2xi64>
  // expected-error@+1 {{'nn.reshape' op cannot reshape 6 elements into 8}}
  %0 = nn.reshape(%x, %s) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<4x2xf32>
  return
}

// -----

func.func @squeeze_nonunit(%x: tensor<2x3xf32>) {
  // expected-error@+1 {{'nn.squeeze' op dim 0 is 2, not 1}}
  %0 = nn.squeeze(%x) {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<3xf32>
  return
}

// -----

func.func @where_cond(%c: tensor<2xf32>, %x: tensor<2xf32>) {
  // expected-error@+1 {{'nn.where' op expects an i1 condition}}
  %0 = nn.where(%c, %x, %x) : (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @conv_channels(%x: tensor<1x3x8x8xf32>, %w: tensor<4x2x3x3xf32>) {
  %none = nn.none
  // expected-error@+1 {{'nn.conv' op conv: channels 3 and weight [4, 2, 3, 3] do not match group 1}}
  %0 = nn.conv(%x, %w, %none) : (tensor<1x3x8x8xf32>, tensor<4x2x3x3xf32>, none) -> tensor<1x4x6x6xf32>
  return
}

// -----

func.func @topk_k(%x: tensor<4xf32>) {
  %k = nn.constant dense<5> : tensor<1xi64>
  // expected-error@+1 {{'nn.topk' op topk: k = 5 is outside [0, 4]}}
  %0:2 = nn.topk(%x, %k) : (tensor<4xf32>, tensor<1xi64>) -> (tensor<4xf32>, tensor<4xi64>)
  return
}

// -----

func.func @tile_dynamic(%x: tensor<4xf32>, %r: tensor<1xi64>) {
  // expected-error@+1 {{'nn.tile' op operand 1 must be a compile-time constant}}
  %0 = nn.tile(%x, %r) : (tensor<4xf32>, tensor<1xi64>) -> tensor<?xf32>
  return
}

// -----

func.func @unknown_fn(%x: tensor<2xf32>) {
  // expected-error@+1 {{'nn.unary' op unknown unary function 'frobnicate'}}
  %0 = nn.unary "frobnicate"(%x) : (tensor<2xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @float_only(%x: tensor<2xi64>) {
  // expected-error@+1 {{'nn.unary' op unary 'exp' needs a float operand, got int64}}
  %0 = nn.unary "exp"(%x) : (tensor<2xi64>) -> tensor<2xi64>
  return
}

// -----

func.func @logic_on_float(%x: tensor<2xf32>) {
  // expected-error@+1 {{'nn.binary' op logical binary op needs bool operands}}
  %0 = nn.binary "and"(%x, %x) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xi1>
  return
}

// -----

func.func @bad_kind(%x: tensor<2xf32>) {
  // expected-error@+1 {{'nn.reduce' op unknown reduction kind 'median'}}
  %0 = nn.reduce(%x) {kind = "median"} : (tensor<2xf32>) -> tensor<1xf32>
  return
}

// -----

// A result whose rank is run-time data gets at most 16 dims (found by fuzzing: a 2^41-entry shape operand made
// shape inference allocate a 2^41-dim shape).
func.func @shape_rank(%x: tensor<?xf32>, %s: tensor<17xi64>) {
  // expected-error@+1 {{'nn.reshape' op shape operand has 17 entries: tensors have at most 16 dims}}
  %0 = nn.reshape(%x, %s) : (tensor<?xf32>, tensor<17xi64>) -> tensor<?x?x?x?x?x?x?x?x?x?x?x?x?x?x?x?x?xf32>
  return
}

// -----

func.func @expand_rank(%x: tensor<?xf32>, %s: tensor<2199023255554xi64>) {
  // expected-error@+1 {{'nn.expand' op shape operand has 2199023255554 entries: tensors have at most 16 dims}}
  %0 = nn.expand(%x, %s) : (tensor<?xf32>, tensor<2199023255554xi64>) -> tensor<?xf32>
  return
}

// -----

// A blob must hold its tensor type's bytes (here 4 of the 16 that four floats need); MLIR itself does not check.
func.func @short_blob() -> tensor<4xf32> {
  // expected-error@+1 {{'nn.constant' op resource 'short' holds 4 bytes, but 'tensor<4xf32>' needs 16}}
  %0 = nn.constant dense_resource<short> : tensor<4xf32>
  return %0 : tensor<4xf32>
}

{-#
  dialect_resources: {
    builtin: {
      short: "0x040000000000803F"
    }
  }
#-}

// -----

func.func @state_dynamic() {
  // expected-error@+1 {{'nn.state' op needs a static shape (the session allocates it once)}}
  %0 = nn.state "s" : tensor<?x4xf32>
  return
}

// -----

func.func @kv_append_dims(%c: tensor<1x4x16x8xf32>, %x: tensor<1x2x3x8xf32>, %len: tensor<1xi64>) {
  // expected-error@+1 {{'nn.kv_append' op new entries 'tensor<1x2x3x8xf32>' differ from the cache 'tensor<1x4x16x8xf32>' in dim 1}}
  %0 = nn.kv_append(%c, %x, %len) : (tensor<1x4x16x8xf32>, tensor<1x2x3x8xf32>, tensor<1xi64>) -> tensor<1x4x16x8xf32>
  return
}

// -----

func.func @kv_append_length(%c: tensor<1x4x16x8xf32>, %x: tensor<1x4x3x8xf32>, %len: tensor<2xi64>) {
  // expected-error@+1 {{'nn.kv_append' op expects a one-element i64 length, got 'tensor<2xi64>'}}
  %0 = nn.kv_append(%c, %x, %len) : (tensor<1x4x16x8xf32>, tensor<1x4x3x8xf32>, tensor<2xi64>) -> tensor<1x4x16x8xf32>
  return
}

// -----

// An FP8 cache's append takes its scales (float32, one per kv head) and, for centered keys, its offsets (float32
// [kv heads, head dim]) as operands; other caches take neither.
func.func @kv_append_fp8_no_scales(%c: tensor<1x2x16x8xf8E4M3FN>, %x: tensor<1x2x3x8xf32>, %len: tensor<1xi64>) {
  // expected-error@+1 {{'nn.kv_append' op expects an FP8 cache [batch, kv heads, capacity, head dim] appended along dim 2 with one float32 scale per kv head (`scales`)}}
  %0 = nn.kv_append(%c, %x, %len) : (tensor<1x2x16x8xf8E4M3FN>, tensor<1x2x3x8xf32>, tensor<1xi64>) -> tensor<1x2x16x8xf8E4M3FN>
  return
}

// -----

func.func @kv_append_fp8_scales_shape(%c: tensor<1x2x16x8xf8E4M3FN>, %x: tensor<1x2x3x8xf32>, %len: tensor<1xi64>,
                                      %s: tensor<4xf32>) {
  // expected-error@+1 {{'nn.kv_append' op expects an FP8 cache [batch, kv heads, capacity, head dim] appended along dim 2 with one float32 scale per kv head (`scales`)}}
  %0 = nn.kv_append(%c, %x, %len) scales(%s) : (tensor<1x2x16x8xf8E4M3FN>, tensor<1x2x3x8xf32>, tensor<1xi64>, tensor<4xf32>) -> tensor<1x2x16x8xf8E4M3FN>
  return
}

// -----

func.func @kv_append_fp8_offsets_shape(%c: tensor<1x2x16x8xf8E4M3FN>, %x: tensor<1x2x3x8xf32>, %len: tensor<1xi64>,
                                       %s: tensor<2xf32>, %o: tensor<2xf32>) {
  // expected-error@+1 {{'nn.kv_append' op expects `offsets` of float32 [kv heads, head dim]}}
  %0 = nn.kv_append(%c, %x, %len) scales(%s) offsets(%o) : (tensor<1x2x16x8xf8E4M3FN>, tensor<1x2x3x8xf32>, tensor<1xi64>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x16x8xf8E4M3FN>
  return
}

// -----

func.func @kv_append_f32_scales(%c: tensor<1x2x16x8xf32>, %x: tensor<1x2x3x8xf32>, %len: tensor<1xi64>,
                                %s: tensor<2xf32>) {
  // expected-error@+1 {{'nn.kv_append' op takes `scales` and `offsets` only with an FP8 cache}}
  %0 = nn.kv_append(%c, %x, %len) scales(%s) : (tensor<1x2x16x8xf32>, tensor<1x2x3x8xf32>, tensor<1xi64>, tensor<2xf32>) -> tensor<1x2x16x8xf32>
  return
}

// -----

// Attention over FP8 caches needs both caches' scales, float32 per kv head (the reference kernel's shape check).
func.func @attention_fp8_scales(%q: tensor<1x4x1x8xf32>, %k: tensor<1x2x16x8xf8E4M3FN>, %v: tensor<1x2x16x8xf8E4M3FN>,
                                %len: tensor<1xi64>, %s: tensor<2xf32>, %bad: tensor<3xf32>) {
  %none = nn.none
  // expected-error@+1 {{FP8 caches need one float32 scale per kv head for keys and values (operands 5 and 6)}}
  %0 = nn.attention(%q, %k, %v, %none, %len) scales(%s, %bad) : (tensor<1x4x1x8xf32>, tensor<1x2x16x8xf8E4M3FN>, tensor<1x2x16x8xf8E4M3FN>, none, tensor<1xi64>, tensor<2xf32>, tensor<3xf32>) -> tensor<1x4x1x8xf32>
  return
}
