#!/usr/bin/env python3
"""Independent float64 numpy implementation of llama2.c's forward pass, for reference numbers.

It reads the llama2.c checkpoint directly and rotates q/k on interleaved pairs exactly as llama2.c's run.c does
(it shares nothing with the ONNX exporter but the file readers in llama2c.py).

usage:
  llama_reference.py generate    CHECKPOINT TOKENIZER [--steps N]
      greedy generation from BOS like llama2.c `run CHECKPOINT -z TOKENIZER -t 0 -n N`: N forward passes at most
      (N = 0 or N > seq_len means seq_len), stopping early when BOS (1) is chosen; prints the generated token ids
      and the text run.c would print.
  llama_reference.py perplexity  CHECKPOINT TOKENIZER TEXTFILE --seq-len L
      qopt's perplexity protocol: encode(whole file, bos=True, eos=False), non-overlapping windows of L tokens
      (a last window of fewer than 2 tokens is skipped), each run from position 0 with no state carried over,
      NLL of token t+1 given tokens <= t inside each window. Prints `perplexity P nll N tokens T`.
  llama_reference.py stories-nll CHECKPOINT TOKENIZER TEXTFILE [--stories 40] [--max-tokens 256]
      a per-story protocol: split TEXTFILE before each "Once upon a time", strip trailing
      whitespace, encode each story (BOS, dummy prefix), truncate to --max-tokens tokens, mean NLL per predicted
      token over the first --stories stories (2.2842 for stories15M).

Numpy's matmuls dominate; with Debian's reference BLAS stories15M perplexity is slow (see test/e2e/reference);
pointing LD_LIBRARY_PATH at an OpenBLAS libblas.so.3 speeds it up several times.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import List, Optional, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama2c import BOS_ID, Config, Tokenizer, read_checkpoint  # noqa: E402

STORY_MARKER = "Once upon a time"


class Llama2cReference:
    """float64 llama2.c transformer. `forward(tokens, start_pos, cache)` runs a block of consecutive positions."""

    def __init__(self, checkpoint: str):
        self.cfg, w = read_checkpoint(checkpoint)
        f64 = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
        self.emb = f64(w["token_embedding"])
        self.rms_att = f64(w["rms_att"])
        self.rms_ffn = f64(w["rms_ffn"])
        self.rms_final = f64(w["rms_final"])
        # transposed once so that activations (T, in) @ W^T (in, out)
        self.wqT = [f64(m.T) for m in w["wq"]]
        self.wkT = [f64(m.T) for m in w["wk"]]
        self.wvT = [f64(m.T) for m in w["wv"]]
        self.woT = [f64(m.T) for m in w["wo"]]
        self.w1T = [f64(m.T) for m in w["w1"]]
        self.w2T = [f64(m.T) for m in w["w2"]]
        self.w3T = [f64(m.T) for m in w["w3"]]
        self.wclsT = f64(w["wcls"].T)
        hd = self.cfg.head_dim
        # llama2.c: freq = 1 / 10000^(i / head_size) for even i in [0, head_size); pair p = i / 2
        self.freq = 1.0 / np.power(10000.0, np.arange(0, hd, 2, dtype=np.float64) / hd)

    @staticmethod
    def _rmsnorm(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        ss = np.mean(x * x, axis=-1, keepdims=True) + 1e-5
        return w * (x / np.sqrt(ss))

    def _rope(self, x: np.ndarray, n_heads: int, pos: np.ndarray) -> np.ndarray:
        """Rotate interleaved pairs (x[2p], x[2p+1]) of every head by pos * freq[p] (run.c's RoPE)."""
        T = x.shape[0]
        hd = self.cfg.head_dim
        ang = pos[:, None].astype(np.float64) * self.freq[None, :]  # (T, hd/2)
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        xr = x.reshape(T, n_heads, hd // 2, 2)
        x0, x1 = xr[..., 0], xr[..., 1]
        out = np.empty_like(xr)
        out[..., 0] = x0 * c - x1 * s
        out[..., 1] = x0 * s + x1 * c
        return out.reshape(T, n_heads * hd)

    def new_cache(self) -> List[List[np.ndarray]]:
        kv = self.cfg.kv_dim
        return [[np.zeros((0, kv)), np.zeros((0, kv))] for _ in range(self.cfg.n_layers)]

    def forward(self, tokens, start_pos: int = 0, cache: Optional[List[List[np.ndarray]]] = None,
                hidden: bool = False) -> np.ndarray:
        """Logits (T, vocab) for tokens at positions start_pos .. start_pos+T-1.

        With `cache` (from new_cache, holding exactly start_pos earlier positions) keys/values are appended to it;
        without it start_pos must be 0. With hidden=True the final-norm hidden states (T, dim) are returned.
        """
        cfg = self.cfg
        tokens = np.asarray(tokens, dtype=np.int64)
        T = tokens.shape[0]
        H, KVH, hd = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        rep = H // KVH
        if cache is None and start_pos != 0:
            raise ValueError("start_pos > 0 needs a cache")
        pos = np.arange(start_pos, start_pos + T)
        x = self.emb[tokens]  # (T, dim)
        for l in range(cfg.n_layers):
            xb = self._rmsnorm(x, self.rms_att[l])
            q = self._rope(xb @ self.wqT[l], H, pos)
            k = self._rope(xb @ self.wkT[l], KVH, pos)
            v = xb @ self.wvT[l]
            if cache is not None:
                if cache[l][0].shape[0] != start_pos:
                    raise ValueError("cache length does not match start_pos")
                cache[l][0] = np.concatenate([cache[l][0], k])
                cache[l][1] = np.concatenate([cache[l][1], v])
                k, v = cache[l]
            S = k.shape[0]
            qh = q.reshape(T, KVH, rep, hd).transpose(1, 2, 0, 3)  # (KVH, rep, T, hd); head h = g*rep + r
            kh = k.reshape(S, KVH, hd).transpose(1, 0, 2)  # (KVH, S, hd)
            vh = v.reshape(S, KVH, hd).transpose(1, 0, 2)
            att = np.matmul(qh, kh[:, None].swapaxes(-1, -2)) / math.sqrt(hd)  # (KVH, rep, T, S)
            # query at absolute position start_pos+i sees keys j <= start_pos+i
            allowed = np.arange(S)[None, :] <= pos[:, None]
            att = np.where(allowed, att, -np.inf)
            att = np.exp(att - att.max(axis=-1, keepdims=True))
            att /= att.sum(axis=-1, keepdims=True)
            o = np.matmul(att, vh[:, None])  # (KVH, rep, T, hd)
            o = o.transpose(2, 0, 1, 3).reshape(T, H * hd)
            x = x + o @ self.woT[l]
            xb = self._rmsnorm(x, self.rms_ffn[l])
            h1 = xb @ self.w1T[l]
            h3 = xb @ self.w3T[l]
            h = (h1 / (1.0 + np.exp(-h1))) * h3
            x = x + h @ self.w2T[l]
        x = self._rmsnorm(x, self.rms_final)
        if hidden:
            return x
        return x @ self.wclsT

    # -------------------------------------------------------------------------------------------------- modes
    def generate_greedy(self, steps: int) -> Tuple[List[int], bool]:
        """run.c generate() with an empty prompt and temperature 0. Returns (generated ids, stopped_on_bos)."""
        cfg = self.cfg
        if steps <= 0 or steps > cfg.seq_len:
            steps = cfg.seq_len
        cache = self.new_cache()
        token, pos, out = BOS_ID, 0, []
        while pos < steps:
            logits = self.forward([token], pos, cache)[0]
            nxt = int(np.argmax(logits))  # first maximum, like sample_argmax
            pos += 1
            if nxt == BOS_ID:
                return out, True
            out.append(nxt)
            token = nxt
        return out, False

    def sequence_nll(self, tokens: List[int]) -> Tuple[float, int]:
        """Sum of -log p(tokens[t+1] | tokens[:t+1]) over one window run from position 0, and the count."""
        if len(tokens) < 2:
            return 0.0, 0
        logits = self.forward(tokens[:-1])
        m = logits.max(axis=-1, keepdims=True)
        lse = (m + np.log(np.exp(logits - m).sum(axis=-1, keepdims=True)))[:, 0]
        tgt = np.asarray(tokens[1:], dtype=np.int64)
        nll = lse - logits[np.arange(len(tgt)), tgt]
        return float(nll.sum()), len(tgt)


def windows(tokens: List[int], seq_len: int) -> List[List[int]]:
    """Non-overlapping windows of seq_len tokens; a last window shorter than 2 tokens is dropped."""
    out = [tokens[i:i + seq_len] for i in range(0, len(tokens), seq_len)]
    return [w for w in out if len(w) >= 2]


def split_stories(text: str) -> List[str]:
    """Split before each "Once upon a time" and strip trailing whitespace; empty pieces are dropped."""
    parts, start = [], 0
    while True:
        i = text.find(STORY_MARKER, start + 1)
        if i < 0:
            parts.append(text[start:])
            break
        parts.append(text[start:i])
        start = i
    return [p.rstrip() for p in parts if p.strip()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    g = sub.add_parser("generate")
    g.add_argument("checkpoint")
    g.add_argument("tokenizer")
    g.add_argument("--steps", type=int, default=256)
    p = sub.add_parser("perplexity")
    p.add_argument("checkpoint")
    p.add_argument("tokenizer")
    p.add_argument("textfile")
    p.add_argument("--seq-len", type=int, required=True)
    s = sub.add_parser("stories-nll")
    s.add_argument("checkpoint")
    s.add_argument("tokenizer")
    s.add_argument("textfile")
    s.add_argument("--stories", type=int, default=40)
    s.add_argument("--max-tokens", type=int, default=256)
    args = ap.parse_args(argv)

    t0 = time.time()
    model = Llama2cReference(args.checkpoint)
    tok = Tokenizer(args.tokenizer, model.cfg.vocab_size)

    if args.mode == "generate":
        ids, stopped = model.generate_greedy(args.steps)
        print("tokens", len(ids), "stopped_on_bos" if stopped else "stopped_on_steps")
        print("ids", " ".join(str(i) for i in ids))
        print("text:")
        sys.stdout.flush()
        sys.stdout.buffer.write(tok.decode_tokens(ids, prev=BOS_ID, safe=True) + b"\n")
        sys.stdout.flush()
    elif args.mode == "perplexity":
        if args.seq_len < 2:
            ap.error("--seq-len must be >= 2")
        if args.seq_len > model.cfg.seq_len:
            print(f"warning: --seq-len {args.seq_len} exceeds the model's seq_len {model.cfg.seq_len}",
                  file=sys.stderr)
        with open(args.textfile, "rb") as f:
            text = f.read()
        ids = tok.encode(text, bos=True, eos=False)
        wins = windows(ids, args.seq_len)
        total, count = 0.0, 0
        for k, w in enumerate(wins):
            nll, n = model.sequence_nll(w)
            total += nll
            count += n
            if (k + 1) % 50 == 0:
                print(f"  window {k + 1}/{len(wins)} running nll {total / count:.6f} ({time.time() - t0:.0f} s)",
                      file=sys.stderr)
        mean = total / count
        print(f"perplexity {math.exp(mean):.6f} nll {mean:.6f} tokens {count}")
        print(f"# {len(ids)} tokens in {len(wins)} windows, {time.time() - t0:.1f} s", file=sys.stderr)
    else:
        with open(args.textfile, "r", encoding="utf-8") as f:
            stories = split_stories(f.read())[:args.stories]
        total, count, per_story = 0.0, 0, []
        for st in stories:
            ids = tok.encode(st, bos=True, eos=False)[:args.max_tokens]
            nll, n = model.sequence_nll(ids)
            total += nll
            count += n
            per_story.append(nll / n)
        print(f"stories {len(stories)} nll {total / count:.6f} tokens {count} "
              f"mean_of_story_means {sum(per_story) / len(per_story):.6f}")
        print(f"# {time.time() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
