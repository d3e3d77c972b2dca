#!/usr/bin/env python3
"""Write a Llama-shaped ONNX model with random weights, of any size, without holding its weights in memory.

usage: make_random_llama.py -o OUT.onnx [--preset llama3-8b | --dim D --hidden H --layers L --heads N
                            --kv-heads K --vocab V] [--max-sequence S] [--seed N]

The graph is scripts/llama2c_to_onnx.py's (torch-export-shaped primitive ops, KV-cache inputs and outputs); the
weights are drawn from N(0, 0.02^2) (the Hugging Face initializer range; norms are 1) and written one tensor at a time
to OUT.onnx.data, so an 8B model needs a few GB of memory, not its size. Weights are float32 (an 8B model's data file
is 32 GB): qopt maps float32 external data without copying it (a float16 model it widens to float32 in memory), and
stores float16 (or quantized) weights for a CUDA target itself.

Presets: llama3-8b (hidden 4096, 32 heads, 8 KV heads, intermediate 14336, vocab 128256, 32 layers, rope theta
500000, 8.03B parameters).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama2c import Config  # noqa: E402
from llama2c_to_onnx import GraphBuilder, build_model, ir_version_for  # noqa: E402

PRESETS = {
    "llama3-8b": dict(dim=4096, hidden=14336, layers=32, heads=32, kv_heads=8, vocab=128256, rope_theta=500000.0),
}
ONNX_TYPES = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16}
ALIGN = 64  # byte alignment of each tensor in the data file (the importer maps the file and reads in place)


class StreamingBuilder(GraphBuilder):
    """Writes each initializer to the external data file as it is made; keeps only its TensorProto header."""

    def __init__(self, opset: int, data_path: str):
        super().__init__(opset)
        self.location = os.path.basename(data_path)
        self.file = open(data_path, "wb")
        self.bytes = 0

    def initializer(self, name: str, array: np.ndarray) -> str:
        data = np.ascontiguousarray(array)
        pad = -self.file.tell() % ALIGN
        self.file.write(b"\0" * pad)
        offset = self.file.tell()
        data.tofile(self.file)
        self.bytes += data.nbytes
        t = TensorProto(name=name, dims=list(data.shape), data_type=ONNX_TYPES[data.dtype.name])
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", self.location), ("offset", str(offset)), ("length", str(data.nbytes))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        self.initializers.append(t)
        return name

    def close(self):
        self.file.close()


class RandomLayers:
    """w[key][layer] for the llama2.c weight layout, drawn when asked for. Matrices are cut from one pool of
    normal draws at random offsets (a prime-length pool, so rows do not repeat in step): drawing 8B fresh values
    would take minutes, and the benchmark needs the shapes and magnitudes, not independence."""

    POOL = 16777259  # a prime near 2^24

    def __init__(self, rng: np.random.Generator, shape, scale: float, pool: np.ndarray):
        self.rng, self.shape, self.scale, self.pool = rng, shape, scale, pool

    def draw(self) -> np.ndarray:
        if self.scale == 0:
            return np.ones(self.shape, np.float32)
        n = int(np.prod(self.shape))
        out = np.empty(n, np.float32)
        pos, off = 0, int(self.rng.integers(len(self.pool)))
        while pos < n:
            take = min(n - pos, len(self.pool) - off)
            out[pos:pos + take] = self.pool[off:off + take]
            pos, off = pos + take, 0
        out *= np.float32(self.scale)
        return out.reshape(self.shape)

    def __getitem__(self, layer: int) -> np.ndarray:
        return self.draw()

    # the unlayered entries (token_embedding, rms_final, wcls) are used as arrays: .astype, and .T for wcls
    def astype(self, dtype):
        return self.draw().astype(dtype)

    @property
    def T(self) -> "RandomLayers":
        return RandomLayers(self.rng, tuple(reversed(self.shape)), self.scale, self.pool)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", required=True, help="output .onnx path (weights go to OUT.onnx.data)")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="a named shape (explicit options override it)")
    for name in ("dim", "hidden", "layers", "heads", "kv-heads", "vocab"):
        ap.add_argument(f"--{name}", type=int)
    ap.add_argument("--rope-theta", type=float)
    ap.add_argument("--max-sequence", type=int, default=4096, help="the context bound recorded for qopt (4096)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args(argv)

    shape = dict(PRESETS[args.preset]) if args.preset else {"rope_theta": 10000.0}
    for key in ("dim", "hidden", "layers", "heads", "kv_heads", "vocab", "rope_theta"):
        if getattr(args, key) is not None:
            shape[key] = getattr(args, key)
    missing = [k for k in ("dim", "hidden", "layers", "heads", "kv_heads", "vocab") if k not in shape]
    if missing:
        ap.error("give --preset or every one of --" + ", --".join(m.replace("_", "-") for m in missing))
    if shape["dim"] % shape["heads"] or shape["heads"] % shape["kv_heads"] or (shape["dim"] // shape["heads"]) % 2:
        ap.error("dim must split into an even head_dim per head, and heads into groups of kv-heads")

    cfg = Config(dim=shape["dim"], hidden_dim=shape["hidden"], n_layers=shape["layers"], n_heads=shape["heads"],
                 n_kv_heads=shape["kv_heads"], vocab_size=shape["vocab"], seq_len=args.max_sequence,
                 shared_classifier=False)
    rng = np.random.default_rng(args.seed)
    D, Hd, KV, V = cfg.dim, cfg.hidden_dim, cfg.kv_dim, cfg.vocab_size
    std = 0.02
    pool = rng.standard_normal(RandomLayers.POOL, dtype=np.float32)
    shapes = {"token_embedding": ((V, D), std), "rms_att": ((D,), 0), "wq": ((D, D), std), "wk": ((KV, D), std),
              "wv": ((KV, D), std), "wo": ((D, D), std), "rms_ffn": ((D,), 0), "w1": ((Hd, D), std),
              "w2": ((D, Hd), std), "w3": ((Hd, D), std), "rms_final": ((D,), 0), "wcls": ((V, D), std)}
    w = {key: RandomLayers(rng, shape, scale, pool) for key, (shape, scale) in shapes.items()}

    out = os.path.abspath(args.output)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    g = StreamingBuilder(args.opset, out + ".data")
    metadata = {"qopt.model": "llama", "qopt.bos_token_id": "1", "qopt.eos_token_id": "2",
                "qopt.max_sequence": str(args.max_sequence)}
    params = V * D * 2 + cfg.n_layers * (2 * D * D + 2 * KV * D + 3 * D * Hd + 2 * D) + D
    doc = (f"random Llama-shaped model (dim {D}, hidden {Hd}, {cfg.n_layers} layers, {cfg.n_heads} heads, "
           f"{cfg.n_kv_heads} kv heads, vocab {V}, {params / 1e9:.2f}B parameters, seed {args.seed}) written by "
           f"qopt scripts/make_random_llama.py")
    start = time.time()
    model = build_model(cfg, w, kv_cache=True, opset=args.opset, metadata=metadata, doc=doc, builder=g,
                        rope_theta=shape["rope_theta"])
    g.close()
    model.ir_version = ir_version_for(args.opset)
    onnx.save_model(model, out)
    onnx.checker.check_model(out)  # by path: the external data is checked where the model points
    print(f"wrote {args.output} ({len(model.graph.node)} nodes, {params / 1e6:.1f}M parameters, "
          f"{g.bytes / 2**30:.2f} GiB of weights in {os.path.basename(out)}.data, "
          f"{time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
