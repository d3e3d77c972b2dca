// RUN: rm -rf %t && mkdir -p %t && echo "Once upon a time there was a cat." > %t/calib.txt
// RUN: not %qopt-opt %s -qopt-calibrate="calib=%t/calib.txt tokenizer=%models/stories260K/tok512.bin" 2>&1 | FileCheck %s
// qopt-calibrate runs the model, so it says what it needs when a function is not a decoder LM in the Hugging Face
// input convention, and when it has no linear layer.

// CHECK: error: qopt-calibrate: do not know how to feed input 'features': expected a decoder language model with the Hugging Face inputs (input_ids, and optionally position_ids, attention_mask, past_key_values.*)
module {
  func.func @encoder(%x: tensor<?x64xf32> {nn.name = "features", nn.dims = ["rows", ""]}) -> (tensor<?x32xf32> {nn.name = "y"}) {
    %w = nn.constant dense<0.25> : tensor<64x32xf32> {name = "proj.weight"}
    %y = nn.matmul(%x, %w) : (tensor<?x64xf32>, tensor<64x32xf32>) -> tensor<?x32xf32>
    return %y : tensor<?x32xf32>
  }
}
