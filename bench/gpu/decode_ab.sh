#!/usr/bin/env bash
# Decode speed of several qopt builds on one model, in one run on the GPU machine (an A/B of a compiler or kernel
# change, without the 32-layer model's 30 GB and 7 minutes):
#   bash bench/gpu/decode_ab.sh BIN_A [BIN_B ...]
# Each BIN holds qopt and qrun from `bash scripts/build-portable-qopt.sh BIN`; lib/ is taken from the first that
# has one. The model is scripts/make_random_llama.py's Llama-3-8B width with QOPT_AB_LAYERS layers (default 8),
# compiled by each build as each of QOPT_AB_MODELS (default "f16 rtn4": --quantize=none and --quantize=rtn4
# --group-size 128; also fp8w, --quantize=fp8w; NAME-rows: NAME with --weight-layout=rows, the quantized weights' rows
# as they are instead of the GPU's tiles; --max-dim sequence=512, as llama8b.sh); then each build's qrun
# runs `--bench --prompt-len 32 --max-tokens 256 --repeat 3` on its own model.bin, all builds in turn,
# QOPT_AB_ROUNDS times (default 2) so that drift between rounds shows. Last, a
# QRT_PROFILE=1 decode of the last build's last model (the time per kernel family, each launch synchronized), and,
# for each entry of QOPT_AB_SKIPS (space-separated; an entry is a QRT_SKIP list such as add_rms_norm or
# kv_append,kv_append_rotary), the last build's decode with those families left out: what they cost in the graph.
# One build alone (BIN_A) measures just that.
# Environment: QOPT_AB_LAYERS, QOPT_AB_MODELS, QOPT_AB_ROUNDS, QOPT_AB_SKIPS, QOPT_AB_WORK (default
# /tmp/qopt-decode-ab).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
[ $# -ge 1 ] || { echo "usage: $0 BIN_A [BIN_B ...]" >&2; exit 2; }
bins=()
lib=""
for b in "$@"; do
  b="$(cd "$b" && pwd)"
  bins+=("$b")
  [ -z "$lib" ] && [ -d "$b/lib" ] && lib="$b/lib"
done
export LD_LIBRARY_PATH="${lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export QOPT_NVRTC="${QOPT_NVRTC:-/usr/local/cuda/lib64/libnvrtc.so}"
LAYERS="${QOPT_AB_LAYERS:-8}"
ROUNDS="${QOPT_AB_ROUNDS:-2}"
MODELS="${QOPT_AB_MODELS:-f16 rtn4}"
WORK="${QOPT_AB_WORK:-/tmp/qopt-decode-ab}"
mkdir -p "$WORK"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 "$ROOT/scripts/make_random_llama.py" --preset llama3-8b --layers "$LAYERS" --max-sequence 2048 \
  -o "$WORK/m.onnx" > /dev/null
for i in "${!bins[@]}"; do
  for q in $MODELS; do
    case ${q%-rows} in
      f16) args=(--quantize=none) ;;
      rtn4) args=(--quantize=rtn4 --group-size 128) ;;
      fp8w) args=(--quantize=fp8w) ;;
      *) echo "unknown model $q (f16, rtn4, fp8w; NAME-rows: with --weight-layout=rows)" >&2; exit 2 ;;
    esac
    [ "$q" != "${q%-rows}" ] && args+=(--weight-layout=rows)
    "${bins[$i]}/qopt" "$WORK/m.onnx" --target=cuda:sm_90a "${args[@]}" --max-dim sequence=512 -o "$WORK/$i-$q.bin" \
      2>&1 | grep "entry 'decode'" | sed "s|^|${bins[$i]} $q: |"
  done
done
for round in $(seq "$ROUNDS"); do
  for i in "${!bins[@]}"; do
    for q in $MODELS; do
      "${bins[$i]}/qrun" "$WORK/$i-$q.bin" --device=cuda --bench --prompt-len 32 --max-tokens 256 --repeat 3 |
        grep '^decode' | sed "s|^|round $round ${bins[$i]} $q |"
    done
  done
done
last=$((${#bins[@]} - 1))
profiled="${MODELS##* }" # the last model
QRT_PROFILE=1 "${bins[$last]}/qrun" "$WORK/$last-$profiled.bin" --device=cuda --bench --prompt-len 1 --max-tokens 128 \
  --repeat 1 2>&1 | grep -v '^device\|^prefill\|^decode\|^memory' | head -16
for s in ${QOPT_AB_SKIPS:-}; do
  for q in $MODELS; do
    QRT_SKIP="$s" "${bins[$last]}/qrun" "$WORK/$last-$q.bin" --device=cuda --bench --prompt-len 32 --max-tokens 256 \
      --repeat 3 2>/dev/null | grep '^decode' | sed "s|^|without $s: $q |"
  done
done
rm -rf "$WORK"
