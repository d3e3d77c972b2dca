"""Checks one Hugging Face export end to end:

    check_export.py QOPT QRUN HFDIR NAME VARIANT WORKDIR

NAME is a family (llama, qwen2, mistral, phi3, gpt2), VARIANT is eager (NAME.onnx: input_ids + attention_mask),
sdpa (NAME.sdpa.onnx, the same inputs) or ids (NAME.ids.onnx: input_ids only). Compiles the model raised (qopt's
default) and with --raise=false at batch <= 2, sequence <= 16, runs both on the exported inputs (2x7, one row
left-padded; the ids variant without the mask) and checks:
  - the raised model's ops: rms_norm or layer_norm, and gated_act or gelu, replace their decompositions;
  - raised logits equal the unraised ones within 1e-5 relative (of the largest logit) and match onnxruntime's
    reference (rtol 1e-4, atol 1e-5);
  - `qopt NAME.onnx --quantize=rtn4 -o model.bin` with no other flag compiles, and the result runs on the first row.
Prints one line per check; exits non-zero on the first failure.
"""
import json
import os
import sys

import numpy as np

from hfrun import Runner

qopt, qrun, hf, name, variant, work = sys.argv[1:7]
os.makedirs(work, exist_ok=True)
stem = name if variant == "eager" else f"{name}.{variant}"
onnx = os.path.join(hf, stem + ".onnx")
ref = np.load(os.path.join(hf, stem + ".logits.npy"))
inputs = {"input_ids": os.path.join(hf, name + ".input_ids.npy")}
if variant != "ids":
    inputs["attention_mask"] = os.path.join(hf, name + ".attention_mask.npy")


runner = Runner(stem, qrun, work)
logits = runner.logits


def run(cmd):
    return runner.run(cmd).stdout


bounds = ["--max-dim", "batch=2", "--max-dim", "sequence=16"]
raised_bin, plain_bin = os.path.join(work, stem + ".bin"), os.path.join(work, stem + ".plain.bin")
run([qopt, onnx, *bounds, "-o", raised_bin])
run([qopt, onnx, *bounds, "--raise=false", "-o", plain_bin])

nn = run([qopt, onnx, "--emit=nn"])
norm = "nn.layer_norm" if name == "gpt2" else "nn.rms_norm"
act = "nn.gelu tanh" if name == "gpt2" else "nn.gated_act silu"
counts = {op: nn.count(op + "(") for op in (norm, act)}
if min(counts.values()) == 0 or 'nn.unary "sigmoid"' in nn or "nn.reduce" in nn and name != "gpt2":
    sys.exit(f"{stem}: raised ops missing: {counts}")
print(f"{stem}: raised {', '.join(f'{v} {k}' for k, v in counts.items())}")

got, plain = logits(raised_bin, inputs, "raised"), logits(plain_bin, inputs, "plain")
rel = float(np.abs(got - plain).max() / np.abs(plain).max())
print(f"{stem}: raised vs unraised max diff {rel:.2g} of max |logit|")
if got.shape != plain.shape or rel > 1e-5:
    sys.exit(f"{stem}: raised and unraised logits differ")
diff = float(np.abs(got - ref).max())
print(f"{stem}: raised vs onnxruntime max |diff| {diff:.2g}")
if got.shape != ref.shape or not np.allclose(got, ref, rtol=1e-4, atol=1e-5):
    sys.exit(f"{stem}: logits differ from onnxruntime's")

# The command users type: no bounds, no flags but the scheme.
q_bin = os.path.join(work, stem + ".rtn4.bin")
report = os.path.join(work, "rtn4.json")
run([qopt, onnx, "--quantize=rtn4", "-o", q_bin, "--report", report])
layers = json.load(open(report))["layers"]
kept = [l for l in layers if l["format"] == "f32"]
if len(kept) != 1 or not kept[0].get("float_reason", "").startswith("output head") or \
        any(l["format"] != "int4" for l in layers if l is not kept[0]):
    sys.exit(f"{stem}: expected every layer int4 but the output head: {[(l['name'], l['format']) for l in layers]}")
print(f"{stem}: rtn4 report: {len(layers) - 1} layers int4, output head {kept[0]['name']} kept in f32")
first = {}
for k, v in inputs.items():
    first[k] = os.path.join(work, f"first.{k}.npy")
    np.save(first[k], np.load(v)[:1])
q = logits(q_bin, first, "rtn4")
if q.shape != ref[:1].shape or not np.isfinite(q).all():
    sys.exit(f"{stem}: rtn4 model gave {q.shape}")
print(f"{stem}: rtn4 with no other flag runs, logits {q.shape}")
