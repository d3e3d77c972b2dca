//===- NNOps.td - the nn dialect ---------------------------------------------===//
//
// nn is qopt's graph dialect: tensor ops with ONNX semantics (broadcasting, negative axes, ONNX's Reshape and
// Slice rules), the level at which graphs are imported, raised and quantized. Attribute names match the CPU
// reference kernels of lib/Numerics, so an nn op and the kernel that computes it read the same dictionary.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_NN_OPS
#define QOPT_NN_OPS

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"
include "mlir/IR/EnumAttr.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def NN_Dialect : Dialect {
  let name = "nn";
  let cppNamespace = "::qopt::nn";
  let summary = "Tensor ops with ONNX semantics";
  let description = [{
    The graph dialect of qopt. Values are ranked tensors whose dynamic dims are `?`; the importer records the
    ONNX dim names of function arguments in the `nn.dims` argument attribute. Weights are `dense_resource`
    constants that reference the model's memory without copying it.
  }];
  let useDefaultTypePrinterParser = 1;
  let hasConstantMaterializer = 1;
}

class NN_Type<string name, string typeMnemonic> : TypeDef<NN_Dialect, name> {
  let mnemonic = typeMnemonic;
}

def NN_UnknownType : NN_Type<"Unknown", "unknown"> {
  let summary = "the not-yet-inferred type of an `nn.onnx_node` result";
}

def NN_NoneValue : Type<CPred<"::llvm::isa<::mlir::NoneType>($_self)">, "none">,
    BuildableType<"$_builder.getNoneType()">;

class NN_Op<string mnemonic, list<Trait> traits = []> : Op<NN_Dialect, mnemonic, traits>;

// Ops that compute with a CPU reference kernel of the same name (mnemonic) and that the generic type inference,
// folding and lowering handle.
class NN_KernelOp<string mnemonic, list<Trait> traits = []> : NN_Op<mnemonic, !listconcat(traits, [Pure])> {
  let hasVerifier = 1;
  let hasFolder = 1;
  let extraClassDeclaration = [{
    static constexpr bool isKernelOp = true;
  }];
}

//===----------------------------------------------------------------------===//
// Structural ops
//===----------------------------------------------------------------------===//

def NN_OnnxNodeOp : NN_Op<"onnx_node"> {
  let summary = "an ONNX node not yet converted to nn ops";
  let description = [{
    The importer's first step: each ONNX NodeProto becomes one `nn.onnx_node` carrying its op type, domain, the
    opset version of that domain and its attributes as MLIR attributes (INT -> i64, FLOAT -> f32, STRING -> string,
    INTS -> array<i64>, FLOATS -> array<f32>, TENSOR -> elements). The `qopt-convert-onnx` pass then rewrites each
    through the op/opset handler table. Keeping this step separate lets every mapping be tested from `.mlir`.

    ```mlir
    %0 = nn.onnx_node "Add"(%a, %b) {version = 14 : i64} : (tensor<2xf32>, tensor<2xf32>) -> !nn.unknown
    ```
  }];
  let arguments = (ins StrAttr:$op_type, DefaultValuedStrAttr<StrAttr, "">:$domain, I64Attr:$version,
                       DictionaryAttr:$attrs, Variadic<AnyType>:$operands);
  let results = (outs Variadic<AnyType>:$results);
  let assemblyFormat = "$op_type `(` $operands `)` attr-dict `:` functional-type($operands, $results)";
}

def NN_NoneOp : NN_Op<"none", [Pure]> {
  let summary = "an absent optional operand";
  let results = (outs NN_NoneValue:$result);
  let assemblyFormat = "attr-dict";
  let builders = [OpBuilder<(ins), [{ build($_builder, $_state, $_builder.getNoneType()); }]>];
}

