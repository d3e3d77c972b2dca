// RUN: not %qopt-opt %s -qopt-quantize-rtn="bits=4 group-size=32" 2>&1 | FileCheck %s --check-prefix=RTN
// A NaN or Inf weight is refused with its position: no quantizer can represent it (QuantTest covers every
// quantizer; here the pass's message).

// RTN: error: cannot quantize 'w': the weight has a non-finite value (nan) at input 0, output 0
func.func @nan_weight(%x: tensor<?x64xf32>) -> tensor<?x32xf32> {
  %w = nn.constant dense<0x7FC00000> : tensor<64x32xf32> {name = "w"}
  %y = nn.matmul(%x, %w) : (tensor<?x64xf32>, tensor<64x32xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}
