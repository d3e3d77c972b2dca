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
