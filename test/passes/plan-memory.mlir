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

// -----

// A chain of views longer than the planner's map grows at (49 and more): every link keeps the root's slot, and
// the root lives until the last link's reader, so %out cannot take it.
// CHECK-LABEL: func @view_chain
// CHECK-SAME: kern.arena_bytes = 4096
// CHECK: kern.launch "unary"{{.*}}offsets = array<i64: [[ROOT:[0-9]+]]>
// CHECK-COUNT-60: kern.launch "reshape"{{.*}}offsets = array<i64: [[ROOT]]>
// CHECK-NOT: offsets = array<i64: [[ROOT]]>
// CHECK: kern.launch "unary"{{.*}}offsets = array<i64: {{[0-9]+}}>
func.func @view_chain(%x: tensor<8x64xf32> {nn.name = "x"}) -> tensor<512xf32> {
  %flat = kern.weight dense<[512]> : tensor<1xi64>
  %rows = kern.weight dense<[8, 64]> : tensor<2xi64>
  %v0 = kern.launch "unary"(%x) {attrs = {fn = "exp"}} : (tensor<8x64xf32>) -> tensor<8x64xf32>
  %v1 = kern.launch "reshape"(%v0, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v2 = kern.launch "reshape"(%v1, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v3 = kern.launch "reshape"(%v2, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v4 = kern.launch "reshape"(%v3, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v5 = kern.launch "reshape"(%v4, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v6 = kern.launch "reshape"(%v5, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v7 = kern.launch "reshape"(%v6, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v8 = kern.launch "reshape"(%v7, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v9 = kern.launch "reshape"(%v8, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v10 = kern.launch "reshape"(%v9, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v11 = kern.launch "reshape"(%v10, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v12 = kern.launch "reshape"(%v11, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v13 = kern.launch "reshape"(%v12, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v14 = kern.launch "reshape"(%v13, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v15 = kern.launch "reshape"(%v14, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v16 = kern.launch "reshape"(%v15, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v17 = kern.launch "reshape"(%v16, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v18 = kern.launch "reshape"(%v17, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v19 = kern.launch "reshape"(%v18, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v20 = kern.launch "reshape"(%v19, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v21 = kern.launch "reshape"(%v20, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v22 = kern.launch "reshape"(%v21, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v23 = kern.launch "reshape"(%v22, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v24 = kern.launch "reshape"(%v23, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v25 = kern.launch "reshape"(%v24, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v26 = kern.launch "reshape"(%v25, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v27 = kern.launch "reshape"(%v26, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v28 = kern.launch "reshape"(%v27, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v29 = kern.launch "reshape"(%v28, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v30 = kern.launch "reshape"(%v29, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v31 = kern.launch "reshape"(%v30, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v32 = kern.launch "reshape"(%v31, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v33 = kern.launch "reshape"(%v32, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v34 = kern.launch "reshape"(%v33, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v35 = kern.launch "reshape"(%v34, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v36 = kern.launch "reshape"(%v35, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v37 = kern.launch "reshape"(%v36, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v38 = kern.launch "reshape"(%v37, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v39 = kern.launch "reshape"(%v38, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v40 = kern.launch "reshape"(%v39, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v41 = kern.launch "reshape"(%v40, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v42 = kern.launch "reshape"(%v41, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v43 = kern.launch "reshape"(%v42, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v44 = kern.launch "reshape"(%v43, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v45 = kern.launch "reshape"(%v44, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v46 = kern.launch "reshape"(%v45, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v47 = kern.launch "reshape"(%v46, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v48 = kern.launch "reshape"(%v47, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v49 = kern.launch "reshape"(%v48, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v50 = kern.launch "reshape"(%v49, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v51 = kern.launch "reshape"(%v50, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v52 = kern.launch "reshape"(%v51, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v53 = kern.launch "reshape"(%v52, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v54 = kern.launch "reshape"(%v53, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v55 = kern.launch "reshape"(%v54, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v56 = kern.launch "reshape"(%v55, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v57 = kern.launch "reshape"(%v56, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v58 = kern.launch "reshape"(%v57, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %v59 = kern.launch "reshape"(%v58, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  %v60 = kern.launch "reshape"(%v59, %rows) : (tensor<512xf32>, tensor<2xi64>) -> tensor<8x64xf32>
  %out = kern.launch "unary"(%v60) {attrs = {fn = "neg"}} : (tensor<8x64xf32>) -> tensor<8x64xf32>
  %r = kern.launch "reshape"(%out, %flat) : (tensor<8x64xf32>, tensor<1xi64>) -> tensor<512xf32>
  return %r : tensor<512xf32>
}

// -----

// Inputs get arena slots (the session uploads them): x's 2048 bytes are free once %a is made, and the cast takes
// them. Shape arithmetic runs on the host, in its own arena: `shape` reads only a shape (of a device value), the
// gather reads a host value and a weight. A cast of a device value's data stays on the device, integer or not.
// CHECK-LABEL: func @host
// CHECK-SAME: kern.offset = [[X:[0-9]+]] : i64
// CHECK-SAME: kern.arena_bytes = 6144 : i64, kern.host_bytes = 128 : i64
// CHECK: kern.launch "unary"{{.*}}offsets = array<i64: [[A:[0-9]+]]>}
// CHECK: kern.launch "shape"{{.*}}{host, {{.*}}offsets = array<i64: [[S:[0-9]+]]>}
// CHECK: kern.launch "gather"{{.*}}, host, {{.*}}offsets = array<i64: [[G:[0-9]+]]>}
// CHECK-NOT: host
// CHECK: kern.launch "cast"{{.*}}offsets = array<i64: [[X]]>}
// CHECK: kern.launch "reshape"{{.*}}offsets = array<i64: [[A]]>, view}
func.func @host(%x: tensor<?x64xf32> {nn.dims = ["seq", ""], nn.name = "x"}) -> (tensor<?x64xf32>, tensor<1xi64>, tensor<?x64xi64>) {
  %a = kern.launch "unary"(%x) {attrs = {fn = "exp"}} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %s = kern.launch "shape"(%a) : (tensor<?x64xf32>) -> tensor<2xi64>
  %i = kern.weight dense<0> : tensor<1xi64>
  %g = kern.launch "gather"(%s, %i) {attrs = {axis = 0 : i64}} : (tensor<2xi64>, tensor<1xi64>) -> tensor<1xi64>
  %c = kern.launch "cast"(%a) {attrs = {to = 7 : i64}} : (tensor<?x64xf32>) -> tensor<?x64xi64>
  %r = kern.launch "reshape"(%a, %s) : (tensor<?x64xf32>, tensor<2xi64>) -> tensor<?x64xf32>
  return %r, %g, %c : tensor<?x64xf32>, tensor<1xi64>, tensor<?x64xi64>
}

// -----

// A view of session state is the state's own bytes when all its readers come before the state's next in-place
// update; one read after the update would see the new value, so it is a copy in the arena.
// CHECK-LABEL: func @state_view
// CHECK: kern.state "kv.length" {offset = [[LEN:[0-9]+]] : i64}
// CHECK: kern.launch "squeeze"{{.*}}offsets = array<i64: [[LEN]]>, view}
// CHECK: kern.launch "squeeze"{{.*}}offsets = array<i64: [[COPY:[0-9]+]]>} :
// CHECK: kern.launch "cast"
// CHECK: kern.launch "kv_advance"
func.func @state_view(%x: tensor<1x1x1x4xf32> {nn.name = "x"}) -> (tensor<f32>, tensor<f32>) {
  %len = kern.state "kv.length" : tensor<1xi64>
  %before = kern.launch "squeeze"(%len) : (tensor<1xi64>) -> tensor<i64>
  %after = kern.launch "squeeze"(%len) : (tensor<1xi64>) -> tensor<i64>
  %a = kern.launch "cast"(%before) {attrs = {to = 1 : i64}} : (tensor<i64>) -> tensor<f32>
  %sizes = kern.weight dense<[1, 1, 1, 4]> : tensor<4xi64>
  %adv = kern.launch "kv_advance"(%len, %sizes) {attrs = {axis = 2 : i64}} : (tensor<1xi64>, tensor<4xi64>) -> tensor<1xi64>
  %b = kern.launch "cast"(%after) {attrs = {to = 1 : i64}} : (tensor<i64>) -> tensor<f32>
  return %a, %b : tensor<f32>, tensor<f32>
}

// -----

// An elementwise kernel that may write over an operand (gated_act) takes the slot of one that dies at it: %act is
// written over %g (dead after it) and lives on in that slot; over %u in the second function, where %g is read
// later. Arena: x, %g and %u, 2048 bytes each (the last result takes x's slot); %act needs none of its own.
// CHECK-LABEL: func @overwrite
// CHECK-SAME: kern.arena_bytes = 6144
func.func @overwrite(%x: tensor<?x64xf32> {nn.dims = ["seq", ""], nn.name = "x"}) -> tensor<?x64xf32> {
  // CHECK: kern.launch "unary"{{.*}}offsets = array<i64: [[G:[0-9]+]]>
  %g = kern.launch "unary"(%x) {attrs = {fn = "exp"}} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK: kern.launch "unary"{{.*}}offsets = array<i64: [[U:[0-9]+]]>
  %u = kern.launch "unary"(%x) {attrs = {fn = "neg"}} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK: kern.launch "gated_act"{{.*}}in_place, max_shapes = [array<i64: 8, 64>], offsets = array<i64: [[G]]>
  %act = kern.launch "gated_act"(%g, %u) {attrs = {activation = 0 : i64}} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %y = kern.launch "unary"(%act) {attrs = {fn = "abs"}} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// CHECK-LABEL: func @overwrite_second
func.func @overwrite_second(%x: tensor<?x64xf32> {nn.dims = ["seq", ""], nn.name = "x"}) -> tensor<?x64xf32> {
  // CHECK: kern.launch "unary"{{.*}}offsets = array<i64: [[G:[0-9]+]]>
  %g = kern.launch "unary"(%x) {attrs = {fn = "exp"}} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK: kern.launch "unary"{{.*}}offsets = array<i64: [[U:[0-9]+]]>
  %u = kern.launch "unary"(%x) {attrs = {fn = "neg"}} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK: kern.launch "gated_act"{{.*}}in_place, {{.*}}offsets = array<i64: [[U]]>
  %act = kern.launch "gated_act"(%g, %u) {attrs = {activation = 0 : i64}} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK: kern.launch "binary"
  %y = kern.launch "binary"(%act, %g) {attrs = {fn = "add"}} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// A graph output is never overwritten: no in_place.
// CHECK-LABEL: func @overwrite_output
func.func @overwrite_output(%x: tensor<?x64xf32> {nn.dims = ["seq", ""], nn.name = "x"}) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  %g = kern.launch "unary"(%x) {attrs = {fn = "exp"}} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  // CHECK: kern.launch "gelu"
  // CHECK-NOT: in_place
  // CHECK-SAME: max_shapes
  %y = kern.launch "gelu"(%g) {attrs = {approximation = 0 : i64}} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  return %g, %y : tensor<?x64xf32>, tensor<?x64xf32>
}
