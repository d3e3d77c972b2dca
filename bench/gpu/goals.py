"""Judges the GPU goals from the logs of bench/gpu/goals.sh: one line per goal with its target, the figures it was
judged on and whether it holds, and `N of M goals met` last (a goal whose log is missing or lacks a figure is
listed as not measured and not counted).

    python3 bench/gpu/goals.py LOGS

LOGS/products.txt (the kernel check's --bench lines and bench/gpu/gemm_torch.py's), LOGS/llama.txt and
LOGS/fp8.txt (bench/gpu/llama8b.sh's output: qopt's per-model summaries, model.bin's weights section, qrun --bench,
PyTorch's HF run). Every ratio is of figures from one log, so from one run.
"""
import argparse
import os
import re
import sys


def read(logs, name):
    path = os.path.join(logs, name)
    return open(path, encoding="utf-8", errors="replace").read() if os.path.exists(path) else None


def figures(ours, unit, theirs):
    """A goal's figures when some are missing: `None` for each absent one."""
    return "qopt %s; %s" % ("%.2f %s" % (ours, unit) if ours is not None else None,
                            ", ".join("%s %s" % (k, "%.2f %s" % (v, unit) if v is not None else None)
                                      for k, v in theirs.items()))


def kernel_us(text, name):
    """The time of the kernel check's case `name` (its --bench line: `PASS NAME: ..., T us, ...`)."""
    m = re.search(r"^PASS %s: .*?, ([0-9.]+) us" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def torch_product(text, M, K, N):
    """PyTorch's figures at one shape from gemm_torch.py: {'linear': us, 'int4pack': us, 'scaled_bf16': us, ...}."""
    m = re.search(r"^torch M=%d K=%d N=%d: (.*)$" % (M, K, N), text, re.M)
    if not m:
        return {}
    line, out = m.group(1), {}
    for key, pattern in (("linear", r"fp16 F\.linear ([0-9.]+) us"), ("int4pack", r"int4pack g128 ([0-9.]+) us"),
                         ("scaled_bf16", r"_scaled_mm rowwise -> bfloat16 ([0-9.]+) us"),
                         ("scaled_f32", r"_scaled_mm rowwise -> float32 ([0-9.]+) us")):
        f = re.search(pattern, line)
        if f:
            out[key] = float(f.group(1))
    return out


def qrun_runs(text):
    """qrun --bench's runs in llama8b.sh's log, by model: {model: [{'prompt', 'new', 'prefill', 'decode', 'memory'}]}.
    A model's runs follow its `[time] qrun MODEL` line."""
    runs, model, run = {}, None, None
    for line in text.splitlines():
        m = re.match(r"^\[[0-9:]+\] qrun (\S+)$", line)
        if m:
            model, run = m.group(1), None
            runs.setdefault(model, [])
            continue
        if model is None:
            continue
        m = re.match(r"^device .*, prompt (\d+) tokens, (\d+) new tokens", line)
        if m:
            run = {"prompt": int(m.group(1)), "new": int(m.group(2))}
            runs[model].append(run)
            continue
        if run is None:
            continue
        for key, pattern in (("prefill", r"^prefill: ([0-9.]+) tokens/s"), ("decode", r"^decode: ([0-9.]+) tokens/s"),
                             ("memory", r"^memory: ([0-9.]+) MiB held")):
            m = re.match(pattern, line)
            if m:
                run[key] = float(m.group(1))
    return runs


def qrun_figure(runs, model, prompt, key):
    for run in runs.get(model, []):
        if run["prompt"] == prompt and key in run:
            return run[key]
    return None


def compiled(text, model):
    """(weights section bytes, decode entry's state bytes) of `model` from its compile: the `model.bin MODEL:`
    line llama8b.sh prints and qopt's summary of the decode entry, both after `[time] compiling MODEL`."""
    m = re.search(r"^\[[0-9:]+\] compiling %s$(.*?)(?=^\[[0-9:]+\] |\Z)" % re.escape(model), text, re.M | re.S)
    if not m:
        return None, None
    body = m.group(1)
    w = re.search(r"^model\.bin %s: section weights: (\d+) bytes" % re.escape(model), body, re.M)
    s = re.search(r"entry 'decode': .*? state (\d+) bytes", body)
    return (int(w.group(1)) if w else None), (int(s.group(1)) if s else None)


def torch_figure(text, pattern):
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else None


class Report:
    def __init__(self):
        self.met = self.judged = 0

    def goal(self, name, target, held, figures):
        """One goal's line; `held` None: not measured."""
        if held is None:
            print("not measured  %s (%s): %s" % (name, target, figures))
            return
        self.judged += 1
        self.met += bool(held)
        print("%-13s %s (%s): %s" % ("met" if held else "NOT MET", name, target, figures))


def products(report, text):
    for K, N in ((4096, 14336), (14336, 4096)):
        for M in (1, 4, 16):
            ours = kernel_us(text, "int4 g128 M=%d K=%d N=%d f16 scales tiles" % (M, K, N))
            t = torch_product(text, M, K, N)
            name = "W4A16 M=%d K=%d N=%d" % (M, K, N)
            target = "at least 2.5x F.linear and 2x int4pack"
            if ours is None or "linear" not in t or "int4pack" not in t:
                report.goal(name, target, None, figures(ours, "us", {"F.linear": t.get("linear"),
                                                                     "int4pack": t.get("int4pack")}))
                continue
            a, b = t["linear"] / ours, t["int4pack"] / ours
            report.goal(name, target, a >= 2.5 and b >= 2.0,
                        "qopt %.2f us; F.linear %.2f us = %.2fx, int4pack %.2f us = %.2fx; goal %.2f us" %
                        (ours, t["linear"], a, t["int4pack"], b, min(t["linear"] / 2.5, t["int4pack"] / 2.0)))
    ours = kernel_us(text, "fp8 e4m3 act dynamic M=4096 K=4096 N=14336 [cuBLASLt]")
    t = torch_product(text, 4096, 4096, 14336)
    name, target = "FP8 GEMM M=4096 K=4096 N=14336", "at least 1.6x F.linear, within 10% of _scaled_mm rowwise"
    if ours is None or "linear" not in t or "scaled_bf16" not in t:
        report.goal(name, target, None, figures(ours, "us", {"F.linear": t.get("linear"),
                                                             "_scaled_mm -> bfloat16": t.get("scaled_bf16")}))
        return
    a, b = t["linear"] / ours, ours / t["scaled_bf16"]
    extra = ", float32 out %.2f us" % t["scaled_f32"] if "scaled_f32" in t else ""
    report.goal(name, target, a >= 1.6 and b <= 1.1,
                "qopt %.2f us; F.linear %.2f us = %.2fx; _scaled_mm -> bfloat16 %.2f us (qopt at %.2fx its time%s)" %
                (ours, t["linear"], a, t["scaled_bf16"], b, extra))


def llama(report, text):
    runs = qrun_runs(text)
    decode = torch_figure(text, r"^torch decode \(HF generate, static cache, bf16\): ([0-9.]+) tokens/s")
    prefill = torch_figure(text, r"^torch prefill, last position's logits only .*?: ([0-9.]+) tokens/s")
    prefill_all = torch_figure(text, r"^torch prefill \(bf16 forward, sdpa, 2048 tokens\): ([0-9.]+) tokens/s")
    for model, want in (("f16", 1.6), ("rtn4", 2.5)):
        ours = qrun_figure(runs, model, 32, "decode")
        name, target = "Llama-3-8B %s decode" % model, "at least %.1fx PyTorch's static cache" % want
        if ours is None or decode is None:
            report.goal(name, target, None, figures(ours, "tokens/s", {"PyTorch": decode}))
        else:
            report.goal(name, target, ours / decode >= want,
                        "%.1f against %.1f tokens/s = %.2fx" % (ours, decode, ours / decode))
    for model in ("f16", "rtn4"):
        ours = qrun_figure(runs, model, 2048, "prefill")
        name, target = "Llama-3-8B %s prefill 2048" % model, "at least 0.8x PyTorch's bf16 forward"
        if ours is None or prefill is None:
            report.goal(name, target, None, figures(ours, "tokens/s", {"PyTorch": prefill}))
        else:
            extra = ("; %.2fx of the all-logits forward's %.0f" % (ours / prefill_all, prefill_all)
                     if prefill_all else "")
            report.goal(name, target, ours / prefill >= 0.8,
                        "%.0f against %.0f tokens/s (last logits) = %.2fx%s" % (ours, prefill, ours / prefill, extra))
    held = qrun_figure(runs, "rtn4", 32, "memory")
    weights, state = compiled(text, "rtn4")
    name, target = "Llama-3-8B rtn4 decode memory", "at most weights + KV state + 10%"
    if held is None or weights is None or state is None:
        report.goal(name, target, None, "held %s MiB, weights %s bytes, KV state %s bytes" % (held, weights, state))
    else:
        bound = (weights + state) / 2**20
        report.goal(name, target, held <= 1.1 * bound,
                    "%.1f MiB held, weights %.1f + KV state %.1f MiB: %.1f%% over" %
                    (held, weights / 2**20, state / 2**20, (held / bound - 1) * 100))


def fp8(report, text):
    runs = qrun_runs(text)
    for model, key, prompt, want, what in (("fp8w", "decode", 32, 1.7, "decode"),
                                           ("fp8", "prefill", 2048, 1.4, "prefill 2048")):
        ours, base = qrun_figure(runs, model, prompt, key), qrun_figure(runs, "f16", prompt, key)
        name, target = "Llama-3-8B %s %s" % (model, what), "at least %.1fx qopt's float16" % want
        if ours is None or base is None:
            report.goal(name, target, None, figures(ours, "tokens/s", {"float16": base}))
        else:
            report.goal(name, target, ours / base >= want,
                        "%.1f against %.1f tokens/s = %.2fx" % (ours, base, ours / base))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("logs", help="the LOGS directory of bench/gpu/goals.sh")
    args = ap.parse_args()
    report = Report()
    for name, judge in (("products.txt", products), ("llama.txt", llama), ("fp8.txt", fp8)):
        text = read(args.logs, name)
        if text is None:
            print("not measured  %s: no %s" % (judge.__name__, os.path.join(args.logs, name)))
            continue
        gpu = re.search(r"^(NVIDIA [^,\n]*)", text, re.M)
        print("%s: %s" % (name, gpu.group(1) if gpu else "GPU not named in the log"))
        judge(report, text)
    print("%d of %d goals met" % (report.met, report.judged))
    return 0


if __name__ == "__main__":
    sys.exit(main())
