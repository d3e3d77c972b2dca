"""CPU decode speed of stories15M (KV-cache graph), raised (qopt's default) against --raise=false, in one run:
tokens/s of greedy generation and kernel launches per token (QRT_PROFILE's count of launches per run).

    /usr/bin/python3 bench/cpu_decode.py [--tokens 256] [--repeats 5] [--threads N] [--out bench]

Needs a build (scripts/build.sh) and fetches stories15M through the npm registry (scripts/fetch_stories15M.sh).
Each configuration generates --tokens tokens from BOS --repeats times, alternating between the two models; the
figure is the median. Writes OUT/cpu_decode.json and OUT/cpu_decode.md.
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bin")
PY = "/usr/bin/python3"


def run(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stdout}{p.stderr}")
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="qrun --threads (0: qrun's default)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench"))
    a = ap.parse_args()
    ckpt = run(["bash", os.path.join(ROOT, "scripts/fetch_stories15M.sh")]).stdout.strip().splitlines()[-1]
    tok = os.path.join(ROOT, "models/stories15M/tokenizer.bin")
    work = tempfile.mkdtemp(prefix="qopt-cpu-decode-")
    onnx = os.path.join(work, "s15-kv.onnx")
    run([PY, os.path.join(ROOT, "scripts/llama2c_to_onnx.py"), ckpt, tok, "--kv-cache", "--external-data", "-o", onnx])
    configs = {"raised": [], "--raise=false": ["--raise=false"]}
    models = {}
    for name, flags in configs.items():
        models[name] = os.path.join(work, name.strip("-").replace("=", "-") + ".bin")
        run([os.path.join(BIN, "qopt"), onnx, "--tokenizer", tok, *flags, "-o", models[name]])
    threads = ["--threads", str(a.threads)] if a.threads else []
    times = {name: [] for name in configs}
    launches, runs, texts = {}, {}, {}
    env = dict(os.environ, QRT_PROFILE="1")
    for _ in range(a.repeats):
        for name in configs:
            t0 = time.perf_counter()
            p = run([os.path.join(BIN, "qrun"), models[name], *threads, "--generate", "--max-tokens", str(a.tokens)],
                    env=env)
            times[name].append(time.perf_counter() - t0)
            m = re.search(r"(\d+) runs, (\d+) launches \(([\d.]+) per run\)", p.stderr)
            if not m:
                sys.exit(f"no profile line from qrun:\n{p.stderr}")
            runs[name], launches[name] = int(m.group(1)), float(m.group(3))
            texts[name] = p.stdout
    if texts["raised"] != texts["--raise=false"]:
        sys.exit("raised and unraised models generated different text")
    rows = []
    for name in configs:
        med = statistics.median(times[name])
        rows.append(dict(config=name, tokens=runs[name], median_s=round(med, 4), tokens_per_s=round(runs[name] / med, 1),
                         launches_per_token=launches[name], times_s=[round(t, 4) for t in times[name]]))
    result = dict(command="/usr/bin/python3 bench/cpu_decode.py " + " ".join(sys.argv[1:]),
                  machine=f"{platform.machine()}, {os.cpu_count()} cores", model="stories15M (KV-cache graph, float32)",
                  note="wall time of `qrun --generate` (load included), one forward per token", rows=rows)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "cpu_decode.json"), "w") as f:
        json.dump(result, f, indent=1)
    md = ["# CPU decode: stories15M, raised vs --raise=false", "",
          f"`{result['command']}` on {result['machine']}; {result['note']}; median of {a.repeats}.", "",
          "| build | tokens | median s | tokens/s | launches per token |", "|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['config']} | {r['tokens']} | {r['median_s']} | {r['tokens_per_s']} | {r['launches_per_token']:.0f} |")
    with open(os.path.join(a.out, "cpu_decode.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
