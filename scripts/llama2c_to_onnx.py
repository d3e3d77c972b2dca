#!/usr/bin/env python3
"""Convert a llama2.c legacy checkpoint into an ONNX graph shaped like PyTorch's export of a Hugging Face Llama.

usage: llama2c_to_onnx.py CHECKPOINT TOKENIZER -o OUT.onnx [--kv-cache] [--external-data] [--opset 17]

The graph is made of primitive ONNX ops only (Gather, MatMul, Pow/ReduceMean/Sqrt/Reciprocal RMSNorm, Slice/Neg/Concat
rotate_half, Shape/Gather/Unsqueeze/Concat/Reshape shape arithmetic, Range/LessOrEqual/Where causal mask, Softmax,
Sigmoid, ...), with torch-style node names ("/model/layers.0/self_attn/q_proj/MatMul") and HF initializer names
("model.layers.0.self_attn.q_proj.weight", stored transposed as [in, out] like torch exports nn.Linear).

Inputs:  input_ids int64 [batch, sequence], position_ids int64 [batch, sequence]
         (--kv-cache) past_key_values.{i}.key / .value float32 [batch, n_kv_heads, past_sequence, head_dim]
Outputs: logits float32 [batch, sequence, vocab]
         (--kv-cache) present.{i}.key / .value float32 [batch, n_kv_heads, total_sequence, head_dim]

llama2.c rotates interleaved pairs (q[2j], q[2j+1]); HF's rotate_half rotates (q[j], q[j + head_dim/2]). As in HF's
conversion script, the rows of wq and wk are permuted per head so that the graph computes the same attention.
The causal mask lets query i (absolute position past_sequence + i) see keys j <= past_sequence + i; positions for
the rotary embedding come from position_ids.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama2c import Config, Tokenizer, read_checkpoint  # noqa: E402

IR_VERSION = 8  # for the default opset 17 (and 13..18); newer opsets need a newer IR, see ir_version_for()
INT64_MAX = np.iinfo(np.int64).max
ROPE_THETA = 10000.0
RMS_EPS = 1e-5


def ir_version_for(opset: int) -> int:
    """IR version 8 as asked for opset <= 18 (onnx 1.13's pairing); the first IR that allows newer opsets."""
    if opset <= 18:
        return IR_VERSION
    return {19: 9, 20: 9, 21: 10, 22: 10}.get(opset, 11)


def permute_for_rotate_half(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorder the output rows of a q/k projection (n_heads*head_dim, dim) from llama2.c's interleaved pairs to
    HF's halves: within each head, new row j = old row 2j and new row head_dim/2 + j = old row 2j + 1."""
    rows, cols = w.shape
    hd = rows // n_heads
    return np.ascontiguousarray(w.reshape(n_heads, hd // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols))


class GraphBuilder:
    """Collects nodes and initializers; names nodes the way torch.onnx does (scope + op type + per-scope index)."""

    def __init__(self, opset: int):
        self.opset = opset
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[onnx.TensorProto] = []
        self._counts: Dict[str, int] = {}

    def _name(self, scope: str, op: str) -> str:
        key = f"{scope}/{op}"
        k = self._counts.get(key, 0)
        self._counts[key] = k + 1
        return key if k == 0 else f"{key}_{k}"

    def op(self, scope: str, op_type: str, inputs: Sequence[str], outputs: Optional[Sequence[str]] = None,
           n_outputs: int = 1, **attrs) -> str:
        name = self._name(scope, op_type)
        if outputs is None:
            outputs = [f"{name}_output_{i}" for i in range(n_outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), name=name, **attrs))
        return outputs[0]

    def const(self, scope: str, value, dtype=None) -> str:
        """A Constant node (torch emits small constants this way)."""
        arr = np.array(value, dtype=dtype)
        name = self._name(scope, "Constant")
        out = f"{name}_output_0"
        self.nodes.append(helper.make_node("Constant", [], [out], name=name,
                                           value=numpy_helper.from_array(arr, name="")))
        return out

    def initializer(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name=name))
        return name

    # -------------------------------------------------------------------------------------- composite helpers
    def unsqueeze(self, scope: str, x: str, axes: Sequence[int]) -> str:
        if self.opset >= 13:
            return self.op(scope, "Unsqueeze", [x, self.const(scope, list(axes), np.int64)])
        return self.op(scope, "Unsqueeze", [x], axes=list(axes))

    def reduce_mean_last(self, scope: str, x: str) -> str:
        if self.opset >= 18:
            return self.op(scope, "ReduceMean", [x, self.const(scope, [-1], np.int64)], keepdims=1)
        return self.op(scope, "ReduceMean", [x], axes=[-1], keepdims=1)

    def dim(self, scope: str, x: str, index: int) -> str:
        """Shape(x) -> Gather(index): a scalar int64."""
        shape = self.op(scope, "Shape", [x])
        return self.op(scope, "Gather", [shape, self.const(scope, index, np.int64)], axis=0)

    def shape_of(self, scope: str, parts: Sequence) -> str:
        """Concat of 1-D int64 pieces: a str is a dynamic scalar (unsqueezed here), an int a constant dim."""
        pieces = []
        for p in parts:
            if isinstance(p, str):
                pieces.append(self.unsqueeze(scope, p, [0]))
            else:
                pieces.append(self.const(scope, [int(p)], np.int64))
        return self.op(scope, "Concat", pieces, axis=0)


def rms_norm(g: GraphBuilder, scope: str, x: str, weight: str) -> str:
    sq = g.op(scope, "Pow", [x, g.const(scope, 2.0, np.float32)])
    mean = g.reduce_mean_last(scope, sq)
    var = g.op(scope, "Add", [mean, g.const(scope, RMS_EPS, np.float32)])
    rms = g.op(scope, "Sqrt", [var])
    inv = g.op(scope, "Reciprocal", [rms])
    normed = g.op(scope, "Mul", [x, inv])
    return g.op(scope, "Mul", [weight, normed])


def linear(g: GraphBuilder, scope: str, x: str, weight: str, output: Optional[str] = None) -> str:
    return g.op(scope, "MatMul", [x, weight], outputs=[output] if output else None)


def rotate_half(g: GraphBuilder, scope: str, x: str, head_dim: int) -> str:
    half = head_dim // 2
    axes = g.const(scope, [3], np.int64)
    steps = g.const(scope, [1], np.int64)
    x1 = g.op(scope, "Slice", [x, g.const(scope, [0], np.int64), g.const(scope, [half], np.int64), axes, steps])
    x2 = g.op(scope, "Slice", [x, g.const(scope, [half], np.int64), g.const(scope, [INT64_MAX], np.int64), axes,
                               steps])
    neg = g.op(scope, "Neg", [x2])
    return g.op(scope, "Concat", [neg, x1], axis=-1)


def apply_rotary(g: GraphBuilder, scope: str, x: str, cos: str, sin: str, head_dim: int) -> str:
    a = g.op(scope, "Mul", [x, cos])
    b = g.op(scope, "Mul", [rotate_half(g, scope, x, head_dim), sin])
    return g.op(scope, "Add", [a, b])


def build_model(cfg: Config, w: Dict[str, np.ndarray], kv_cache: bool, opset: int,
                metadata: Dict[str, str], doc: str, builder: Optional[GraphBuilder] = None,
                rope_theta: float = ROPE_THETA) -> onnx.ModelProto:
    """The graph for llama2.c-layout weights `w` (per-layer entries indexed by layer). `builder` (default a plain
    GraphBuilder) decides how initializers are stored; scripts/make_random_llama.py streams them to a file."""
    g = builder or GraphBuilder(opset)
    H, KVH, hd, D = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.dim
    rep = H // KVH
    f32 = np.float32

    # ------------------------------------------------------------------------------------------ inputs/outputs
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "sequence"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "sequence", cfg.vocab_size])]
    if kv_cache:
        for i in range(cfg.n_layers):
            for kind in ("key", "value"):
                inputs.append(helper.make_tensor_value_info(
                    f"past_key_values.{i}.{kind}", TensorProto.FLOAT, ["batch", KVH, "past_sequence", hd]))
        for i in range(cfg.n_layers):
            for kind in ("key", "value"):
                outputs.append(helper.make_tensor_value_info(
                    f"present.{i}.{kind}", TensorProto.FLOAT, ["batch", KVH, "total_sequence", hd]))

    # ------------------------------------------------------------------------------------------- initializers
    emb = g.initializer("model.embed_tokens.weight", w["token_embedding"].astype(f32))
    lw = []
    for i in range(cfg.n_layers):
        p = f"model.layers.{i}"
        lw.append(dict(
            ln1=g.initializer(f"{p}.input_layernorm.weight", w["rms_att"][i].astype(f32)),
            q=g.initializer(f"{p}.self_attn.q_proj.weight", permute_for_rotate_half(w["wq"][i], H).T.astype(f32)),
            k=g.initializer(f"{p}.self_attn.k_proj.weight", permute_for_rotate_half(w["wk"][i], KVH).T.astype(f32)),
            v=g.initializer(f"{p}.self_attn.v_proj.weight", w["wv"][i].T.astype(f32)),
            o=g.initializer(f"{p}.self_attn.o_proj.weight", w["wo"][i].T.astype(f32)),
            ln2=g.initializer(f"{p}.post_attention_layernorm.weight", w["rms_ffn"][i].astype(f32)),
            gate=g.initializer(f"{p}.mlp.gate_proj.weight", w["w1"][i].T.astype(f32)),
            up=g.initializer(f"{p}.mlp.up_proj.weight", w["w3"][i].T.astype(f32)),
            down=g.initializer(f"{p}.mlp.down_proj.weight", w["w2"][i].T.astype(f32)),
        ))
    norm_w = g.initializer("model.norm.weight", w["rms_final"].astype(f32))
    # tied or not, the exporter stores lm_head's transposed matrix as its own initializer
    lm_head = g.initializer("lm_head.weight", w["wcls"].T.astype(f32))
    inv_freq = (1.0 / rope_theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd)).astype(f32)
    inv_freq = g.initializer("model.rotary_emb.inv_freq", inv_freq.reshape(1, hd // 2))

    # --------------------------------------------------------------------------------------------- embedding
    x = g.op("/model/embed_tokens", "Gather", [emb, "input_ids"], axis=0)

    # ------------------------------------------------------------- rotary cos/sin [batch, sequence, head_dim]
    rs = "/model/rotary_emb"
    pos = g.op(rs, "Cast", ["position_ids"], to=TensorProto.FLOAT)
    pos = g.unsqueeze(rs, pos, [2])  # [b, s, 1]
    freqs = g.op(rs, "MatMul", [pos, inv_freq])  # [b, s, hd/2]
    emb_f = g.op(rs, "Concat", [freqs, freqs], axis=-1)  # [b, s, hd]
    cos = g.op(rs, "Cos", [emb_f])
    sin = g.op(rs, "Sin", [emb_f])

    # ------------------------------------------------------------------ causal mask [1, 1, sequence, total]
    ms = "/model"
    seq = g.dim(ms, "input_ids", 1)
    one = g.const(ms, 1, np.int64)
    if kv_cache:
        past = g.dim(ms, "past_key_values.0.key", 2)
        total = g.op(ms, "Add", [past, seq])
        rows = g.op(ms, "Range", [past, total, one])  # absolute positions of the queries
    else:
        total = seq
        rows = g.op(ms, "Range", [g.const(ms, 0, np.int64), seq, one])
    cols = g.op(ms, "Range", [g.const(ms, 0, np.int64), total, one])  # key positions
    rows = g.unsqueeze(ms, rows, [1])  # [s, 1]
    cols = g.unsqueeze(ms, cols, [0])  # [1, t]
    allowed = g.op(ms, "LessOrEqual", [cols, rows])  # [s, t] bool
    allowed = g.unsqueeze(ms, allowed, [0, 1])  # [1, 1, s, t]

    # ------------------------------------------------------------------------------------------------ layers
    for i in range(cfg.n_layers):
        L = f"/model/layers.{i}"
        A = f"{L}/self_attn"
        W = lw[i]
        h = rms_norm(g, f"{L}/input_layernorm", x, W["ln1"])

        b = g.dim(A, h, 0)
        s = g.dim(A, h, 1)
        q = linear(g, f"{A}/q_proj", h, W["q"])
        k = linear(g, f"{A}/k_proj", h, W["k"])
        v = linear(g, f"{A}/v_proj", h, W["v"])
        q = g.op(A, "Reshape", [q, g.shape_of(A, [b, s, H, hd])])
        k = g.op(A, "Reshape", [k, g.shape_of(A, [b, s, KVH, hd])])
        v = g.op(A, "Reshape", [v, g.shape_of(A, [b, s, KVH, hd])])
        q = g.op(A, "Transpose", [q], perm=[0, 2, 1, 3])  # [b, H, s, hd]
        k = g.op(A, "Transpose", [k], perm=[0, 2, 1, 3])  # [b, KVH, s, hd]
        v = g.op(A, "Transpose", [v], perm=[0, 2, 1, 3])

        cos_l = g.unsqueeze(A, cos, [1])  # [b, 1, s, hd]
        sin_l = g.unsqueeze(A, sin, [1])
        q = apply_rotary(g, A, q, cos_l, sin_l, hd)
        k = apply_rotary(g, A, k, cos_l, sin_l, hd)

        if kv_cache:
            k = g.op(A, "Concat", [f"past_key_values.{i}.key", k], outputs=[f"present.{i}.key"], axis=2)
            v = g.op(A, "Concat", [f"past_key_values.{i}.value", v], outputs=[f"present.{i}.value"], axis=2)

        if rep > 1:  # repeat_kv: [b, KVH, t, hd] -> [b, KVH, rep, t, hd] -> [b, H, t, hd]
            R = A
            kb = g.dim(R, k, 0)
            kt = g.dim(R, k, 2)
            expand_shape = g.shape_of(R, [kb, KVH, rep, kt, hd])
            merged_shape = g.shape_of(R, [kb, H, kt, hd])
            k = g.unsqueeze(R, k, [2])
            k = g.op(R, "Expand", [k, expand_shape])
            k = g.op(R, "Reshape", [k, merged_shape])
            v = g.unsqueeze(R, v, [2])
            v = g.op(R, "Expand", [v, expand_shape])
            v = g.op(R, "Reshape", [v, merged_shape])

        kT = g.op(A, "Transpose", [k], perm=[0, 1, 3, 2])
        scores = g.op(A, "MatMul", [q, kT])  # [b, H, s, t]
        scores = g.op(A, "Mul", [scores, g.const(A, 1.0 / np.sqrt(hd), np.float32)])
        scores = g.op(A, "Where", [allowed, scores, g.const(A, -np.inf, np.float32)])
        probs = g.op(A, "Softmax", [scores], axis=-1)
        att = g.op(A, "MatMul", [probs, v])  # [b, H, s, hd]
        att = g.op(A, "Transpose", [att], perm=[0, 2, 1, 3])  # [b, s, H, hd]
        att = g.op(A, "Reshape", [att, g.shape_of(A, [b, s, D])])
        att = linear(g, f"{A}/o_proj", att, W["o"])
        x = g.op(L, "Add", [x, att])

        h = rms_norm(g, f"{L}/post_attention_layernorm", x, W["ln2"])
        M = f"{L}/mlp"
        gate = linear(g, f"{M}/gate_proj", h, W["gate"])
        sig = g.op(f"{M}/act_fn", "Sigmoid", [gate])
        act = g.op(f"{M}/act_fn", "Mul", [gate, sig])
        up = linear(g, f"{M}/up_proj", h, W["up"])
        prod = g.op(M, "Mul", [act, up])
        down = linear(g, f"{M}/down_proj", prod, W["down"])
        x = g.op(L, "Add", [x, down])

    x = rms_norm(g, "/model/norm", x, norm_w)
    linear(g, "/lm_head", x, lm_head, output="logits")

    graph = helper.make_graph(g.nodes, "main_graph", inputs, outputs, initializer=g.initializers, doc_string=doc)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="qopt.llama2c_to_onnx", producer_version="0.1")
    model.ir_version = ir_version_for(opset)
    helper.set_model_props(model, metadata)
    return model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="llama2.c legacy checkpoint (.bin)")
    ap.add_argument("tokenizer", help="llama2.c tokenizer.bin matching the checkpoint (its size is checked)")
    ap.add_argument("-o", "--output", required=True, help="output .onnx path")
    ap.add_argument("--kv-cache", action="store_true", help="add past_key_values.* inputs and present.* outputs")
    ap.add_argument("--external-data", action="store_true",
                    help="store the weights in one external data file next to the model (OUT.onnx.data)")
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args(argv)

    max_opset = onnx.defs.onnx_opset_version()
    if not 13 <= args.opset <= max_opset:
        ap.error(f"--opset must be in [13, {max_opset}] (this onnx {onnx.__version__} knows up to {max_opset})")

    cfg, weights = read_checkpoint(args.checkpoint)
    tok = Tokenizer(args.tokenizer)
    if tok.vocab_size != cfg.vocab_size:
        ap.error(f"tokenizer has {tok.vocab_size} tokens, checkpoint vocab is {cfg.vocab_size}")

    metadata = {
        "qopt.model": "llama",
        "qopt.bos_token_id": "1",
        "qopt.eos_token_id": "1",  # llama2.c's generate() stops when it samples BOS
        "qopt.max_sequence": str(cfg.seq_len),
    }
    doc = (f"llama2.c checkpoint {os.path.basename(args.checkpoint)} (dim {cfg.dim}, hidden {cfg.hidden_dim}, "
           f"{cfg.n_layers} layers, {cfg.n_heads} heads, {cfg.n_kv_heads} kv heads, vocab {cfg.vocab_size}, "
           f"seq_len {cfg.seq_len}) converted by qopt scripts/llama2c_to_onnx.py; tokenizer "
           f"{os.path.basename(args.tokenizer)}")
    model = build_model(cfg, weights, args.kv_cache, args.opset, metadata, doc)
    onnx.checker.check_model(model, full_check=True)

    out = args.output
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    if args.external_data:
        location = os.path.basename(out) + ".data"
        data_path = os.path.join(os.path.dirname(os.path.abspath(out)), location)
        if os.path.exists(data_path):
            os.remove(data_path)  # onnx appends to an existing file
        onnx.save_model(model, out, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=location, size_threshold=1024)
        onnx.checker.check_model(out, full_check=True)
    else:
        onnx.save_model(model, out)
    print(f"wrote {out} ({len(model.graph.node)} nodes, {len(model.graph.initializer)} initializers"
          f"{', external data ' + location if args.external_data else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