def NN_ConstantOp : NN_Op<"constant", [ConstantLike, Pure, AllTypesMatch<["value", "result"]>]> {
  let summary = "a constant tensor (weights are dense_resource blobs)";
  let description = [{
    ```mlir
    %w = nn.constant dense_resource<model.layers.0.mlp.up_proj.weight> : tensor<64x172xf32>
    ```
    The optional `name` is the ONNX initializer's name, kept for reports and the model.bin value table.
  }];
  let arguments = (ins ElementsAttr:$value, OptionalAttr<StrAttr>:$name);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$value attr-dict";
  let hasFolder = 1;
  let builders = [OpBuilder<(ins "::mlir::ElementsAttr":$value, CArg<"::mlir::StringAttr", "{}">:$name), [{
    build($_builder, $_state, ::llvm::cast<::mlir::TypedAttr>(value).getType(), value, name);
  }]>];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

def NN_UnaryOp : NN_KernelOp<"unary"> {
  let summary = "an elementwise function";
  let description = [{
    `fn` is one of: neg abs exp log sqrt reciprocal erf tanh sigmoid relu sin cos tan asin acos atan sinh cosh
    asinh acosh atanh floor ceil round sign not isnan isinf softplus softsign leaky_relu elu selu gelu gelu_tanh
    hard_sigmoid hard_swish identity. `alpha`, `beta`, `gamma` parameterize leaky_relu, elu, selu, hard_sigmoid.
    ```mlir
    %y = nn.unary "sigmoid"(%x) : (tensor<?x64xf32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins StrAttr:$fn, AnyTensor:$x, OptionalAttr<F64Attr>:$alpha, OptionalAttr<F64Attr>:$beta,
                       OptionalAttr<F64Attr>:$gamma);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "$fn `(` $x `)` attr-dict `:` functional-type($x, $y)";
}

def NN_BinaryOp : NN_KernelOp<"binary"> {
  let summary = "a broadcasting elementwise arithmetic, comparison or logical op";
  let description = [{
    `fn` is one of: add sub mul div pow max min mod fmod and or xor equal less less_equal greater greater_equal
    shift_left shift_right. Comparisons and logic produce i1. Integer division by zero gives 0.
    ```mlir
    %z = nn.binary "add"(%x, %y) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    ```
  }];
  let arguments = (ins StrAttr:$fn, AnyTensor:$lhs, AnyTensor:$rhs);
  let results = (outs AnyTensor:$result);
  let assemblyFormat = "$fn `(` $lhs `,` $rhs `)` attr-dict `:` functional-type(operands, $result)";
}

def NN_WhereOp : NN_KernelOp<"where"> {
  let summary = "select elements by a boolean condition, broadcasting";
  let arguments = (ins AnyTensor:$condition, AnyTensor:$x, AnyTensor:$y);
  let results = (outs AnyTensor:$result);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $result)";
}

def NN_CastOp : NN_KernelOp<"cast"> {
  let summary = "element type conversion (float to int truncates, saturating)";
  let arguments = (ins AnyTensor:$x);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` $x `)` attr-dict `:` functional-type($x, $y)";
}

//===----------------------------------------------------------------------===//
// Linear algebra and normalization
//===----------------------------------------------------------------------===//

def NN_MatmulOp : NN_KernelOp<"matmul"> {
  let summary = "numpy-style batched matrix product";
  let description = [{
    1-D operands are promoted (a vector lhs gains a leading 1, a vector rhs a trailing 1) and the promoted dim is
    dropped from the result; leading batch dims broadcast.
    ```mlir
    %y = nn.matmul(%x, %w) : (tensor<?x?x64xf32>, tensor<64x172xf32>) -> tensor<?x?x172xf32>
    ```
  }];
  let arguments = (ins AnyTensor:$lhs, AnyTensor:$rhs);
  let results = (outs AnyTensor:$result);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $result)";
}

def NN_SoftmaxOp : NN_KernelOp<"softmax"> {
  let summary = "softmax, or log-softmax when `log` is 1, along `axis`";
  let arguments = (ins AnyTensor:$x, DefaultValuedAttr<I64Attr, "-1">:$axis, DefaultValuedAttr<I64Attr, "0">:$log);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` $x `)` attr-dict `:` functional-type($x, $y)";
}

def NN_LayerNormOp : NN_KernelOp<"layer_norm"> {
  let summary = "normalize over the dims from `axis` on, then scale and shift";
  let arguments = (ins AnyTensor:$x, AnyTensor:$scale, Optional<AnyTensor>:$bias,
                       DefaultValuedAttr<I64Attr, "-1">:$axis, DefaultValuedAttr<F64Attr, "1e-5">:$epsilon);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $y)";
}

def NN_ReduceOp : NN_KernelOp<"reduce"> {
  let summary = "reduce over `axes` (all dims when empty) by `kind`";
  let description = [{
    `kind` is one of: sum mean max min prod sum_square l1 l2 log_sum log_sum_exp.
    ```mlir
    %m = nn.reduce(%x) {kind = "mean", axes = array<i64: -1>, keepdims = 1 : i64}
        : (tensor<?x64xf32>) -> tensor<?x1xf32>
    ```
  }];
  let arguments = (ins AnyTensor:$x, StrAttr:$kind, DefaultValuedAttr<DenseI64ArrayAttr, "{}">:$axes,
                       DefaultValuedAttr<I64Attr, "1">:$keepdims);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` $x `)` attr-dict `:` functional-type($x, $y)";
}

def NN_ArgReduceOp : NN_KernelOp<"arg_reduce"> {
  let summary = "the index of the max or min along `axis` (int64)";
  let arguments = (ins AnyTensor:$x, StrAttr:$kind, DefaultValuedAttr<I64Attr, "0">:$axis,
                       DefaultValuedAttr<I64Attr, "1">:$keepdims,
                       DefaultValuedAttr<I64Attr, "0">:$select_last_index);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` $x `)` attr-dict `:` functional-type($x, $y)";
}

//===----------------------------------------------------------------------===//
// Raised ops: what the qopt-raise-* passes make of decomposed ONNX patterns
//===----------------------------------------------------------------------===//

// Closed sets are I32 enums: stored as integer attributes, so the kernels read them as plain integers.
def NN_GeluApproximation : I32EnumAttr<"GeluApproximation", "how GELU's Gaussian CDF is computed", [
    I32EnumAttrCase<"erf", 0>, I32EnumAttrCase<"tanh", 1>]> {
  let cppNamespace = "::qopt::nn";
}

def NN_GatedActivation : I32EnumAttr<"GatedActivation", "the activation applied to the gate", [
    I32EnumAttrCase<"silu", 0>, I32EnumAttrCase<"gelu", 1>, I32EnumAttrCase<"gelu_tanh", 2>]> {
  let cppNamespace = "::qopt::nn";
}

def NN_RotaryStyle : I32EnumAttr<"RotaryStyle", "which dims a rotary embedding rotates together", [
    I32EnumAttrCase<"rotate_half", 0>, I32EnumAttrCase<"interleaved", 1>]> {
  let cppNamespace = "::qopt::nn";
}

def NN_RotaryOp : NN_KernelOp<"rotary"> {
  let summary = "rotary position embedding with angles position * inv_freq";
  let description = [{
    x is `[B, H, S, D]`, positions `[B or 1, S]` (integer or float), inv_freq `[D/2]` (or `[1, D/2]`). With
    `theta_i = float(position) * inv_freq[i]`, `rotate_half` pairs dim i with dim i + D/2 (HF's rotate_half):
    `y_i = x_i cos theta_i - x_{i+D/2} sin theta_i`, `y_{i+D/2} = x_{i+D/2} cos theta_i + x_i sin theta_i`;
    `interleaved` pairs dims 2i and 2i + 1 (llama2.c, GPT-J). Made by `qopt-raise-rotary`: the cos/sin tables
    and the rotation of every layer become one op per rotated tensor.
    ```mlir
    %y = nn.rotary rotate_half(%q, %pos, %inv_freq) : (tensor<?x8x?x8xf32>, tensor<?x?xi64>, tensor<4xf32>) -> tensor<?x8x?x8xf32>
    ```
  }];
  let arguments = (ins AnyTensor:$x, AnyTensor:$positions, AnyTensor:$inv_freq, NN_RotaryStyle:$style);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "$style `(` $x `,` $positions `,` $inv_freq `)` attr-dict `:` functional-type(operands, $y)";
}

def NN_RmsNormOp : NN_KernelOp<"rms_norm"> {
  let summary = "root-mean-square normalization over the last dim, times a scale";
  let description = [{
    `y = x / sqrt(mean(x^2, last dim) + epsilon) * scale`, with `scale` of the last dim's size (or 1). Made by
    `qopt-raise-rms-norm` from `Mul(scale, Mul(x, Reciprocal(Sqrt(Add(ReduceMean(Pow(x, 2)), eps)))))` and its
    variants. The CPU kernel accumulates the mean of squares in double.
    ```mlir
    %y = nn.rms_norm(%x, %w) {epsilon = 1.0e-05 : f64} : (tensor<?x?x64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
    ```
  }];
  let arguments = (ins AnyTensor:$x, AnyTensor:$scale, DefaultValuedAttr<F64Attr, "1e-5">:$epsilon);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $y)";
}

def NN_GeluOp : NN_KernelOp<"gelu"> {
  let summary = "GELU, exact (erf) or with the tanh approximation";
  let description = [{
    `erf`: `0.5 x (1 + erf(x / sqrt(2)))`; `tanh`: `0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))` (GPT-2's
    gelu_new). Made by `qopt-raise-gelu`.
    ```mlir
    %y = nn.gelu tanh(%x) : (tensor<?x256xf32>) -> tensor<?x256xf32>
    ```
  }];
  let arguments = (ins AnyTensor:$x,
                       DefaultValuedAttr<NN_GeluApproximation, "::qopt::nn::GeluApproximation::erf">:$approximation);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "$approximation `(` $x `)` attr-dict `:` functional-type($x, $y)";
}

def NN_GatedActOp : NN_KernelOp<"gated_act"> {
  let summary = "act(gate) * up: the gated MLP's activation (SwiGLU, GeGLU)";
  let description = [{
    The elementwise middle of a gated MLP, `down(act(gate(x)) * up(x))`: operands of the same shape (no
    broadcasting). Made by `qopt-raise-gated-mlp` from `Mul(Mul(g, Sigmoid(g)), u)` (SiLU) or a GELU of the gate.
    ```mlir
    %h = nn.gated_act silu(%g, %u) : (tensor<?x?x172xf32>, tensor<?x?x172xf32>) -> tensor<?x?x172xf32>
    ```
  }];
  let arguments = (ins AnyTensor:$gate, AnyTensor:$up, NN_GatedActivation:$activation);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "$activation `(` $gate `,` $up `)` attr-dict `:` functional-type(operands, $y)";
}

def NN_AttentionOp : NN_KernelOp<"attention", [AttrSizedOperandSegments]> {
  let summary = "scaled dot-product attention with grouped-query heads and an optional mask";
  let description = [{
    `out = softmax(scale * Q K^T [masked]) V` per batch and query head. Q is `[B, Hq, S, D]`, K `[B, Hkv, T, D]`,
    V `[B, Hkv, T, Dv]` with Hq a multiple of Hkv: query head h reads kv head `h / (Hq / Hkv)` (grouped-query
    attention, the repeat_kv of HF models). The mask broadcasts to `[B, Hq, S, T]`: a boolean mask keeps scores
    where true and sets the others to `masked_value`; a float mask is added to the scores. `causal` (1) masks key
    j for query i when `j > i + T - S` (the queries are the last S of T positions). `zero_nan_rows` (1) turns a
    softmax row that is NaN (every score -inf) into zeros, as torch's sdpa export does. Made by
    `qopt-raise-attention`.

    With a `cache_length` operand (one int64, the positions cached before this run), K and V are KV caches of
    their full capacity `[B', Hkv, C, D]` (`nn.kv_append` results, B' >= B) and the keys are their first
    `cache_length + S` rows; the mask is then none. Made by `qopt-kv-state`. FP8 caches (E4M3FN, E5M2) hold codes:
    key j of kv head h is `code x k_scales[h]`, a value `code x v_scales[h]` (`scales`: float32 `[Hkv]` tensors, the
    caches' own, which their `nn.kv_append` writes with).
    ```mlir
    %o = nn.attention(%q, %k, %v, %mask) {scale = 0.35355339059327379 : f64}
        : (tensor<?x8x?x8xf32>, tensor<?x4x?x8xf32>, tensor<?x4x?x8xf32>, tensor<1x1x?x?xi1>) -> tensor<?x8x?x8xf32>
    %o = nn.attention(%q, %k, %v, %none, %len) scales(%ks, %vs) {causal = 1 : i64} : (tensor<1x8x1x8xf32>,
        tensor<1x4x512x8xf8E4M3FN>, tensor<1x4x512x8xf8E4M3FN>, none, tensor<1xi64>, tensor<4xf32>, tensor<4xf32>)
        -> tensor<1x8x1x8xf32>
    ```
  }];
  let arguments = (ins AnyTensor:$q, AnyTensor:$k, AnyTensor:$v, AnyType:$mask, Optional<AnyTensor>:$cache_length,
                       Optional<AnyTensor>:$k_scales, Optional<AnyTensor>:$v_scales,
                       DefaultValuedAttr<F64Attr, "1.0">:$scale,
                       DefaultValuedAttr<F64Attr, "-std::numeric_limits<double>::infinity()">:$masked_value,
                       DefaultValuedAttr<I64Attr, "0">:$causal, DefaultValuedAttr<I64Attr, "0">:$zero_nan_rows);
  let results = (outs AnyTensor:$out);
  let assemblyFormat = [{
    `(` $q `,` $k `,` $v `,` $mask (`,` $cache_length^)? `)` (`scales` `(` $k_scales^ `,` $v_scales `)`)? attr-dict
    `:` functional-type(operands, $out)
  }];
}

