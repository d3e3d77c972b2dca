//===- Passes.td - qopt's passes ---------------------------------------------===//
//
// Every pass of qopt, one file each in passes/, flag `qopt-<name>`, test test/passes/<name>.mlir.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_PASSES
#define QOPT_PASSES

include "mlir/Pass/PassBase.td"

def WidenHalfPass : Pass<"qopt-widen-half", "mlir::func::FuncOp"> {
  let summary = "Read a float16 or bfloat16 model as float32: every 16-bit float tensor widened";
  let description = [{
    The compiler computes in float32 on the CPU (the reference) and chooses each target's precision itself, so a
    model exported in float16 or bfloat16 is compiled as the float32 model whose values it holds. Runs on nn ops
    (after qopt-convert-onnx): every tensor type with a float16 / bfloat16 element (the function's inputs and
    outputs, block arguments, op results; nn ops take target types such as a cast's from their results) becomes
    float32, and 16-bit constants are widened exactly into new float32 constants (the 16-bit blobs released). A
    remark counts the widened constants. Memory: float32 constants take twice the 16-bit bytes; those of 1 MiB or
    more live in unlinked temporary files under $TMPDIR (else /tmp) mapped shared, pages the system can write back
    and drop under memory pressure as it does a float32 model's mapped external data (in memory where no file can
    be made; the remark says which). A float32 model is left unchanged.

    Before:
    ```mlir
    func.func @f(%x: tensor<2x4xf16>) -> tensor<2x3xf16> {
      %w = nn.constant dense_resource<w> : tensor<4x3xf16>
      %y = nn.matmul(%x, %w) : (tensor<2x4xf16>, tensor<4x3xf16>) -> tensor<2x3xf16>
    ```
    After:
    ```mlir
    func.func @f(%x: tensor<2x4xf32>) -> tensor<2x3xf32> {
      %w = nn.constant dense_resource<w.f32> : tensor<4x3xf32>
      %y = nn.matmul(%x, %w) : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
    ```
  }];
  let dependentDialects = ["qopt::nn::NNDialect"];
}

def ConvertOnnxPass : Pass<"qopt-convert-onnx", "mlir::func::FuncOp"> {
  let summary = "Convert generic nn.onnx_node ops to nn ops through the op/opset table";
  let description = [{
    Rewrites every `nn.onnx_node` in program order with the handler registered for its op type and the highest
    since-version not above its opset, infers result types (dynamic dims stay `?`) and folds static shape
    sub-graphs to constants. Finally the function's result types are updated from its return operands.

    Before:
    ```mlir
    %0 = nn.onnx_node "Relu"(%x) {attrs = {}, version = 17 : i64} : (tensor<2x3xf32>) -> !nn.unknown
    ```
    After:
    ```mlir
    %0 = nn.unary "relu"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    ```
    Fails, naming the node, op and opset, on an op or version without a handler, or attributes the handler
    rejects.
  }];
  let dependentDialects = ["qopt::nn::NNDialect"];
}

def RaiseRmsNormPass : Pass<"qopt-raise-rms-norm", "mlir::func::FuncOp"> {
  let summary = "Raise decomposed RMSNorm (Pow/ReduceMean/Add/Sqrt/Reciprocal/Mul) to nn.rms_norm";
  let description = [{
    Matches `x * Reciprocal(Sqrt(ReduceMean(Pow(x, 2), last axis) + eps))` (also `Mul(x, x)` for the square and
    `Div(x, Sqrt(...))`), followed by a multiplication with a constant 1-D scale of the last dim's size, in either
    operand order. A normalization without a scale gets a constant one. The ops left unused are erased.

    Before:
    ```mlir
    %sq = nn.binary "pow"(%x, %two) : (tensor<?x?x64xf32>, tensor<f32>) -> tensor<?x?x64xf32>
    %m = nn.reduce(%sq) {axes = array<i64: -1>, kind = "mean"} : (tensor<?x?x64xf32>) -> tensor<?x?x1xf32>
    %a = nn.binary "add"(%m, %eps) : (tensor<?x?x1xf32>, tensor<f32>) -> tensor<?x?x1xf32>
    %s = nn.unary "sqrt"(%a) : (tensor<?x?x1xf32>) -> tensor<?x?x1xf32>
    %r = nn.unary "reciprocal"(%s) : (tensor<?x?x1xf32>) -> tensor<?x?x1xf32>
    %n = nn.binary "mul"(%x, %r) : (tensor<?x?x64xf32>, tensor<?x?x1xf32>) -> tensor<?x?x64xf32>
    %y = nn.binary "mul"(%w, %n) : (tensor<64xf32>, tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
    ```
    After:
    ```mlir
    %y = nn.rms_norm(%x, %w) {epsilon = 1.0e-05 : f64} : (tensor<?x?x64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
    ```
    Preconditions: canonicalized nn ops (constants folded), a static last dim. Numerics: the kernel accumulates
    the mean of squares in double, so results differ from the decomposed float32 graph in the last bits.
  }];
  let dependentDialects = ["qopt::nn::NNDialect"];
}

def RaiseGeluPass : Pass<"qopt-raise-gelu", "mlir::func::FuncOp"> {
  let summary = "Raise decomposed GELU (erf or tanh form) to nn.gelu";
  let description = [{
    Matches `0.5 * x * (1 + Erf(x / sqrt(2)))` (approximation `erf`) and
    `0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))` (approximation `tanh`, GPT-2's gelu_new), with the
    three factors multiplied in any grouping and order. Constants match within a relative 1e-5 (their float32
    roundings).

    Before:
    ```mlir
    %d = nn.binary "div"(%x, %sqrt2) : (tensor<?x256xf32>, tensor<f32>) -> tensor<?x256xf32>
    %e = nn.unary "erf"(%d) : (tensor<?x256xf32>) -> tensor<?x256xf32>
    %a = nn.binary "add"(%e, %one) : (tensor<?x256xf32>, tensor<f32>) -> tensor<?x256xf32>
    %h = nn.binary "mul"(%x, %half) : (tensor<?x256xf32>, tensor<f32>) -> tensor<?x256xf32>
    %y = nn.binary "mul"(%h, %a) : (tensor<?x256xf32>, tensor<?x256xf32>) -> tensor<?x256xf32>
    ```
    After:
    ```mlir
    %y = nn.gelu erf(%x) : (tensor<?x256xf32>) -> tensor<?x256xf32>
    ```
  }];
  let dependentDialects = ["qopt::nn::NNDialect"];
}

def RaiseGatedMlpPass : Pass<"qopt-raise-gated-mlp", "mlir::func::FuncOp"> {
  let summary = "Raise act(gate) * up (SwiGLU, GeGLU) to nn.gated_act";
  let description = [{
    Matches `Mul(Mul(g, Sigmoid(g)), u)` (SiLU) and `Mul(nn.gelu(g), u)` in either operand order, where the
    activation has no other use and `g`, `u` and the product have one type. Run after qopt-raise-gelu.

    Before:
    ```mlir
    %s = nn.unary "sigmoid"(%g) : (tensor<?x?x172xf32>) -> tensor<?x?x172xf32>
    %a = nn.binary "mul"(%g, %s) : (tensor<?x?x172xf32>, tensor<?x?x172xf32>) -> tensor<?x?x172xf32>
    %y = nn.binary "mul"(%a, %u) : (tensor<?x?x172xf32>, tensor<?x?x172xf32>) -> tensor<?x?x172xf32>
    ```
    After:
    ```mlir
    %y = nn.gated_act silu(%g, %u) : (tensor<?x?x172xf32>, tensor<?x?x172xf32>) -> tensor<?x?x172xf32>
    ```
  }];
  let dependentDialects = ["qopt::nn::NNDialect"];
}

def RaiseAttentionPass : Pass<"qopt-raise-attention", "mlir::func::FuncOp"> {
  let summary = "Raise softmax(Q K^T) V, masks and grouped-query repeats included, to nn.attention";
  let description = [{
    Matches, from each softmax over the last axis: the scores `MatMul(Q, K^T)` with scalar scalings on Q, K^T or
    the product (multiplied into `scale`); K^T as a transpose of the last two dims or torch's sdpa
    reshape/transpose/reshape; an optional mask, `Where(bool, scores, fill)` (`masked_value` = fill) or
    `Add(scores, float mask)`; the sdpa NaN guard `Where(IsNaN(P), 0, P)` (`zero_nan_rows`); and `MatMul(P, V)`.
    K and V behind the grouped-query repeat `Reshape(Expand(Unsqueeze(X, 2)))` are read unrepeated: the op
    groups query heads over kv heads itself.

    Before (stories260K, one layer; the repeat of K and V elided):
    ```mlir
    %kt = nn.transpose(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<?x8x?x8xf32>) -> tensor<?x8x8x?xf32>
    %s = nn.matmul(%q, %kt) : (tensor<?x8x?x8xf32>, tensor<?x8x8x?xf32>) -> tensor<?x8x?x?xf32>
    %c = nn.binary "mul"(%s, %scale) : (tensor<?x8x?x?xf32>, tensor<f32>) -> tensor<?x8x?x?xf32>
    %m = nn.where(%mask, %c, %ninf) : (tensor<1x1x?x?xi1>, tensor<?x8x?x?xf32>, tensor<f32>) -> tensor<?x8x?x?xf32>
    %p = nn.softmax(%m) : (tensor<?x8x?x?xf32>) -> tensor<?x8x?x?xf32>
    %o = nn.matmul(%p, %v) : (tensor<?x8x?x?xf32>, tensor<?x8x?x8xf32>) -> tensor<?x8x?x8xf32>
    ```
    After:
    ```mlir
    %o = nn.attention(%q, %k4, %v4, %mask) {scale = 0.35355339059327379 : f64}
        : (tensor<?x8x?x8xf32>, tensor<?x4x?x8xf32>, tensor<?x4x?x8xf32>, tensor<1x1x?x?xi1>) -> tensor<?x8x?x8xf32>
    ```
    A mask computed from the inputs' shapes only (no input's values) that keeps exactly key j for query i when
    `j <= i + T - S`, checked by evaluating it at two small size assignments (passes/ShapeSampling.h), becomes
    the op's `causal` flag and its computation is erased; a mask that reads an input (attention_mask) stays an
    operand.
  }];
  let dependentDialects = ["qopt::nn::NNDialect"];
}

