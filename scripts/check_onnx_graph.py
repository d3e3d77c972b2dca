#!/usr/bin/env python3
"""Check that an ONNX graph from llama2c_to_onnx.py computes the same logits as the float64 reference.

usage: check_onnx_graph.py MODEL.onnx CHECKPOINT [--backend auto|onnxruntime|numpy] [--seq-len L] [--batch B]
                           [--trials N] [--seed S] [--tol T] [--greedy STEPS]

Runs the graph on random token windows (a batch of different windows, position_ids 0..L-1) and compares the logits
with llama_reference.py's float64 forward pass of the llama2.c checkpoint (max abs diff, argmax agreement).
For a graph with past_key_values inputs it runs, on the same batch: a prefill from an empty cache, a second chunk
with the cache from the first (past > 0 and sequence > 1), then one decode step, feeding present.* back as
past_key_values.*, and compares every step with the reference's logits at the same absolute positions.

With --greedy STEPS it also decodes greedily from BOS with the graph (through the KV cache when the graph has one,
else re-running the whole prefix each step), with llama2.c's step count and BOS stop rule, and checks that the
token ids equal the float64 reference's.

The backend is onnxruntime when it can be imported; otherwise (or with --backend numpy) a small numpy interpreter
of the ONNX ops these graphs use (float32, like the runtime). Exit status 1 when a max abs diff exceeds --tol.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Dict, List

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import Llama2cReference  # noqa: E402


# ------------------------------------------------------------------------------------------ numpy interpreter
def _attrs(node) -> Dict[str, object]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _softmax(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


class NumpyRunner:
    """Executes the subset of ONNX (opset 13-18) that llama2c_to_onnx.py emits, node by node, in order."""

    def __init__(self, model_path: str):
        self.model = onnx.load(model_path)
        self.opset = next(o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx"))
        self.inits = {t.name: numpy_helper.to_array(t) for t in self.model.graph.initializer}
        self.output_names = [o.name for o in self.model.graph.output]
        self.input_names = [i.name for i in self.model.graph.input]

    def run(self, feeds: Dict[str, np.ndarray]) -> List[np.ndarray]:
        env: Dict[str, np.ndarray] = dict(self.inits)
        env.update(feeds)
        for node in self.model.graph.node:
            ins = [env[n] if n else None for n in node.input]
            outs = self._eval(node, ins, _attrs(node))
            for name, val in zip(node.output, outs):
                env[name] = val
        return [env[n] for n in self.output_names]

    def _eval(self, node, x, a):
        op = node.op_type
        f32 = np.float32
        if op == "Constant":
            return [numpy_helper.to_array(a["value"])]
        if op == "Gather":
            return [np.take(x[0], x[1], axis=a.get("axis", 0))]
        if op == "Shape":
            return [np.array(x[0].shape, dtype=np.int64)]
        if op == "Unsqueeze":
            axes = list(x[1]) if len(x) > 1 else list(a["axes"])
            r = x[0].ndim + len(axes)
            y = x[0]
            for ax in sorted(int(v) % r for v in axes):
                y = np.expand_dims(y, ax)
            return [y]
        if op == "Concat":
            return [np.concatenate(x, axis=a["axis"])]
        if op == "Reshape":
            shape = [int(s) for s in x[1]]
            shape = [x[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
            return [x[0].reshape(shape)]
        if op == "Transpose":
            return [np.transpose(x[0], a["perm"])]
        if op == "MatMul":
            return [np.matmul(x[0], x[1]).astype(x[0].dtype)]
        if op == "Cast":
            to = onnx.helper.tensor_dtype_to_np_dtype(a["to"]) if hasattr(onnx.helper, "tensor_dtype_to_np_dtype") \
                else onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[a["to"]]
            return [x[0].astype(to)]
        if op in ("Add", "Mul", "Pow", "LessOrEqual"):
            fn = {"Add": np.add, "Mul": np.multiply, "Pow": np.power, "LessOrEqual": np.less_equal}[op]
            y = fn(x[0], x[1])
            return [y if op == "LessOrEqual" else y.astype(x[0].dtype)]
        if op in ("Cos", "Sin", "Sqrt", "Neg", "Reciprocal", "Sigmoid"):
            v = x[0]
            y = {"Cos": np.cos, "Sin": np.sin, "Sqrt": np.sqrt, "Neg": np.negative,
                 "Reciprocal": lambda t: f32(1) / t, "Sigmoid": lambda t: f32(1) / (f32(1) + np.exp(-t))}[op](v)
            return [y.astype(v.dtype)]
        if op == "ReduceMean":
            axes = tuple(int(v) for v in (x[1] if len(x) > 1 else a["axes"]))
            return [np.mean(x[0], axis=axes, keepdims=bool(a.get("keepdims", 1))).astype(x[0].dtype)]
        if op == "Range":
            return [np.arange(x[0], x[1], x[2], dtype=x[0].dtype)]
        if op == "Slice":
            starts, ends = x[1], x[2]
            axes = x[3] if len(x) > 3 and x[3] is not None else range(len(starts))
            steps = x[4] if len(x) > 4 and x[4] is not None else [1] * len(starts)
            sl = [slice(None)] * x[0].ndim
            for s, e, ax, st in zip(starts, ends, axes, steps):
                sl[int(ax)] = slice(int(s), int(min(e, np.iinfo(np.int64).max // 2)), int(st))
            return [x[0][tuple(sl)]]
        if op == "Expand":
            shape = np.broadcast_shapes(x[0].shape, tuple(int(s) for s in x[1]))
            return [np.broadcast_to(x[0], shape).copy()]
        if op == "Where":
            return [np.where(x[0], x[1], x[2]).astype(x[1].dtype)]
        if op == "Softmax":
            return [_softmax(x[0], a.get("axis", -1)).astype(x[0].dtype)]
        raise NotImplementedError(f"numpy backend: op {op} ({node.name})")


class OrtRunner:
    def __init__(self, model_path: str):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        self.sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.sess.get_outputs()]
        self.input_names = [i.name for i in self.sess.get_inputs()]
        self.version = ort.__version__

    def run(self, feeds):
        return self.sess.run(self.output_names, feeds)


# ------------------------------------------------------------------------------------------------- checks
def reference_logits(ref: Llama2cReference, windows: np.ndarray) -> np.ndarray:
    return np.stack([ref.forward(w) for w in windows])


def compare(name: str, got: np.ndarray, want: np.ndarray) -> float:
    diff = float(np.max(np.abs(got.astype(np.float64) - want)))
    scale = float(np.max(np.abs(want)))
    agree = float(np.mean(np.argmax(got, -1) == np.argmax(want, -1)))
    print(f"  {name:40s} shape {str(tuple(got.shape)):18s} max|diff| {diff:.3e}  (max|logit| {scale:.2f}, "
          f"argmax agree {agree * 100:.2f}%)")
    return diff


def greedy_with_graph(runner, cfg, kv: bool, steps: int) -> List[int]:
    """llama2.c generate() with temperature 0 and an empty prompt, driven through the ONNX graph (batch 1)."""
    if steps <= 0 or steps > cfg.seq_len:
        steps = cfg.seq_len
    seq = [1]
    past = {f"past_key_values.{i}.{k}": np.zeros((1, cfg.n_kv_heads, 0, cfg.head_dim), np.float32)
            for i in range(cfg.n_layers) for k in ("key", "value")}
    out: List[int] = []
    for pos in range(steps):
        if kv:
            feeds = {"input_ids": np.array([[seq[-1]]], np.int64), "position_ids": np.array([[pos]], np.int64)}
            feeds.update(past)
            res = dict(zip(runner.output_names, runner.run(feeds)))
            past = {f"past_key_values.{i}.{k}": res[f"present.{i}.{k}"]
                    for i in range(cfg.n_layers) for k in ("key", "value")}
        else:
            feeds = {"input_ids": np.array([seq], np.int64),
                     "position_ids": np.arange(len(seq), dtype=np.int64)[None, :]}
            res = dict(zip(runner.output_names, runner.run(feeds)))
        nxt = int(np.argmax(res["logits"][0, -1]))
        if nxt == 1:
            break
        out.append(nxt)
        seq.append(nxt)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("checkpoint")
    ap.add_argument("--backend", choices=["auto", "onnxruntime", "numpy"], default="auto")
    ap.add_argument("--seq-len", type=int, default=None, help="window length (default: min(64, max_sequence))")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--trials", type=int, default=2, help="random batches to try")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tol", type=float, default=1e-3, help="fail above this max abs logit difference")
    ap.add_argument("--greedy", type=int, default=0, metavar="STEPS",
                    help="also compare greedy generation of STEPS steps (0 = off) with the reference")
    args = ap.parse_args(argv)

    runner = None
    if args.backend in ("auto", "onnxruntime"):
        try:
            runner = OrtRunner(args.model)
            backend = f"onnxruntime {runner.version}"
        except ImportError:
            if args.backend == "onnxruntime":
                print("onnxruntime is not installed", file=sys.stderr)
                return 2
    if runner is None:
        runner = NumpyRunner(args.model)
        backend = "numpy interpreter (float32)"

    ref = Llama2cReference(args.checkpoint)
    cfg = ref.cfg
    kv = any(n.startswith("past_key_values.") for n in runner.input_names)
    L = args.seq_len or min(64, cfg.seq_len)
    B = args.batch
    rng = np.random.default_rng(args.seed)
    print(f"{args.model}: backend {backend}, {'with' if kv else 'without'} kv cache, batch {B}, window {L}")
    worst = 0.0
    t0 = time.time()
    for trial in range(args.trials):
        toks = rng.integers(0, cfg.vocab_size, size=(B, L + 1), dtype=np.int64)
        if not kv:
            x = toks[:, :L]
            pos = np.broadcast_to(np.arange(L, dtype=np.int64), (B, L)).copy()
            (logits,) = runner.run({"input_ids": x, "position_ids": pos})
            worst = max(worst, compare(f"trial {trial}: full window", logits, reference_logits(ref, x)))
            continue
        want = reference_logits(ref, toks)  # (B, L+1, V) for positions 0..L
        past = {}
        for i in range(cfg.n_layers):
            for k in ("key", "value"):
                past[f"past_key_values.{i}.{k}"] = np.zeros((B, cfg.n_kv_heads, 0, cfg.head_dim), np.float32)
        split = max(1, L // 2)
        chunks = [(0, split, "prefill"), (split, L, "second chunk (past > 0)"), (L, L + 1, "decode 1 token")]
        for a, b, what in chunks:
            if b <= a:
                continue
            feeds = {"input_ids": toks[:, a:b],
                     "position_ids": np.broadcast_to(np.arange(a, b, dtype=np.int64), (B, b - a)).copy()}
            feeds.update(past)
            outs = dict(zip(runner.output_names, runner.run(feeds)))
            worst = max(worst, compare(f"trial {trial}: {what} [{a}:{b})", outs["logits"], want[:, a:b]))
            for i in range(cfg.n_layers):
                for k in ("key", "value"):
                    pres = outs[f"present.{i}.{k}"]
                    assert pres.shape == (B, cfg.n_kv_heads, b, cfg.head_dim), pres.shape
                    past[f"past_key_values.{i}.{k}"] = pres
    ok = worst <= args.tol
    print(f"max |logits - float64 reference| = {worst:.3e} ({'OK' if ok else 'FAIL'}, tol {args.tol:g}), "
          f"{time.time() - t0:.1f} s")
    if args.greedy:
        got = greedy_with_graph(runner, cfg, kv, args.greedy)
        want, _ = ref.generate_greedy(args.greedy)
        same = got == want
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        print(f"greedy {args.greedy} steps: graph {len(got)} tokens, reference {len(want)} tokens, "
              f"{'identical' if same else f'first difference at token {first}'}")
        ok = ok and same
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
