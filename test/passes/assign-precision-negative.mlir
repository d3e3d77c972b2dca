// RUN: not %qopt-opt %s -qopt-assign-precision 2>&1 | FileCheck %s --check-prefix=BUDGET
// RUN: not %qopt-opt %s -qopt-assign-precision="avg-bits=6" 2>&1 | FileCheck %s --check-prefix=CALIB
// RUN: not %qopt-opt %s -qopt-assign-precision="avg-bits=6 calib=x.txt windows=0" 2>&1 | FileCheck %s --check-prefix=WINDOWS
// RUN: not %qopt-opt %s -qopt-assign-precision="avg-bits=4 calib=x.txt group-size=16" 2>&1 | FileCheck %s --check-prefix=LOW
// BUDGET: qopt-assign-precision: avg-bits must be positive (e.g. 4.5)
// CALIB: qopt-assign-precision: sensitivities need calibration data (pass --calib FILE)
// WINDOWS: qopt-assign-precision: windows must be > 0 and seq-len >= 2
// The cheapest candidate of a [16, 64] layer is int4 with groups of 16: 4 + 24 / 16 = 5.5 bits per weight (a
// float16 scale and a u8 zero point per group).
// LOW: qopt-assign-precision: avg-bits 4.000000 is below the smallest average these layers can take (all int4: 5.500000)
func.func @m(%x: tensor<?x16xf32>) -> tensor<?x64xf32> {
  %w = nn.constant dense<0.25> : tensor<16x64xf32> {name = "q.weight"}
  %y = nn.matmul(%x, %w) : (tensor<?x16xf32>, tensor<16x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
// RUN: not %qopt-opt %s -qopt-assign-precision="avg-bits=6 calib=x.txt exclude=(" 2>&1 | FileCheck %s --check-prefix=REGEX
// REGEX: qopt-assign-precision: invalid exclude regex '(':
// RUN: not %qopt-opt %s -qopt-assign-precision="avg-bits=6 calib=x.txt int4-method=sq" 2>&1 | FileCheck %s --check-prefix=METHOD
// METHOD: qopt-assign-precision: int4-method must be awq, gptq, awq-gptq or rtn, got 'sq'
// RUN: not %qopt-opt %s -qopt-assign-precision="avg-bits=8 calib=x.txt" 2>&1 | FileCheck %s --check-prefix=ROWS
// ROWS: qopt-assign-precision: int4-method=awq measures candidates as AWQ will quantize them, which needs qopt-calibrate's input rows on 'q.weight' (run qopt-calibrate first, or int4-method=rtn)
// RUN: not %qopt-opt %s -qopt-assign-precision="avg-bits=6 calib=x.txt sensitivity=fisher" 2>&1 | FileCheck %s --check-prefix=SENS
// SENS: qopt-assign-precision: sensitivity must be kl or scaled, got 'fisher'
// RUN: not %qopt-opt %s -qopt-assign-precision="avg-bits=8 calib=x.txt int4-method=rtn sensitivity=scaled" 2>&1 | FileCheck %s --check-prefix=SROWS
// SROWS: qopt-assign-precision: sensitivity=scaled weighs candidates by their output error on qopt-calibrate's input rows on 'q.weight' (run qopt-calibrate first, or sensitivity=kl)
