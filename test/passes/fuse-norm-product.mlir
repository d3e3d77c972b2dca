// RUN: %qopt-opt %s -qopt-fuse-norm-product -split-input-file | FileCheck %s

// A decode layer's residual stream: the o projection adds the residual (operand 5) and the add_rms_norm goes; the
// gate/up product and the q/k/v product (one row of int4 codes) normalize their x (operand 4, norm_epsilon). The
// last add_rms_norm, whose norm the lm_head's float16 product of 40000 rows reads (more than a float16 product takes
// a norm in), stays a launch with the down product apart.
// CHECK-LABEL: func @decode
// CHECK: %[[QKV:.+]]:3 = kern.launch "matmul_q_split"(%arg0, %{{.+}}, %{{.+}}, %{{.+}}, %[[G1:.+]]) {attrs = {bits = 4 : i64, group_size = 32 : i64, norm_epsilon = 1.000000e-05 : f64, num_outputs = 3 : i64, splits = array<i64: 64, 16, 16>, symmetric = 0 : i64}}
// CHECK: %[[NONE:.+]] = kern.absent
// CHECK: %[[H:.+]] = kern.launch "matmul_q"(%[[QKV]]#0, %{{.+}}, %{{.+}}, %{{.+}}, %[[NONE]], %arg0) {attrs = {bits = 4 : i64, group_size = 32 : i64, symmetric = 0 : i64}} : (tensor<1x1x64xf32>, tensor<64x32xui8>, tensor<64x2xf32>, tensor<64x2xui8>, none, tensor<1x1x64xf32>) -> tensor<1x1x64xf32>
// CHECK: %[[U:.+]] = kern.launch "matmul_q_gated"(%[[H]], %{{.+}}, %{{.+}}, %{{.+}}, %[[G2:.+]]) {attrs = {activation = 0 : i32, bits = 4 : i64, group_size = 32 : i64, norm_epsilon = 2.000000e-06 : f64, symmetric = 0 : i64}}
// CHECK: %[[D:.+]] = kern.launch "matmul_q"(%[[U]], %{{.+}}, %{{.+}}, %{{.+}}) {attrs
// CHECK: %[[H2:.+]]:2 = kern.launch "add_rms_norm"(%[[H]], %[[D]], %{{.+}}) {attrs = {epsilon = 1.000000e-05 : f64}}
// CHECK: %[[L:.+]] = kern.launch "matmul_q"(%[[H2]]#1, %{{.+}}) {attrs = {bits = 16 : i64}} : (tensor<1x1x64xf32>, tensor<40000x64xf16>) -> tensor<1x1x40000xf32>
// CHECK: return %[[L]]
func.func @decode(%x: tensor<1x1x64xf32>) -> tensor<1x1x40000xf32> {
  %g1 = kern.weight dense<1.5> : tensor<64xf32>
  %g2 = kern.weight dense<0.5> : tensor<64xf32>
  %g3 = kern.weight dense<2.0> : tensor<64xf32>
  %wqkv = kern.weight dense<17> : tensor<96x32xui8>
  %sqkv = kern.weight dense<0.01> : tensor<96x2xf32>
  %zqkv = kern.weight dense<8> : tensor<96x2xui8>
  %wo = kern.weight dense<18> : tensor<64x32xui8>
  %so = kern.weight dense<0.02> : tensor<64x2xf32>
  %zo = kern.weight dense<8> : tensor<64x2xui8>
  %wgu = kern.weight dense<19> : tensor<256x32xui8>
  %sgu = kern.weight dense<0.03> : tensor<256x2xf32>
  %zgu = kern.weight dense<8> : tensor<256x2xui8>
  %wd = kern.weight dense<20> : tensor<64x64xui8>
  %sd = kern.weight dense<0.04> : tensor<64x4xf32>
  %zd = kern.weight dense<8> : tensor<64x4xui8>
  %wl = kern.weight dense<0.25> : tensor<40000x64xf16>
  %n1 = kern.launch "rms_norm"(%x, %g1) {attrs = {epsilon = 1.0e-05 : f64}} : (tensor<1x1x64xf32>, tensor<64xf32>) -> tensor<1x1x64xf32>
  %qkv:3 = kern.launch "matmul_q_split"(%n1, %wqkv, %sqkv, %zqkv) {attrs = {bits = 4 : i64, group_size = 32 : i64, num_outputs = 3 : i64, splits = array<i64: 64, 16, 16>, symmetric = 0 : i64}} : (tensor<1x1x64xf32>, tensor<96x32xui8>, tensor<96x2xf32>, tensor<96x2xui8>) -> (tensor<1x1x64xf32>, tensor<1x1x16xf32>, tensor<1x1x16xf32>)
  %o = kern.launch "matmul_q"(%qkv#0, %wo, %so, %zo) {attrs = {bits = 4 : i64, group_size = 32 : i64, symmetric = 0 : i64}} : (tensor<1x1x64xf32>, tensor<64x32xui8>, tensor<64x2xf32>, tensor<64x2xui8>) -> tensor<1x1x64xf32>
  %h:2 = kern.launch "add_rms_norm"(%x, %o, %g2) {attrs = {epsilon = 2.0e-06 : f64}} : (tensor<1x1x64xf32>, tensor<1x1x64xf32>, tensor<64xf32>) -> (tensor<1x1x64xf32>, tensor<1x1x64xf32>)
  %u = kern.launch "matmul_q_gated"(%h#1, %wgu, %sgu, %zgu) {attrs = {activation = 0 : i32, bits = 4 : i64, group_size = 32 : i64, symmetric = 0 : i64}} : (tensor<1x1x64xf32>, tensor<256x32xui8>, tensor<256x2xf32>, tensor<256x2xui8>) -> tensor<1x1x128xf32>
  %d = kern.launch "matmul_q"(%u, %wd, %sd, %zd) {attrs = {bits = 4 : i64, group_size = 32 : i64, symmetric = 0 : i64}} : (tensor<1x1x128xf32>, tensor<64x64xui8>, tensor<64x4xf32>, tensor<64x4xui8>) -> tensor<1x1x64xf32>
  %h2:2 = kern.launch "add_rms_norm"(%h#0, %d, %g3) {attrs = {epsilon = 1.0e-05 : f64}} : (tensor<1x1x64xf32>, tensor<1x1x64xf32>, tensor<64xf32>) -> (tensor<1x1x64xf32>, tensor<1x1x64xf32>)
  %l = kern.launch "matmul_q"(%h2#1, %wl) {attrs = {bits = 16 : i64}} : (tensor<1x1x64xf32>, tensor<40000x64xf16>) -> tensor<1x1x40000xf32>
  return %l : tensor<1x1x40000xf32>
}

// -----

// The residual on the left (add_rms_norm(o, r)), the norm read by a one-row int8 product: fused.
// CHECK-LABEL: func @left_residual
// CHECK: %[[S:.+]] = kern.launch "matmul_q"(%arg0, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %arg1)
// CHECK: kern.launch "matmul_q"(%[[S]], %{{.+}}, %{{.+}}, %[[NONE:.+]], %{{.+}}) {attrs = {bits = 8 : i64, group_size = 64 : i64, norm_epsilon = 1.000000e-05 : f64}}
// CHECK-NOT: rms_norm
func.func @left_residual(%a: tensor<1x64xf32>, %r: tensor<1x64xf32>) -> (tensor<1x64xf32>, tensor<1x32xf32>) {
  %g = kern.weight dense<1.5> : tensor<64xf32>
  %w = kern.weight dense<17> : tensor<64x32xui8>
  %s = kern.weight dense<0.01> : tensor<64x2xf32>
  %z = kern.weight dense<8> : tensor<64x2xui8>
  %w8 = kern.weight dense<3> : tensor<32x64xi8>
  %s8 = kern.weight dense<0.01> : tensor<32x1xf32>
  %o = kern.launch "matmul_q"(%a, %w, %s, %z) {attrs = {bits = 4 : i64, group_size = 32 : i64, symmetric = 0 : i64}} : (tensor<1x64xf32>, tensor<64x32xui8>, tensor<64x2xf32>, tensor<64x2xui8>) -> tensor<1x64xf32>
  %h:2 = kern.launch "add_rms_norm"(%o, %r, %g) {attrs = {epsilon = 1.0e-05 : f64}} : (tensor<1x64xf32>, tensor<1x64xf32>, tensor<64xf32>) -> (tensor<1x64xf32>, tensor<1x64xf32>)
  %y = kern.launch "matmul_q"(%h#1, %w8, %s8) {attrs = {bits = 8 : i64, group_size = 64 : i64}} : (tensor<1x64xf32>, tensor<32x64xi8>, tensor<32x1xf32>) -> tensor<1x32xf32>
  return %h#0, %y : tensor<1x64xf32>, tensor<1x32xf32>
}

// -----

// One row of float16 weights: the product adds the residual, the gate/up product (at most 32768 rows) normalizes
// its x.
// CHECK-LABEL: func @half_rows
// CHECK: %[[S:.+]] = kern.launch "matmul_q"(%arg0, %{{.+}}, %[[NONE:.+]], %[[NONE]], %[[NONE]], %arg1) {attrs = {bits = 16 : i64}}
// CHECK: kern.launch "matmul_q_gated"(%[[S]], %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}) {attrs = {activation = 0 : i32, bits = 16 : i64, norm_epsilon = 1.000000e-05 : f64}}
// CHECK-NOT: rms_norm
func.func @half_rows(%a: tensor<1x64xf32>, %r: tensor<1x64xf32>) -> (tensor<1x64xf32>, tensor<1x32xf32>) {
  %g = kern.weight dense<1.5> : tensor<64xf32>
  %w = kern.weight dense<0.5> : tensor<64x64xf16>
  %wg = kern.weight dense<0.25> : tensor<64x64xf16>
  %o = kern.launch "matmul_q"(%a, %w) {attrs = {bits = 16 : i64}} : (tensor<1x64xf32>, tensor<64x64xf16>) -> tensor<1x64xf32>
  %h:2 = kern.launch "add_rms_norm"(%r, %o, %g) {attrs = {epsilon = 1.0e-05 : f64}} : (tensor<1x64xf32>, tensor<1x64xf32>, tensor<64xf32>) -> (tensor<1x64xf32>, tensor<1x64xf32>)
  %y = kern.launch "matmul_q_gated"(%h#1, %wg) {attrs = {activation = 0 : i32, bits = 16 : i64}} : (tensor<1x64xf32>, tensor<64x64xf16>) -> tensor<1x32xf32>
  return %h#0, %y : tensor<1x64xf32>, tensor<1x32xf32>
}

// -----

// A norm read by a float16 product and a gelu: the add_rms_norm stays as it is (the product adds no residual).
// Two rows of codes keep their norm launch too.
// CHECK-LABEL: func @norm_kept
// CHECK: %[[O:.+]] = kern.launch "matmul_q"(%arg0, %{{.+}}, %{{.+}}, %{{.+}}) {attrs
// CHECK: %[[N:.+]]:2 = kern.launch "add_rms_norm"(%[[O]], %arg1, %{{.+}}) {attrs = {epsilon = 1.000000e-05 : f64}}
// CHECK: kern.launch "matmul_q"(%[[N]]#1, %{{.+}}) {attrs = {bits = 16 : i64}}
// CHECK: kern.launch "gelu"(%[[N]]#1)
// CHECK: %[[N2:.+]] = kern.launch "rms_norm"(%arg2, %{{.+}})
// CHECK: kern.launch "matmul_q"(%[[N2]], %{{.+}}, %{{.+}}, %{{.+}}) {attrs = {bits = 4 : i64, group_size = 32 : i64, symmetric = 0 : i64}}
func.func @norm_kept(%a: tensor<1x64xf32>, %r: tensor<1x64xf32>, %b: tensor<2x64xf32>) -> (tensor<1x64xf32>, tensor<1x64xf32>, tensor<1x64xf32>, tensor<2x64xf32>) {
  %g = kern.weight dense<1.5> : tensor<64xf32>
  %w = kern.weight dense<17> : tensor<64x32xui8>
  %s = kern.weight dense<0.01> : tensor<64x2xf32>
  %z = kern.weight dense<8> : tensor<64x2xui8>
  %wh = kern.weight dense<0.5> : tensor<64x64xf16>
  %o = kern.launch "matmul_q"(%a, %w, %s, %z) {attrs = {bits = 4 : i64, group_size = 32 : i64, symmetric = 0 : i64}} : (tensor<1x64xf32>, tensor<64x32xui8>, tensor<64x2xf32>, tensor<64x2xui8>) -> tensor<1x64xf32>
  %h:2 = kern.launch "add_rms_norm"(%o, %r, %g) {attrs = {epsilon = 1.0e-05 : f64}} : (tensor<1x64xf32>, tensor<1x64xf32>, tensor<64xf32>) -> (tensor<1x64xf32>, tensor<1x64xf32>)
  %y = kern.launch "matmul_q"(%h#1, %wh) {attrs = {bits = 16 : i64}} : (tensor<1x64xf32>, tensor<64x64xf16>) -> tensor<1x64xf32>
  %e = kern.launch "gelu"(%h#1) {attrs = {approximate = 0 : i64}} : (tensor<1x64xf32>) -> tensor<1x64xf32>
  %n2 = kern.launch "rms_norm"(%b, %g) {attrs = {epsilon = 1.0e-05 : f64}} : (tensor<2x64xf32>, tensor<64xf32>) -> tensor<2x64xf32>
  %y2 = kern.launch "matmul_q"(%n2, %w, %s, %z) {attrs = {bits = 4 : i64, group_size = 32 : i64, symmetric = 0 : i64}} : (tensor<2x64xf32>, tensor<64x32xui8>, tensor<64x2xf32>, tensor<64x2xui8>) -> tensor<2x64xf32>
  return %h#0, %y, %e, %y2 : tensor<1x64xf32>, tensor<1x64xf32>, tensor<1x64xf32>, tensor<2x64xf32>
}

// -----

// Not fused: a prompt's rows (dynamic) and 17 rows; a product whose result is read besides the add; a product
// that is a split; a norm's input read as a product's weight; a norm scale of one value.
// CHECK-LABEL: func @no_fusion
// CHECK-COUNT-4: kern.launch "add_rms_norm"
// CHECK-NOT: norm_epsilon
// CHECK-NOT: %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}) {attrs
// CHECK: kern.launch "rms_norm"(%arg4, %{{.+}}) {attrs = {epsilon = 1.000000e-05 : f64}} : (tensor<2x64xf32>, tensor<1xf32>)
func.func @no_fusion(%a: tensor<?x64xf32>, %r: tensor<?x64xf32>, %b: tensor<17x64xf32>, %rb: tensor<17x64xf32>, %c: tensor<2x64xf32>, %rc: tensor<2x64xf32>) -> (tensor<?x64xf32>, tensor<17x64xf32>, tensor<2x64xf32>, tensor<2x64xf32>, tensor<2x64xf32>, tensor<2x64xf32>, tensor<2x64xf32>) {
  %g = kern.weight dense<1.5> : tensor<64xf32>
  %wh = kern.weight dense<0.5> : tensor<64x64xf16>
  %wh2 = kern.weight dense<0.5> : tensor<128x64xf16>
  %o1 = kern.launch "matmul_q"(%a, %wh) {attrs = {bits = 16 : i64}} : (tensor<?x64xf32>, tensor<64x64xf16>) -> tensor<?x64xf32>
  %h1:2 = kern.launch "add_rms_norm"(%r, %o1, %g) {attrs = {epsilon = 1.0e-05 : f64}} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  %y1 = kern.launch "matmul_q"(%h1#1, %wh) {attrs = {bits = 16 : i64}} : (tensor<?x64xf32>, tensor<64x64xf16>) -> tensor<?x64xf32>
  %o2 = kern.launch "matmul_q"(%b, %wh) {attrs = {bits = 16 : i64}} : (tensor<17x64xf32>, tensor<64x64xf16>) -> tensor<17x64xf32>
  %h2:2 = kern.launch "add_rms_norm"(%rb, %o2, %g) {attrs = {epsilon = 1.0e-05 : f64}} : (tensor<17x64xf32>, tensor<17x64xf32>, tensor<64xf32>) -> (tensor<17x64xf32>, tensor<17x64xf32>)
  %y2 = kern.launch "matmul_q"(%h2#1, %wh) {attrs = {bits = 16 : i64}} : (tensor<17x64xf32>, tensor<64x64xf16>) -> tensor<17x64xf32>
  %o3 = kern.launch "matmul_q"(%c, %wh) {attrs = {bits = 16 : i64}} : (tensor<2x64xf32>, tensor<64x64xf16>) -> tensor<2x64xf32>
  %h3:2 = kern.launch "add_rms_norm"(%rc, %o3, %g) {attrs = {epsilon = 1.0e-05 : f64}} : (tensor<2x64xf32>, tensor<2x64xf32>, tensor<64xf32>) -> (tensor<2x64xf32>, tensor<2x64xf32>)
  %s:2 = kern.launch "matmul_q_split"(%c, %wh2) {attrs = {bits = 16 : i64, num_outputs = 2 : i64, splits = array<i64: 64, 64>}} : (tensor<2x64xf32>, tensor<128x64xf16>) -> (tensor<2x64xf32>, tensor<2x64xf32>)
  %h4:2 = kern.launch "add_rms_norm"(%rc, %s#0, %g) {attrs = {epsilon = 1.0e-05 : f64}} : (tensor<2x64xf32>, tensor<2x64xf32>, tensor<64xf32>) -> (tensor<2x64xf32>, tensor<2x64xf32>)
  %n = kern.launch "rms_norm"(%c, %g) {attrs = {epsilon = 1.0e-05 : f64}} : (tensor<2x64xf32>, tensor<64xf32>) -> tensor<2x64xf32>
  %y5 = kern.launch "matmul_q"(%c, %n) {attrs = {bits = 16 : i64}} : (tensor<2x64xf32>, tensor<2x64xf32>) -> tensor<2x2xf32>
  %g1 = kern.weight dense<1.5> : tensor<1xf32>
  %n1 = kern.launch "rms_norm"(%c, %g1) {attrs = {epsilon = 1.0e-05 : f64}} : (tensor<2x64xf32>, tensor<1xf32>) -> tensor<2x64xf32>
  %y6 = kern.launch "matmul_q"(%n1, %wh) {attrs = {bits = 16 : i64}} : (tensor<2x64xf32>, tensor<64x64xf16>) -> tensor<2x64xf32>
  return %h1#0, %h2#0, %h3#1, %o3, %h4#1, %s#1, %y6 : tensor<?x64xf32>, tensor<17x64xf32>, tensor<2x64xf32>, tensor<2x64xf32>, tensor<2x64xf32>, tensor<2x64xf32>, tensor<2x64xf32>
}

// -----

// An empty row (K = 0) is no product of rows: left alone (no division by a zero width).
// CHECK-LABEL: func @empty
// CHECK: kern.launch "rms_norm"
func.func @empty(%x: tensor<1x0xf32>) -> tensor<1x8xf32> {
  %g = kern.weight dense<1.0> : tensor<0xf32>
  %w = kern.weight dense<0.5> : tensor<8x0xf16>
  %n = kern.launch "rms_norm"(%x, %g) {attrs = {epsilon = 1.0e-05 : f64}} : (tensor<1x0xf32>, tensor<0xf32>) -> tensor<1x0xf32>
  %y = kern.launch "matmul_q"(%n, %w) {attrs = {bits = 16 : i64}} : (tensor<1x0xf32>, tensor<8x0xf16>) -> tensor<1x8xf32>
  return %y : tensor<1x8xf32>
}

// -----

// W8A8 with static activation scales (operand 6, after the absent norm and residual): the o product takes the
// residual into operand 5 and the gate/up product the norm into operand 4; both keep their scale.
// CHECK-LABEL: func @static_activations
// CHECK: %[[H:.+]] = kern.launch "matmul_q"(%arg1, %{{.+}}, %{{.+}}, %[[N:.+]], %[[N]], %arg0, %[[AO:.+]]) {attrs = {act_int8 = 1 : i64, bits = 8 : i64
// CHECK: kern.launch "matmul_q_gated"(%[[H]], %{{.+}}, %{{.+}}, %[[N]], %[[G:.+]], %[[N]], %[[AG:.+]]) {attrs = {act_int8 = 1 : i64, activation = 0 : i32, bits = 8 : i64, group_size = 64 : i64, norm_epsilon = 1.000000e-05 : f64
// CHECK-SAME: (tensor<1x1x64xf32>, tensor<256x64xi8>, tensor<256x1xf32>, none, tensor<64xf32>, none, tensor<1xf32>)
// CHECK-NOT: add_rms_norm
// CHECK-NOT: rms_norm
func.func @static_activations(%x: tensor<1x1x64xf32>, %a: tensor<1x1x64xf32>) -> tensor<1x1x128xf32> {
  %none = kern.absent
  %g = kern.weight dense<1.5> : tensor<64xf32>
  %wo = kern.weight dense<3> : tensor<64x64xi8>
  %so = kern.weight dense<0.02> : tensor<64x1xf32>
  %ao = kern.weight dense<0.05> : tensor<1xf32>
  %wgu = kern.weight dense<5> : tensor<256x64xi8>
  %sgu = kern.weight dense<0.03> : tensor<256x1xf32>
  %agu = kern.weight dense<0.07> : tensor<1xf32>
  %o = kern.launch "matmul_q"(%a, %wo, %so, %none, %none, %none, %ao) {attrs = {act_int8 = 1 : i64, bits = 8 : i64, group_size = 64 : i64, symmetric = 1 : i64}} : (tensor<1x1x64xf32>, tensor<64x64xi8>, tensor<64x1xf32>, none, none, none, tensor<1xf32>) -> tensor<1x1x64xf32>
  %h:2 = kern.launch "add_rms_norm"(%x, %o, %g) {attrs = {epsilon = 1.0e-05 : f64}} : (tensor<1x1x64xf32>, tensor<1x1x64xf32>, tensor<64xf32>) -> (tensor<1x1x64xf32>, tensor<1x1x64xf32>)
  %u = kern.launch "matmul_q_gated"(%h#1, %wgu, %sgu, %none, %none, %none, %agu) {attrs = {act_int8 = 1 : i64, activation = 0 : i32, bits = 8 : i64, group_size = 64 : i64, symmetric = 1 : i64}} : (tensor<1x1x64xf32>, tensor<256x64xi8>, tensor<256x1xf32>, none, none, none, tensor<1xf32>) -> tensor<1x1x128xf32>
  return %u : tensor<1x1x128xf32>
}
