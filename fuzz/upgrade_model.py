#!/usr/bin/env python3
"""Rewrites a model.bin of format 1.x or 2.x as format 3.0, keeping everything else, so that a fuzz regression input
keeps reaching the check it was found by after a format change (a file of an older version is refused at its
header, before any of them).

    fuzz/upgrade_model.py IN.bin OUT.bin

What each version added, and what the upgrade writes for it:
  2.0  state size and entries: state 0, one entry named `main` with the whole arena.
  3.0  a variant after each kernel name: empty; a host arena: 0 bytes; an arena slot for each input: appended at
       the end of the arena, the size of the input's bound.
Sections other than Values and Program are copied unchanged, each at its old offset's remainder modulo the section
alignment; checksums and the header are recomputed. Damaged fields are carried over as they are (the point is to
replay them)."""
import struct
import sys
import zlib

SECTION_ALIGN = 4096
DTYPE_SIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}
INPUT, ARENA = 1, 3


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from("<" + fmt, self.d, self.p)
        self.p += struct.calcsize("<" + fmt)
        return v[0] if len(v) == 1 else v

    def str(self):
        n = self.take("I")
        s = self.d[self.p:self.p + n]
        self.p += n
        return s

    def rest(self):
        return self.d[self.p:]


def pstr(b):
    return struct.pack("<I", len(b)) + b


def upgrade_values(data):
    """Returns the values section with input slots placed from `arena` on, and the bytes they add."""
    r = Reader(data)
    n = r.take("I")
    values = []
    for _ in range(n):
        name = r.str()
        dt, storage, rank, pad = r.take("BBBB")
        dims = [r.take("qq") for _ in range(rank)]
        offset, max_bytes = r.take("QQ")
        values.append([name, dt, storage, rank, pad, dims, offset, max_bytes])
    return values, r.rest()


def encode_values(values, tail):
    out = struct.pack("<I", len(values))
    for name, dt, storage, rank, pad, dims, offset, max_bytes in values:
        out += pstr(name) + struct.pack("<BBBB", dt, storage, rank, pad)
        for d, m in dims:
            out += struct.pack("<qq", d, m)
        out += struct.pack("<QQ", offset, max_bytes)
    return out + tail


def upgrade_program(data, major, values):
    r = Reader(data)
    arena = r.take("Q")
    state, entries = 0, None
    if major == 2:
        state = r.take("Q")
        n_entries = r.take("I")
    else:
        n_entries = 1
    # Input slots go after the arena's end.
    end = (arena + 63) // 64 * 64
    for v in values:
        if v[2] == INPUT:
            elems = 1
            for _, m in v[5]:
                elems *= max(m, 0)
            v[7] = elems * DTYPE_SIZE.get(v[1], 1)
            v[6] = end
            end += (max(v[7], 1) + 63) // 64 * 64
    new_arena = end if end > arena else arena
    out = struct.pack("<QQQI", new_arena, state, 0, n_entries)
    for _ in range(n_entries):
        if major == 2:
            name = r.str()
            r.take("Q")
        else:
            name = b"main"
        out += pstr(name) + struct.pack("<QQ", new_arena, 0)
        n_in = r.take("I")
        out += struct.pack("<I", n_in) + b"".join(struct.pack("<I", r.take("I")) for _ in range(n_in))
        n_out = r.take("I")
        out += struct.pack("<I", n_out)
        for _ in range(n_out):
            out += pstr(r.str()) + struct.pack("<I", r.take("I"))
        n_instr = r.take("I")
        out += struct.pack("<I", n_instr)
        for _ in range(n_instr):
            out += pstr(r.str()) + pstr(b"")
            for _ in range(2):
                n = r.take("I")
                out += struct.pack("<I", n) + b"".join(struct.pack("<I", r.take("I")) for _ in range(n))
            n_attrs = r.take("I")
            out += struct.pack("<I", n_attrs)
            for _ in range(n_attrs):
                out += pstr(r.str())
                kind = r.take("B")
                out += struct.pack("<B", kind)
                if kind in (1, 2):
                    out += r.d[r.p:r.p + 8]
                    r.p += 8
                elif kind == 3:
                    out += pstr(r.str())
                elif kind in (4, 5):
                    n = r.take("I")
                    out += struct.pack("<I", n) + r.d[r.p:r.p + 8 * n]
                    r.p += 8 * n
    return out + r.rest()


def main():
    src, dst = sys.argv[1], sys.argv[2]
    data = open(src, "rb").read()
    magic, major, minor, size, table_at, n_sections = struct.unpack_from("<8sIIQQI", data, 0)
    if major >= 3:
        sys.exit(f"{src} is already format {major}.{minor}")
    sections = [list(struct.unpack_from("<IIQQII", data, table_at + 32 * i)) for i in range(n_sections)]
    payload = {s[0]: data[s[2]:s[2] + s[3]] for s in sections}
    values, tail = upgrade_values(payload[2])
    payload[3] = upgrade_program(payload[3], major, values)
    payload[2] = encode_values(values, tail)
    at = 64 + 32 * n_sections
    body = bytearray()
    for s in sections:
        # Aligned as before, or misaligned by as much (a damaged offset is part of what a regression replays).
        at = (at + SECTION_ALIGN - 1) // SECTION_ALIGN * SECTION_ALIGN + s[2] % SECTION_ALIGN
        p = payload[s[0]]
        s[2], s[3], s[4] = at, len(p), zlib.crc32(p)
        at += len(p)
    table = b"".join(struct.pack("<IIQQII", *s) for s in sections)
    header = struct.pack("<8sIIQQIII20s", magic, 3, 0, at, 64, n_sections, zlib.crc32(table), 0, bytes(20))
    header = header[:40] + struct.pack("<I", zlib.crc32(header)) + header[44:]
    out = bytearray(at)
    out[:64] = header
    out[64:64 + len(table)] = table
    for s in sections:
        out[s[2]:s[2] + s[3]] = payload[s[0]]
    open(dst, "wb").write(out)


if __name__ == "__main__":
    main()
