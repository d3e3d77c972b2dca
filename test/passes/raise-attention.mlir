// RUN: %qopt-opt %s -qopt-raise-attention -split-input-file | FileCheck %s
// Attention as exporters write it becomes one nn.attention.

// llama2.c / HF eager: GQA repeat of K and V, transpose, scale, boolean mask with -inf.
// CHECK-LABEL: func @eager_gqa
// CHECK-SAME: (%[[Q:.+]]: tensor<?x8x?x8xf32>, %[[K:.+]]: tensor<?x4x?x8xf32>, %[[V:.+]]: tensor<?x4x?x8xf32>, %[[M:.+]]: tensor<1x1x?x?xi1>
// CHECK: %[[O:.+]] = nn.attention(%[[Q]], %[[K]], %[[V]], %[[M]]) {scale = 0.3535533{{[0-9]+}} : f64}
// CHECK-SAME: -> tensor<?x8x?x8xf32>
// CHECK-NEXT: return %[[O]]
func.func @eager_gqa(%q: tensor<?x8x?x8xf32>, %k: tensor<?x4x?x8xf32>, %v: tensor<?x4x?x8xf32>, %mask: tensor<1x1x?x?xi1>, %s5: tensor<5xi64>, %s4: tensor<4xi64>) -> tensor<?x8x?x8xf32> {
  %scale = nn.constant dense<0.353553385> : tensor<f32>
  %ninf = nn.constant dense<0xFF800000> : tensor<f32>
  %ku = nn.unsqueeze(%k) {axes = array<i64: 2>} : (tensor<?x4x?x8xf32>) -> tensor<?x4x1x?x8xf32>
  %ke = nn.expand(%ku, %s5) : (tensor<?x4x1x?x8xf32>, tensor<5xi64>) -> tensor<?x4x2x?x8xf32>
  %kr = nn.reshape(%ke, %s4) : (tensor<?x4x2x?x8xf32>, tensor<4xi64>) -> tensor<?x8x?x8xf32>
  %vu = nn.unsqueeze(%v) {axes = array<i64: 2>} : (tensor<?x4x?x8xf32>) -> tensor<?x4x1x?x8xf32>
  %ve = nn.expand(%vu, %s5) : (tensor<?x4x1x?x8xf32>, tensor<5xi64>) -> tensor<?x4x2x?x8xf32>
  %vr = nn.reshape(%ve, %s4) : (tensor<?x4x2x?x8xf32>, tensor<4xi64>) -> tensor<?x8x?x8xf32>
  %kt = nn.transpose(%kr) {perm = array<i64: 0, 1, 3, 2>} : (tensor<?x8x?x8xf32>) -> tensor<?x8x8x?xf32>
  %s = nn.matmul(%q, %kt) : (tensor<?x8x?x8xf32>, tensor<?x8x8x?xf32>) -> tensor<?x8x?x?xf32>
  %c = nn.binary "mul"(%s, %scale) : (tensor<?x8x?x?xf32>, tensor<f32>) -> tensor<?x8x?x?xf32>
  %m = nn.where(%mask, %c, %ninf) : (tensor<1x1x?x?xi1>, tensor<?x8x?x?xf32>, tensor<f32>) -> tensor<?x8x?x?xf32>
  %p = nn.softmax(%m) : (tensor<?x8x?x?xf32>) -> tensor<?x8x?x?xf32>
  %o = nn.matmul(%p, %vr) : (tensor<?x8x?x?xf32>, tensor<?x8x?x8xf32>) -> tensor<?x8x?x8xf32>
  return %o : tensor<?x8x?x8xf32>
}

// -----

