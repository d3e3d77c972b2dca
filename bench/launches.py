"""Kernel launches per run of each entry: the general one (`main`, or `prefill` for a decoder whose KV cache is
session state) and the one-token `decode` step, raised (qopt's default) and with --raise=false, for the shipped and
test models; how many of those launches compute integer tensors (masks, and shape arithmetic the planner could not
put on the host), which the static decode entry must not run; and how many instructions run on the host (shape
arithmetic: no launch).

    /usr/bin/python3 bench/launches.py [--out bench] [--stories15m ONNX]

Counts the kern.launch ops of each function of `qopt MODEL --emit=kern` that the runtime launches (all but the
memory plan's views, marked `view`, and host instructions, marked `host`). Needs a build. Writes OUT/launches.md and OUT/launches.json. --stories15m:
the stories15M KV-cache ONNX graph (scripts/llama2c_to_onnx.py --kv-cache); left out when not given.
"""
import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QOPT = os.path.join(ROOT, "build", "bin", "qopt")
FUNC = re.compile(r"func\.func @(\w+)")
LAUNCH = re.compile(r'kern\.launch "(\w+)".*-> (.*)$')


def count(onnx, flags):
    """Per entry: launches, integer launches, launches by kernel."""
    p = subprocess.run([QOPT, onnx, "--emit=kern", *flags], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"qopt {onnx} failed:\n{p.stderr}")
    entries = {}
    entry = None
    for line in p.stdout.splitlines():
        f = FUNC.search(line)
        if f:
            entry = entries.setdefault(f.group(1), dict(launches=0, integer=0, host=0, kernels={}))
            continue
        m = LAUNCH.search(line)
        if not m or entry is None or re.search(r"[{,] view[},]", line):
            continue
        if re.search(r"[{,] ?host[},]", line):
            entry["host"] += 1
            continue
        entry["launches"] += 1
        entry["kernels"][m.group(1)] = entry["kernels"].get(m.group(1), 0) + 1
        if not re.search(r"x?f(16|32|64)>|bf16>", m.group(2)):
            entry["integer"] += 1
    return entries


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
        for v in ("", ".sdpa", ".ids", ".kv", ".eager.kv"):
            models.append((f"HF {fam}{v}", os.path.join(ROOT, "test/hf", f"{fam}{v}.onnx")))
    rows = []
    for name, onnx in models:
        layers = layers_of(onnx)
        raised = count(onnx, [])
        plain = count(onnx, ["--raise=false"])
        general = raised.get("prefill") or raised.get("main")
        decode = raised.get("decode")
        plainMain = plain.get("main")
        rows.append(dict(model=name, layers=layers, general=general["launches"], general_integer=general["integer"],
                         general_host=general["host"], decode_host=decode["host"] if decode else None,
                         unraised_host=plainMain["host"],
                         decode=decode["launches"] if decode else None,
                         decode_integer=decode["integer"] if decode else None,
                         decode_per_layer=round((decode["launches"] - 4) / layers, 1) if decode else None,
                         unraised=plainMain["launches"], unraised_integer=plainMain["integer"],
                         general_kernels=general["kernels"], decode_kernels=decode["kernels"] if decode else None))
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "launches.json"), "w") as f:
        json.dump(dict(command="/usr/bin/python3 bench/launches.py " + " ".join(sys.argv[1:]), rows=rows), f, indent=1)
    md = ["# Kernel launches per run", "",
          "`/usr/bin/python3 bench/launches.py" + (" --stories15m ..." if a.stories15m else "") +
          "`: the launches of one run of each entry of `qopt MODEL` (default bounds; views are not launched): the "
          "general entry (`prefill` for a decoder whose KV cache is session state, else `main`), the one-token "
          "`decode` entry where there is one, and the general entry with `--raise=false`. 'integer' counts launches "
          "whose results are integer or boolean (masks, and shape arithmetic that reads device data); 'host' counts "
          "the instructions the session runs on the host instead of launching them (shape arithmetic). Decode per "
          "layer: (decode - 4) / layers, the 4 being the embedding, the final norm, the head and the cache length.",
          "",
          "| model | layers | general | of which integer | host | decode | of which integer | host | "
          "decode per layer | --raise=false | of which integer | host |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    dash = lambda v: "-" if v is None else v
    for r in rows:
        md.append(f"| {r['model']} | {r['layers']} | {r['general']} | {r['general_integer']} | {r['general_host']} | "
                  f"{dash(r['decode'])} | {dash(r['decode_integer'])} | {dash(r['decode_host'])} | "
                  f"{dash(r['decode_per_layer'])} | {r['unraised']} | {r['unraised_integer']} | "
                  f"{r['unraised_host']} |")
    with open(os.path.join(a.out, "launches.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
