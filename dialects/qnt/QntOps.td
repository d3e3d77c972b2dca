//===- QntOps.td - the qnt dialect -------------------------------------------===//
//
// qnt holds quantized computation. Weights are packed in the layouts of lib/Numerics/.../QuantFormat.h, with
// scales and zero points as tensor operands (so passes can rewrite them like any other value) rather than
// inline attributes.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_QNT_OPS
#define QOPT_QNT_OPS

include "mlir/IR/OpBase.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Qnt_Dialect : Dialect {
  let name = "qnt";
  let cppNamespace = "::qopt::qnt";
  let summary = "Quantized weights and the ops that compute with them";
}

class Qnt_Op<string mnemonic, list<Trait> traits = []> : Op<Qnt_Dialect, mnemonic, traits>;

def Qnt_LinearOp : Qnt_Op<"linear", [Pure]> {
  let summary = "y = x * dequant(W), W quantized group-wise per output channel";
  let description = [{
    `x` is float [.., K]; `weight` is the packed weight [N, K/2] (ui8, int4) or [N, K] (i8, int8; f8E4M3FN or
    f8E5M2, FP8 codes, also bits 8); `scales` are f32 [N, K / group_size], or f16 for int3/int4 (the quantizers
    round those scales to float16 values); `zeros` are ui8 [N, K / group_size] for asymmetric int4 and `none`
    otherwise. The result is [.., N]. `group_size` equal to K is per channel; with `group_size` = K, scales (and
    zeros) of shape [1, 1] are per tensor. With FP8 weights, `act_fp8` quantizes x to the weights' FP8 format too
    (W8A8): 1 with one static scale, the f32 [1] operand `act_scale` (x / act_scale rounded to FP8, saturated), 2
    with a scale per row of x computed at run time (max |x| of the row / the format's largest value); 0 keeps x in
    float. With int8 weights, `act_int8` quantizes x to int8 the same way (W8A8, SmoothQuant's scheme): round(x /
    scale) to nearest even, clamped to [-127, 127], with the static `act_scale` (1) or a scale per row, max |x| /
    127 (2). The static scale is an operand like the weights' scales, so that code generated for the op does not
    depend on its value: every layer of a shape shares its kernels.
    ```mlir
    %y = qnt.linear(%x, %w, %s, %z) {bits = 4 : i64, group_size = 32 : i64}
        : (tensor<?x?x288xf32>, tensor<768x144xui8>, tensor<768x9xf16>, tensor<768x9xui8>) -> tensor<?x?x768xf32>
    %v = qnt.linear(%x, %w8, %s8, %none, %a) {act_fp8 = 1 : i64, bits = 8 : i64, group_size = 288 : i64}
        : (tensor<?x?x288xf32>, tensor<768x288xf8E4M3FN>, tensor<768x1xf32>, none, tensor<1xf32>)
        -> tensor<?x?x768xf32>
    ```
  }];
  let arguments = (ins AnyTensor:$x, AnyTensor:$weight, AnyTensor:$scales, AnyType:$zeros,
                       Optional<AnyTensor>:$act_scale, I64Attr:$bits, I64Attr:$group_size,
                       DefaultValuedAttr<I64Attr, "0">:$symmetric, DefaultValuedAttr<I64Attr, "0">:$act_fp8,
                       DefaultValuedAttr<I64Attr, "0">:$act_int8);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $y)";
  let hasVerifier = 1;
}

#endif // QOPT_QNT_OPS