def RaiseRotaryPass : Pass<"qopt-raise-rotary", "mlir::func::FuncOp"> {
  let summary = "Raise rotary position embeddings (rotate_half with cos/sin tables) to nn.rotary";
  let description = [{
    Matches `x * C + rotate_half(x) * S` on `[B, H, S, D]` tensors, where `rotate_half(x)` is
    `Concat(Neg(x[..., D/2:]), x[..., :D/2])`, `C`/`S` are `Unsqueeze(Cos/Sin(Concat(F, F)), 1)` and the angles
    `F = positions * inv_freq` come from `MatMul(Unsqueeze(Cast(P), 2), inv_freq)` or HF's
    `Transpose(MatMul(inv_freq, Cast(P)), [0, 2, 1])`. The result is `nn.rotary rotate_half(x, P, inv_freq)`:
    one op per rotated tensor, with the angles, cos and sin computed inside (bit-exact with the decomposed float32
    graph). HF's `[B, 1, S]` positions are squeezed to `[B, S]`.

    After (stories260K, one layer's query):
    ```mlir
    %q = nn.rotary rotate_half(%x, %position_ids, %inv_freq) : (tensor<?x8x?x8xf32>, tensor<?x?xi64>, tensor<1x4xf32>) -> tensor<?x8x?x8xf32>
    ```
    The interleaved style is a kernel option; no exporter we meet writes it (llama2.c's interleaved weights are
    permuted to rotate_half by scripts/llama2c_to_onnx.py), so it has no matcher yet.
  }];
  let dependentDialects = ["qopt::nn::NNDialect"];
}

def RefineShapesPass : Pass<"qopt-refine-shapes", "mlir::func::FuncOp"> {
  let summary = "Refine dynamic dims that do not depend on the input sizes, or that a consumer fixes";
  let description = [{
    Op-by-op inference leaves `?` where a dim is computed from run-time shapes it cannot relate: after
    `Reshape(q_proj(x), Concat(Shape(x)[0], Shape(x)[1], [-1], [16]))` the heads dim is `?`. The pass evaluates
    the function's shapes twice through the kernels' shape functions (integer shape arithmetic evaluated on its
    values, up to 64 elements), with two far-apart sizes for each named dynamic input dim; a dim that is `?` in the
    IR but equal in both runs becomes static. Then a matmul with a constant `[K, N]` weight fixes its input's last
    dim to K. Refined types are written into the producing nn ops' results (every nn verifier accepts a static dim
    where its inference says `?`) and into the function's result types; the memory planner checks every static dim
    again at the compiled bounds.

    Before:
    ```mlir
    %r = nn.reshape(%x, %shape) : (tensor<?x?x64xf32>, tensor<4xi64>) -> tensor<?x?x?x16xf32>
    ```
    After:
    ```mlir
    %r = nn.reshape(%x, %shape) : (tensor<?x?x64xf32>, tensor<4xi64>) -> tensor<?x?x4x16xf32>
    ```
    Function arguments keep their declared types.
  }];
  let dependentDialects = ["qopt::nn::NNDialect"];
}

def SelectLayersPass : Pass<"qopt-select-layers", "mlir::func::FuncOp"> {
  let summary = "Mark the linear layers that stay in float, with the reason";
  let description = [{
    Sets `qopt.float_reason` (a sentence for qopt's summary and `--report`) on every linear layer (an nn.matmul
    with a constant 2-D f32 weight, passes/LinearLayers.h) that weight quantization must not touch:
    - the output head: a layer whose result reaches a function result through reshapes, transposes, casts,
      squeezes and constant additions only (the vocabulary projection, whatever its weight is named), unless
      `quantize-lm-head` is set;
    - a layer whose weight or node name matches the `exclude` regex.
    qopt-calibrate, qopt-awq-scale, qopt-gptq and qopt-quantize-rtn skip marked layers.

    ```mlir
    %logits = nn.matmul(%h, %w) {qopt.float_reason = "output head (it produces a model output); --quantize-lm-head quantizes it"}
        : (tensor<?x?x64xf32>, tensor<64x512xf32>) -> tensor<?x?x512xf32>
    ```
  }];
  let options = [
    Option<"exclude", "exclude", "std::string", /*default=*/"\"\"", "Regex of weight or node names kept in float">,
    Option<"quantizeLmHead", "quantize-lm-head", "bool", /*default=*/"false",
           "Quantize the output head too">,
  ];
  let dependentDialects = ["qopt::nn::NNDialect"];
}

