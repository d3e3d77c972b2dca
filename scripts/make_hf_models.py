"""Exports small decoder LMs of several Hugging Face families to ONNX with PyTorch's current exporter and records
onnxruntime's outputs as the reference. Run where torch, transformers and onnxruntime are installed (the GPU machine; no
GPU is used): `python3 scripts/make_hf_models.py OUTDIR`. Weights are random (seeded); batch and sequence are dynamic.
For each model NAME it writes NAME.onnx (eager attention; inputs input_ids, attention_mask), NAME.input_ids.npy,
NAME.attention_mask.npy (batch 2, one row left-padded) and NAME.logits.npy (onnxruntime, CPU provider); then, from the
same model switched to "sdpa" attention, NAME.sdpa.onnx (same inputs) and NAME.ids.onnx (the only input is input_ids:
causal attention, no mask), with onnxruntime's NAME.sdpa.logits.npy and NAME.ids.logits.npy on those same arrays; plus
versions.txt (an entry per export "NAME", "NAME.sdpa", "NAME.ids"). The eager exports all run first, as before this
script had sdpa ones, and this docstring keeps its length: node metadata holds stack traces, so their bytes stay the same.
"""
import json
import os
import sys
import traceback

import numpy as np
import onnx
import onnxruntime as ort
import torch
import transformers

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)

common = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              max_position_embeddings=64)
families = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", dict(num_key_value_heads=2), 18),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", dict(num_key_value_heads=2), 20),
    "mistral": ("MistralConfig", "MistralForCausalLM", dict(num_key_value_heads=2, sliding_window=None), 19),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", dict(num_key_value_heads=4, pad_token_id=0), 18),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", dict(n_embd=64, n_layer=2, n_head=4, n_positions=64), 20),
}