//===----------------------------------------------------------------------===//
// Session state (KV caches)
//===----------------------------------------------------------------------===//

def NN_StateOp : NN_Op<"state"> {
  let summary = "a buffer the runtime session keeps from one run to the next";
  let description = [{
    Zero when a session starts and after `qrt_session_reset`; written only in place (`nn.kv_append`,
    `nn.kv_advance`). Not pure: two states of one type are two buffers. The name is the value's name in model.bin.
    ```mlir
    %k = nn.state "kv.0.key" : tensor<1x4x512x8xf32>
    %len = nn.state "kv.length" : tensor<1xi64>
    ```
  }];
  let arguments = (ins StrAttr:$name);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def NN_KvAppendOp : NN_Op<"kv_append", [AttrSizedOperandSegments]> {
  let summary = "writes new keys or values into a KV cache at its current length, in place";
  let description = [{
    `cache[..., length : length + S, ...] = new` along `axis`; the result is the cache after the write (the same
    buffer). `new` may have a smaller batch than the cache; its other dims, but the axis, match the cache's.
    An FP8 cache `[batch, kv heads, capacity, head dim]` (appended along dim 2) takes float32 entries and stores
    the codes of `x / scales[h]` (`scales`: float32 `[kv heads]`), rounded to nearest even and saturated; with
    `offsets` (float32 `[kv heads, head dim]`: centered keys) the codes of `(x - offsets[h, d]) / scales[h]`.
    ```mlir
    %k1 = nn.kv_append(%k, %new_k, %len) : (tensor<1x4x512x8xf32>, tensor<?x4x?x8xf32>, tensor<1xi64>)
        -> tensor<1x4x512x8xf32>
    %k2 = nn.kv_append(%k8, %new_k, %len) scales(%s) offsets(%o) : (tensor<1x4x512x8xf8E4M3FN>,
        tensor<?x4x?x8xf32>, tensor<1xi64>, tensor<4xf32>, tensor<4x8xf32>) -> tensor<1x4x512x8xf8E4M3FN>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$cache, AnyRankedTensor:$update, AnyTensor:$length,
                       Optional<AnyRankedTensor>:$scales, Optional<AnyRankedTensor>:$offsets,
                       DefaultValuedAttr<I64Attr, "2">:$axis);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    `(` $cache `,` $update `,` $length `)` (`scales` `(` $scales^ `)`)? (`offsets` `(` $offsets^ `)`)? attr-dict
    `:` functional-type(operands, $result)
  }];
  let hasVerifier = 1;
}

def NN_KvAdvanceOp : NN_Op<"kv_advance"> {
  let summary = "adds the new entries' count to a cache length, in place";
  let description = [{
    `length += sizes[axis]`, `sizes` the new entries' shape (`nn.shape` of them: a few bytes to keep alive
    rather than the entries), after every reader of the length in this run.
    ```mlir
    %len1 = nn.kv_advance(%len, %sizes) : (tensor<1xi64>, tensor<4xi64>) -> tensor<1xi64>
    ```
  }];
  let arguments = (ins AnyTensor:$length, AnyRankedTensor:$sizes, DefaultValuedAttr<I64Attr, "2">:$axis);
  let results = (outs AnyTensor:$result);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Shape and data movement
//===----------------------------------------------------------------------===//

def NN_ReshapeOp : NN_KernelOp<"reshape"> {
  let summary = "ONNX Reshape: 0 copies the input dim (unless allowzero), -1 is inferred";
  let arguments = (ins AnyTensor:$x, AnyTensor:$shape, DefaultValuedAttr<I64Attr, "0">:$allowzero);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $y)";
}

def NN_UnsqueezeOp : NN_KernelOp<"unsqueeze"> {
  let summary = "insert unit dims at `axes` (positions in the result)";
  let arguments = (ins AnyTensor:$x, DenseI64ArrayAttr:$axes);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` $x `)` attr-dict `:` functional-type($x, $y)";
}

def NN_SqueezeOp : NN_KernelOp<"squeeze"> {
  let summary = "remove unit dims at `axes`, or every unit dim when `axes` is absent";
  let arguments = (ins AnyTensor:$x, OptionalAttr<DenseI64ArrayAttr>:$axes);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` $x `)` attr-dict `:` functional-type($x, $y)";
}

def NN_FlattenOp : NN_KernelOp<"flatten"> {
  let summary = "collapse to 2-D: dims before `axis` and dims from `axis` on";
  let arguments = (ins AnyTensor:$x, DefaultValuedAttr<I64Attr, "1">:$axis);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` $x `)` attr-dict `:` functional-type($x, $y)";
}

def NN_TransposeOp : NN_KernelOp<"transpose"> {
  let summary = "permute dims: result dim i is input dim perm[i]";
  let arguments = (ins AnyTensor:$x, DenseI64ArrayAttr:$perm);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` $x `)` attr-dict `:` functional-type($x, $y)";
}

def NN_ConcatOp : NN_KernelOp<"concat"> {
  let summary = "join tensors along `axis`";
  let arguments = (ins Variadic<AnyTensor>:$inputs, I64Attr:$axis);
  let results = (outs AnyTensor:$result);
  let assemblyFormat = "`(` $inputs `)` attr-dict `:` functional-type($inputs, $result)";
}

def NN_SliceOp : NN_KernelOp<"slice"> {
  let summary = "ONNX Slice with clamped starts/ends, optional axes and steps";
  let arguments = (ins AnyTensor:$x, AnyTensor:$starts, AnyTensor:$ends, AnyType:$axes, AnyType:$steps);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $y)";
}

def NN_GatherOp : NN_KernelOp<"gather"> {
  let summary = "ONNX Gather: index `axis` of the data with an index tensor";
  let arguments = (ins AnyTensor:$data, AnyTensor:$indices, DefaultValuedAttr<I64Attr, "0">:$axis);
  let results = (outs AnyTensor:$result);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $result)";
}

def NN_ExpandOp : NN_KernelOp<"expand"> {
  let summary = "broadcast to a shape given as a 1-D int64 tensor";
  let arguments = (ins AnyTensor:$x, AnyTensor:$shape);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $y)";
}

def NN_TriluOp : NN_KernelOp<"trilu"> {
  let summary = "keep the upper (or lower) triangle above diagonal k of the last two dims";
  let arguments = (ins AnyTensor:$x, AnyType:$k, DefaultValuedAttr<I64Attr, "1">:$upper);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $y)";
}

def NN_ShapeOp : NN_KernelOp<"shape"> {
  let summary = "the dims [start, end) of the input as a 1-D int64 tensor";
  let arguments = (ins AnyTensor:$x, OptionalAttr<I64Attr>:$start, OptionalAttr<I64Attr>:$end);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` $x `)` attr-dict `:` functional-type($x, $y)";
}

def NN_SizeOp : NN_KernelOp<"size"> {
  let summary = "the element count of the input as an int64 scalar";
  let arguments = (ins AnyTensor:$x);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` $x `)` attr-dict `:` functional-type($x, $y)";
}

def NN_RangeOp : NN_KernelOp<"range"> {
  let summary = "start, start + delta, ... below limit";
  let arguments = (ins AnyTensor:$start, AnyTensor:$limit, AnyTensor:$delta);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $y)";
}

def NN_ConstantOfShapeOp : NN_KernelOp<"constant_of_shape"> {
  let summary = "a tensor filled with `value`, shaped by a 1-D int64 operand";
  let arguments = (ins AnyTensor:$shape, DefaultValuedAttr<F64Attr, "0.0">:$value);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` $shape `)` attr-dict `:` functional-type($shape, $y)";
}

