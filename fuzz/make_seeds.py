#!/usr/bin/env python3
"""Writes hand-made seed inputs for the .npy and tokenizer fuzz targets (scripts/fuzz.sh adds the test tree's
files): every dtype numpy.save writes, 0-d, empty and 5-d arrays, format versions 1.0/2.0/3.0, Fortran order and
big-endian (both rejected), and tokenizer.bin images with byte pieces, merges, duplicate and empty pieces."""
import io
import os
import struct
import sys

import numpy as np

out = sys.argv[1]
os.makedirs(os.path.join(out, "npy"), exist_ok=True)
os.makedirs(os.path.join(out, "tokenizer"), exist_ok=True)


def npy(name, a, version=None):
    buf = io.BytesIO()
    if version is None:
        np.save(buf, a)
    else:
        np.lib.format.write_array(buf, a, version=version)
    open(os.path.join(out, "npy", name), "wb").write(buf.getvalue())


rng = np.random.default_rng(0)
for dt in ["f4", "f8", "f2", "i8", "i4", "i2", "i1", "u8", "u4", "u2", "u1", "?"]:
    npy(f"{dt}.npy", (rng.standard_normal((2, 3)) * 10).astype(dt))
npy("scalar.npy", np.array(3.5, np.float32))
npy("empty.npy", np.zeros((0, 4), np.float32))
npy("rank5.npy", np.arange(32, dtype=np.int32).reshape(2, 2, 2, 2, 2))
npy("v2.npy", np.ones((3,), np.float32), version=(2, 0))
npy("v3.npy", np.ones((3,), np.int64), version=(3, 0))
npy("fortran.npy", np.asfortranarray(np.ones((2, 3), np.float32)))
npy("bigendian.npy", np.ones((2,), ">f4"))


def tokenizer(name, pieces, max_len=None):
    max_len = max_len or max(1, max(len(p) for p, _ in pieces))
    b = struct.pack("<i", max_len)
    for p, s in pieces:
        b += struct.pack("<fi", s, len(p)) + p
    open(os.path.join(out, "tokenizer", name), "wb").write(b)


base = [(b"<unk>", 0.0), (b"\n<s>\n", 0.0), (b"\n</s>\n", 0.0)] + [(b"<0x%02X>" % i, 0.0) for i in range(256)]
tokenizer("bytes-only.bin", base)
merges = [(b" ", -1.0), (b"a", -2.0), (b"b", -3.0), (b"ab", -0.5), (b" ab", -0.1), (b"\xc3\xa9", -4.0),
          (b"", -5.0), (b"ab", -6.0), (b"x\x00y", -7.0)]
tokenizer("merges.bin", base + merges)
