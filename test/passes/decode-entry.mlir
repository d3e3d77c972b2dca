// RUN: %qopt-opt %s -split-input-file -verify-diagnostics -pass-pipeline='builtin.module(func.func(qopt-kv-state{max-dims=batch=1,past=16,seq=16}, qopt-lower-to-kern), qopt-decode-entry{max-dims=batch=1,past=16,seq=16}, func.func(qopt-plan-memory{max-dims=batch=1,seq=16}))' | FileCheck %s
// A one-layer decoder with its cache in state gets a `decode` entry: inputs of one token, static types, the shape
// arithmetic (the head split's Shape/Gather/Concat) folded into a constant, the head split and merge planned as
// views. The general entry keeps its shape kernels, planned on the host.

// CHECK-LABEL: func.func @prefill
// CHECK-SAME: (%{{.+}}: tensor<?x?x16xf32> {{.*}}nn.name = "x"}
// CHECK: kern.launch "shape"{{.*}}{host,
// CHECK: kern.launch "concat"{{.*}}host,
// CHECK: kern.launch "kv_append"
// CHECK: kern.launch "attention"

// CHECK-LABEL: func.func @decode
// CHECK-SAME: (%[[X:.+]]: tensor<1x1x16xf32> {{.*}}kern.offset = [[XOFF:[0-9]+]] : i64, {{.*}}nn.name = "x"}
// CHECK-SAME: -> (tensor<1x1x16xf32> {nn.name = "y"})
// CHECK-NOT: kern.launch "shape"
// CHECK-NOT: kern.launch "gather"
// CHECK-NOT: kern.launch "concat"
// CHECK: %[[S:.+]] = kern.weight dense<[1, 1, 2, 8]> : tensor<4xi64>
// A graph input has an arena slot (the session uploads it there): the head split is a view of it.
// CHECK: kern.launch "reshape"(%[[X]], %[[S]]) {{.*}}offsets = array<i64: [[XOFF]]>, view} : (tensor<1x1x16xf32>, tensor<4xi64>) -> tensor<1x1x2x8xf32>
// CHECK: kern.launch "transpose"{{.*}}view} : (tensor<1x1x2x8xf32>) -> tensor<1x2x1x8xf32>
// CHECK: kern.launch "kv_append"{{.*}} : (tensor<1x2x16x8xf32>, tensor<1x2x1x8xf32>, tensor<1xi64>) -> tensor<1x2x16x8xf32>
// CHECK: kern.launch "attention"{{.*}} -> tensor<1x2x1x8xf32>
// CHECK: kern.launch "reshape"{{.*}}view} : (tensor<1x1x2x8xf32>, tensor<3xi64>) -> tensor<1x1x16xf32>
// CHECK: kern.launch "kv_advance"
func.func @main(%x: tensor<?x?x16xf32> {nn.dims = ["batch", "seq", ""], nn.name = "x"},
                %pk: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "past", ""], nn.name = "past.key"},
                %pv: tensor<?x2x?x8xf32> {nn.dims = ["batch", "", "past", ""], nn.name = "past.value"})
    -> (tensor<?x?x16xf32> {nn.name = "y"}, tensor<?x2x?x8xf32> {nn.name = "present.key"},
        tensor<?x2x?x8xf32> {nn.name = "present.value"}) {
  %none = nn.none
  %s = nn.shape(%x) : (tensor<?x?x16xf32>) -> tensor<3xi64>
  %i0 = nn.constant dense<0> : tensor<1xi64>
  %i1 = nn.constant dense<1> : tensor<1xi64>
  %b = nn.gather(%s, %i0) : (tensor<3xi64>, tensor<1xi64>) -> tensor<1xi64>
  %n = nn.gather(%s, %i1) : (tensor<3xi64>, tensor<1xi64>) -> tensor<1xi64>
  %hd = nn.constant dense<[2, 8]> : tensor<2xi64>
  %shape = nn.concat(%b, %n, %hd) {axis = 0 : i64} : (tensor<1xi64>, tensor<1xi64>, tensor<2xi64>) -> tensor<4xi64>
  %r = nn.reshape(%x, %shape) : (tensor<?x?x16xf32>, tensor<4xi64>) -> tensor<?x?x2x8xf32>
  %t = nn.transpose(%r) {perm = array<i64: 0, 2, 1, 3>} : (tensor<?x?x2x8xf32>) -> tensor<?x2x?x8xf32>
  %k = nn.concat(%pk, %t) {axis = 2 : i64} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  %v = nn.concat(%pv, %t) {axis = 2 : i64} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  %o = nn.attention(%t, %k, %v, %none) {causal = 1 : i64, scale = 0.35 : f64} : (tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>, none) -> tensor<?x2x?x8xf32>
  %ot = nn.transpose(%o) {perm = array<i64: 0, 2, 1, 3>} : (tensor<?x2x?x8xf32>) -> tensor<?x?x2x8xf32>
  %m1 = nn.constant dense<-1> : tensor<1xi64>
  %back = nn.concat(%b, %n, %m1) {axis = 0 : i64} : (tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<3xi64>
  %y = nn.reshape(%ot, %back) : (tensor<?x?x2x8xf32>, tensor<3xi64>) -> tensor<?x?x16xf32>
  return %y, %k, %v : tensor<?x?x16xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>
}

// -----

// Without state there is nothing to continue from: one entry, unchanged.
// CHECK-LABEL: func.func @main
// CHECK-NOT: func.func @decode
func.func @main(%x: tensor<?x16xf32> {nn.dims = ["seq", ""], nn.name = "x"}) -> tensor<?x16xf32> {
  %y = nn.unary "exp"(%x) : (tensor<?x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// A program that one token cannot run (it reshapes the second position, which a one-token step does not have)
// keeps its general entry only, named main, and says why.
// CHECK-LABEL: func.func @main
// CHECK: kern.launch "slice"
// CHECK-NOT: func.func @decode
// expected-remark @below {{no one-token decode entry (reshape: [1, 0, 16] (0 elements) cannot become [1, 2, 1, 8]): every run takes the general entry}}
func.func @main(%x: tensor<1x?x16xf32> {nn.dims = ["", "seq", ""], nn.name = "x"},
                %pk: tensor<1x2x?x8xf32> {nn.dims = ["", "", "past", ""], nn.name = "past.key"})
    -> (tensor<1x2x1x8xf32> {nn.name = "y"}, tensor<1x2x?x8xf32> {nn.name = "present.key"}) {
  %none = nn.none
  %st = nn.constant dense<1> : tensor<1xi64>
  %en = nn.constant dense<2> : tensor<1xi64>
  %ax = nn.constant dense<1> : tensor<1xi64>
  %s = nn.slice(%x, %st, %en, %ax, %none) : (tensor<1x?x16xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, none) -> tensor<1x1x16xf32>
  %c = nn.constant dense<[1, 2, 1, 8]> : tensor<4xi64>
  %r = nn.reshape(%s, %c) : (tensor<1x1x16xf32>, tensor<4xi64>) -> tensor<1x2x1x8xf32>
  %k = nn.concat(%pk, %r) {axis = 2 : i64} : (tensor<1x2x?x8xf32>, tensor<1x2x1x8xf32>) -> tensor<1x2x?x8xf32>
  %o = nn.attention(%r, %k, %k, %none) : (tensor<1x2x1x8xf32>, tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>, none) -> tensor<1x2x1x8xf32>
  return %o, %k : tensor<1x2x1x8xf32>, tensor<1x2x?x8xf32>
}

// -----

// Positions from the cached length, as Hugging Face computes them: range(0, new tokens) + the past's length. In
// `decode` the range is [0], the add of zero becomes a reshape, and the positions are a view of the length state
// itself (read where the state is, nothing launched, nothing copied): the gather reads the state's bytes.
// CHECK-LABEL: func.func @decode
// CHECK: kern.state "kv.length" {offset = [[LEN:[0-9]+]] : i64}
// CHECK-NOT: kern.launch "binary"{{.*}}-> tensor<{{.*}}i64>
// CHECK-NOT: kern.launch "range"
// CHECK: kern.launch "squeeze"{{.*}}offsets = array<i64: [[LEN]]>, view}
// CHECK: kern.launch "reshape"{{.*}}offsets = array<i64: [[LEN]]>, view} : (tensor<i64>, tensor<1xi64>) -> tensor<1xi64>
// CHECK: kern.launch "unsqueeze"{{.*}}offsets = array<i64: [[LEN]]>, view} : (tensor<1xi64>) -> tensor<1x1xi64>
// CHECK: kern.launch "gather"
// CHECK-NOT: kern.launch "binary"{{.*}}-> tensor<{{.*}}i64>
// CHECK: kern.launch "kv_advance"
func.func @main(%x: tensor<1x?x16xf32> {nn.dims = ["", "seq", ""], nn.name = "x"},
                %pk: tensor<1x2x?x8xf32> {nn.dims = ["", "", "past", ""], nn.name = "past.key"},
                %pv: tensor<1x2x?x8xf32> {nn.dims = ["", "", "past", ""], nn.name = "past.value"})
    -> (tensor<1x?x16xf32> {nn.name = "y"}, tensor<1x2x?x8xf32> {nn.name = "present.key"},
        tensor<1x2x?x8xf32> {nn.name = "present.value"}) {
  %none = nn.none
  %table = nn.constant dense<0.5> : tensor<16x16xf32>
  %len = nn.shape(%pk) {start = 2 : i64, end = 3 : i64} : (tensor<1x2x?x8xf32>) -> tensor<1xi64>
  %p = nn.squeeze(%len) : (tensor<1xi64>) -> tensor<i64>
  %n = nn.shape(%x) {start = 1 : i64, end = 2 : i64} : (tensor<1x?x16xf32>) -> tensor<1xi64>
  %ns = nn.squeeze(%n) : (tensor<1xi64>) -> tensor<i64>
  %zero = nn.constant dense<0> : tensor<i64>
  %one = nn.constant dense<1> : tensor<i64>
  %r = nn.range(%zero, %ns, %one) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
  %pos = nn.binary "add"(%r, %p) : (tensor<?xi64>, tensor<i64>) -> tensor<?xi64>
  %pos2 = nn.unsqueeze(%pos) {axes = array<i64: 0>} : (tensor<?xi64>) -> tensor<1x?xi64>
  %e = nn.gather(%table, %pos2) : (tensor<16x16xf32>, tensor<1x?xi64>) -> tensor<1x?x16xf32>
  %h = nn.binary "add"(%x, %e) : (tensor<1x?x16xf32>, tensor<1x?x16xf32>) -> tensor<1x?x16xf32>
  %shape = nn.constant dense<[1, -1, 2, 8]> : tensor<4xi64>
  %rs = nn.reshape(%h, %shape) : (tensor<1x?x16xf32>, tensor<4xi64>) -> tensor<1x?x2x8xf32>
  %t = nn.transpose(%rs) {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x?x2x8xf32>) -> tensor<1x2x?x8xf32>
  %k = nn.concat(%pk, %t) {axis = -2 : i64} : (tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>) -> tensor<1x2x?x8xf32>
  %v = nn.concat(%pv, %t) {axis = -2 : i64} : (tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>) -> tensor<1x2x?x8xf32>
  %o = nn.attention(%t, %k, %v, %none) {causal = 1 : i64, scale = 0.35 : f64} : (tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>, none) -> tensor<1x2x?x8xf32>
  %ot = nn.transpose(%o) {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x2x?x8xf32>) -> tensor<1x?x2x8xf32>
  %back = nn.constant dense<[1, -1, 16]> : tensor<3xi64>
  %y = nn.reshape(%ot, %back) : (tensor<1x?x2x8xf32>, tensor<3xi64>) -> tensor<1x?x16xf32>
  return %y, %k, %v : tensor<1x?x16xf32>, tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>
}