//===----------------------------------------------------------------------===//
// Convolution, pooling, indexing, padding, sorting, scans
//===----------------------------------------------------------------------===//

def NN_ConvOp : NN_KernelOp<"conv"> {
  let summary = "N-d grouped convolution, NCHW, with explicit pads [begin..., end...]";
  let description = [{
    ```mlir
    %y = nn.conv(%x, %w, %b) {pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>}
        : (tensor<?x3x32x32xf32>, tensor<8x3x3x3xf32>, tensor<8xf32>) -> tensor<?x8x16x16xf32>
    ```
    The importer resolves ONNX's auto_pad into `pads`.
  }];
  let arguments = (ins AnyTensor:$x, AnyTensor:$w, AnyType:$bias, OptionalAttr<DenseI64ArrayAttr>:$strides,
                       OptionalAttr<DenseI64ArrayAttr>:$dilations, OptionalAttr<DenseI64ArrayAttr>:$pads,
                       DefaultValuedAttr<I64Attr, "1">:$group);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $y)";
}

def NN_PoolOp : NN_KernelOp<"pool"> {
  let summary = "N-d max or average pooling (`kind`), or global pooling when `global` is 1";
  let arguments = (ins AnyTensor:$x, StrAttr:$kind, OptionalAttr<DenseI64ArrayAttr>:$kernel_shape,
                       OptionalAttr<DenseI64ArrayAttr>:$strides, OptionalAttr<DenseI64ArrayAttr>:$dilations,
                       OptionalAttr<DenseI64ArrayAttr>:$pads, DefaultValuedAttr<I64Attr, "0">:$ceil_mode,
                       DefaultValuedAttr<I64Attr, "0">:$count_include_pad, DefaultValuedAttr<I64Attr, "0">:$global);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` $x `)` attr-dict `:` functional-type($x, $y)";
}

def NN_GatherElementsOp : NN_KernelOp<"gather_elements"> {
  let summary = "ONNX GatherElements: out[i][j] = data[index[i][j]][j] along `axis`";
  let arguments = (ins AnyTensor:$data, AnyTensor:$indices, DefaultValuedAttr<I64Attr, "0">:$axis);
  let results = (outs AnyTensor:$result);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $result)";
}

def NN_GatherNdOp : NN_KernelOp<"gather_nd"> {
  let summary = "ONNX GatherND: gather slices by index tuples in the last index dim";
  let arguments = (ins AnyTensor:$data, AnyTensor:$indices, DefaultValuedAttr<I64Attr, "0">:$batch_dims);
  let results = (outs AnyTensor:$result);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $result)";
}

def NN_ScatterNdOp : NN_KernelOp<"scatter_nd"> {
  let summary = "ONNX ScatterND: a copy of data with slices replaced (or combined by `reduction`)";
  let arguments = (ins AnyTensor:$data, AnyTensor:$indices, AnyTensor:$updates,
                       DefaultValuedStrAttr<StrAttr, "none">:$reduction);
  let results = (outs AnyTensor:$result);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $result)";
}

def NN_TileOp : NN_KernelOp<"tile"> {
  let summary = "repeat the input along each dim";
  let arguments = (ins AnyTensor:$x, AnyTensor:$repeats);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $y)";
}

def NN_PadOp : NN_KernelOp<"pad"> {
  let summary = "pad every dim by [begin..., end...] with a constant, reflect, edge or wrap";
  let arguments = (ins AnyTensor:$x, AnyTensor:$pads, AnyType:$value,
                       DefaultValuedStrAttr<StrAttr, "constant">:$mode);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $y)";
}

def NN_CumsumOp : NN_KernelOp<"cumsum"> {
  let summary = "cumulative sum along the axis given by a scalar operand";
  let arguments = (ins AnyTensor:$x, AnyTensor:$axis, DefaultValuedAttr<I64Attr, "0">:$exclusive,
                       DefaultValuedAttr<I64Attr, "0">:$reverse);
  let results = (outs AnyTensor:$y);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, $y)";
}

def NN_TopkOp : NN_Op<"topk", [Pure]> {
  let summary = "the k largest (or smallest) elements along `axis` and their int64 indices";
  let arguments = (ins AnyTensor:$x, AnyTensor:$k, DefaultValuedAttr<I64Attr, "-1">:$axis,
                       DefaultValuedAttr<I64Attr, "1">:$largest, DefaultValuedAttr<I64Attr, "1">:$sorted);
  let results = (outs AnyTensor:$values, AnyTensor:$indices);
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

#endif // QOPT_NN_OPS
