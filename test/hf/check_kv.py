"""Checks one Hugging Face export with its KV cache as graph inputs and outputs (made by scripts/make_hf_models.py)
end to end:

    check_kv.py QOPT QRUN HFDIR NAME VARIANT WORKDIR

VARIANT is sdpa (NAME.kv.onnx) or eager (NAME.eager.kv.onnx: an explicit additive mask sized by the cache); both
are checked against the same references (NAME.kv.prompt.npy, NAME.kv.logits.npy, NAME.kv.greedy.txt).

Compiles it raised (qopt's default: the cache becomes session state, with `prefill` and a one-token `decode` entry)
and with --raise=false (the cache stays in the inputs and outputs) at sequence, past_sequence <= 16, and checks:
  - the raised model has a `decode` entry; prints its launches per run (and per layer: launches - 4 over the
    layers) and its host instructions, which must be none;
  - the raised model from an empty cache (one run over the 7-token prompt) equals the unraised one fed an empty
    cache within 1e-5 relative (of the largest logit), and torch's logits for the prompt (rtol 1e-4, atol 1e-5);
  - greedy generation through the cache (`qrun --generate --prompt-ids`: the prompt in one run, then a token per
    run through `decode`) equals torch's greedy tokens (NAME.kv.greedy.txt), and every token after the prompt ran
    through `decode` (QRT_PROFILE's run count);
  - `qopt NAME.kv.onnx --quantize=rtn4 -o model.bin` with no other flag compiles with a decode entry, and
    generates through it.
Prints one line per check; exits non-zero on the first failure.
"""
import os
import re
import sys

import numpy as np

from hfrun import Runner

qopt, qrun, hf, name, variant, work = sys.argv[1:7]
os.makedirs(work, exist_ok=True)
stem = name + ".kv" if variant == "sdpa" else f"{name}.{variant}.kv"
onnx = os.path.join(hf, stem + ".onnx")
prompt = os.path.join(hf, name + ".kv.prompt.npy")
ref = np.load(os.path.join(hf, name + ".kv.logits.npy"))
greedy = open(os.path.join(hf, name + ".kv.greedy.txt")).read().split()


runner = Runner(stem, qrun, work)
run, logits = runner.run, runner.logits


bounds = ["--max-dim", "sequence=16", "--max-dim", "past_sequence=16"]
raised_bin, plain_bin = os.path.join(work, stem + ".bin"), os.path.join(work, stem + ".plain.bin")
log = run([qopt, onnx, *bounds, "-o", raised_bin]).stderr
run([qopt, onnx, *bounds, "--raise=false", "-o", plain_bin])
nn = run([qopt, onnx, "--emit=nn"]).stdout
layers = nn.count("nn.attention(")
entry = re.search(r"entry 'decode': (\d+) launches per run, .* (\d+) host instructions", log)
if not entry or layers == 0:
    sys.exit(f"{stem}: no decode entry ({layers} attention layers):\n{log}")
launches, host = int(entry.group(1)), int(entry.group(2))
print(f"{stem}: decode {launches} launches per run, {layers} layers: {(launches - 4) / layers:g} per layer + 4, "
      f"{host} host instructions")
if host:
    sys.exit(f"{stem}: the decode entry runs instructions on the host")

# From an empty cache: the raised model keeps it as state; the unraised one takes it as inputs of length 0.
got = logits(raised_bin, {"input_ids": prompt}, "raised")
plain_inputs = {"input_ids": prompt}
for m in re.finditer(r"tensor<(\d+|\?)x(\d+)x\?x(\d+)xf32> \{nn.dims = \[[^]]*\], nn.name = \"(past_key_values\.[^\"]+)\"", nn):
    path = os.path.join(work, m.group(4) + ".npy")
    np.save(path, np.zeros((1, int(m.group(2)), 0, int(m.group(3))), np.float32))
    plain_inputs[m.group(4)] = path
if len(plain_inputs) != 1 + 2 * layers:
    sys.exit(f"{stem}: expected {2 * layers} past inputs, found {len(plain_inputs) - 1}")
plain = logits(plain_bin, plain_inputs, "plain")
rel = float(np.abs(got - plain).max() / np.abs(plain).max())
print(f"{stem}: raised vs unraised max diff {rel:.2g} of max |logit|")
if got.shape != plain.shape or rel > 1e-5:
    sys.exit(f"{stem}: raised and unraised logits differ")
diff = float(np.abs(got - ref).max())
print(f"{stem}: raised vs torch max |diff| {diff:.2g}")
if got.shape != ref.shape or not np.allclose(got, ref, rtol=1e-4, atol=1e-5):
    sys.exit(f"{stem}: logits differ from torch's")

# Greedy through the cache, as torch generated it.
ids = ",".join(str(t) for t in np.load(prompt)[0])
gen = run([qrun, raised_bin, "--generate", "--prompt-ids", ids, "--max-tokens", "8"],
          env=dict(os.environ, QRT_PROFILE="1"))
tokens = gen.stdout.split()
print(f"{stem}: greedy {' '.join(tokens)}")
if tokens != greedy:
    sys.exit(f"{stem}: greedy tokens differ from torch's: {' '.join(greedy)}")
decode = re.search(r"entry 'decode': (\d+) runs", gen.stderr)
steps = len(tokens) - np.load(prompt).shape[1] - 1  # the last token is printed, never fed
if not decode or int(decode.group(1)) != steps:
    sys.exit(f"{stem}: expected {steps} decode runs:\n{gen.stderr}")
print(f"{stem}: {steps} tokens through the decode entry")

# The command users type: no bounds, no flags but the scheme.
q_bin = os.path.join(work, stem + ".rtn4.bin")
q_log = run([qopt, onnx, "--quantize=rtn4", "-o", q_bin]).stderr
if "entry 'decode'" not in q_log:
    sys.exit(f"{stem}: rtn4 compile has no decode entry:\n{q_log}")
q_tokens = run([qrun, q_bin, "--generate", "--prompt-ids", ids, "--max-tokens", "4"]).stdout.split()
if len(q_tokens) < len(ids.split(",")) + 1 or q_tokens[: len(ids.split(","))] != ids.split(","):
    sys.exit(f"{stem}: rtn4 generation gave {q_tokens}")
print(f"{stem}: rtn4 with no other flag has a decode entry and generates")
