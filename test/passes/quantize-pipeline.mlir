// RUN: %qopt-opt %s -pass-pipeline='builtin.module(qopt-quantize-pipeline{scheme=rtn4 group-size=32})' | FileCheck %s
// RUN: %qopt-opt %s -pass-pipeline='builtin.module(qopt-quantize-pipeline{scheme=int8 granularity=tensor})' | FileCheck %s --check-prefix=TENSOR
// RUN: not %qopt-opt %s -pass-pipeline='builtin.module(qopt-quantize-pipeline{scheme=awq4})' 2>&1 | FileCheck %s --check-prefix=NOCALIB
// RUN: not %qopt-opt %s -pass-pipeline='builtin.module(qopt-quantize-pipeline{scheme=fp5})' 2>&1 | FileCheck %s --check-prefix=SCHEME
// RUN: %qopt-opt %s -pass-pipeline='builtin.module(qopt-quantize-pipeline{scheme=rtn4 group-size=32 symmetric=true})' | FileCheck %s --check-prefix=SYM
// RUN: not %qopt-opt %s -pass-pipeline='builtin.module(qopt-quantize-pipeline{scheme=int8 symmetric=true})' 2>&1 | FileCheck %s --check-prefix=SYMERR
// RUN: not %qopt-opt %s -pass-pipeline='builtin.module(qopt-quantize-pipeline{scheme=rtn4 act-order=true})' 2>&1 | FileCheck %s --check-prefix=ORDERERR
// RUN: %qopt-opt --help | FileCheck %s --check-prefix=HELP
// qopt-quantize-pipeline takes qopt's quantization flags as typed options; lm_head is excluded by default.

// CHECK-LABEL: func @f
// CHECK: qnt.linear{{.*}}{bits = 4 : i64, group_size = 32 : i64, qopt.quant = {method = "rtn"
// CHECK: nn.matmul
// TENSOR: qnt.linear{{.*}}{bits = 8 : i64, group_size = 64 : i64, qopt.quant = {method = "rtn"{{.*}}tensor<1x1xf32>
// Symmetric int4: no zero points (the fourth operand is none).
// SYM: qnt.linear({{.*}}) {bits = 4 : i64, group_size = 32 : i64, {{.*}}symmetric = 1 : i64} : (tensor<?x64xf32>, tensor<32x32xui8>, tensor<32x2xf16>, none)
// SYMERR: qopt-quantize-pipeline: --symmetric applies to rtn4, awq4, gptq4 and mixed
// ORDERERR: qopt-quantize-pipeline: --act-order orders GPTQ's rounding: with gptq4, gptq3 or --gptq
// NOCALIB: qopt-quantize-pipeline: --quantize=awq4 needs calibration data: pass --calib FILE
// SCHEME: qopt-quantize-pipeline: --quantize=fp5 is not available
// HELP: --qopt-quantize-pipeline
// HELP-NEXT: --act-order
// HELP-NEXT: --avg-bits
// HELP-NEXT: --calib
// HELP: --scheme
func.func @f(%x: tensor<?x64xf32>) -> tensor<?x32xf32> {
  %w = nn.constant dense<0.25> : tensor<64x32xf32> {name = "mlp.up.weight"}
  %h = nn.constant dense<0.5> : tensor<32x32xf32> {name = "lm_head.weight"}
  %y = nn.matmul(%x, %w) : (tensor<?x64xf32>, tensor<64x32xf32>) -> tensor<?x32xf32>
  %z = nn.matmul(%y, %h) : (tensor<?x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  return %z : tensor<?x32xf32>
}
