"""Writes a small random llama2.c checkpoint (legacy format) for pass tests that need full multi-head attention
(n_kv_heads == n_heads), which the shipped stories260K (grouped-query) lacks. Norm weights vary per channel so
activation-aware passes see uneven channels.

    python3 make_tiny_llama.py OUT.bin [--vocab 512]
"""
import argparse
import struct

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--vocab", type=int, default=512)
a = p.parse_args()
dim, hidden, layers, heads, kv_heads, seq = 64, 128, 2, 4, 4, 64
rng = np.random.default_rng(0)


def w(*shape, scale=None):
    fan_in = shape[-1]
    return (rng.standard_normal(shape) * (scale or fan_in ** -0.5)).astype("<f4")


parts = [
    w(a.vocab, dim, scale=0.3),                                     # token_embedding
    rng.uniform(0.2, 3.0, (layers, dim)).astype("<f4"),             # rms_att
    w(layers, dim, dim), w(layers, dim, dim), w(layers, dim, dim),  # wq, wk, wv
    w(layers, dim, dim),                                            # wo
    rng.uniform(0.2, 3.0, (layers, dim)).astype("<f4"),             # rms_ffn
    w(layers, hidden, dim), w(layers, dim, hidden), w(layers, hidden, dim),  # w1, w2, w3
    rng.uniform(0.5, 2.0, (dim,)).astype("<f4"),                    # rms_final
    np.zeros((seq, dim // heads // 2), "<f4"), np.zeros((seq, dim // heads // 2), "<f4"),  # legacy freq_cis
]
with open(a.out, "wb") as f:
    f.write(struct.pack("<7i", dim, hidden, layers, heads, kv_heads, a.vocab, seq))
    for x in parts:
        f.write(np.ascontiguousarray(x).tobytes())
