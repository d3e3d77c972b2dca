// The model of bitflip.test: one linear layer and a softmax, x [2, 16] -> y [2, 32].
module {
  func.func @main(%x: tensor<2x16xf32> {nn.name = "x"}) -> (tensor<2x32xf32> {nn.name = "y"}) {
    %w = nn.constant dense<0.125> : tensor<16x32xf32> {name = "w"}
    %b = nn.constant dense<0.5> : tensor<32xf32> {name = "b"}
    %h = nn.matmul(%x, %w) : (tensor<2x16xf32>, tensor<16x32xf32>) -> tensor<2x32xf32>
    %a = nn.binary "add"(%h, %b) : (tensor<2x32xf32>, tensor<32xf32>) -> tensor<2x32xf32>
    %y = nn.softmax(%a) : (tensor<2x32xf32>) -> tensor<2x32xf32>
    return %y : tensor<2x32xf32>
  }
}
