"""Readers for Karpathy's llama2.c files: legacy checkpoints and tokenizer.bin.

Only numpy and the standard library are needed.

Checkpoint ("legacy", version 0) layout: a header of 7 int32
    dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
(a negative vocab_size means the classifier is stored separately, i.e. not tied to the embedding), then float32
tensors in this order, matrices in PyTorch (out, in) layout:
    token_embedding (vocab, dim), rms_att (L, dim), wq (L, dim, dim), wk (L, kv_dim, dim), wv (L, kv_dim, dim),
    wo (L, dim, dim), rms_ffn (L, dim), w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim),
    rms_final (dim), freq_cis_real (seq_len, head_dim/2), freq_cis_imag (seq_len, head_dim/2),
    wcls (vocab, dim) only when untied.

Tokenizer layout: int32 max_token_length, then for each of vocab_size tokens: float32 score, int32 length, bytes.
`Tokenizer.encode` and `Tokenizer.decode` reproduce run.c's `encode` and `decode` byte for byte.
"""

from __future__ import annotations

import dataclasses
import heapq
import os
import re
import struct
from typing import Dict, List, Optional, Tuple

import numpy as np

BOS_ID = 1
EOS_ID = 2

__all__ = ["Config", "read_checkpoint", "Tokenizer", "safe_piece", "BOS_ID", "EOS_ID"]


@dataclasses.dataclass(frozen=True)
class Config:
    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    shared_classifier: bool  # True: logits use the token embedding (header vocab_size > 0)

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def kv_dim(self) -> int:
        return self.dim * self.n_kv_heads // self.n_heads


