"""PyTorch's linear layers at the shapes of qopt-gpu-kernel-check --bench (Llama-3-8B's K/N at decode batch sizes):
fp16 F.linear and torch's int4 weight-only kernel (_weight_int4pack_mm, g128, bf16), each timed as the median of
CUDA-event measurements over 200 back-to-back calls; and at prompt sizes (M = 2048, 4096; K=4096, N=14336) fp16
F.linear next to torch._scaled_mm on FP8 E4M3 operands with a scale per row of x and per weight channel (results in
bfloat16 and in float32, as qopt's products write them), plus torch's own rounding of x to FP8 per row, and
torch._int_mm (int8 x int8 -> int32, W8A8 int8's product) alone and with the scaling of its int32 sums by a scale
per row and channel into float32. Prints one line per shape. Needs torch with CUDA.

    python3 bench/gpu/gemm_torch.py [--cold]

--cold: the decode-size products (M = 1, 4, 16) take their weights from copies in turn, 256 MB or more in all, so
that every call reads them from DRAM (as a decode step does) rather than partly from the 50 MB L2 (qopt-gpu-kernel-
check --bench --cold does the same).
"""
import argparse
import itertools
import statistics

import torch
import torch.nn.functional as F


def timed(fn, reps=200, rounds=5):
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(rounds):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) * 1e3 / reps)  # us
    return statistics.median(times)


COLD_BYTES = 256 << 20


def copies(cold, nbytes):
    """How many copies of nbytes of weights the calls rotate over (1 unless cold)."""
    return min(COLD_BYTES // nbytes + 1, 64) if cold else 1


def int4_linear(M, K, N, cold):
    w = torch.randint(0, 16, (N, K), dtype=torch.int32, device="cuda")
    packed_u8 = (w[:, 1::2] << 4 | w[:, ::2]).to(torch.uint8)
    try:
        packed = torch._convert_weight_to_int4pack(packed_u8, 8)
    except Exception:
        packed = torch._convert_weight_to_int4pack(w, 8)
    sz = torch.rand(K // 128, N, 2, dtype=torch.bfloat16, device="cuda")
    x = torch.randn(M, K, dtype=torch.bfloat16, device="cuda")
    n = copies(cold, N * K // 2 + sz.numel() * 2)
    weights = itertools.cycle([(packed, sz)] + [(packed.clone(), sz.clone()) for _ in range(n - 1)])

    def call():
        p, s = next(weights)
        return torch._weight_int4pack_mm(x, p, 128, s)
    return call


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cold", action="store_true", help="weights from copies in turn, read from DRAM")
    args = ap.parse_args()
    print("torch %s, %s%s" % (torch.__version__, torch.cuda.get_device_name(), ", cold weights" if args.cold else ""))
    for K, N in ((4096, 14336), (14336, 4096)):
        for M in (1, 4, 16):
            x = torch.randn(M, K, dtype=torch.float16, device="cuda")
            w = torch.randn(N, K, dtype=torch.float16, device="cuda") * 0.05
            ws = itertools.cycle([w] + [w.clone() for _ in range(copies(args.cold, N * K * 2) - 1)])
            fp16 = timed(lambda: F.linear(x, next(ws)))
            try:
                int4 = "%.2f us" % timed(int4_linear(M, K, N, args.cold))
            except Exception as e:  # an API this torch lacks
                int4 = "n/a (%s)" % type(e).__name__
            print("torch M=%d K=%d N=%d: fp16 F.linear %.2f us (%.0f GB/s of weights), int4pack g128 %s" %
                  (M, K, N, fp16, N * K * 2 / fp16 * 1e-3, int4))
    for M in (2048, 4096):
        fp8_prompt(M, 4096, 14336)


def fp8_prompt(M, K, N):
    x = torch.randn(M, K, dtype=torch.float16, device="cuda")
    w = torch.randn(N, K, dtype=torch.float16, device="cuda") * 0.05
    fp16 = timed(lambda: F.linear(x, w), reps=20)
    e4m3 = torch.float8_e4m3fn

    def quantize(t):  # per row: max |row| / 448
        s = t.abs().amax(dim=1, keepdim=True).float().clamp(min=1e-12) / 448.0
        return (t.float() / s).clamp(-448.0, 448.0).to(e4m3), s

    xq, sx = quantize(x)
    wq, sw = quantize(w)
    line = "torch M=%d K=%d N=%d: fp16 F.linear %.2f us" % (M, K, N, fp16)
    for out in (torch.bfloat16, torch.float32):
        try:
            us = timed(lambda: torch._scaled_mm(xq, wq.t(), scale_a=sx, scale_b=sw.t(), out_dtype=out), reps=20)
            line += ", _scaled_mm rowwise -> %s %.2f us" % (str(out).replace("torch.", ""), us)
        except Exception as e:  # a combination this torch lacks
            line += ", _scaled_mm rowwise -> %s n/a (%s)" % (str(out).replace("torch.", ""), type(e).__name__)
    line += ", x to FP8 per row %.2f us" % timed(lambda: quantize(x), reps=20)
    xi = torch.randint(-127, 128, (M, K), dtype=torch.int8, device="cuda")
    wi = torch.randint(-127, 128, (N, K), dtype=torch.int8, device="cuda")
    rs, cs = torch.rand(M, 1, device="cuda"), torch.rand(1, N, device="cuda")
    try:
        line += ", _int_mm %.2f us" % timed(lambda: torch._int_mm(xi, wi.t()), reps=20)
        line += ", _int_mm scaled -> float32 %.2f us" % timed(
            lambda: torch._int_mm(xi, wi.t()).float() * rs * cs, reps=20)
    except Exception as e:  # an API this torch lacks
        line += ", _int_mm n/a (%s)" % type(e).__name__
    print(line)


if __name__ == "__main__":
    main()
