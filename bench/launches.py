"""Kernel launches per forward pass (one program run: a prefill, or one decode step of the KV-cache graphs), raised
(qopt's default) and with --raise=false, for the shipped and test models; and how many of those launches compute
integer tensors (shape arithmetic and masks), which a static decode entry must not run.

    /usr/bin/python3 bench/launches.py [--out bench] [--stories15m ONNX]

Counts the kern.launch ops of `qopt MODEL --emit=kern` (one launch each when run). Needs a build. Writes
OUT/launches.md and OUT/launches.json. --stories15m: the stories15M KV-cache ONNX graph (scripts/llama2c_to_onnx.py
--kv-cache); left out when not given.
"""
import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QOPT = os.path.join(ROOT, "build", "bin", "qopt")
LAUNCH = re.compile(r'kern\.launch "(\w+)".*-> (.*)$')


def count(onnx, flags):
    p = subprocess.run([QOPT, onnx, "--emit=kern", *flags], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"qopt {onnx} failed:\n{p.stderr}")
    total = integer = 0
    kinds = {}
    for line in p.stdout.splitlines():
        m = LAUNCH.search(line)
        if not m:
            continue
        total += 1
        kinds[m.group(1)] = kinds.get(m.group(1), 0) + 1
        if not re.search(r"x?f(16|32|64)>|bf16>", m.group(2)):
            integer += 1
    return total, integer, kinds


def layers_of(onnx):
    p = subprocess.run([QOPT, onnx, "--emit=nn"], capture_output=True, text=True)
    return max(1, p.stdout.count("nn.attention("))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "bench"))
    ap.add_argument("--stories15m", default="")
    a = ap.parse_args()
    models = [("stories260K (KV)", os.path.join(ROOT, "models/stories260K/stories260K-kv.onnx"))]
    if a.stories15m:
        models.append(("stories15M (KV)", a.stories15m))
    for fam in ("llama", "qwen2", "mistral", "phi3", "gpt2"):
        for v in ("", ".sdpa", ".ids"):
            models.append((f"HF {fam}{v}", os.path.join(ROOT, "test/hf", f"{fam}{v}.onnx")))
    rows = []
    for name, onnx in models:
        layers = layers_of(onnx)
        raised, raisedInt, kinds = count(onnx, [])
        plain, plainInt, _ = count(onnx, ["--raise=false"])
        rows.append(dict(model=name, layers=layers, raised=raised, raised_integer=raisedInt,
                         raised_per_layer=round(raised / layers, 1), unraised=plain, unraised_integer=plainInt,
                         raised_kernels=kinds))
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "launches.json"), "w") as f:
        json.dump(dict(command="/usr/bin/python3 bench/launches.py " + " ".join(sys.argv[1:]), rows=rows), f, indent=1)
    md = ["# Kernel launches per forward pass", "",
          "`/usr/bin/python3 bench/launches.py" + (" --stories15m ..." if a.stories15m else "") +
          "`: kern.launch ops of `qopt MODEL --emit=kern` (default bounds), raised and with `--raise=false`; "
          "'integer' counts launches whose results are integer or boolean (shape arithmetic, masks).", "",
          "| model | layers | raised | per layer | of which integer | --raise=false | of which integer |",
          "|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['model']} | {r['layers']} | {r['raised']} | {r['raised_per_layer']} | {r['raised_integer']} | "
                  f"{r['unraised']} | {r['unraised_integer']} |")
    with open(os.path.join(a.out, "launches.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
