#!/usr/bin/env bash
# What compiling a large model takes: a Llama-3-8B-shaped model of QOPT_CM_LAYERS layers (default 16; 32 is the
# whole 8B model, whose 32 GB float32 ONNX file and outputs need about 80 GB of disk) from
# scripts/make_random_llama.py, compiled by each qopt given (default build/bin/qopt) for a CUDA target with float16
# weights (--quantize=none) and with rtn4 g128 (QOPT_CM_SCHEMES, default "f16 rtn4"; also awq4, calibrated on 4
# windows of 128 random token ids: slow on a CPU beyond a few layers). For each: wall time, the peak anonymous memory (RssAnon: what only
# swap could free) and the peak file-backed resident memory (RssFile: the mapped input and the passes' temporary
# files, pages the system writes back and drops under pressure), sampled every 0.5 s from /proc; and whether every
# qopt wrote the same model.bin.
#   bash bench/compile_memory.sh [QOPT ...]
# Environment: QOPT_CM_LAYERS, QOPT_CM_SCHEMES, QOPT_CM_WORK (default /tmp/qopt-compile-memory; the model and outputs, removed
# after), QOPT_NVRTC (the CUDA target's compiler; default /usr/local/cuda/lib64/libnvrtc.so), PYTHON (default
# /usr/bin/python3, with numpy and onnx).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LAYERS="${QOPT_CM_LAYERS:-16}"
SCHEMES="${QOPT_CM_SCHEMES:-f16 rtn4}"
WORK="${QOPT_CM_WORK:-/tmp/qopt-compile-memory}"
PYTHON="${PYTHON:-/usr/bin/python3}"
export QOPT_NVRTC="${QOPT_NVRTC:-/usr/local/cuda/lib64/libnvrtc.so}"
[ $# -ge 1 ] || set -- "$ROOT/build/bin/qopt"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" "$ROOT/scripts/make_random_llama.py" --preset llama3-8b --layers "$LAYERS" --max-sequence 2048 \
  -o "$WORK/m.onnx"
"$PYTHON" -c "import numpy as np; np.save('$WORK/ids.npy', np.random.default_rng(1).integers(0, 128256, (4, 128)).astype(np.int32))"
echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GB", $2 / 1048576}' /proc/meminfo) of memory"
# Runs a command, sampling its RssAnon and RssFile; prints the peaks (MB) and the wall time.
measure() {
  local start pid anon=0 file=0 a f
  start=$(date +%s.%N)
  "$@" > "$WORK/log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    a=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    f=$(awk '/^RssFile/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$a" ] && [ "$a" -gt "$anon" ] && anon=$a
    [ -n "$f" ] && [ "$f" -gt "$file" ] && file=$f
    sleep 0.5
  done
  if ! wait "$pid"; then
    cat "$WORK/log" >&2
    return 1
  fi
  printf '%.0f s, peak anonymous %d MB, peak file-backed %d MB\n' "$(echo "$(date +%s.%N) - $start" | bc)" \
    $((anon / 1024)) $((file / 1024))
}
for q in $SCHEMES; do
  case $q in
    f16) args=(--quantize=none) ;;
    rtn4) args=(--quantize=rtn4 --group-size 128) ;;
    awq4) args=(--quantize=awq4 --group-size 128 --calib "$WORK/ids.npy") ;;
    *) echo "unknown scheme $q (f16, rtn4, awq4)" >&2; exit 2 ;;
  esac
  first=""
  for i in $(seq $#); do
    qopt="${!i}"
    out="$WORK/$i-$q.bin"
    echo "$q, $qopt: $(measure "$qopt" "$WORK/m.onnx" --target=cuda:sm_90a "${args[@]}" --max-dim sequence=512 -o "$out")"
    if [ -z "$first" ]; then
      first="$out"
    else
      cmp -s "$first" "$out" && echo "  the same model.bin" || echo "  a different model.bin"
      rm -f "$out"
    fi
  done
  rm -f "$first"
done