class Logits(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask):
        return self.m(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


class IdsLogits(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids):
        return self.m(input_ids=input_ids, use_cache=False).logits


summary = {}
models = {}  # NAME -> (model, ids, mask, opset), exported again with sdpa attention below
for name, (cfg_name, cls_name, extra, opset) in families.items():
    try:
        kw = dict(common)
        if name == "gpt2":
            kw = dict(vocab_size=256)
        kw.update(extra)
        cfg = getattr(transformers, cfg_name)(**kw)
        cfg._attn_implementation = "eager"
        model = getattr(transformers, cls_name)(cfg).eval()
        ids = torch.randint(3, 256, (2, 7), dtype=torch.int64)
        mask = torch.ones(2, 7, dtype=torch.int64)
        mask[1, :2] = 0  # left padding in the second row
        models[name] = (model, ids, mask, opset)
        batch, seq = torch.export.Dim("batch", max=8), torch.export.Dim("sequence", max=64)
        path = os.path.join(out, name + ".onnx")
        prog = torch.onnx.export(Logits(model), (ids, mask), dynamo=True, opset_version=opset,
                                 input_names=["input_ids", "attention_mask"], output_names=["logits"],
                                 dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}})
        prog.save(path, external_data=False)
        m = onnx.load(path)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        logits = sess.run(["logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
        with torch.no_grad():
            ref = Logits(model)(ids, mask).numpy()
        np.save(os.path.join(out, name + ".input_ids.npy"), ids.numpy())
        np.save(os.path.join(out, name + ".attention_mask.npy"), mask.numpy())
        np.save(os.path.join(out, name + ".logits.npy"), logits)
        ops = sorted({n.op_type for n in m.graph.node})
        summary[name] = dict(opset=[o.version for o in m.opset_import if o.domain in ("", "ai.onnx")],
                             ort_vs_torch=float(np.abs(logits - ref).max()), bytes=os.path.getsize(path),
                             inputs=[[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
                                     for i in m.graph.input], ops=ops)
    except Exception:
        summary[name] = dict(error=traceback.format_exc()[-1500:])


def export(module, args, input_names, dynamic_shapes, path, opset):
    """Exports module to path; returns the ONNX model, onnxruntime's logits and torch's."""
    prog = torch.onnx.export(module, args, dynamo=True, opset_version=opset, input_names=input_names,
                             output_names=["logits"], dynamic_shapes=dynamic_shapes)
    prog.save(path, external_data=False)
    m = onnx.load(path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    logits = sess.run(["logits"], {k: a.numpy() for k, a in zip(input_names, args)})[0]
    with torch.no_grad():
        ref = module(*args).numpy()
    return m, logits, ref


def describe(m, logits, ref, path):
    return dict(opset=[o.version for o in m.opset_import if o.domain in ("", "ai.onnx")],
                ort_vs_torch=float(np.abs(logits - ref).max()), bytes=os.path.getsize(path),
                inputs=[[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in m.graph.input],
                ops=sorted({n.op_type for n in m.graph.node}))


for name, (model, ids, mask, opset) in models.items():
    try:
        model.set_attn_implementation("sdpa")  # the same weights, attention through scaled_dot_product_attention
        assert model.config._attn_implementation == "sdpa", model.config._attn_implementation
    except Exception:
        summary[name + ".sdpa"] = summary[name + ".ids"] = dict(error=traceback.format_exc()[-1500:])
        continue
    try:
        path = os.path.join(out, name + ".sdpa.onnx")
        batch, seq = torch.export.Dim("batch", max=8), torch.export.Dim("sequence", max=64)
        m, logits, ref = export(Logits(model), (ids, mask), ["input_ids", "attention_mask"],
                                {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}}, path, opset)
        np.save(os.path.join(out, name + ".sdpa.logits.npy"), logits)
        summary[name + ".sdpa"] = describe(m, logits, ref, path)
        # the same difference over the unpadded positions only (query rows whose keys are all masked can differ)
        keep = mask.numpy().astype(bool)
        summary[name + ".sdpa"]["ort_vs_torch_unpadded"] = float(np.abs(logits[keep] - ref[keep]).max())
    except Exception:
        summary[name + ".sdpa"] = dict(error=traceback.format_exc()[-1500:])
    try:
        path = os.path.join(out, name + ".ids.onnx")
        batch, seq = torch.export.Dim("batch", max=8), torch.export.Dim("sequence", max=64)
        m, logits, ref = export(IdsLogits(model), (ids,), ["input_ids"], {"input_ids": {0: batch, 1: seq}}, path,
                                opset)
        np.save(os.path.join(out, name + ".ids.logits.npy"), logits)
        summary[name + ".ids"] = describe(m, logits, ref, path)
    except Exception:
        summary[name + ".ids"] = dict(error=traceback.format_exc()[-1500:])
# NAME.kv.onnx: the sdpa model with its KV cache as graph inputs and outputs (what a decoder runtime feeds back
# step by step): inputs input_ids [batch, sequence] and past_key_values.{i}.key/.value [batch, kv heads,
# past_sequence, head dim]; outputs logits and present.{i}.key/.value (past and new). Positions and the causal mask
# come from the cache's length inside the graph. References: NAME.kv.prompt.npy (the first row of NAME.input_ids, 7
# tokens), NAME.kv.logits.npy (torch's logits for it without a cache, [1, 7, vocab]) and NAME.kv.greedy.txt (torch's
# greedy continuation of it by 8 tokens through the cache, stopping at token 2 as qrun does, with the smallest gap
# between the first and second logit seen on the way). NAME.eager.kv.onnx: the same with eager attention (an explicit
# additive mask from the cache's length), checked against the same references.
class KvLogits(torch.nn.Module):
    def __init__(self, m, layers):
        super().__init__()
        self.m, self.layers = m, layers

    def forward(self, input_ids, *past):
        cache = transformers.DynamicCache()
        for i in range(self.layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.m(input_ids=input_ids, past_key_values=cache, use_cache=True)
        present = []
        for layer in out.past_key_values.layers[: self.layers]:
            present += [layer.keys, layer.values]
        return (out.logits, *present)


for name, (model, ids, mask, opset) in models.items():
    key = name + ".kv"
    try:
        cfg = model.config
        layers = cfg.num_hidden_layers
        kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        prompt = ids[:1]
        with torch.no_grad():
            full = model(input_ids=prompt, use_cache=False).logits
            pre = model(input_ids=prompt[:, :4], use_cache=True)
        past = []
        for layer in pre.past_key_values.layers[:layers]:
            past += [layer.keys.contiguous(), layer.values.contiguous()]
        new = prompt[:, 4:]
        batch, seq = torch.export.Dim("batch", max=8), torch.export.Dim("sequence", max=64)
        plen = torch.export.Dim("past_sequence", max=64)
        names = ["input_ids"] + [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
        outs = ["logits"] + [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
        shapes = {"input_ids": {0: batch, 1: seq}, "past": tuple({0: batch, 2: plen} for _ in range(2 * layers))}
        module = KvLogits(model, layers)
        path = os.path.join(out, key + ".onnx")
        prog = torch.onnx.export(module, (new, *past), dynamo=True, opset_version=opset, input_names=names,
                                 output_names=outs, dynamic_shapes=shapes)
        prog.save(path, external_data=False)
        m = onnx.load(path)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        feeds = {n: a.numpy() for n, a in zip(names, (new, *past))}
        got = sess.run(["logits"], feeds)[0]
        # the same logits as the full prompt's last 3 positions, and from an empty cache the full prompt's
        empty = {n: np.zeros((1, kv_heads, 0, head_dim), np.float32) for n in names[1:]}
        got0 = sess.run(["logits"], {"input_ids": prompt.numpy(), **empty})[0]
        # greedy through the cache, as qrun --generate does (the prompt once, then a token per run)
        tokens, gap = prompt[0].tolist(), float("inf")
        cache, feed = None, prompt
        with torch.no_grad():
            for _ in range(8):
                o = model(input_ids=feed, past_key_values=cache, use_cache=True)
                cache, row = o.past_key_values, o.logits[0, -1]
                top = torch.topk(row, 2).values
                gap = min(gap, float(top[0] - top[1]))
                nxt = int(row.argmax())
                if nxt == 2:
                    break
                tokens.append(nxt)
                feed = torch.tensor([[nxt]])
        np.save(os.path.join(out, key + ".prompt.npy"), prompt.numpy())
        np.save(os.path.join(out, key + ".logits.npy"), full.numpy())
        with open(os.path.join(out, key + ".greedy.txt"), "w") as f:
            f.write(" ".join(str(t) for t in tokens) + "\n")
        summary[key] = describe(m, got, full[:, 4:].numpy(), path)
        summary[key]["ort_empty_cache_vs_torch"] = float(np.abs(got0 - full.numpy()).max())
        summary[key]["greedy_min_top2_gap"] = gap
        summary[key]["outputs"] = [o.name for o in m.graph.output]
    except Exception:
        summary[key] = dict(error=traceback.format_exc()[-1500:])
        continue
    ekey = name + ".eager.kv"
    try:
        model.set_attn_implementation("eager")
        path = os.path.join(out, ekey + ".onnx")
        prog = torch.onnx.export(KvLogits(model, layers), (new, *past), dynamo=True, opset_version=opset,
                                 input_names=names, output_names=outs, dynamic_shapes=shapes)
        prog.save(path, external_data=False)
        m = onnx.load(path)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        got = sess.run(["logits"], feeds)[0]
        got0 = sess.run(["logits"], {"input_ids": prompt.numpy(), **empty})[0]
        summary[ekey] = describe(m, got, full[:, 4:].numpy(), path)
        summary[ekey]["ort_empty_cache_vs_torch"] = float(np.abs(got0 - full.numpy()).max())
        model.set_attn_implementation("sdpa")
    except Exception:
        summary[ekey] = dict(error=traceback.format_exc()[-1500:])
summary = {k: summary[k] for name in families for k in (name, name + ".sdpa", name + ".ids", name + ".kv", name + ".eager.kv") if k in summary}

with open(os.path.join(out, "versions.txt"), "w") as f:
    f.write(f"torch {torch.__version__}\ntransformers {transformers.__version__}\nonnx {onnx.__version__}\n"
            f"onnxruntime {ort.__version__}\n")
    f.write(json.dumps(summary, indent=1))
print(open(os.path.join(out, "versions.txt")).read())
