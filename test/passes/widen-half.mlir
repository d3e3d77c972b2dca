// RUN: %qopt-opt %s -qopt-widen-half -split-input-file 2>%t.err | FileCheck %s
// RUN: FileCheck %s --input-file %t.err --check-prefix=REMARK
// A float16 / bfloat16 model is read as float32: typed values, constants (their exact values; a large one as a new
// blob, 1.0 = 0x3F800000), casts to 16 bits. A float32 function is left alone (one remark, for the first).

// CHECK-LABEL: func.func @half(%{{.*}}: tensor<2x4xf32>) -> tensor<2x3xf32>
// CHECK: nn.constant dense<{{\[}}[1.500000e+00, -2.000000e+00, 2.500000e-01], [3.000000e+00, 6.550400e+04, 6.09755516E-5], [1.000000e+00, 2.000000e+00, 3.000000e+00], [5.000000e-01, 5.000000e-01, 5.000000e-01]]> : tensor<4x3xf32> {name = "w"}
// CHECK: nn.matmul({{.*}}) : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
// CHECK: nn.constant dense<[1.500000e+00, -3.000000e+00]> : tensor<2xf32>
// CHECK: nn.constant dense_resource<big.f32> : tensor<72xf32> {name = "big"}
// CHECK: nn.cast({{.*}}) : (tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK: return %{{.*}} : tensor<2x3xf32>
// CHECK: big.f32: "0x080000000000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F"
// REMARK: remark: qopt-widen-half: a 16-bit float model, read as float32: 3 constants (0.0 MB) widened to float32
// REMARK-NOT: remark
func.func @half(%x: tensor<2x4xf16>) -> tensor<2x3xf16> {
  %w = nn.constant dense<[[1.5, -2.0, 0.25], [3.0, 65504.0, 6.1e-05], [1.0, 2.0, 3.0], [0.5, 0.5, 0.5]]> : tensor<4x3xf16> {name = "w"}
  %y = nn.matmul(%x, %w) : (tensor<2x4xf16>, tensor<4x3xf16>) -> tensor<2x3xf16>
  %b = nn.constant dense<[1.5, -3.0]> : tensor<2xbf16>
  %r = nn.constant dense_resource<big> : tensor<72xf16> {name = "big"}
  %c = nn.cast(%y) : (tensor<2x3xf16>) -> tensor<2x3xf16>
  return %c : tensor<2x3xf16>
}
{-#
  dialect_resources: {
    builtin: {
      big: "0x02000000003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C003C"
    }
  }
#-}

// -----

// CHECK-LABEL: func.func @f32(%{{.*}}: tensor<2xf32>) -> tensor<2xf32>
// CHECK: nn.constant dense<1.000000e+00> : tensor<2xf32>
func.func @f32(%x: tensor<2xf32>) -> tensor<2xf32> {
  %w = nn.constant dense<1.0> : tensor<2xf32>
  return %w : tensor<2xf32>
}
