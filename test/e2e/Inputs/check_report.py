"""Checks a `qopt --report` JSON: QUANTIZED layers by METHOD and FLOAT layers kept in f32, each quantized layer's
stored bytes equal to its format's (packed weight, scales: float16 for int3/int4, float32 for 8 bits, uint8
zeros), relative errors in (0, 0.5) (the
output error only for calibrated methods), and
the model's size before quantization equal to the float compile's (FLOAT_REPORT.json, from --quantize=none).
Usage: check_report.py REPORT.json METHOD QUANTIZED FLOAT FLOAT_REPORT.json"""
import json
import sys

r = json.load(open(sys.argv[1]))
method, nq, nf = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
q = [l for l in r["layers"] if l["format"] != "f32"]
f = [l for l in r["layers"] if l["format"] == "f32"]
errors = []
if len(q) != nq or len(f) != nf:
    errors.append(f"{len(q)} quantized and {len(f)} float layers, expected {nq} and {nf}")
saved = 0
for l in q:
    K, N, g, bits = l["inputs"], l["outputs"], l["group_size"], l["bits"]
    packed = N * K // 2 if bits in (3, 4) else N * K
    params = 1 if l["granularity"] == "tensor" else N * (K // g)
    scale_bytes = 2 if bits in (3, 4) else 4  # these models' int4 scales all lie in float16's range
    if l["scales"] != ("f16" if scale_bytes == 2 else "f32"):
        errors.append(f"{l['name']}: {l['scales']} scales for {bits} bits")
    want = packed + scale_bytes * params + (params if not l["symmetric"] else 0)
    if l["bytes"] != want or l["float_bytes"] != 4 * N * K:
        errors.append(f"{l['name']}: {l['bytes']} bytes ({l['float_bytes']} float), expected {want} ({4 * N * K})")
    if l["method"] != method:
        errors.append(f"{l['name']}: method {l['method']}, expected {method}")
    # output errors need calibration rows: awq and gptq have them, plain rtn does not
    for key in ("weight_rel_error", "output_rel_error") if method != "rtn" else ("weight_rel_error",):
        if not 0 < l.get(key, -1) < 0.5:
            errors.append(f"{l['name']}: {key} = {l.get(key)}")
    saved += l["float_bytes"] - l["bytes"]
ref = json.load(open(sys.argv[5]))
if r["weight_bytes_before"] != ref["weight_bytes_after"] or ref["weight_bytes_before"] != ref["weight_bytes_after"]:
    errors.append(f"before: {r['weight_bytes_before']} bytes; the float compile has {ref['weight_bytes_after']}")
if method != "rtn" and not any(p["pass"] == "qopt-calibrate" for p in r["passes"]):
    errors.append("no time for qopt-calibrate")
print(f"{len(q)} quantized, {len(f)} float; saved {saved} bytes")
for e in errors:
    print("error:", e)
sys.exit(1 if errors else 0)
