"""Checks a --quantize=mixed report: every linear layer (but the float output head) has its candidates, measured
KL and choice; the layers that read one input (q/k/v, gate/up) share their choice; the achieved average bits per
weight (the chosen candidates' bits, weighted by the layers' sizes) is within the budget and near it; and each
layer's reported format matches its choice.

    check_mixed.py REPORT.json BUDGET [METHOD]

With METHOD (e.g. gptq), every quantized layer's reported method must be it (int4 layers' under AWQ are "awq",
int8 ones "rtn"); with gptq the int4 layers' must be "awq+gptq" (--gptq rounds AWQ's scaled weights).
"""
import json
import sys

report, budget = json.load(open(sys.argv[1])), float(sys.argv[2])
method = sys.argv[3] if len(sys.argv) > 3 else None
layers = [l for l in report["layers"] if "precision" in l]
floats = [l for l in report["layers"] if "precision" not in l]
ok = bool(layers) and all("float_reason" in l for l in floats)
bits = weights = 0.0
groups = {}
for l in layers:
    p = l["precision"]
    n = l["inputs"] * l["outputs"]
    cand = [c for c in p["candidates"] if c["format"] == p["choice"] and c.get("group_size") == p.get("group_size")]
    if len(cand) != 1 or p["budget_bits"] != budget or any(c["kl"] < 0 for c in p["candidates"]):
        ok = False
        print("bad precision record:", l["name"], p)
        continue
    bits += cand[0]["bits"] * n
    weights += n
    # format: int4 / int8 layers are quantized as chosen, float ones kept
    want = {"int4": "int4", "int8": "int8", "f16": "f32"}[p["choice"]]
    if l["format"] != want or (want == "int4" and l["group_size"] != p["group_size"]):
        ok = False
        print("format does not match the choice:", l["name"], l["format"], p["choice"])
    expect = "awq+gptq" if method == "gptq" and want == "int4" else method
    if method and want != "f32" and l.get("method") != expect:
        ok = False
        print("quantized by", l.get("method"), "instead of", expect, ":", l["name"])
    # layers of one launch (same block, same input): q/k/v and gate/up
    name = l["name"]
    key = name.replace("q_proj", "qkv").replace("k_proj", "qkv").replace("v_proj", "qkv")
    key = key.replace("gate_proj", "gu").replace("up_proj", "gu")
    groups.setdefault(key, set()).add((p["choice"], p.get("group_size")))
avg = bits / weights
print(f"{len(layers)} layers, average {avg:.4f} bits per weight (budget {budget})")
ok &= avg <= budget + 1e-6 and avg >= budget - 1.0
for key, choices in groups.items():
    if len(choices) != 1:
        ok = False
        print("a fused group has several choices:", key, choices)
sys.exit(0 if ok else 1)