def CalibratePass : Pass<"qopt-calibrate", "mlir::ModuleOp"> {
  let summary = "Run the float model on calibration data and record statistics of every linear layer's input";
  let description = [{
    Compiles a copy of the model with each distinct linear-layer input (see passes/LinearLayers.h) added as an
    extra output and the logits dropped, runs it through the runtime (qrt, CPU backend) on `samples` windows of
    `seq-len` tokens from `calib`, and attaches to each layer's `nn.matmul` a `qopt.calib` dictionary (one shared
    dictionary for layers that read the same input, such as q/k/v):
    - `tokens`: rows seen; `mean_abs`: per-input-channel mean |x| (f32 [K], for AWQ); `max_abs`: per-input-channel
      max |x| (f32 [K], for SmoothQuant);
    - `min`, `max`: per-tensor extremes; `abs_p99`, `abs_p999`, `abs_p9999`: percentiles of |x| (from a
      histogram with 64 bins per octave: at most 1/64 of the octave above the exact value);
    - `xtx` (with `xtx`): X^T X / rows (f32 [K, K], GPTQ's Hessian), a dense_resource;
    - `samples`: up to `max-rows` input rows, spread evenly over the windows (f32 [S, K], for AWQ's search).

    With `kv`, also the new keys and values of every KV cache (an `nn.concat` of a `[B, Hkv, P, D]` graph input
    with new entries, read by attention): each such concat gets `qopt.calib_kv`, the max |x| of the new entries per
    kv head (f32 [Hkv]), and `qopt.calib_kv_range`, each channel's lowest and highest value (f32 [2, Hkv, D]: the
    minima, then the maxima), from which qopt-kv-state takes an FP8 cache's per-head scales and a key cache's
    per-channel offsets.

    The calibration model.bin holds only the program: its weights are the module's own constants, handed to the
    runtime as external weights (qrt_model_load_with_options), so calibrating adds no copy of the model.
    Memory: max-rows x K floats per distinct input, and with `xtx` K x K floats more (822 MB for a 14336-wide
    input, about 32 GB over Llama-3-8B's inputs; the compiler never asks for it: qopt-gptq measures its Hessians
    itself, a budget at a time).

    `calib` is text (tokenized whole with `tokenizer`, BOS once, cut into windows of `seq-len`) or a .npy of int32
    ids (1-D: a stream cut the same way; 2-D: one window per row, negative ids padding). Windows are chosen by a
    seeded shuffle, so results are deterministic for a given seed. The model must be a decoder LM in the Hugging
    Face input convention (input_ids, optional position_ids / attention_mask / past_key_values.*, logits).

    After:
    ```mlir
    %y = nn.matmul(%x, %w) {qopt.calib = {mean_abs = dense<...> : tensor<64xf32>, samples = dense_resource<...>,
                                          tokens = 4096 : i64}} ...
    ```
  }];
  let options = [
    Option<"calib", "calib", "std::string", "\"\"", "Calibration text or .npy of token ids">,
    Option<"tokenizer", "tokenizer", "std::string", "\"\"", "llama2.c tokenizer.bin for text calibration data">,
    Option<"samples", "samples", "int64_t", "128", "Number of windows">,
    Option<"seqLen", "seq-len", "int64_t", "0", "Tokens per window; 0 = min(512, the model's max sequence)">,
    Option<"seed", "seed", "uint64_t", "0", "Seed of the window shuffle">,
    Option<"maxRows", "max-rows", "int64_t", "512", "Input rows kept per layer for activation-aware searches">,
    Option<"xtx", "xtx", "bool", "false", "Accumulate X^T X per input (GPTQ's Hessian, K x K floats each)">,
    Option<"progress", "progress", "bool", "true", "Show a progress line on stderr when it is a terminal">,
    Option<"kv", "kv", "bool", "false",
           "Also record each KV cache's max |x| per kv head and range per channel (qopt.calib_kv, calib_kv_range)">,
  ];
}

def AwqScalePass : Pass<"qopt-awq-scale", "mlir::func::FuncOp"> {
  let summary = "Activation-aware weight scaling (AWQ) with the scales folded into the previous op, then clipping";
  let description = [{
    Groups the calibrated linear layers by their shared input (q/k/v, gate/up, down). For each group, searches
    alpha on a grid over [0, 1) for scales s = mean|x|^alpha that minimize the group's output error on the
    calibration rows after round-to-nearest quantization, multiplies s into the weights and folds 1/s into the
    op producing the input: a RMSNorm/LayerNorm weight (x = gamma * norm, decomposed or nn.rms_norm /
    nn.layer_norm, whose bias is divided too; through reshapes that keep the last dim), the output columns of the
    previous linear layer (x = act(g) * (h W_up), decomposed or nn.gated_act), or, for o_proj, v_proj's output
    columns and bias when the graph proves that o's input channels are v's columns one to one (head split/merge
    reshapes, transposes, P x V or nn.attention, KV-cache concatenation; not grouped-query attention, whose value
    heads are repeated). After an nn.gelu or nn.gated_act with nothing to fold into (GPT-2's mlp.c_proj, Phi-3's
    fused gate/up), 1/s becomes a multiplication of the activation's output. Then (with `clip`) searches per
    output channel the clipping ratio of each group's weight magnitude that minimizes the channel's output
    error. Layers whose input has other users (ops reading only its shape do not count) or another producer
    keep their weights (a remark says so). Requires `qopt.calib` (qopt-calibrate); leaves
    float weights for qopt-quantize-rtn with the same bits and group size.

    Before:
    ```mlir
    %g = nn.constant dense<...> {name = "post_attention_layernorm.weight"} : tensor<64xf32>
    %x = nn.binary "mul"(%g, %n) : (tensor<64xf32>, tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
    %u = nn.matmul(%x, %wu) {qopt.calib = {...}} : ...
    ```
    After: `%g` holds gamma / s, `%wu` holds diag(s) W_up (new dense_resource blobs named `*.awq`).
  }];
  let options = [
    Option<"bits", "bits", "int64_t", "4", "Weight bits the layers will be quantized to">,
    Option<"groupSize", "group-size", "int64_t", "128", "Quantization group size (0 = per output channel)">,
    Option<"grid", "grid", "int64_t", "20", "Number of alpha values tried in [0, 1)">,
    Option<"symmetric", "symmetric", "bool", "false", "The weights will be symmetric int4 (int8 always is)">,
    Option<"clip", "clip", "bool", "true", "Run the weight clipping search after scaling">,
    Option<"exclude", "exclude", "std::string", "\"\"", "Regex of layers that stay in float (left unscaled)">,
  ];
}

