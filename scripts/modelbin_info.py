"""Prints what a model.bin holds: its format version, its sections and, for a model compiled for a CUDA target,
the kernels section's images (architecture, format, size) and kernel symbols with their launch geometry.

    /usr/bin/python3 scripts/modelbin_info.py model.bin [--kernels]

The layout is lib/Format/include/qopt/Format/ModelBin.h's.
"""
import argparse
import struct
import sys

KINDS = {1: "meta", 2: "values", 3: "program", 4: "weights", 5: "tokenizer", 6: "kernels"}
FORMATS = {1: "cubin", 2: "ptx"}


class Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, n):
        if self.at + n > len(self.data):
            raise ValueError("truncated section")
        b = self.data[self.at:self.at + n]
        self.at += n
        return b

    def u8(self):
        return self.take(1)[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def str(self):
        return self.take(self.u32()).decode("utf-8", "replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--kernels", action="store_true", help="list every kernel symbol and its geometry")
    args = ap.parse_args()
    data = open(args.model, "rb").read()
    if data[:8] != b"QOPTMDL\0":
        sys.exit("%s: not a qopt model.bin" % args.model)
    major, minor, size, table, n = struct.unpack_from("<IIQQI", data, 8)
    print("format %d.%d, %d bytes, %d sections" % (major, minor, size, n))
    for i in range(n):
        kind, flags, offset, length, crc = struct.unpack_from("<IIQQI", data, table + 32 * i)
        print("section %s: %d bytes" % (KINDS.get(kind, str(kind)), length))
        if kind != 6:
            continue
        r = Reader(data[offset:offset + length])
        for _ in range(r.u32()):
            arch, fmt, nbytes = r.str(), r.u8(), r.u64()
            r.take(nbytes)
            print("  image %s %s: %d bytes" % (arch, FORMATS.get(fmt, str(fmt)), nbytes))
        count = r.u32()
        print("  kernels: %d" % count)
        for _ in range(count):
            name = r.str()
            block, grid_y, rows, cols_per, cols, shared, operand, mode = (r.u32(), r.u32(), r.u32(), r.u32(),
                                                                          r.u64(), r.u32(), r.u32(), r.u8())
            if args.kernels:
                print("    %s block %d grid_y %d tile %dx%d cols %d shared %d operand %d%s" %
                      (name, block, grid_y, rows, cols_per, cols, shared, operand,
                       {0: "", 1: " flat", 2: " planes"}.get(mode, " mode %d" % mode)))


if __name__ == "__main__":
    main()