// torch sdpa: the scale split over Q and K^T, K^T through reshape/transpose/reshape, an additive mask and the NaN
// guard after the softmax.
// CHECK-LABEL: func @sdpa
// CHECK-SAME: (%[[Q:.+]]: tensor<?x4x?x16xf32>, %[[K:.+]]: tensor<?x4x?x16xf32>, %[[V:.+]]: tensor<?x4x?x16xf32>, %[[M:.+]]: tensor<?x1x?x?xf32>
// CHECK: nn.attention(%[[Q]], %[[K]], %[[V]], %[[M]]) {scale = 2.500000e-01 : f64, zero_nan_rows = 1 : i64}
// CHECK-NOT: nn.softmax
func.func @sdpa(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>, %mask: tensor<?x1x?x?xf32>, %s3: tensor<3xi64>, %s4: tensor<4xi64>) -> tensor<?x4x?x16xf32> {
  %half = nn.constant dense<0.5> : tensor<f32>
  %zero = nn.constant dense<0.0> : tensor<f32>
  %r = nn.reshape(%k, %s3) : (tensor<?x4x?x16xf32>, tensor<3xi64>) -> tensor<?x?x16xf32>
  %t = nn.transpose(%r) {perm = array<i64: 0, 2, 1>} : (tensor<?x?x16xf32>) -> tensor<?x16x?xf32>
  %kt = nn.reshape(%t, %s4) : (tensor<?x16x?xf32>, tensor<4xi64>) -> tensor<?x4x16x?xf32>
  %qs = nn.binary "mul"(%q, %half) : (tensor<?x4x?x16xf32>, tensor<f32>) -> tensor<?x4x?x16xf32>
  %ks = nn.binary "mul"(%kt, %half) : (tensor<?x4x16x?xf32>, tensor<f32>) -> tensor<?x4x16x?xf32>
  %s = nn.matmul(%qs, %ks) : (tensor<?x4x?x16xf32>, tensor<?x4x16x?xf32>) -> tensor<?x4x?x?xf32>
  %a = nn.binary "add"(%s, %mask) : (tensor<?x4x?x?xf32>, tensor<?x1x?x?xf32>) -> tensor<?x4x?x?xf32>
  %p = nn.softmax(%a) : (tensor<?x4x?x?xf32>) -> tensor<?x4x?x?xf32>
  %nan = nn.unary "isnan"(%p) : (tensor<?x4x?x?xf32>) -> tensor<?x4x?x?xi1>
  %g = nn.where(%nan, %zero, %p) : (tensor<?x4x?x?xi1>, tensor<f32>, tensor<?x4x?x?xf32>) -> tensor<?x4x?x?xf32>
  %o = nn.matmul(%g, %v) : (tensor<?x4x?x?xf32>, tensor<?x4x?x16xf32>) -> tensor<?x4x?x16xf32>
  return %o : tensor<?x4x?x16xf32>
}

// -----

// GPT-2 eager: K^T straight from [B, S, H, D]; K gets one transpose to [B, H, S, D]. No mask, no scale.
// CHECK-LABEL: func @bshd
// CHECK-SAME: (%[[Q:.+]]: tensor<2x4x7x16xf32>, %[[K:.+]]: tensor<2x7x4x16xf32>, %[[V:.+]]: tensor<2x4x7x16xf32>
// CHECK: %[[KT:.+]] = nn.transpose(%[[K]]) {perm = array<i64: 0, 2, 1, 3>} : (tensor<2x7x4x16xf32>) -> tensor<2x4x7x16xf32>
// CHECK: nn.attention(%[[Q]], %[[KT]], %[[V]], %{{.+}}) : (tensor<2x4x7x16xf32>, tensor<2x4x7x16xf32>, tensor<2x4x7x16xf32>, none)
func.func @bshd(%q: tensor<2x4x7x16xf32>, %k: tensor<2x7x4x16xf32>, %v: tensor<2x4x7x16xf32>) -> tensor<2x4x7x16xf32> {
  %kt = nn.transpose(%k) {perm = array<i64: 0, 2, 3, 1>} : (tensor<2x7x4x16xf32>) -> tensor<2x4x16x7xf32>
  %s = nn.matmul(%q, %kt) : (tensor<2x4x7x16xf32>, tensor<2x4x16x7xf32>) -> tensor<2x4x7x7xf32>
  %p = nn.softmax(%s) : (tensor<2x4x7x7xf32>) -> tensor<2x4x7x7xf32>
  %o = nn.matmul(%p, %v) : (tensor<2x4x7x7xf32>, tensor<2x4x7x16xf32>) -> tensor<2x4x7x16xf32>
  return %o : tensor<2x4x7x16xf32>
}

// -----

