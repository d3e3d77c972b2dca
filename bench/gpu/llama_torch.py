#!/usr/bin/env python3
"""PyTorch's side of bench/gpu/llama8b.sh: a Llama-shaped model with random bf16 weights (Hugging Face
transformers, sdpa attention) at batch 1.

  decode:  generate() with a static cache; tokens/s = (new - 1) / (time(prompt + new tokens) - time(prompt + 1))
  prefill: one forward over a PROMPT-token prompt, with every position's logits (HF's default) and with the last
           position's only (logits_to_keep=1, what qrun's prompt entry prefill_last computes); tokens/s
  memory:  torch.cuda.max_memory_allocated() over the decode runs, and the weights' bytes

Each figure is the median of --repeat runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def timed(fn) -> float:
    torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=14336)
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=128256)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--prefill-len", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    cfg = LlamaConfig(hidden_size=args.dim, intermediate_size=args.hidden, num_hidden_layers=args.layers,
                      num_attention_heads=args.heads, num_key_value_heads=args.kv_heads, vocab_size=args.vocab,
                      max_position_embeddings=max(8192, args.prefill_len), rope_theta=500000.0,
                      attn_implementation="sdpa", tie_word_embeddings=False)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    model.eval()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, bf16 weights {weight_bytes / 2**30:.2f} GiB "
          f"({sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters)")

    gen = torch.Generator(device="cuda").manual_seed(1)
    prompt = torch.randint(3, args.vocab, (1, args.prompt_len), device="cuda", generator=gen)

    def generate(n: int):
        out = model.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                             cache_implementation="static", pad_token_id=0)
        assert out.shape[1] == args.prompt_len + n

    with torch.inference_mode():
        torch.cuda.reset_peak_memory_stats()
        generate(args.max_tokens)  # warm-up
        full, first = [], []
        for _ in range(args.repeat):
            full.append(timed(lambda: generate(args.max_tokens)))
            first.append(timed(lambda: generate(1)))
        decode_s = statistics.median(full) - statistics.median(first)
        tps = (args.max_tokens - 1) / decode_s
        peak = torch.cuda.max_memory_allocated()
        print(f"torch decode (HF generate, static cache, bf16): {tps:.1f} tokens/s "
              f"({1000 / tps:.3f} ms per token; prompt {args.prompt_len}, {args.max_tokens} new tokens, "
              f"median of {args.repeat})")
        print(f"torch memory: {peak / 2**30:.2f} GiB peak allocated during decode")

        ids = torch.randint(3, args.vocab, (1, args.prefill_len), device="cuda", generator=gen)
        model(ids, use_cache=False)  # warm-up
        times = [timed(lambda: model(ids, use_cache=False)) for _ in range(args.repeat)]
        t = statistics.median(times)
        print(f"torch prefill (bf16 forward, sdpa, {args.prefill_len} tokens): {args.prefill_len / t:.0f} tokens/s "
              f"({t * 1000:.1f} ms, median of {args.repeat})")
        times = [timed(lambda: model(ids, use_cache=False, logits_to_keep=1)) for _ in range(args.repeat)]
        t = statistics.median(times)
        print(f"torch prefill, last position's logits only (logits_to_keep=1): {args.prefill_len / t:.0f} tokens/s "
              f"({t * 1000:.1f} ms, median of {args.repeat})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
