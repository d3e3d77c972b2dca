#!/usr/bin/env python3
"""Writes tokenizer_cases.txt, the expected token ids for test/unit/TokenizerTest.cpp.

The ids come from scripts/llama2c.py's `encode_naive`, a literal transcription of llama2.c run.c's O(n^2) merge
loop, i.e. an implementation independent of the C++ tokenizer's heap-based merge (the script also checks that
llama2c.py's own heap version agrees). Run with a python3 that has numpy (llama2c.py imports it):

    /usr/bin/python3 test/unit/data/make_tokenizer_cases.py

Line format (tab-separated): tokenizer file name, bos (0/1), eos (0/1), text as hex, ids separated by spaces.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "scripts"))
import llama2c  # noqa: E402

TOKENIZERS = [("tok512.bin", 512), ("stories15M_tokenizer.bin", 32000)]

TEXTS = [
    "",
    "a",
    " ",
    "Hello world",
    "Once upon a time, there was a little girl named Lily.",
    "She liked to play outside.\nOne day, she saw a big red ball!",
    "  leading and   multiple   spaces  ",
    "tabs\tand\r\nnewlines\n\n",
    "héllo wörld, naïve café",
    "日本語のテキスト",
    "emoji 🙂🚀 end",
    "numbers 1234567890 and symbols #$%^&*()[]{}<>",
    "The quick brown fox jumps over the lazy dog. " * 4,
    "<0x41> <s> </s> <unk>",
]
# Raw byte strings: invalid UTF-8, lone continuation bytes, an over-long run, a NUL that ends the C string.
BYTES = [
    b"\xff\xfe abc",
    b"x\x80\x80\x80\x80\x80y",
    b"\xe6\x97",
    b"abc\x00def",
    b"\x01\x02\x7f control",
]


def main() -> None:
    lines = []
    for fname, vocab in TOKENIZERS:
        tok = llama2c.Tokenizer(os.path.join(HERE, fname), vocab)
        inputs = [t.encode("utf-8") for t in TEXTS] + BYTES
        for text in inputs:
            for bos, eos in ((True, False), (False, False), (True, True)):
                ids = tok.encode_naive(text, bos, eos)
                assert ids == tok.encode(text, bos, eos), (fname, text)
                lines.append("\t".join([fname, str(int(bos)), str(int(eos)), text.hex(), " ".join(map(str, ids))]))
    with open(os.path.join(HERE, "tokenizer_cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} cases")


if __name__ == "__main__":
    main()
