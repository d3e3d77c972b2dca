// RUN: not %qopt-opt %s -qopt-smoothquant 2>&1 | FileCheck %s --check-prefix=NOCALIB
// RUN: not %qopt-opt %s -qopt-smoothquant="alpha=1.5" 2>&1 | FileCheck %s --check-prefix=ALPHA
// NOCALIB: qopt-smoothquant: no calibrated linear layer (run qopt-calibrate first)
// ALPHA: qopt-smoothquant: alpha must be in [0, 1], got 1.5
func.func @uncalibrated(%x: tensor<?x16xf32>) -> tensor<?x64xf32> {
  %w = nn.constant dense<1.0> : tensor<16x64xf32> {name = "q.weight"}
  %y = nn.matmul(%x, %w) : (tensor<?x16xf32>, tensor<16x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
// RUN: not %qopt-opt %s -qopt-smoothquant="exclude=(" 2>&1 | FileCheck %s --check-prefix=REGEX
// REGEX: qopt-smoothquant: invalid exclude regex '(':
