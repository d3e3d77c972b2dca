// The KV-cache model of bitflip.test: attention over a cache of 8 positions (2 kv heads of 4) held as session
// state, with a linear layer after it; q, k, v, y [1, 2, s, 4].
module attributes {nn.metadata = {qopt.max_sequence = "8"}} {
  func.func @main(%q: tensor<1x2x?x4xf32> {nn.dims = ["", "", "sequence", ""], nn.name = "q"},
                  %k: tensor<1x2x?x4xf32> {nn.dims = ["", "", "sequence", ""], nn.name = "k"},
                  %v: tensor<1x2x?x4xf32> {nn.dims = ["", "", "sequence", ""], nn.name = "v"},
                  %pk: tensor<1x2x?x4xf32> {nn.dims = ["", "", "past_sequence", ""], nn.name = "past.key"},
                  %pv: tensor<1x2x?x4xf32> {nn.dims = ["", "", "past_sequence", ""], nn.name = "past.value"})
      -> (tensor<1x2x?x4xf32> {nn.name = "y"}, tensor<1x2x?x4xf32> {nn.name = "present.key"},
          tensor<1x2x?x4xf32> {nn.name = "present.value"}) {
    %none = nn.none
    %ck = nn.concat(%pk, %k) {axis = 2 : i64} : (tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>) -> tensor<1x2x?x4xf32>
    %cv = nn.concat(%pv, %v) {axis = 2 : i64} : (tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>) -> tensor<1x2x?x4xf32>
    %o = nn.attention(%q, %ck, %cv, %none) {causal = 1 : i64, scale = 0.5 : f64} : (tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>, none) -> tensor<1x2x?x4xf32>
    %w = nn.constant dense<0.25> : tensor<4x4xf32> {name = "w"}
    %y = nn.matmul(%o, %w) : (tensor<1x2x?x4xf32>, tensor<4x4xf32>) -> tensor<1x2x?x4xf32>
    return %y, %ck, %cv : tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>
  }
}
