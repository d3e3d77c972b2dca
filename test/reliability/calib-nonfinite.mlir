// RUN: rm -rf %t && mkdir -p %t && echo "Once upon a time there was a cat." > %t/calib.txt
// RUN: not %qopt-opt %s -qopt-calibrate="calib=%t/calib.txt tokenizer=%models/stories260K/tok512.bin" 2>&1 | FileCheck %s
// A float model that overflows on the calibration data: the embedding holds 3e38 and the first linear layer sums
// eight of them, so the second layer's input is +Inf. Calibration refuses rather than feed Inf into AWQ or GPTQ.
// CHECK: error: qopt-calibrate: the input of 'head.weight' has {{[0-9]+}} non-finite values (NaN or Inf) on the calibration data: the float model overflows
module {
  func.func @main(%ids: tensor<?x?xi64> {nn.name = "input_ids", nn.dims = ["batch", "seq"]}) -> (tensor<?x?x512xf32> {nn.name = "logits"}) {
    %emb = nn.constant dense<3.0e38> : tensor<512x8xf32> {name = "embed.weight"}
    %w1 = nn.constant dense<1.0> : tensor<8x16xf32> {name = "fc.weight"}
    %w2 = nn.constant dense<0.5> : tensor<16x512xf32> {name = "head.weight"}
    %x = nn.gather(%emb, %ids) : (tensor<512x8xf32>, tensor<?x?xi64>) -> tensor<?x?x8xf32>
    %h = nn.matmul(%x, %w1) : (tensor<?x?x8xf32>, tensor<8x16xf32>) -> tensor<?x?x16xf32>
    %y = nn.matmul(%h, %w2) : (tensor<?x?x16xf32>, tensor<16x512xf32>) -> tensor<?x?x512xf32>
    return %y : tensor<?x?x512xf32>
  }
}