def GptqPass : Pass<"qopt-gptq", "mlir::ModuleOp"> {
  let summary = "GPTQ: Hessian-based error-compensating quantization of calibrated linear layers to qnt.linear";
  let description = [{
    For each linear layer, quantizes its weight input by input, spreading each input's rounding error over the
    remaining inputs through the upper Cholesky factor of the inverse of the dampened Hessian H = X^T X / rows,
    with lazy batch updates every `block-size` inputs; `act-order` quantizes inputs in decreasing order of diag(H)
    with group parameters fixed from the original weights. Emits the same packed format as qopt-quantize-rtn
    (lib/Numerics/.../QuantFormat.h), FP8 codes included (`format` e4m3 / e5m2, bits 8: each input rounded to the
    nearest FP8 value of its group's scale, the error compensated as for integers). The float64 algorithm is
    lib/Numerics/Gptq.cpp; test/passes/Inputs/gptq_ref.py is an independent numpy version it is checked against.
    A layer with a mixed-precision choice (qopt-assign-precision's `qopt.precision`) takes that format instead of
    `bits` / `group-size`: int4 with the chosen group (asymmetric unless `symmetric`), or int8 symmetric per
    channel. After qopt-awq-scale (qopt `--quantize=awq4 --gptq`) it rounds the scaled and clipped weights, its
    Hessians measured on the scaled model's inputs, and names the layers' method `awq+gptq`.

    H comes from the layer's `qopt.calib` statistics when they hold `xtx` (qopt-calibrate with `xtx`). Otherwise
    the pass measures it, as qopt-calibrate would, on `samples` windows of `seq-len` tokens of `calib` (same
    options, same windows for the same seed): it runs the float model through the runtime with as many distinct
    layer inputs as extra outputs as their K x K float sums fit `hessian-memory` MB (at least one), accumulates
    X^T X, quantizes those inputs' layers, frees the sums and runs again for the next inputs. Every run is of the
    model as it was before the pass, so the result does not depend on the budget; the budget sets how many runs
    over the calibration data it takes (Llama-3-8B's inputs need about 32 GB of sums: 8 runs at 4096 MB).

    Before: `%y = nn.matmul(%x, %w) {qopt.calib = {...}}`. After: `%y = qnt.linear(%x, %q, %s, %z)`.
  }];
  let options = [
    Option<"bits", "bits", "int64_t", "4", "Weight bits: 3, 4 or 8">,
    Option<"groupSize", "group-size", "int64_t", "128", "Inputs per scale group; 0 = per output channel">,
    Option<"symmetric", "symmetric", "bool", "false", "Symmetric int4 (int8 is always symmetric)">,
    Option<"damp", "damp", "double", "0.01", "Dampening added to diag(H), as a fraction of its mean">,
    Option<"blockSize", "block-size", "int64_t", "128", "Inputs per lazy batch update">,
    Option<"actOrder", "act-order", "bool", "false", "Quantize inputs in decreasing order of diag(H)">,
    Option<"format", "format", "std::string", "\"int\"", "Codes: int (bits 3, 4, 8) or FP8 e4m3 / e5m2 (bits 8)">,
    Option<"exclude", "exclude", "std::string", "\"\"", "Regex of weight or node names to keep in float">,
    Option<"calib", "calib", "std::string", "\"\"",
           "Calibration text or .npy of token ids, to measure Hessians the statistics lack">,
    Option<"tokenizer", "tokenizer", "std::string", "\"\"", "llama2.c tokenizer.bin for text calibration data">,
    Option<"samples", "samples", "int64_t", "128", "Number of windows">,
    Option<"seqLen", "seq-len", "int64_t", "0", "Tokens per window; 0 = min(512, the model's max sequence)">,
    Option<"seed", "seed", "uint64_t", "0", "Seed of the window shuffle">,
    Option<"hessianMemory", "hessian-memory", "double", "4096",
           "MB of X^T X sums measured in one run over the calibration data">,
    Option<"progress", "progress", "bool", "true", "Show a progress line on stderr when it is a terminal">,
  ];
  let dependentDialects = ["qopt::qnt::QntDialect"];
}

def QuantizeRtnPass : Pass<"qopt-quantize-rtn", "mlir::func::FuncOp"> {
  let summary = "Round-to-nearest weight quantization of linear layers to qnt.linear";
  let description = [{
    Every `nn.matmul` whose right operand is a constant 2-D f32 weight [K, N] (a linear layer as exporters emit
    it) becomes a `qnt.linear` with the weight packed in the layout of QuantFormat.h: int4 group-wise
    (asymmetric unless `symmetric`) or int8 symmetric, or with `format` = e4m3 / e5m2 FP8 codes (bits 8, each
    weight rounded to the nearest value of the format after dividing by its group's scale, max |w| / 448 or
    / 57344; per channel by default, `group-size` > 0 for groups). Layers whose weight or node name matches `exclude` stay in
    float, and so do tiny constant matmuls (K < 16 or fewer than 1024 weights, e.g. a rotary frequency table).
    A `group-size` that does not divide a layer's K falls back to per-channel for that layer, with a
    warning naming it; 0 means per-channel everywhere; `per-tensor` gives each weight one scale (and zero
    point), with scales [1, 1]. Each qnt.linear records `qopt.quant = {method, weight_error, output_error}`
    (relative errors; output_error on the layer's calibration rows when it has them).

    Before:
    ```mlir
    %w = nn.constant dense_resource<w> {name = "mlp.up.weight"} : tensor<64x172xf32>
    %y = nn.matmul(%x, %w) : (tensor<?x64xf32>, tensor<64x172xf32>) -> tensor<?x172xf32>
    ```
    After (bits=4, group-size=32):
    ```mlir
    %y = qnt.linear(%x, %q, %s, %z) {bits = 4 : i64, group_size = 32 : i64,
                                     qopt.quant = {method = "rtn", weight_error = 0.0812 : f32}}
        : (tensor<?x64xf32>, tensor<172x32xui8>, tensor<172x2xf32>, tensor<172x2xui8>) -> tensor<?x172xf32>
    ```
  }];
  let options = [
    Option<"bits", "bits", "int64_t", "4", "Weight bits: 4 or 8">,
    Option<"groupSize", "group-size", "int64_t", "128", "Inputs per scale group; 0 = per output channel">,
    Option<"symmetric", "symmetric", "bool", "false", "Symmetric int4 (int8 is always symmetric)">,
    Option<"format", "format", "std::string", "\"int\"",
           "Codes: int (bits 3, 4, 8) or FP8 e4m3 / e5m2 (bits 8, symmetric, no per-tensor)">,
    Option<"perTensor", "per-tensor", "bool", "false", "One scale (and zero point) per weight; ignores group-size">,
    Option<"exclude", "exclude", "std::string", "\"\"", "Regex of weight or node names to keep in float">,
  ];
  let dependentDialects = ["qopt::qnt::QntDialect"];
}

def InsertFp8Pass : Pass<"qopt-insert-fp8", "mlir::func::FuncOp"> {
  let summary = "FP8 activations (W8A8) for the linear layers with FP8 weights";
  let description = [{
    Every `qnt.linear` with FP8 weight codes (qopt-quantize-rtn's format e4m3 or e5m2) also quantizes its input
    to that format: `mode=static` gives it `act_fp8 = 1` and an `act_scale` operand, a float32 [1] constant named
    after its weight, = the calibrated max |x| of its input (the `act_absmax` that quantization records from
    qopt-calibrate's range) / the format's largest value (448, 57344); a layer without a calibrated range is an
    error. (An operand rather than an attribute: the kernels read it, so every layer of a shape shares them.) `mode=dynamic` gives `act_fp8 = 2`: a scale per row
    of x, computed at run time. Integer-code layers are left alone (weight-only). Softmax, norms, the residual
    stream and the logits are not linear layers and stay in float.

    Before (mode=static):
    ```mlir
    %y = qnt.linear(%x, %q, %s, %n) {bits = 8 : i64, group_size = 64 : i64,
                                     qopt.quant = {act_absmax = 3.5 : f32, method = "rtn", weight_error = 0.02 : f32}}
        : (tensor<?x64xf32>, tensor<32x64xf8E4M3FN>, tensor<32x1xf32>, none) -> tensor<?x32xf32>
    ```
    After:
    ```mlir
    %a = nn.constant dense<7.812500e-03> : tensor<1xf32> {name = "layers.0.wq.act_scale"}
    %y = qnt.linear(%x, %q, %s, %n, %a) {act_fp8 = 1 : i64, bits = 8 : i64, ...}
        : (tensor<?x64xf32>, tensor<32x64xf8E4M3FN>, tensor<32x1xf32>, none, tensor<1xf32>) -> tensor<?x32xf32>
    ```
  }];
  let options = [
    Option<"mode", "mode", "std::string", "\"static\"", "static (calibrated per-tensor scales) or dynamic (per row)">,
  ];
  let dependentDialects = ["qopt::qnt::QntDialect"];
}

def AssignPrecisionPass : Pass<"qopt-assign-precision", "mlir::ModuleOp"> {
  let summary = "Choose int4, int8 or float per linear layer group under an average bits budget, by measured KL";
  let description = [{
    Mixed precision. The linear layers are grouped by the input they read (q/k/v, gate/up: one launch, one
    format). Each group's candidates are int4 with 32, 64 and `group-size` inputs per scale group (per channel
    where a size does not divide K; quantized later by AWQ), int8 (per output channel) and f16 (kept in float; 16
    bits, what a GPU target stores), costing 4 + 24 / group (float16 scales, u8 zero points; 4 + 40 / group
    where a layer's scales leave float16's range), 8 + 32 / K and 16 bits per weight (scales and zero points
    included).

    Sensitivity is measured through the runtime: the float model runs on `windows` windows of `seq-len` tokens
    from `calib` and its next-token log-probabilities are kept; then for each group and each quantized candidate
    only that group's weights are replaced by the values they would run with (nothing is recompiled) and the mean KL(p_float || p_candidate) over all
    positions is the candidate's cost. Those values: int8 rounded to nearest; int4 as qopt-awq-scale and
    qopt-quantize-rtn will make them (`int4-method=awq`, the default: AWQ's scales s for the group, with `awq-grid`
    alphas, and each layer's clipping, searched on qopt-calibrate's input rows, so diag(1/s) Q(clip(diag(s) W));
    the scales' fold into x's producer is what keeps x W in float), or rounded to nearest (`int4-method=rtn`:
    cheaper, and it overstates int4's cost most where AWQ helps most); `int4-method=gptq` measures int4 and int8
    as qopt-gptq will quantize them after this pass (`qopt --quantize=mixed` unless `--gptq=false`), with the
    Hessian of the calibrated rows, X^T X / rows. `sensitivity=scaled` runs only the quantized candidate of fewest bits
    per group through the model and gives each other candidate that KL times its squared output error on the calibrated
    rows, ||X (W - W_c)||^2 over the group's layers, relative to the measured one's (a KL divergence follows the
    output's change to second order): one model run per group instead of one per candidate (stories15M's pass 52.7 ->
    21.9 s on 2 cores, the estimates within 8-22% of the measured KLs at the median). The choice minimizes the total KL
    with the average bits per weight over the groups at most `avg-bits` (a multiple-choice knapsack by dynamic
    programming over the budget in 1/20000 steps, then the exact bits of the best totals decide). A budget below
    all-int4 is an error.

    Every layer gets `qopt.precision = {budget, candidates = [{bits, format, group, kl, measured}, ...], choice,
    group}` (`measured`: the KL came from the model, not scaled); a
    float choice
    also gets the float reason of qopt-select-layers. qopt-awq-scale scales only int4 groups and
    qopt-quantize-rtn quantizes int8 choices per channel; `--report` lists each layer's candidates, sensitivities
    and choice. Memory: positions x vocabulary floats, and one group's float weights at a time (each group is
    measured by a runtime copy that reads that group's weights from the pass's buffers, the others in place).

    After (avg-bits=6):
    ```mlir
    %y = nn.matmul(%x, %w) {qopt.precision = {budget = 6.0 : f32, candidates = [{bits = 4.75 : f32,
        format = "int4", group = 32 : i64, kl = 0.012 : f32}, ..., {bits = 8.125 : f32, format = "int8",
        group = 256 : i64, kl = 1.0e-4 : f32}, ... ], choice = "int8", group = 256 : i64}} ...
    ```
  }];
  let options = [
    Option<"avgBits", "avg-bits", "double", "0.0", "Average bits per weight over the linear layers (e.g. 4.5)">,
    Option<"groupSize", "group-size", "int64_t", "128", "Group size of the int4 candidate (0 = per channel)">,
    Option<"calib", "calib", "std::string", "\"\"", "Calibration text (needs tokenizer) or .npy of int32 ids">,
    Option<"tokenizer", "tokenizer", "std::string", "\"\"", "llama2.c tokenizer.bin for text calibration">,
    Option<"windows", "windows", "int64_t", "8", "Calibration windows the sensitivities are measured on">,
    Option<"seqLen", "seq-len", "int64_t", "128", "Tokens per window">,
    Option<"seed", "seed", "uint64_t", "0", "Seed of the window choice">,
    Option<"exclude", "exclude", "std::string", "\"\"", "Regex of layers that stay in float">,
    Option<"int4Method", "int4-method", "std::string", "\"awq\"",
           "How candidates are quantized when measured: awq (int4 as AWQ will: scales and clipping), gptq (int4 "
           "and int8 by GPTQ, for qopt-gptq after it; Hessians of the calibrated rows), awq-gptq (int4 by AWQ's "
           "scales and clipping then GPTQ, int8 by GPTQ: qopt-awq-scale then qopt-gptq) or rtn (round to nearest: "
           "cheaper); all but rtn need qopt-calibrate's rows">,
    Option<"symmetric", "symmetric", "bool", "false", "Symmetric int4 candidates (4 + 16 / group bits)">,
    Option<"awqGrid", "awq-grid", "int64_t", "20", "AWQ's alpha grid when int4-method=awq (qopt-awq-scale's grid)">,
    Option<"sensitivity", "sensitivity", "std::string", "\"kl\"",
           "kl: every candidate's KL through the model; scaled: the fewest-bits candidate's, the others' by their "
           "output error on the calibrated rows">,
    Option<"actOrder", "act-order", "bool", "false", "GPTQ's act-order when int4-method=gptq (qopt-gptq's act-order)">,
  ];
}

def SmoothQuantPass : Pass<"qopt-smoothquant", "mlir::func::FuncOp"> {
  let summary = "Migrate activation outliers into the weights before W8A8 quantization (SmoothQuant)";
  let description = [{
    For each group of calibrated linear layers that read one input x (see qopt-awq-scale), per-input-channel
    scales s_k = max|X_k|^alpha / max|W_k|^(1 - alpha), where max|X_k| is qopt-calibrate's `max_abs` and max|W_k|
    the largest magnitude in row k of the group's weights (a channel with either at 0 keeps s = 1; s is clamped
    to [1e-5, 1e5]). The weights' rows are multiplied by s and x is divided by s where it is produced, so the
    float model computes the same function: in the RMSNorm or LayerNorm weight (and bias), in the output columns
    of the previous linear layer (x = act(g) * (h W_up), or o_proj's input traced to v_proj), or, after an
    activation without parameters, by a new multiplication. A group whose input has other readers, or no such
    producer, is left alone with a remark. The layers' `qopt.calib` is rewritten for x / s (`max_abs`,
    `mean_abs`, `min`, `max`, the `samples`' columns and `xtx`) and gains `smooth_scale`; the layers get
    `qopt.smooth`, and quantization reports their method as smoothquant.

    Before:
    ```mlir
    %n = nn.rms_norm(%h, %g) ...
    %y = nn.matmul(%n, %w) {qopt.calib = {max_abs = dense<[8.0, 0.5]> : tensor<2xf32>, ...}}
    ```
    After (alpha = 0.5, max|W| = 1 per row): %w's rows times s = [2.83, 0.71], %g divided by s.
  }];
  let options = [
    Option<"alpha", "alpha", "double", "0.5", "Migration strength in [0, 1] (0: no change of x's ranges)">,
    Option<"exclude", "exclude", "std::string", "\"\"", "Regex of layers that stay in float (left unscaled)">,
  ];
  let dependentDialects = ["qopt::nn::NNDialect"];
}

def InsertInt8Pass : Pass<"qopt-insert-int8", "mlir::func::FuncOp"> {
  let summary = "INT8 activations (W8A8) for the linear layers with int8 weights";
  let description = [{
    Every `qnt.linear` with int8 weight codes (qopt-quantize-rtn with bits=8) also quantizes its input to int8:
    `mode=dynamic` gives it `act_int8 = 2`, a scale per row of x computed at run time (max |x| of the row / 127,
    SmoothQuant's per-token activations); `mode=static` gives it `act_int8 = 1` and an `act_scale` operand (a
    float32 [1] constant, as qopt-insert-fp8's) = the calibrated max |x| of its input (the `act_absmax` quantization records from qopt-calibrate's range) / 127, and a layer
    without a calibrated range is an error. x / scale is rounded to the nearest integer (ties to even) and
    clamped to [-127, 127]. Other formats are left alone. Run qopt-smoothquant before quantization so that the
    activations' outlier channels move into the weights first.

    Before (mode=dynamic):
    ```mlir
    %y = qnt.linear(%x, %q, %s, %n) {bits = 8 : i64, group_size = 64 : i64}
        : (tensor<?x64xf32>, tensor<32x64xi8>, tensor<32x1xf32>, none) -> tensor<?x32xf32>
    ```
    After:
    ```mlir
    %y = qnt.linear(%x, %q, %s, %n) {act_int8 = 2 : i64, bits = 8 : i64, group_size = 64 : i64} ...
    ```
  }];
  let options = [
    Option<"mode", "mode", "std::string", "\"dynamic\"", "dynamic (a scale per row) or static (calibrated per tensor)">,
  ];
  let dependentDialects = ["qopt::qnt::QntDialect"];
}

def LowerToKernPass : Pass<"qopt-lower-to-kern", "mlir::func::FuncOp"> {
  let summary = "Lower nn ops to kern.launch ops of kernel families";
  let description = [{
    Each nn kernel op becomes a `kern.launch` of the kernel with its name and attributes (cast and
    constant_of_shape gain their target dtype code), constants become `kern.weight`, absent operands
    `kern.absent`. A `qnt.linear` becomes `matmul_q(x, W, S, Z)` with its format attributes; with a static
    activation scale (W8A8), that scale is operand 6, after absent operands 4 and 5 (the norm scale and residual
    that qopt-fuse-norm-product may give it). Requires every `nn.onnx_node` converted.

    Before:
    ```mlir
    %1 = nn.binary "add"(%0, %w) : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    ```
    After:
    ```mlir
    %1 = kern.launch "binary"(%0, %w) {attrs = {fn = "add"}} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    ```
  }];
  let dependentDialects = ["qopt::kern::KernDialect"];
}

def FuseLinearsPass : Pass<"qopt-fuse-linears", "mlir::func::FuncOp"> {
  let summary = "Run linear layers that share their input (q/k/v, gate/up) as one launch";
  let description = [{
    Groups the `matmul` launches with a constant 2-D f32 weight, and the `matmul_q` launches of one format (bits,
    group size, symmetry, 8-bit activations and their static scale's value; not per-tensor; no fused norm or
    residual), that read the same input, and replaces each group of two or more with
    one launch whose weights are stacked along the output channels: `linear_split(x, [W_1 | W_2 | ...])` (float
    weights side by side) or `matmul_q_split(x, W, S, Z)` (packed rows, scales and zero points stacked). `splits`
    gives each result's channels; every result is computed as its layer alone would be. Float layers whose only
    reader adds a 1-D bias (Qwen2's q/k/v) take their biases along: `linear_split(x, W, [b_1 | b_2 | ...])` adds
    them after the product, and the adds go. A linear the model already stacked (Phi-3's qkv_proj, GPT-2's c_attn)
    whose output only slices read, cutting its last dim into consecutive pieces, becomes the split launch over its
    own weight, one result per piece; the slices may read it through one reshape between static shapes (the
    pieces are then reshaped, as views). Runs after qopt-lower-to-kern, before planning (and again after
    qopt-decode-entry, whose static shapes let more slices fuse); the old weights are released once unused.

    Before:
    ```mlir
    %q = kern.launch "matmul_q"(%x, %wq, %sq, %zq) {bits = 4 : i64, group_size = 32 : i64, symmetric = 0 : i64} : ...
    %k = kern.launch "matmul_q"(%x, %wk, %sk, %zk) {bits = 4 : i64, group_size = 32 : i64, symmetric = 0 : i64} : ...
    ```
    After:
    ```mlir
    %q, %k = kern.launch "matmul_q_split"(%x, %wqk, %sqk, %zqk) {bits = 4 : i64, group_size = 32 : i64,
        num_outputs = 2 : i64, splits = array<i64: 64, 32>, symmetric = 0 : i64} : ...
    ```
  }];
  let dependentDialects = ["qopt::kern::KernDialect"];
}

def KvStatePass : Pass<"qopt-kv-state", "mlir::func::FuncOp"> {
  let summary = "Move a decoder's KV cache from graph inputs and outputs into session state";
  let description = [{
    Decoder exports carry their cache through the graph: each `past` input `[B, Hkv, P, D]` is concatenated with
    the new keys (or values) along the sequence axis, and the result is read by attention and returned as a
    `present` output. The host then copies every cache out and back in per token, and the cache's size is a
    run-time shape. This pass rewrites the pattern into state the runtime session owns:

    - each `past` input becomes an `nn.state` of the cache's full capacity `[Bmax, Hkv, C, D]`, C the bound of the
      past dim (`max-dims`: by default the model's context bound), Bmax the batch bound;
    - `concat(past, new)` becomes `nn.kv_append(state, new, length)`, which writes the new entries at the cached
      length in place;
    - attention reads the appended caches with the length as its `cache_length` operand;
    - one `nn.state` length (`kv.length`, int64) is advanced by `nn.kv_advance` before the return;
    - the `present` outputs and `past` inputs are removed.

    It applies when every input read this way fits the pattern: the past input's only reader is the concat, whose
    readers are attention (mask-free, as k or v) and the return; all caches share one named past dim that no other
    input has. Otherwise the graph is left unchanged with a note saying why. Graphs without such inputs are not
    touched. Runs on nn after quantization, before qopt-lower-to-kern.

    Before:
    ```mlir
    %k = nn.concat(%past_k, %new_k) {axis = 2 : i64} : (tensor<?x4x?x8xf32>, tensor<?x4x?x8xf32>) -> tensor<?x4x?x8xf32>
    %o = nn.attention(%q, %k, %v, %none) {causal = 1 : i64} : ...
    return %logits, %k, %v : ...
    ```
    After:
    ```mlir
    %len = nn.state "kv.length" : tensor<1xi64>
    %ks = nn.state "past_key_values.0.key" : tensor<1x4x512x8xf32>
    %k = nn.kv_append(%ks, %new_k, %len) : ...
    %o = nn.attention(%q, %k, %v, %none, %len) {causal = 1 : i64} : ...
    %len1 = nn.kv_advance(%len, %new_k) : ...
    return %logits : ...
    ```
  }];
  let options = [
    ListOption<"maxDims", "max-dims", "std::string", "Bounds of dynamic dims as NAME=N (the cache capacity is the past dim's)">,
    Option<"dtype", "dtype", "std::string", "\"f32\"",
           "Element type of the cache state: f32 (the graph's), or f16 (float32 keys and values rounded to nearest "
           "even, saturated to +-65504, as nn.kv_append stores them; attention reads them back as float32), or bf16 "
           "(rounded to nearest even, float32's range): half the state's bytes; fp8 (E4M3FN) or fp8_e5m2: a "
           "quarter, each kv head's entries stored as codes of x / scale, scale = the head's calibrated max |x| "
           "(qopt-calibrate kv=true's qopt.calib_kv on the concat) / the format's largest value: a float32 "
           "constant per cache (`<cache>.scales`), an operand of its nn.kv_append and of the attention that reads "
           "it">,
    Option<"centerKeys", "center-keys", "bool", "true",
           "FP8 key caches with calibrated channel ranges (qopt.calib_kv_range) store x - offset, offset the middle "
           "of each channel's range (`<cache>.offsets`, float32 [Hkv, D], nn.kv_append's operand), under scales from "
           "the centered range: "
           "every score of a query then moves by q . offset, which softmax cancels">,
  ];
}

def FuseAddNormPass : Pass<"qopt-fuse-add-norm", "mlir::func::FuncOp"> {
  let summary = "Run a residual add and the norm that reads it as one launch";
  let description = [{
    A `binary` add whose result an `rms_norm` normalizes becomes one `add_rms_norm` launch with two results, the
    sum (for the other readers of the residual stream) and the normalized rows, computed by the two kernels' own
    code (the same results bit for bit, broadcasting as the add does); a `layer_norm` (scale, optional bias)
    likewise becomes `add_layer_norm`. Runs after qopt-lower-to-kern, before planning.

    Before:
    ```mlir
    %s = kern.launch "binary"(%a, %b) {attrs = {fn = "add"}} : ...
    %n = kern.launch "rms_norm"(%s, %w) {attrs = {epsilon = 1.0E-5 : f64}} : ...
    ```
    After:
    ```mlir
    %s, %n = kern.launch "add_rms_norm"(%a, %b, %w) {attrs = {epsilon = 1.0E-5 : f64}} : ...
    ```
  }];
}

def FuseRotaryPass : Pass<"qopt-fuse-rotary", "mlir::func::FuncOp"> {
  let summary = "Rotate keys as kv_append stores them and a decode step's queries as attention loads them";
  let description = [{
    A `rotary` launch whose only reader is a `kv_append` (of rank-4 entries along the sequence axis 2) becomes one
    `kv_append_rotary` launch with the rotary's positions and inv_freq as operands 3 and 4 and its `style`; one whose
    only reader is the queries of an `attention` of one static query row per head over the KV state (a cache
    length, no mask: a decode step) becomes operands 5 and 6 of that attention, with `rotary_style` (launches that
    read only the rotated row's shape, such as the cache length's advance, read the unrotated row's). Their
    reference kernels run the rotary family's own code, so results are unchanged bit for bit. A prompt's queries
    keep their rotary launch (the tensor-core attention holds the pairs a rotation mixes in different lanes). Runs
    after qopt-decode-entry, before planning.

    Before:
    ```mlir
    %kr = kern.launch "rotary"(%k, %pos, %f) {attrs = {style = 0 : i32}} : ...
    %c1 = kern.launch "kv_append"(%c, %kr, %len) {attrs = {axis = 2 : i64}} : ...
    ```
    After:
    ```mlir
    %c1 = kern.launch "kv_append_rotary"(%c, %k, %len, %pos, %f) {attrs = {axis = 2 : i64, style = 0 : i64}} : ...
    ```
  }];
}

def FuseGatedProductPass : Pass<"qopt-fuse-gated-product", "mlir::func::FuncOp"> {
  let summary = "Apply a gated MLP's activation in the epilogue of its stacked gate/up product (decode)";
  let description = [{
    A `matmul_q_split` of two equal outputs that only a `gated_act` reads (gate first, as qopt-fuse-linears stacks
    a gated MLP) becomes one `matmul_q_gated` launch computing act(x W_gate^T) * (x W_up^T), when x has at most 16
    static rows (a decode step, where the matrix-vector kernels hold a gate channel and its up channel in one
    thread). A prompt's products keep the activation apart (they run as library GEMMs). The reference kernel runs
    the two kernels' own code: results are unchanged bit for bit. Runs after qopt-decode-entry and
    qopt-half-weights (float layers are `matmul_q` with 16-bit weights by then on a CUDA target), before planning.

    Before:
    ```mlir
    %g, %u = kern.launch "matmul_q_split"(%x, %w, %s, %z) {attrs = {bits = 4 : i64, splits = array<i64: 512, 512>}}
    %h = kern.launch "gated_act"(%g, %u) {attrs = {activation = 0 : i32}} : ...
    ```
    After:
    ```mlir
    %h = kern.launch "matmul_q_gated"(%x, %w, %s, %z) {attrs = {activation = 0 : i32, bits = 4 : i64}} : ...
    ```
  }];
}

def FuseNormProductPass : Pass<"qopt-fuse-norm-product", "mlir::func::FuncOp"> {
  let summary = "Move a decode step's residual adds and rms_norms into the products around them";
  let description = [{
    For products (`matmul_q`, `matmul_q_split`, `matmul_q_gated`) of x with at most 16 static rows (a decode
    step: the matrix-vector kernels). First, an `add_rms_norm(r, o, g)` whose operand o is a `matmul_q`'s only
    use, and whose norm the second step will take, becomes that product with r as operand 5 (its result is
    r + x W^T, the residual stream's sum) followed by an `rms_norm` of it. Then an `rms_norm(x, g)` (a scale per
    channel) whose every reader is a product of one row, of quantized codes or of float16 weights in at most 32768 rows,
    reading it as x, is removed: each reader takes the unnormalized x and the norm's scale as operand 4 with
    `norm_epsilon`, and its kernel takes the sum of squares as it loads x (measured on the H200 against ~5.6 us for the
    launch it replaces: +2.7 us on a Llama-3-8B int4 gate/up product, +2.2 us on the float16 one, +4.8 us on float16
    q/k/v; a 128256-row float16 lm_head, with 4.5 times the gate/up's blocks each reading x and the scale, keeps its
    norm launch). A Llama decode layer loses both of its norm launches. The reference kernels run the rms_norm kernel's
    code and the add's formula, so results are unchanged bit for bit. Operands the product lacks before 4 and 5 are
    `kern.absent`. Runs after qopt-fuse-gated-product, before planning.

    Before:
    ```mlir
    %o = kern.launch "matmul_q"(%a, %w, %s, %z) {attrs = {bits = 4 : i64}} : ...
    %h, %n = kern.launch "add_rms_norm"(%r, %o, %g) {attrs = {epsilon = 1.0E-5 : f64}} : ...
    %y = kern.launch "matmul_q_gated"(%n, %v, %t, %u) {attrs = {activation = 0 : i64, bits = 4 : i64}} : ...
    ```
    After:
    ```mlir
    %none = kern.absent : none
    %h = kern.launch "matmul_q"(%a, %w, %s, %z, %none, %r) {attrs = {bits = 4 : i64}} : ...
    %y = kern.launch "matmul_q_gated"(%h, %v, %t, %u, %g)
           {attrs = {activation = 0 : i64, bits = 4 : i64, norm_epsilon = 1.0E-5 : f64}} : ...
    ```
  }];
}

def DecodeEntryPass : Pass<"qopt-decode-entry", "mlir::ModuleOp"> {
  let summary = "Add a static one-token `decode` entry to a decoder whose KV cache is session state";
  let description = [{
    For a module of one kern-level function holding `kern.state` (after qopt-kv-state and lowering), clones the
    function as `decode` and renames the original `prefill`. In `decode` every dynamic input dim is fixed: batch
    dims (`batch`, `batch_size`) at their bound from `max-dims`, every other dim at 1 (one new token). Then every
    result's shape is evaluated with the kernels' shape functions and written into its type, and each launch
    whose integer result follows from constants and shapes alone (the shape arithmetic) is replaced by a
    constant, so the entry runs no shape kernel. Reshapes and unit-dim transposes become views in the memory
    plan. Functions without state, or modules that already have entries, are left alone. Runs before
    qopt-plan-memory, which plans each entry's arena.

    Before (prefill's shape arithmetic for the head split):
    ```mlir
    %s = kern.launch "shape"(%x) : (tensor<?x?x64xf32>) -> tensor<3xi64>
    %b = kern.launch "gather"(%s, %c0) : (tensor<3xi64>, tensor<i64>) -> tensor<i64>
    ```
    In decode: `kern.weight dense<[1, 1, 8, 8]> : tensor<4xi64>` feeding the reshape directly.
  }];
  let options = [
    ListOption<"maxDims", "max-dims", "std::string", "Bounds of dynamic dims as NAME=N (the batch dims' are used)">,
  ];
}

def LastLogitsEntryPass : Pass<"qopt-last-logits-entry", "mlir::ModuleOp"> {
  let summary = "Add a `prefill_last` entry: a prompt run that computes the last position's logits only";
  let description = [{
    Generation reads one row of a prompt's logits, the last position's. For a module with a `prefill` entry
    (qopt-decode-entry), clones it as `prefill_last`, in which each output head (a matmul or matmul_q launch of a
    constant weight whose result is a function result, directly or through casts) reads only the last position
    of its input: a `gather` of index -1 along the input's second-to-last dim (the sequence) goes in front of it,
    and the head, its casts and the function's results get a sequence dim of 1. A head is position-wise, so the
    row equals the last row of prefill's result, without the head's product over every other position (for
    Llama-3-8B's 128256-word head and a 2048-token prompt, 2.2 TFLOP and a 1 GB result). A prefill with any
    other result gets no such entry (a remark says which). The runtime runs it by name; qrun's prompts take it.

    ```mlir
    %l = kern.launch "matmul_q"(%h, %w) : (tensor<?x?x64xf32>, tensor<512x64xf16>) -> tensor<?x?x512xf32>
    ```
    becomes, in prefill_last:
    ```mlir
    %i = kern.weight dense<-1> : tensor<1xi64>
    %r = kern.launch "gather"(%h, %i) {attrs = {axis = 1 : i64}} : (...) -> tensor<?x1x64xf32>
    %l = kern.launch "matmul_q"(%r, %w) : (tensor<?x1x64xf32>, tensor<512x64xf16>) -> tensor<?x1x512xf32>
    ```
  }];
}

def PlanMemoryPass : Pass<"qopt-plan-memory", "mlir::func::FuncOp"> {
  let summary = "Assign every kern.launch result a static offset in one activation arena";
  let description = [{
    Binds each dynamic input dim to its bound (`max-dims`, by the ONNX dim names in `nn.dims`), evaluates every
    result's largest shape with the kernels' own shape functions (computing small integer shape tensors on the
    way), then packs buffers by liveness: each at the lowest 64-byte aligned offset that does not overlap a buffer
    live at the same time, in three orders (largest first, longest-lived first, program order), keeping the
    smallest arena. Inputs get slots too (the runtime uploads them there); graph outputs live to the end. Session
    state (`kern.state`) gets its own offsets; an in-place update's result is its state's memory; a view (a
    reshape, a transpose of unit dims) shares its input's slot, marked `view`; the result of an elementwise kernel
    that may overwrite an operand (`gated_act`, `gelu`: KernelFamily::overwrites) takes the slot of such an operand
    that is not read after it, marked `in_place` (a prompt's gated activation over its gate product: the largest
    buffer of a Llama layer, a quarter of Llama-3-8B's 2048-token prefill arena).

    Shape arithmetic goes to the host: a launch whose results are small bounded integer tensors, computed from
    host-readable values (inputs, weights, other host results; anything, for a kernel that reads only shapes), is
    marked `host` and its results are packed in a separate host arena (`kern.host_bytes`). The runtime runs it
    with the reference kernel and uploads the few host values a device kernel reads.

    After, each launch carries `offsets` and `max_shapes`, the function `kern.arena_bytes`, `kern.host_bytes` and
    `kern.state_bytes`, and each argument `kern.max_shape` and `kern.offset`:
    ```mlir
    %1 = kern.launch "binary"(%0, %w) {attrs = {fn = "add"}, max_shapes = [array<i64: 512, 64>],
                                       offsets = array<i64: 0>} : ...
    ```
    A result whose shape depends on values only known at run time (a Reshape to a shape given as a graph input,
    say), and everything computed from it, is not planned: it gets offset -1 and the runtime allocates it when
    its shape is known. Fails if a dynamic input dim has no bound.
  }];
  let options = [
    ListOption<"maxDims", "max-dims", "std::string",
               "Bounds of dynamic dims as NAME=N; ENTRY:NAME=N applies in the function named ENTRY only, over NAME=N">,
  ];
}

def HalfWeightsPass : Pass<"qopt-half-weights", "mlir::ModuleOp"> {
  let summary = "Store float32 linear weights and embedding tables as float16 (a GPU target's float layers)";
  let description = [{
    Rewrites, in every entry, each `matmul` and bias-free `linear_split` whose right operand is a float32 weight
    [K, N] into `matmul_q` / `matmul_q_split` with `bits = 16` and the weight as float16 [N, K] (the layout the
    16-bit linear kernels read), and each `gather` from a float32 table along axis 0 into a gather from its float16
    copy followed by a `cast` of the rows to float32. Activations stay float32: results change by the weights'
    rounding only, and the CPU runs the same model.bin. A weight read by several entries is converted once; the
    float32 originals nothing reads any more are released. `dtype=bf16` stores bfloat16 instead (float32's range,
    8 significant bits: qopt's `--act-dtype=bf16`). qopt runs it for CUDA targets unless `--float-weights=f32`.

    ```mlir
    %y = kern.launch "matmul"(%x, %w) : (tensor<1x1x288xf32>, tensor<288x768xf32>) -> tensor<1x1x768xf32>
    // becomes
    %y = kern.launch "matmul_q"(%x, %w16) {attrs = {bits = 16 : i64, group_size = 288 : i64}}
        : (tensor<1x1x288xf32>, tensor<768x288xf16>) -> tensor<1x1x768xf32>
    ```
  }];
  let options = [
    Option<"dtype", "dtype", "std::string", "\"f16\"", "The 16-bit float the weights are stored in: f16 or bf16">,
  ];
}

def TileWeightsPass : Pass<"qopt-tile-weights", "mlir::ModuleOp"> {
  let summary = "Lay quantized weights out in the GPU's tiles of 16 rows (weight_layout)";
  let description = [{
    The GPU's few-row products (decode) take a weight in tiles of 16 rows and chunks of 64 bytes of each row, a
    warp's load gathering 64 bytes from each of 8 rows. This pass permutes each weight of codes (int3/int4, int8,
    and FP8 codes a gated product reads) so that the bytes of one warp load are contiguous (512 bytes) and a tile's
    chunks follow one another (QuantFormat.h's tile layouts), and sets `weight_layout` on every reader: 1, tiles of
    16 consecutive rows, or 2 where a `matmul_q_gated` reads the weight, tiles pairing rows n and N / 2 + n (a gate
    channel and its up channel); a prompt's `matmul_q_split` over the same weight reads that layout too. Shapes,
    dtypes, scales and zero points are unchanged; the CPU backend unpacks the rows it reads, so the model.bin still
    runs and checks on the CPU. A weight is taken only when every use is a product that reads it as codes (not
    W8A8's act_fp8 / act_int8, whose library GEMMs read rows), it has 16 * n rows of whole 64-byte chunks and scale
    groups of whole 16-byte words; FP8 codes only with a gated reader (a one-row FP8 product that is not gated streams
    whole rows). A weight read by several entries is permuted once and its row-ordered bytes released. qopt runs it
    for CUDA targets unless `--weight-layout=rows`.

    ```mlir
    %y = kern.launch "matmul_q"(%x, %w, %s, %z) {attrs = {bits = 4 : i64, group_size = 128 : i64}}
        : (tensor<1x1x4096xf32>, tensor<14336x2048xui8>, tensor<14336x32xf16>, tensor<14336x32xui8>, ...) -> ...
    // becomes (the same types; %wt: %w's bytes in tiles)
    %y = kern.launch "matmul_q"(%x, %wt, %s, %z) {attrs = {bits = 4 : i64, group_size = 128 : i64,
                                                          weight_layout = 1 : i64}} ...
    ```
  }];
}

def CudaKernelsPass : Pass<"qopt-cuda-kernels", "mlir::ModuleOp"> {
  let summary = "Specialize a CUDA kernel template for each kern.launch and record the sources on the module";
  let description = [{
    For a CUDA target, after qopt-plan-memory. Each launch that a kernel template covers (its family, dtypes,
    static dims and attributes; lib/Codegen/cuda/kernels.cuh) gets `variant` = the symbol of its specialization,
    and the module gets `kern.cuda_kernels`, one dictionary per distinct symbol: `symbol`, `source` (the
    wrapper calling the template with the launch's constants) and the launch geometry the runtime uses (`block`,
    `grid_y`, `rows_per_block`, `cols_per_block`, `cols`, `shared_bytes`, `operand`, `flat`), plus
    `kern.cuda_archs`. qopt compiles the sources with NVRTC into model.bin's kernels section. Launches no
    template covers keep no variant and run on the host at run time (the runtime copies their operands); a
    remark per family says how many and why. Views and host instructions launch nothing and are skipped.

    ```mlir
    %y = kern.launch "rms_norm"(%x, %g) {attrs = {epsilon = 1.0E-5 : f64}, variant = "q_rms_norm_3f2a..."} ...
    ```
  }];
  let options = [
    ListOption<"archs", "archs", "std::string", "CUDA architectures (sm_90a, sm_80, ...)">,
    Option<"actDtype", "act-dtype", "std::string", "\"f16\"",
           "The 16-bit float of the tensor cores' operands, 16-bit weights and KV caches: f16 or bf16 (the module "
           "is compiled with QOPT_BF16; recorded as kern.cuda_act_dtype)">,
  ];
}

#endif // QOPT_PASSES
