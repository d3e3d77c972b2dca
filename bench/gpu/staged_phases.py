"""Where qGemvStaged's time goes: builds and runs a phase timer of the 16-row products on the GPU machine.

    python3 bench/gpu/staged_phases.py [--keep DIR]

It copies lib/Codegen/cuda/kernels.cuh with `%globaltimer` reads added to qGemvStaged (thread 0 of every block: at
its start, after x's split and its barrier, after warp 0's loop, after the cluster barrier before the reduction,
at its end), drops the module's helper kernels (NVRTC-only), compiles bench/gpu/staged_phases.cu against it with
nvcc for Llama-3-8B's two shapes (K=14336 N=4096 and K=4096 N=14336) and runs both: per layout, the launch's span
and each phase's min / median / max over the blocks (16 rows, int4 g128, float16 scales, the tile layout, weights
cycled over 9 copies, one launch timed after 30). bench/gpu/README.md has the H100's figures. The markers are
found by the comments next to them in kernels.cuh; a marker that moved fails here with its name.
"""
import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NVCC = os.environ.get("NVCC", "/usr/local/cuda/bin/nvcc")


def instrument(src):
    start = src.index("__device__ void qGemvStaged(const QParams &p")
    end = src.index("\n}\n", start) + 3
    body = src[start:end]
    # (marker, text after which the timestamp goes, or before which with a leading '<')
    marks = [
        (0, "  constexpr bool HW = qFp8Hw<FP8, CVT != 0>();\n"),
        (1, "    __syncthreads();\n    for (int c = c0; c < c1; c += S) {\n", len("    __syncthreads();\n")),
        (2, "<  __syncwarp(); // every lane's last read of the ring"),
        (3, "  qClusterSync(); // (without clusters: slices == 1, nothing to meet)\n"),
        (4, "  qClusterSync(); // the others have read this block's sums before it leaves\n"),
    ]
    for mark in marks:
        n, anchor = mark[0], mark[1]
        before = anchor.startswith("<")
        anchor = anchor.lstrip("<")
        at = body.rfind(anchor) if n == 4 else body.find(anchor)
        if at < 0:
            sys.exit(f"staged_phases.py: marker {n} not found in qGemvStaged: {anchor.strip()!r}")
        at += 0 if before else (mark[2] if len(mark) > 2 else len(anchor))
        body = body[:at] + f"  QOPT_PHASE({n});\n" + body[at:]
    src = src[:start] + body + src[end:]
    # The module's extern "C" helper kernels are dropped: they are written for NVRTC, and the host stubs nvcc
    # generates for them fail to compile (qopt_waits_for_previous is not declared where the stub refers to it).
    out, at = [], 0
    while (j := src.find('extern "C" __global__', at)) >= 0:
        out.append(src[at:j])
        k, depth = src.index("{", j), 0
        while True:
            depth += {"{": 1, "}": -1}.get(src[k], 0)
            if depth == 0:
                break
            k += 1
        at = k + 1
    out.append(src[at:])
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", help="build in DIR and keep it")
    args = ap.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="staged-phases-")
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(ROOT, "lib/Codegen/cuda/kernels.cuh")) as f:
        kernels = instrument(f.read())
    with open(os.path.join(work, "kernels_timed.cuh"), "w") as f:
        f.write(kernels)
    for k, n in ((14336, 4096), (4096, 14336)):
        exe = os.path.join(work, f"phases_{k}_{n}")
        subprocess.run([NVCC, "-arch=sm_90a", "-std=c++17", "-O3", "--expt-relaxed-constexpr", "-diag-suppress=607",
                        f"-I{work}", f"-I{os.path.join(ROOT, 'lib/Codegen/cuda')}", f"-DSTAGED_K={k}LL",
                        f"-DSTAGED_N={n}LL", "-o", exe, os.path.join(ROOT, "bench/gpu/staged_phases.cu")], check=True)
        subprocess.run([exe], check=True)


if __name__ == "__main__":
    main()
