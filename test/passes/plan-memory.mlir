// RUN: %qopt-opt %s -qopt-plan-memory="max-dims=seq=8" -split-input-file | FileCheck %s
// RUN: not %qopt-opt %s -qopt-plan-memory -split-input-file 2>&1 | FileCheck %s --check-prefix=NOBOUND

// Three 8x64 f32 buffers (2048 bytes each): %a dies when %c is made, so %c reuses %a's slot while %b is live.
// CHECK-LABEL: func @reuse
// CHECK-SAME: kern.max_shape = array<i64: 8, 64>
// CHECK-SAME: kern.arena_bytes = 4096
func.func @reuse(%x: tensor<?x64xf32> {nn.dims = ["seq", ""], nn.name = "x"}) -> tensor<?x64xf32> {
  // CHECK: kern.launch "unary"{{.*}}max_shapes = [array<i64: 8, 64>], offsets = array<i64: [[A:[0-9]+]]>
  %a = kern.launch "unary"(%x) {attrs = {fn = "exp"}} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK: kern.launch "unary"{{.*}}offsets = array<i64: [[B:[0-9]+]]>
  %b = kern.launch "unary"(%a) {attrs = {fn = "neg"}} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK: kern.launch "unary"{{.*}}offsets = array<i64: [[A]]>
  %c = kern.launch "unary"(%b) {attrs = {fn = "abs"}} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  return %c : tensor<?x64xf32>
}

// -----

// Shape arithmetic is evaluated at the bounds: Range(0, seq) has 8 elements.
// CHECK-LABEL: func @shape_arith
func.func @shape_arith(%x: tensor<?xf32> {nn.dims = ["seq"], nn.name = "x"}) -> tensor<?xi64> {
  %s = kern.launch "shape"(%x) : (tensor<?xf32>) -> tensor<1xi64>
  %z = kern.weight dense<0> : tensor<1xi64>
  %one = kern.weight dense<1> : tensor<1xi64>
  // CHECK: kern.launch "range"{{.*}}max_shapes = [array<i64: 8>]
  %r = kern.launch "range"(%z, %s, %one) : (tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<?xi64>
  return %r : tensor<?xi64>
}
// NOBOUND: dynamic dim 0 ('seq') of input 'x' has no bound: pass --max-dim seq=N

// -----

// A reshape to a shape given at run time is not planned (offset -1): the runtime sizes it, and what follows it.
// CHECK-LABEL: func @runtime_sized
func.func @runtime_sized(%x: tensor<6xf32> {nn.dims = [""], nn.name = "x"}, %s: tensor<2xi64> {nn.dims = [""], nn.name = "s"}) -> tensor<?x?xf32> {
  // CHECK: kern.launch "reshape"{{.*}}max_shapes = [array<i64>], offsets = array<i64: -1>
  %r = kern.launch "reshape"(%x, %s) : (tensor<6xf32>, tensor<2xi64>) -> tensor<?x?xf32>
  // CHECK: kern.launch "unary"{{.*}}offsets = array<i64: -1>
  %e = kern.launch "unary"(%r) {attrs = {fn = "exp"}} : (tensor<?x?xf32>) -> tensor<?x?xf32>
  return %e : tensor<?x?xf32>
}

// -----

// Views share their input's slot: a reshape always, a transpose when the dims it moves are statically 1; a
// transpose that may move a dim larger than 1 (the dynamic seq) copies. The viewed slot lives until the view's
// last reader, so %d (made after %a's own last reader, the reshape) cannot take %a's slot while %u reads the view.
// CHECK-LABEL: func @views
// Four 2048-byte slots live at once (%a viewed by %r, %d, %c, %u).
// CHECK-SAME: kern.arena_bytes = 8192
func.func @views(%x: tensor<?x1x64xf32> {nn.dims = ["seq", "", ""], nn.name = "x"}) -> (tensor<?x1x64xf32>, tensor<64x?x1xf32>) {
  // CHECK: kern.launch "unary"{{.*}}offsets = array<i64: [[A:[0-9]+]]>
  %a = kern.launch "unary"(%x) {attrs = {fn = "exp"}} : (tensor<?x1x64xf32>) -> tensor<?x1x64xf32>
  %s = kern.weight dense<[8, 64]> : tensor<2xi64>
  // CHECK: kern.launch "reshape"{{.*}}max_shapes = [array<i64: 8, 64>], offsets = array<i64: [[A]]>
  %r = kern.launch "reshape"(%a, %s) : (tensor<?x1x64xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  // CHECK: kern.launch "unary"{{.*}}offsets = array<i64: [[D:[0-9]+]]>
  %d = kern.launch "unary"(%x) {attrs = {fn = "neg"}} : (tensor<?x1x64xf32>) -> tensor<?x1x64xf32>
  // CHECK: kern.launch "transpose"{{.*}}offsets = array<i64: [[D]]>
  %t = kern.launch "transpose"(%d) {attrs = {perm = array<i64: 1, 0, 2>}} : (tensor<?x1x64xf32>) -> tensor<1x?x64xf32>
  // CHECK: kern.launch "transpose"{{.*}}offsets = array<i64: [[C:[0-9]+]]>
  %c = kern.launch "transpose"(%d) {attrs = {perm = array<i64: 2, 0, 1>}} : (tensor<?x1x64xf32>) -> tensor<64x?x1xf32>
  // CHECK: kern.launch "unary"{{.*}}offsets = array<i64: [[U:[0-9]+]]>
  %u = kern.launch "unary"(%r) {attrs = {fn = "abs"}} : (tensor<8x64xf32>) -> tensor<8x64xf32>
  %v = kern.launch "reshape"(%t, %s) : (tensor<1x?x64xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %w = kern.launch "binary"(%u, %v) {attrs = {fn = "add"}} : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  %back = kern.weight dense<[8, 1, 64]> : tensor<3xi64>
  %y = kern.launch "reshape"(%w, %back) : (tensor<8x64xf32>, tensor<3xi64>) -> tensor<?x1x64xf32>
  return %y, %c : tensor<?x1x64xf32>, tensor<64x?x1xf32>
}