// A mask computed from the inputs' shapes only, keeping key j for query i when j <= i + T - S (here the llama2.c
// KV-cache graph's Range/LessOrEqual form, T = past + S): evaluated at two sizes, it is causal, so the op takes
// the causal flag and the mask's computation is erased.
// CHECK-LABEL: func @causal_from_shapes
// CHECK-NOT: nn.range
// CHECK: nn.attention(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}) {causal = 1 : i64, scale = 5.000000e-01 : f64} : ({{.+}}, none) -> tensor<1x2x?x4xf32>
// CHECK-NOT: nn.range
func.func @causal_from_shapes(%q: tensor<1x2x?x4xf32> {nn.dims = ["", "", "sequence", ""]}, %k: tensor<1x2x?x4xf32> {nn.dims = ["", "", "total", ""]}, %v: tensor<1x2x?x4xf32> {nn.dims = ["", "", "total", ""]}) -> tensor<1x2x?x4xf32> {
  %i0 = nn.constant dense<0> : tensor<i64>
  %i1 = nn.constant dense<1> : tensor<i64>
  %i2 = nn.constant dense<2> : tensor<i64>
  %half = nn.constant dense<0.5> : tensor<f32>
  %ninf = nn.constant dense<0xFF800000> : tensor<f32>
  %sq = nn.shape(%q) : (tensor<1x2x?x4xf32>) -> tensor<4xi64>
  %sk = nn.shape(%k) : (tensor<1x2x?x4xf32>) -> tensor<4xi64>
  %s = nn.gather(%sq, %i2) : (tensor<4xi64>, tensor<i64>) -> tensor<i64>
  %t = nn.gather(%sk, %i2) : (tensor<4xi64>, tensor<i64>) -> tensor<i64>
  %past = nn.binary "sub"(%t, %s) : (tensor<i64>, tensor<i64>) -> tensor<i64>
  %rows = nn.range(%past, %t, %i1) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
  %cols = nn.range(%i0, %t, %i1) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
  %r = nn.unsqueeze(%rows) {axes = array<i64: 1>} : (tensor<?xi64>) -> tensor<?x1xi64>
  %c = nn.unsqueeze(%cols) {axes = array<i64: 0>} : (tensor<?xi64>) -> tensor<1x?xi64>
  %keep = nn.binary "less_equal"(%c, %r) : (tensor<1x?xi64>, tensor<?x1xi64>) -> tensor<?x?xi1>
  %kt = nn.transpose(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x?x4xf32>) -> tensor<1x2x4x?xf32>
  %sc = nn.matmul(%q, %kt) : (tensor<1x2x?x4xf32>, tensor<1x2x4x?xf32>) -> tensor<1x2x?x?xf32>
  %scaled = nn.binary "mul"(%sc, %half) : (tensor<1x2x?x?xf32>, tensor<f32>) -> tensor<1x2x?x?xf32>
  %m = nn.where(%keep, %scaled, %ninf) : (tensor<?x?xi1>, tensor<1x2x?x?xf32>, tensor<f32>) -> tensor<1x2x?x?xf32>
  %p = nn.softmax(%m) : (tensor<1x2x?x?xf32>) -> tensor<1x2x?x?xf32>
  %o = nn.matmul(%p, %v) : (tensor<1x2x?x?xf32>, tensor<1x2x?x4xf32>) -> tensor<1x2x?x4xf32>
  return %o : tensor<1x2x?x4xf32>
}

// -----

// The same pattern off by one (j < i + T - S) is a mask, not the causal flag.
// CHECK-LABEL: func @not_causal
// CHECK: nn.attention(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}) {scale = 5.000000e-01 : f64} : ({{.+}}, tensor<?x?xi1>) -> tensor<1x2x?x4xf32>
func.func @not_causal(%q: tensor<1x2x?x4xf32> {nn.dims = ["", "", "sequence", ""]}, %k: tensor<1x2x?x4xf32> {nn.dims = ["", "", "total", ""]}, %v: tensor<1x2x?x4xf32> {nn.dims = ["", "", "total", ""]}) -> tensor<1x2x?x4xf32> {
  %i0 = nn.constant dense<0> : tensor<i64>
  %i1 = nn.constant dense<1> : tensor<i64>
  %i2 = nn.constant dense<2> : tensor<i64>
  %half = nn.constant dense<0.5> : tensor<f32>
  %ninf = nn.constant dense<0xFF800000> : tensor<f32>
  %sq = nn.shape(%q) : (tensor<1x2x?x4xf32>) -> tensor<4xi64>
  %sk = nn.shape(%k) : (tensor<1x2x?x4xf32>) -> tensor<4xi64>
  %s = nn.gather(%sq, %i2) : (tensor<4xi64>, tensor<i64>) -> tensor<i64>
  %t = nn.gather(%sk, %i2) : (tensor<4xi64>, tensor<i64>) -> tensor<i64>
  %past = nn.binary "sub"(%t, %s) : (tensor<i64>, tensor<i64>) -> tensor<i64>
  %rows = nn.range(%past, %t, %i1) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
  %cols = nn.range(%i0, %t, %i1) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
  %r = nn.unsqueeze(%rows) {axes = array<i64: 1>} : (tensor<?xi64>) -> tensor<?x1xi64>
  %c = nn.unsqueeze(%cols) {axes = array<i64: 0>} : (tensor<?xi64>) -> tensor<1x?xi64>
  %keep = nn.binary "less"(%c, %r) : (tensor<1x?xi64>, tensor<?x1xi64>) -> tensor<?x?xi1>
  %kt = nn.transpose(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x?x4xf32>) -> tensor<1x2x4x?xf32>
  %sc = nn.matmul(%q, %kt) : (tensor<1x2x?x4xf32>, tensor<1x2x4x?xf32>) -> tensor<1x2x?x?xf32>
  %scaled = nn.binary "mul"(%sc, %half) : (tensor<1x2x?x?xf32>, tensor<f32>) -> tensor<1x2x?x?xf32>
  %m = nn.where(%keep, %scaled, %ninf) : (tensor<?x?xi1>, tensor<1x2x?x?xf32>, tensor<f32>) -> tensor<1x2x?x?xf32>
  %p = nn.softmax(%m) : (tensor<1x2x?x?xf32>) -> tensor<1x2x?x?xf32>
  %o = nn.matmul(%p, %v) : (tensor<1x2x?x?xf32>, tensor<1x2x?x4xf32>) -> tensor<1x2x?x4xf32>
  return %o : tensor<1x2x?x4xf32>
}
