#!/usr/bin/env bash
# The GPU goals of the CUDA backend and the FP8/INT8 work, measured on the GPU machine in steps that each fit one
# 10-minute device call, then judged against their targets by bench/gpu/goals.py:
#
#   bash bench/gpu/goals.sh BIN products LOGS   # W4A16 products at 1, 4 and 16 rows (K=4096 N=14336 and
#                                               # K=14336 N=4096) and the M=4096 FP8 product, PyTorch's in the same run
#   bash bench/gpu/goals.sh BIN llama LOGS      # Llama-3-8B shape: float16 and rtn4 g128 decode, 2048-token prefill
#                                               # and memory, PyTorch's HF static cache in the same run
#   bash bench/gpu/goals.sh BIN fp8 LOGS        # the same model: float16, fp8w and fp8 (W8A8) decode and prefill
#   python3 bench/gpu/goals.py LOGS             # every goal with its target, the measured figure and whether it holds
#
# BIN holds qopt, qrun and lib/ (`bash scripts/build-portable-qopt.sh BIN` where MLIR is installed) and, for
# `products`, qopt-gpu-kernel-check (build/bin/, a build with tests). LOGS gets one log per step (products.txt,
# llama.txt, fp8.txt); goals.py reads those there are. Environment: QOPT_CUDA_ARCH (sm_90a), QOPT_GPU_JOBS (the
# processes compiling the kernel check's images; nproc), WORK (the models' directory; /tmp/qopt-goals), and
# llama8b.sh's: a dry run of `llama` or `fp8` on a machine without a GPU, in seconds, on a small random Llama:
#   QOPT_BENCH_SHAPE="--dim 256 --hidden 768 --layers 2 --heads 4 --kv-heads 2 --vocab 512" QOPT_BENCH_DEVICE=cpu \
#   QOPT_BENCH_STEPS="make compile qrun" bash bench/gpu/goals.sh BIN llama LOGS
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
usage() { echo "usage: goals.sh BIN products|llama|fp8 LOGS" >&2; exit 2; }
[ $# = 3 ] || usage
BIN="$(cd "$1" && pwd)"
STEP="$2"
mkdir -p "$3"
LOGS="$(cd "$3" && pwd)"
ARCH="${QOPT_CUDA_ARCH:-sm_90a}"
WORK="${WORK:-/tmp/qopt-goals}"
if [ -z "${QOPT_NVRTC:-}" ] && [ -e /usr/local/cuda/lib64/libnvrtc.so ]; then
  export QOPT_NVRTC=/usr/local/cuda/lib64/libnvrtc.so
fi

# The products the W4A16 and FP8 goals name, float16 scales in the GPU's tile layout (what qopt writes for a CUDA
# target), the weights read from DRAM as a decode step reads them (--cold).
# (--only takes |-separated substrings of the cases' names.)
PRODUCTS='M=4096 K=4096 N=14336'
for kn in 'K=4096 N=14336' 'K=14336 N=4096'; do
  for m in 1 4 16; do
    PRODUCTS+="|int4 g128 M=$m $kn f16 scales tiles"
  done
done

products() {
  local check="$BIN/qopt-gpu-kernel-check" cache="$WORK/nvrtc-cache" jobs i pids=() rc=0
  [ -x "$check" ] || { echo "goals.sh: $check not found (copy build/bin/qopt-gpu-kernel-check into BIN)" >&2; exit 1; }
  mkdir -p "$cache"
  jobs="${QOPT_GPU_JOBS:-$(nproc)}"
  for ((i = 0; i < jobs; i++)); do # the images first, on every core (a case compiled alone takes seconds)
    "$check" --arch "$ARCH" --cache "$cache" --compile-only --bench --tiles --only "$PRODUCTS" --shard "$i/$jobs" \
      >/dev/null 2>&1 &
    pids+=($!)
  done
  for i in "${pids[@]}"; do
    wait "$i" || rc=1
  done
  [ $rc = 0 ] || echo "goals.sh: compiling the products' kernels failed; the check says which" >&2
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
  "$check" --arch "$ARCH" --cache "$cache" --bench --cold --tiles --only "$PRODUCTS" ||
    echo "goals.sh: the kernel check failed (its FAIL lines above)" >&2
  python3 "$ROOT/bench/gpu/gemm_torch.py" --cold
}

case "$STEP" in
  products) products 2>&1 | tee "$LOGS/products.txt" ;;
  llama)
    QOPT_BENCH_MODELS="f16 rtn4" QOPT_BENCH_EXTRA=0 QOPT_BENCH_DISCARD=1 bash "$ROOT/bench/gpu/llama8b.sh" "$BIN" \
      "$WORK" 2>&1 | tee "$LOGS/llama.txt" ;;
  fp8)
    QOPT_BENCH_MODELS="f16 fp8w fp8" QOPT_BENCH_EXTRA=0 QOPT_BENCH_DISCARD=1 QOPT_BENCH_STEPS="make compile qrun" \
      bash "$ROOT/bench/gpu/llama8b.sh" "$BIN" "$WORK" 2>&1 | tee "$LOGS/fp8.txt" ;;
  *) usage ;;
esac
