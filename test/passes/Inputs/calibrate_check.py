"""Independent check of qopt-calibrate on stories260K: recomputes, in float64 numpy straight from the llama2.c
checkpoint, the input of layer 0's q_proj (RMSNorm of the token embeddings) over the same windows and compares
its per-channel mean |x|, X^T X / rows, min, max and |x| percentiles with what the pass attached. The
percentiles come from a histogram with 64 equal bins per octave: each must lie at most one bin (1/64 of its
octave's base) above the exact value.

Usage: calibrate_check.py IR.mlir CHECKPOINT TOKENIZER TEXT SEQ_LEN
"""
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.abspath(sys.argv[0]).rsplit("/test/", 1)[0] + "/scripts")
import llama2c  # noqa: E402

ir, ckpt, tokpath, textpath, L = sys.argv[1:6]
L = int(L)
cfg, w = llama2c.read_checkpoint(ckpt)
ids = llama2c.Tokenizer(tokpath, cfg.vocab_size).encode(open(textpath, encoding="utf-8").read(), bos=True)
rows = [ids[i:i + L] for i in range(0, len(ids), L) if len(ids[i:i + L]) >= 2]
toks = np.concatenate([np.array(r) for r in rows])
x = w["token_embedding"][toks].astype(np.float64)
x = x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-5) * w["rms_att"][0]
want_mean = np.abs(x).mean(0)
want_xtx = x.T @ x / len(x)

text = open(ir).read()
m = re.search(r"qopt.calib = \{abs_p99 = (\S+) : f32, abs_p999 = (\S+) : f32, abs_p9999 = (\S+) : f32, "
              r"max = (\S+) : f32, max_abs = dense<\[([^\]]*)\]> : tensor<\d+xf32>, "
              r"mean_abs = dense<\[([^\]]*)\]> : tensor<(\d+)xf32>, min = (\S+) : f32, "
              r"samples = dense_resource<([^>]*)>[^,]*, tokens = (\d+) : i64, xtx = dense_resource<([^>]*)>", text)
if not m:
    sys.exit("no qopt.calib attribute found")
got_mean = np.array([float(v) for v in m.group(6).split(",")])
got_amax = np.array([float(v) for v in m.group(5).split(",")])
tokens = int(m.group(10))
hexblob = re.search(re.escape(m.group(11)) + r': "0x([0-9A-Fa-f]+)"', text).group(1)
got_xtx = np.frombuffer(bytes.fromhex(hexblob)[4:], np.float32).reshape(len(got_mean), len(got_mean))
err_mean = np.abs(got_mean - want_mean).max() / np.abs(want_mean).max()
err_xtx = np.abs(got_xtx - want_xtx).max() / np.abs(want_xtx).max()
print(f"tokens {tokens} (numpy {len(toks)}); mean|x| rel err {err_mean:.2e}; X^T X rel err {err_xtx:.2e}")
err_amax = np.abs(got_amax - np.abs(x).max(0)).max() / np.abs(x).max()
print(f"max|x| per channel rel err {err_amax:.2e}")
ok = tokens == len(toks) and err_mean < 1e-4 and err_xtx < 1e-4 and err_amax < 1e-5
got_min, got_max = float(m.group(8)), float(m.group(4))
print(f"min {got_min} (numpy {x.min():.6g}), max {got_max} (numpy {x.max():.6g})")
ok &= abs(got_min - x.min()) <= 1e-5 * abs(x.min()) and abs(got_max - x.max()) <= 1e-5 * abs(x.max())
ax = np.abs(x).ravel()
for q, g in ((0.99, 1), (0.999, 2), (0.9999, 3)):
    # the value at or below which a fraction q of |x| lies (numpy's "inverted_cdf" percentile)
    want = np.sort(ax)[int(np.ceil(q * ax.size)) - 1]
    got = float(m.group(g))
    print(f"|x| p{q * 100:g}: {got} (numpy {want:.6g})")
    ok &= want * (1 - 1e-6) <= got <= want * (1 + 1 / 64 + 1e-6)
sys.exit(0 if ok else 1)
