"""The loops of a kernel's machine code and their instruction mix: what a latency- or issue-bound kernel spends its
instructions on, counted without a GPU.

    cuobjdump -sass -fun SYMBOL IMAGE.cubin > k.sass && python3 bench/gpu/sass_loops.py k.sass

IMAGE: a cubin of the kernels (NVRTC or `nvcc -cubin` over the source `qopt --emit=cuda` prints; qopt's cache holds
the images it compiled, ~/.cache/qopt/cuda). A loop is a backward branch and the instructions from its target to
it; nested loops are listed each with its own span (an outer loop counts its inner ones' instructions once). Per
loop: the instruction count and the most frequent opcodes (predicates and modifiers dropped: LOP3.LUT -> LOP3).
"""
import collections
import re
import sys

LINE = re.compile(r"^\s+/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")


def instructions(path):
    out = []
    for line in open(path):
        m = LINE.match(line)
        if m:
            out.append((int(m.group(1), 16), m.group(2)))
    return out


def opcode(text):
    words = text.split()
    if words and words[0].startswith("@"):  # a predicate
        words = words[1:]
    return words[0].split(".")[0] if words else "?"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    code = instructions(sys.argv[1])
    if not code:
        sys.exit(f"{sys.argv[1]}: no SASS instructions (cuobjdump -sass output expected)")
    index = {addr: i for i, (addr, _) in enumerate(code)}
    print(f"{len(code)} instructions")
    for i, (addr, text) in enumerate(code):
        if opcode(text) != "BRA":
            continue
        target = re.findall(r"0x([0-9a-f]+)", text)
        if not target:
            continue
        start = int(target[-1], 16)
        if start > addr or start not in index:
            continue  # a forward branch
        body = code[index[start]:i + 1]
        mix = collections.Counter(opcode(t) for _, t in body)
        top = ", ".join(f"{op} {n}" for op, n in mix.most_common(16))
        print(f"loop {start:#06x}-{addr:#06x}: {len(body)} instructions: {top}")


if __name__ == "__main__":
    main()