def read_checkpoint(path: str) -> Tuple[Config, Dict[str, np.ndarray]]:
    """Reads a llama2.c legacy checkpoint.

    Returns (config, weights) where weights maps
      token_embedding (vocab, dim), rms_att (L, dim), wq (L, dim, dim), wk (L, kv_dim, dim), wv (L, kv_dim, dim),
      wo (L, dim, dim), rms_ffn (L, dim), w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim),
      rms_final (dim,), wcls (vocab, dim)
    to float32 arrays (wcls is the embedding array itself when the classifier is shared).
    """
    with open(path, "rb") as f:
        header = f.read(28)
    if len(header) != 28:
        raise ValueError(f"{path}: too short for a llama2.c checkpoint header")
    if header[:4] == b"ak42":
        raise ValueError(f"{path}: this is a versioned llama2.c checkpoint (magic 'ak42'); only the legacy format "
                         "is supported")
    dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len = struct.unpack("<7i", header)
    shared = vocab_size > 0
    vocab_size = abs(vocab_size)
    if min(dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len) <= 0 or dim % n_heads \
            or n_heads % n_kv_heads or (dim // n_heads) % 2:
        raise ValueError(f"{path}: implausible header {struct.unpack('<7i', header)}")
    cfg = Config(dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len, shared)
    hd, kv, L = cfg.head_dim, cfg.kv_dim, n_layers

    shapes = [
        ("token_embedding", (vocab_size, dim)),
        ("rms_att", (L, dim)),
        ("wq", (L, dim, dim)),
        ("wk", (L, kv, dim)),
        ("wv", (L, kv, dim)),
        ("wo", (L, dim, dim)),
        ("rms_ffn", (L, dim)),
        ("w1", (L, hidden_dim, dim)),
        ("w2", (L, dim, hidden_dim)),
        ("w3", (L, hidden_dim, dim)),
        ("rms_final", (dim,)),
        ("freq_cis_real", (seq_len, hd // 2)),
        ("freq_cis_imag", (seq_len, hd // 2)),
    ]
    if not shared:
        shapes.append(("wcls", (vocab_size, dim)))
    n_floats = sum(int(np.prod(s)) for _, s in shapes)
    size = os.path.getsize(path)
    expected = 28 + 4 * n_floats
    if size < expected:
        raise ValueError(f"{path}: {size} bytes, the header {cfg} needs {expected}")
    data = np.fromfile(path, dtype="<f4", count=n_floats, offset=28)
    weights: Dict[str, np.ndarray] = {}
    off = 0
    for name, shape in shapes:
        n = int(np.prod(shape))
        weights[name] = data[off:off + n].reshape(shape)
        off += n
    del weights["freq_cis_real"], weights["freq_cis_imag"]
    if shared:
        weights["wcls"] = weights["token_embedding"]
    return cfg, weights


_BYTE_TOKEN = re.compile(rb"<0x[ \t\n\v\f\r]*([0-9A-Fa-f]{1,2})")


def _cstr(b: bytes) -> bytes:
    """What C sees of a byte string: everything before the first NUL."""
    i = b.find(b"\0")
    return b if i < 0 else b[:i]


class Tokenizer:
    """llama2.c's tokenizer.bin: greedy BPE merge by score (run.c `encode`) and run.c `decode`."""

    def __init__(self, path: str, vocab_size: Optional[int] = None):
        with open(path, "rb") as f:
            data = f.read()
        (self.max_token_length,) = struct.unpack_from("<i", data, 0)
        off = 4
        self.vocab: List[bytes] = []
        self.scores: List[float] = []
        while off < len(data) and (vocab_size is None or len(self.vocab) < vocab_size):
            if off + 8 > len(data):
                raise ValueError(f"{path}: truncated at token {len(self.vocab)}")
            score, n = struct.unpack_from("<fi", data, off)
            off += 8
            if n < 0 or off + n > len(data):
                raise ValueError(f"{path}: bad length {n} at token {len(self.vocab)}")
            # run.c stores each piece as a C string, so lookups and concatenations stop at a NUL byte.
            self.vocab.append(_cstr(data[off:off + n]))
            self.scores.append(score)
            off += n
        if vocab_size is not None and len(self.vocab) != vocab_size:
            raise ValueError(f"{path}: {len(self.vocab)} tokens, expected {vocab_size}")
        self.vocab_size = len(self.vocab)
        # run.c finds a string with bsearch over the vocabulary sorted by strcmp; with no duplicate pieces that is
        # a plain dictionary. With duplicates bsearch may return any of them; we keep the lowest id.
        self.lookup: Dict[bytes, int] = {}
        for i, piece in enumerate(self.vocab):
            self.lookup.setdefault(piece, i)

    # ------------------------------------------------------------------------------------------------ encode
    def encode(self, text, bos: bool = True, eos: bool = False) -> List[int]:
        """run.c `encode(t, text, bos, eos, ...)`. `text` is str (encoded as UTF-8) or bytes."""
        if isinstance(text, str):
            text = text.encode("utf-8")
        text = _cstr(bytes(text))
        tokens: List[int] = []
        if bos:
            tokens.append(BOS_ID)
        if text:
            # add_dummy_prefix: run.c looks up " " (-1 if absent, which it would then emit as is)
            tokens.append(self.lookup.get(b" ", -1))

        # One code point at a time: a leading/ASCII byte plus up to 3 following continuation bytes
        # (run.c stops appending once the buffer holds 4 bytes).
        n = len(text)
        i = 0
        while i < n:
            j = i + 1
            while j < n and (text[j] & 0xC0) == 0x80 and (j - i) < 4:
                j += 1
            cp = text[i:j]
            tid = self.lookup.get(cp)
            if tid is not None:
                tokens.append(tid)
            else:
                tokens.extend(b + 3 for b in cp)  # byte fallback: <0x00> is id 3
            i = j

        tokens = self._merge(tokens)
        if eos:
            tokens.append(EOS_ID)
        return tokens

    def _merge(self, tokens: List[int]) -> List[int]:
        """Repeatedly merge the adjacent pair whose concatenation is a vocabulary piece of the highest score
        (the leftmost such pair on ties), as run.c does, in O(n log n) with a heap over a linked list.

        run.c rescans all pairs each round and takes the first pair with a strictly greater score, i.e. the
        leftmost of the best. Merging keeps the order of the remaining tokens, so "leftmost now" equals
        "smallest original index of the left token", which is the heap's tie-break.
        """
        n = len(tokens)
        if n < 2:
            return tokens
        vocab, scores, lookup = self.vocab, self.scores, self.lookup
        tok = list(tokens)
        # A token id outside the vocabulary (only -1 from a missing " ") makes C read vocab[-1]; we refuse it.
        for t in tok:
            if not 0 <= t < len(vocab):
                raise ValueError(f"token id {t} outside the vocabulary while merging")
        nxt = list(range(1, n)) + [-1]
        prv = list(range(-1, n - 1))
        alive = [True] * n
        heap: List[Tuple[float, int, int, int, int]] = []

        def push(i: int) -> None:
            j = nxt[i]
            if j < 0:
                return
            mid = lookup.get(vocab[tok[i]] + vocab[tok[j]])
            # run.c: `score > best_score` with best_score starting at -1e10 (float32 compare; scores are
            # float32 values, so the Python float comparison is the same)
            if mid is not None and scores[mid] > np.float32(-1e10):
                heapq.heappush(heap, (-scores[mid], i, mid, tok[i], tok[j]))

        for i in range(n - 1):
            push(i)
        while heap:
            _, i, mid, ti, tj = heapq.heappop(heap)
            j = nxt[i] if alive[i] else -1
            if j < 0 or tok[i] != ti or tok[j] != tj:
                continue  # stale entry
            tok[i] = mid
            alive[j] = False
            nxt[i] = nxt[j]
            if nxt[j] >= 0:
                prv[nxt[j]] = i
            push(i)
            if prv[i] >= 0:
                push(prv[i])
        out = []
        i = 0
        while i >= 0:
            out.append(tok[i])
            i = nxt[i]
        return out

    def encode_naive(self, text, bos: bool = True, eos: bool = False) -> List[int]:
        """Literal O(n^2) transcription of run.c's merge loop (for testing `encode`)."""
        saved = self._merge
        try:
            self._merge = self._merge_naive  # type: ignore[assignment]
            return self.encode(text, bos, eos)
        finally:
            self._merge = saved  # type: ignore[assignment]

    def _merge_naive(self, tokens: List[int]) -> List[int]:
        tokens = list(tokens)
        best_floor = float(np.float32(-1e10))
        while True:
            best_score, best_id, best_idx = best_floor, -1, -1
            for i in range(len(tokens) - 1):
                tid = self.lookup.get(self.vocab[tokens[i]] + self.vocab[tokens[i + 1]])
                if tid is not None and self.scores[tid] > best_score:
                    best_score, best_id, best_idx = self.scores[tid], tid, i
            if best_idx == -1:
                return tokens
            tokens[best_idx] = best_id
            del tokens[best_idx + 1]

    # ------------------------------------------------------------------------------------------------ decode
    def decode(self, prev_token: int, token: int) -> bytes:
        """run.c `decode`: the bytes of `token`; after BOS (1) a leading space is dropped; '<0xXX>' is byte XX."""
        piece = self.vocab[token]
        if prev_token == BOS_ID and piece[:1] == b" ":
            piece = piece[1:]
        m = _BYTE_TOKEN.match(piece)  # sscanf(piece, "<0x%02hhX>", &byte_val) == 1
        if m:
            piece = bytes([int(m.group(1), 16)])
        return piece

    def decode_tokens(self, tokens: List[int], prev: int = BOS_ID, safe: bool = True) -> bytes:
        """Concatenated run.c `decode` of a generated sequence (what run.c prints when safe=True)."""
        out = []
        for t in tokens:
            piece = self.decode(prev, t)
            out.append(safe_piece(piece) if safe else piece)
            prev = t
        return b"".join(out)


def safe_piece(piece: bytes) -> bytes:
    """run.c `safe_printf`: a one-byte piece is printed only if it is printable or whitespace (C locale)."""
    if len(piece) == 1:
        b = piece[0]
        if not (0x20 <= b <= 0x7E or b in (0x09, 0x0A, 0x0B, 0x0C, 0x0D)):
            return b""
    return piece
