// RUN: %qopt-opt %s -split-input-file -verify-diagnostics

func.func @group(%x: tensor<2x64xf32>, %w: tensor<16x32xui8>, %s: tensor<16x2xf32>, %z: tensor<16x2xui8>) {
  // expected-error@+1 {{'qnt.linear' op group_size 48 does not divide the input size 64}}
  %0 = qnt.linear(%x, %w, %s, %z) {bits = 4 : i64, group_size = 48 : i64} : (tensor<2x64xf32>, tensor<16x32xui8>, tensor<16x2xf32>, tensor<16x2xui8>) -> tensor<2x16xf32>
  return
}

// -----

func.func @packing(%x: tensor<2x64xf32>, %w: tensor<16x64xui8>, %s: tensor<16x2xf32>, %z: tensor<16x2xui8>) {
  // expected-error@+1 {{'qnt.linear' op expects a packed weight of type 'tensor<16x32xui8>', got 'tensor<16x64xui8>'}}
  %0 = qnt.linear(%x, %w, %s, %z) {bits = 4 : i64, group_size = 32 : i64} : (tensor<2x64xf32>, tensor<16x64xui8>, tensor<16x2xf32>, tensor<16x2xui8>) -> tensor<2x16xf32>
  return
}

// -----

func.func @zeros(%x: tensor<2x64xf32>, %w: tensor<16x32xui8>, %s: tensor<16x2xf32>) {
  %none = nn.none
  // expected-error@+1 {{'qnt.linear' op expects ui8 zero points shaped like the scales}}
  %0 = qnt.linear(%x, %w, %s, %none) {bits = 4 : i64, group_size = 32 : i64} : (tensor<2x64xf32>, tensor<16x32xui8>, tensor<16x2xf32>, none) -> tensor<2x16xf32>
  return
}

// -----

func.func @scales(%x: tensor<2x64xf32>, %w: tensor<16x32xui8>, %s: tensor<16x4xf32>, %z: tensor<16x2xui8>) {
  // expected-error@+1 {{'qnt.linear' op expects scales of type 'tensor<16x2xf32>' or f16, got 'tensor<16x4xf32>'}}
  %0 = qnt.linear(%x, %w, %s, %z) {bits = 4 : i64, group_size = 32 : i64} : (tensor<2x64xf32>, tensor<16x32xui8>, tensor<16x4xf32>, tensor<16x2xui8>) -> tensor<2x16xf32>
  return
}

// -----

// float16 scales are for the nibble formats; 8-bit weights keep float32 ones.
func.func @int8_half_scales(%x: tensor<2x64xf32>, %w: tensor<16x64xi8>, %s: tensor<16x1xf16>) {
  %none = nn.none
  // expected-error@+1 {{'qnt.linear' op expects scales of type 'tensor<16x1xf32>' (or 1x1 per tensor), got 'tensor<16x1xf16>'}}
  %0 = qnt.linear(%x, %w, %s, %none) {bits = 8 : i64, group_size = 64 : i64, symmetric = 1 : i64} : (tensor<2x64xf32>, tensor<16x64xi8>, tensor<16x1xf16>, none) -> tensor<2x16xf32>
  return
}

// -----

func.func @bf16_scales(%x: tensor<2x64xf32>, %w: tensor<16x32xui8>, %s: tensor<16x2xbf16>, %z: tensor<16x2xui8>) {
  // expected-error@+1 {{'qnt.linear' op expects scales of type 'tensor<16x2xf32>' or f16, got 'tensor<16x2xbf16>'}}
  %0 = qnt.linear(%x, %w, %s, %z) {bits = 4 : i64, group_size = 32 : i64} : (tensor<2x64xf32>, tensor<16x32xui8>, tensor<16x2xbf16>, tensor<16x2xui8>) -> tensor<2x16xf32>
  return
}

// -----

// 1x1 scales mean per tensor only when the group is the whole input.
func.func @per_tensor_needs_whole_input(%x: tensor<?x64xf32>, %w: tensor<16x32xui8>, %s: tensor<1x1xf32>, %z: tensor<1x1xui8>) -> tensor<?x16xf32> {
  // expected-error@+1 {{'qnt.linear' op expects scales of type 'tensor<16x2xf32>' or f16, got 'tensor<1x1xf32>'}}
  %0 = qnt.linear(%x, %w, %s, %z) {bits = 4 : i64, group_size = 32 : i64} : (tensor<?x64xf32>, tensor<16x32xui8>, tensor<1x1xf32>, tensor<1x1xui8>) -> tensor<?x16xf32>
  return %0 : tensor<?x16xf32>
}

