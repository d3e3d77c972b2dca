// RUN: %qopt-opt %s -qopt-select-layers -split-input-file | FileCheck %s
// RUN: %qopt-opt %s -qopt-select-layers="quantize-lm-head=true" -split-input-file | FileCheck %s --check-prefix=LMHEAD
// RUN: %qopt-opt %s -qopt-select-layers="exclude=up_proj" -split-input-file | FileCheck %s --check-prefix=EXCLUDE
// The output head is found by structure, whatever its weight's name (torch's dynamo exporter writes val_NNN).

// CHECK-LABEL: func @head_behind_reshape
// CHECK: nn.matmul(%{{.+}}, %[[UP:.+]]) :
// CHECK: nn.matmul({{.*}}) {qopt.float_reason = "output head (it produces a model output); --quantize-lm-head quantizes it"}
// LMHEAD-LABEL: func @head_behind_reshape
// LMHEAD-NOT: qopt.float_reason
// EXCLUDE-LABEL: func @head_behind_reshape
// EXCLUDE: nn.matmul({{.*}}) {qopt.float_reason = "matches --exclude 'up_proj'"}
// EXCLUDE: nn.matmul({{.*}}) {qopt.float_reason = "output head
func.func @head_behind_reshape(%x: tensor<?x64xf32>) -> tensor<1x?x256xf32> {
  %up = nn.constant dense<0.1> : tensor<64x64xf32> {name = "model.up_proj.weight"}
  %w = nn.constant dense<0.1> : tensor<64x256xf32> {name = "val_460"}
  %b = nn.constant dense<0.5> : tensor<256xf32>
  %shape = nn.constant dense<[1, -1, 256]> : tensor<3xi64>
  %h = nn.matmul(%x, %up) : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %y = nn.matmul(%h, %w) : (tensor<?x64xf32>, tensor<64x256xf32>) -> tensor<?x256xf32>
  %z = nn.binary "add"(%y, %b) : (tensor<?x256xf32>, tensor<256xf32>) -> tensor<?x256xf32>
  %r = nn.reshape(%z, %shape) : (tensor<?x256xf32>, tensor<3xi64>) -> tensor<1x?x256xf32>
  return %r : tensor<1x?x256xf32>
}

// -----

// A layer whose result is transformed (a softmax) before the output is not the output head.
// CHECK-LABEL: func @not_a_head
// CHECK-NOT: qopt.float_reason
func.func @not_a_head(%x: tensor<?x64xf32>) -> tensor<?x256xf32> {
  %w = nn.constant dense<0.1> : tensor<64x256xf32> {name = "lm_head.weight"}
  %y = nn.matmul(%x, %w) : (tensor<?x64xf32>, tensor<64x256xf32>) -> tensor<?x256xf32>
  %p = nn.softmax(%y) : (tensor<?x256xf32>) -> tensor<?x256xf32>
  return %p : tensor<?x256xf32>
}
