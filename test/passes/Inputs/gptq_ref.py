"""Checks qopt-gptq against an independent float64 numpy GPTQ on one small layer.

Usage: gptq_ref.py QOPT_OPT WORKDIR [--act-order] [--fp8]
Writes a layer (W [K, N], H = X^T X / rows) as nn IR, runs `qopt-opt -qopt-gptq`, reads the packed result and
compares it with the reference: the same codes (allowing a handful of rounding ties), and an output error on X
below round-to-nearest's. int4 scales are float16 values (rounded before the codes are chosen), stored as float16. --fp8: E4M3FN codes per output channel (format=e4m3, bits 8), rounded here by the
format's own grid (3 mantissa bits, exponent bias 7, subnormals below 2^-6, saturation at 448).
"""
import os
import re
import subprocess
import sys

import numpy as np

qopt_opt, work = sys.argv[1], sys.argv[2]
act_order = "--act-order" in sys.argv
fp8 = "--fp8" in sys.argv
K, N, G, BITS, BLOCK, DAMP = 64, 48, 16, 4, 8, 0.01
if fp8:
    G, BITS = K, 8  # per output channel
rng = np.random.default_rng(0)
W = (rng.standard_normal((K, N)) * 0.05).astype(np.float32)
X = rng.standard_normal((512, K)).astype(np.float32)
X[:, 3] *= 8.0   # outlier inputs make the Hessian matter
X[:, 17] *= 4.0
H = (X.astype(np.float64).T @ X.astype(np.float64) / len(X)).astype(np.float32)


def fmt(a):
    return "[" + ", ".join(fmt(r) for r in a) + "]" if a.ndim > 1 else "[" + ", ".join(f"{v:.9e}" for v in a) + "]"


ir = f"""func.func @layer(%x: tensor<?x{K}xf32>) -> tensor<?x{N}xf32> {{
  %w = nn.constant dense<{fmt(W)}> : tensor<{K}x{N}xf32> {{name = "w"}}
  %y = nn.matmul(%x, %w) {{qopt.calib = {{xtx = dense<{fmt(H)}> : tensor<{K}x{K}xf32>}}}} : (tensor<?x{K}xf32>, tensor<{K}x{N}xf32>) -> tensor<?x{N}xf32>
  return %y : tensor<?x{N}xf32>
}}
"""
os.makedirs(work, exist_ok=True)
src = os.path.join(work, "layer.mlir")
open(src, "w").write(ir)
opts = f"bits={BITS} group-size={G} block-size={BLOCK} damp={DAMP}" + (" act-order=true" if act_order else "")
opts += " format=e4m3" if fp8 else ""
out = subprocess.run([qopt_opt, src, f"-qopt-gptq={opts}"], capture_output=True, text=True, check=True).stdout


def blob(key, dtype):
    hexs = re.search(re.escape(key) + r': "0x([0-9A-Fa-f]+)"', out).group(1)
    return np.frombuffer(bytes.fromhex(hexs)[4:], dtype)


def e4m3_value(c):  # an E4M3FN code's value (no NaN codes occur here)
    c = c.astype(np.int64)
    e, m = (c >> 3) & 0xF, c & 7
    v = np.where(e == 0, m / 8.0 * 2.0 ** -6, (1 + m / 8.0) * 2.0 ** (e - 7))
    return np.where(c & 0x80, -v, v)


def e4m3_round(v):  # v rounded to the nearest E4M3FN value (ties to even), saturated at 448
    a = np.abs(v)
    e = np.floor(np.log2(np.maximum(a, 2.0 ** -6)))
    step = 2.0 ** (e - 3)
    return np.sign(v) * np.minimum(np.round(a / step) * step, 448.0)


# int4 scales are float16 values stored as float16 (FP8's per-channel ones float32).
scales = blob("w.scales", np.float32 if fp8 else np.float16).astype(np.float32).reshape(N, K // G)
if fp8:
    codes = blob("w.q", np.uint8).reshape(N, K)
    got = (e4m3_value(codes) * np.repeat(scales, G, 1)).T
else:
    packed = blob("w.q", np.uint8).reshape(N, K // 2)
    zeros = blob("w.zeros", np.uint8).reshape(N, K // G)
    codes = np.empty((N, K), np.int64)
    codes[:, 0::2] = packed & 0xF
    codes[:, 1::2] = packed >> 4
    got = ((codes - np.repeat(zeros, G, 1)) * np.repeat(scales, G, 1)).T  # back to [K, N]


def params(v):
    if fp8:
        amax = np.abs(v).max()
        return np.float32(amax / np.float32(448) if amax > 0 else 1.0), 0.0
    mn, mx = min(v.min(), 0), max(v.max(), 0)
    scale = (mx - mn) / 15 if mx > mn else 1.0
    scale = np.float32(np.float16(np.float32(scale)))  # the format's float16 scale (in float16's normal range here)
    zero = float(np.clip(np.round(-mn / scale), 0, 15))
    return np.float32(scale), zero


def q(v, scale, zero):
    if fp8:
        return e4m3_round(np.float32(v) / np.float32(scale)) * scale
    return (np.clip(np.round(v / np.float32(scale)) + zero, 0, 15) - zero) * scale


# Reference GPTQ, written from the paper's algorithm (one column at a time, no lazy batching).
Wt = W.T.astype(np.float64).copy()            # [N, K]
Hd = H.astype(np.float64).copy()
dead = np.diag(Hd) == 0
Hd[dead, dead] = 1
Wt[:, dead] = 0
Hd[np.diag_indices(K)] += DAMP * np.mean(np.diag(Hd))
perm = np.argsort(-np.diag(Hd), kind="stable") if act_order else np.arange(K)
static = None
if act_order:
    static = [[params(Wt[n, g * G:(g + 1) * G].astype(np.float32)) for g in range(K // G)] for n in range(N)]
Wp, Hp = Wt[:, perm], Hd[perm][:, perm]
U = np.linalg.cholesky(np.linalg.inv(Hp)).T   # upper factor of H^-1
ref = np.zeros((N, K))
cur = [None] * N
for i in range(K):
    orig = perm[i]
    if not act_order and orig % G == 0:
        cur = [params(Wp[n, i:i + G].astype(np.float32)) for n in range(N)]
    for n in range(N):
        s, z = static[n][orig // G] if act_order else cur[n]
        qv = q(np.float32(Wp[n, i]), s, z)
        ref[n, orig] = qv
        Wp[n, i + 1:] -= (Wp[n, i] - qv) / U[i, i] * U[i, i + 1:]
ref = ref.T

rtn = np.zeros_like(W)
for n in range(N):
    for g in range(K // G):
        s, z = params(W[g * G:(g + 1) * G, n])
        rtn[g * G:(g + 1) * G, n] = q(W[g * G:(g + 1) * G, n], s, z)
mismatch = np.mean(np.abs(got - ref) > 1e-6 * np.abs(ref).max())
err = lambda Wq: float(np.sum((X @ (W - Wq)) ** 2))
print(f"act_order={act_order} fp8={fp8}: values differing from the reference {mismatch:.4%}; "
      f"output error gptq {err(got):.4g} vs reference {err(ref):.4g} vs rtn {err(rtn):.4g}")
ok = mismatch < 0.01 and err(got) < err(rtn) and abs(err(got) - err(ref)) <= 0.02 * err(ref)
sys.exit(0 if ok else 1)
