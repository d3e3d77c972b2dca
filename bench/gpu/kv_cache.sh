#!/usr/bin/env bash
# A float16 KV cache against an FP8 one on Llama-3-8B-shaped layers, on the GPU machine:
#   bash bench/gpu/kv_cache.sh BIN [WORK]
# BIN holds qopt, qrun and lib/ from `bash scripts/build-portable-qopt.sh BIN`; WORK (default /tmp/qopt-kv) gets a
# random model of QOPT_KV_LAYERS Llama-3-8B layers (4 by default: about 2 minutes in all; the 32-layer model takes
# bench/gpu/llama8b.sh with QOPT_BENCH_CONTEXT=8192) and one model.bin per entry of QOPT_KV_MODELS ("f16 f16+kvfp8
# rtn4 rtn4+kvfp8": float16 or rtn4 g128 weights, a float16 cache or, with +kvfp8, an E4M3 one whose per-kv-head
# scales come from a calibration run over random token ids). Each model.bin decodes 256 tokens after a 32-token
# and a 7936-token prompt (contexts 32-287 and 7936-8191), medians of QOPT_KV_REPEAT (3) runs. QOPT_KV_NCU=1 also
# times every kernel of two decode steps under ncu (each launch alone: no graph, no overlap), a line per kernel.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="$(cd "${1:?usage: kv_cache.sh BIN [WORK]}" && pwd)"
WORK="${2:-/tmp/qopt-kv}"
LAYERS="${QOPT_KV_LAYERS:-4}"
MODELS="${QOPT_KV_MODELS:-f16 f16+kvfp8 rtn4 rtn4+kvfp8}"
mkdir -p "$WORK"
export LD_LIBRARY_PATH="$BIN/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -z "${QOPT_NVRTC:-}" ] && [ -e /usr/local/cuda/lib64/libnvrtc.so ]; then
  export QOPT_NVRTC=/usr/local/cuda/lib64/libnvrtc.so
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 "$ROOT/scripts/make_random_llama.py" --preset llama3-8b --layers "$LAYERS" --max-sequence 8192 -o "$WORK/l.onnx"
python3 -c "import numpy as np; np.save('$WORK/ids.npy',
  np.random.default_rng(0).integers(3, 128000, (2, 32)).astype(np.int32))"
for m in $MODELS; do
  case ${m%+kvfp8} in
    f16) args=(--quantize=none) ;;
    rtn4) args=(--quantize=rtn4 --group-size 128) ;;
    *) echo "unknown model $m" >&2; exit 2 ;;
  esac
  [[ $m == *+kvfp8 ]] && args+=(--kv-cache=fp8 --calib "$WORK/ids.npy" --calib-samples 2 --calib-seq-len 32)
  /usr/bin/time -f "qopt $m: %e s" "$BIN/qopt" "$WORK/l.onnx" --target=cuda:sm_90a "${args[@]}" \
    --max-dim prefill:sequence=512 -o "$WORK/$m.bin" 2>&1 | grep '^qopt [a-z]'
done
rm -f "$WORK/l.onnx" "$WORK/l.onnx.data"
for m in $MODELS; do
  for p in 32 7936; do
    echo "$m, prompt $p: $("$BIN/qrun" "$WORK/$m.bin" --device=cuda --bench --prompt-len "$p" --max-tokens 256 \
      --repeat "${QOPT_KV_REPEAT:-3}" 2>&1 | grep '^decode')"
  done
done
[ "${QOPT_KV_NCU:-0}" = 1 ] || exit 0
for m in $MODELS; do
  for p in 32 7936; do
    echo "ncu, $m, prompt $p (us per launch, mean over the launches of two decode steps):"
    # The prompts and the first decode steps skipped; a decode step is 8 launches per layer and one more.
    /usr/local/cuda/bin/ncu --metrics gpu__time_duration.sum --launch-skip $((100 * LAYERS)) --launch-count $((16 * LAYERS + 2)) \
      --csv "$BIN/qrun" "$WORK/$m.bin" --device=cuda --bench --prompt-len "$p" --max-tokens 16 --repeat 1 \
      2>/dev/null | python3 -c '
import collections, csv, sys
rows = list(csv.reader(l for l in sys.stdin if l.startswith("\"")))
name, value = rows[0].index("Kernel Name"), rows[0].index("Metric Value")
times = collections.defaultdict(list)
for r in rows[1:]:
    times[r[name]].append(float(r[value].replace(",", "")) / 1000)
for k, t in sorted(times.items(), key=lambda kv: -sum(kv[1])):
    print(f"  {k[:48]:48s} {len(t):3d} x {sum(t) / len(t):8.2f}")'
  done
done
