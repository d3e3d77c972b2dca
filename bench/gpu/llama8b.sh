#!/usr/bin/env bash
# A Llama-3-8B-shaped model, batch 1, qopt + qrun next to PyTorch in the same run on the GPU machine:
#   bash bench/gpu/llama8b.sh BIN [WORK]
# BIN holds qopt, qrun and lib/ from `bash scripts/build-portable-qopt.sh BIN` (built where MLIR is installed);
# WORK (default /tmp/qopt-llama8b) gets the ONNX model (32 GiB of float32 weights, removed once compiled) and the model.bin files.
#
# 1. scripts/make_random_llama.py --preset llama3-8b: random float32 weights, KV-cache graph
# 2. qopt --target=cuda:sm_90a: --quantize=none (float16 weights) and --quantize=rtn4 --group-size 128, compiled
#    one after the other; generation's prompts whole (prefill_last planned for the 2048-token context), scoring
#    windows of 512 tokens (--max-dim prefill:sequence=512: the all-logits entry's arena)
# 3. qrun --bench --device=cuda: decode (32-token prompt, 256 new tokens), prefill (a 2048-token prompt), and a
#    QRT_PROFILE=1 decode that shows the time per kernel family
# 4. bench/gpu/llama_torch.py: HF transformers, bf16, static-cache generate and the 2048-token forward
# Environment: QOPT_BENCH_REPEAT (3), QOPT_BENCH_PREFILL_REPEAT (2), QOPT_BENCH_STEPS (which of "make compile qrun torch" to run; all),
# QOPT_BENCH_EXTRA (1: also decode without programmatic dependent launch and the per-kernel profiles; 0: not),
# QOPT_BENCH_MODELS (which model.bin files, "f16 rtn4" by default; f16-full and rtn4-full plan every entry for the
# whole 2048-token context, f16-512 and rtn4-512 every entry for 512 tokens (prompts in chunks of 512); fp8 is W8A8
# FP8 with per-row activation scales (--quantize=fp8 --act-scale=dynamic: a random model has no calibration text),
# fp8w FP8 weights under 16-bit activations, w8a8 SmoothQuant's int8 weights and per-row int8 activations
# (calibrated on random token ids), bf16 and rtn4-bf16 f16's and rtn4's with bfloat16 operands (--act-dtype=bf16:
# bfloat16 weights, cache and tensor-core operands, as PyTorch's side runs); a name ending in +kvf32, +kvf16 or +kvfp8 compiles the same with that
# --kv-cache, float16 by default; fp8's per-kv-head scales calibrated on random token ids), QOPT_BENCH_DISCARD (1:
# each model compiled, run and deleted before the next, for a disk that holds the ONNX model and one model.bin, not
# all of them), QOPT_BENCH_CONTEXT (the model's context, 2048 by default) and QOPT_BENCH_DECODE_PROMPT (the decode
# runs' prompts, "32" tokens by default; a list runs each: "32 7936" with a context of 8192 also decodes 256 tokens
# at 8k context). A dry run of the whole flow on any machine: QOPT_BENCH_SHAPE (make_random_llama.py's shape options
# instead of "--preset llama3-8b", e.g. "--dim 256 --hidden 768 --layers 2 --heads 4 --kv-heads 2 --vocab 512") and
# QOPT_BENCH_DEVICE (qrun's --device, cuda by default; cpu runs the same model.bin on the CPU backend).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="$(cd "${1:?usage: llama8b.sh BIN [WORK]}" && pwd)"
WORK="${2:-/tmp/qopt-llama8b}"
REPEAT="${QOPT_BENCH_REPEAT:-3}"
PREFILL_REPEAT="${QOPT_BENCH_PREFILL_REPEAT:-2}"
STEPS="${QOPT_BENCH_STEPS:-make compile qrun torch}"
MODELS="${QOPT_BENCH_MODELS:-f16 rtn4}"
CONTEXT="${QOPT_BENCH_CONTEXT:-2048}"
SHAPE="${QOPT_BENCH_SHAPE:---preset llama3-8b}"
DEVICE="${QOPT_BENCH_DEVICE:-cuda}"
DECODE_PROMPT="${QOPT_BENCH_DECODE_PROMPT:-32}"
mkdir -p "$WORK"
export LD_LIBRARY_PATH="$BIN/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -z "${QOPT_NVRTC:-}" ] && [ -e /usr/local/cuda/lib64/libnvrtc.so ]; then
  export QOPT_NVRTC=/usr/local/cuda/lib64/libnvrtc.so
fi
step() { [[ " $STEPS " == *" $1 "* ]]; }
stamp() { echo "[$(date +%T)] $*"; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
df -h "$WORK" | tail -1
if step make; then
  stamp "writing the model"
  python3 "$ROOT/scripts/make_random_llama.py" $SHAPE --max-sequence "$CONTEXT" -o "$WORK/llama8b.onnx"
fi
# Calibration (SmoothQuant's channel ranges, an FP8 KV cache's head scales) on random token ids: a random model has
# no text of its own.
calib=(--calib "$WORK/ids.npy" --calib-samples 2 --calib-seq-len 32)
compile() {
    local m="$1" args
    python3 -c "import numpy as np; np.save('$WORK/ids.npy',
      np.random.default_rng(0).integers(3, 128000, (2, 32)).astype(np.int32))"
    stamp "compiling $m"
    # The session's arena is its largest entry's: bounding the all-logits entry (a 2048 x 128256 float32 result)
    # to 512 tokens leaves prefill_last's 2048-token plan the largest; the -512 variants chunk prompts too.
    case ${m%+kv*} in
      f16) args=(--quantize=none --max-dim prefill:sequence=512) ;;
      rtn4) args=(--quantize=rtn4 --group-size 128 --max-dim prefill:sequence=512) ;;
      bf16) args=(--quantize=none --act-dtype=bf16 --max-dim prefill:sequence=512) ;;
      rtn4-bf16) args=(--quantize=rtn4 --group-size 128 --act-dtype=bf16 --max-dim prefill:sequence=512) ;;
      f16-full) args=(--quantize=none) ;;
      rtn4-full) args=(--quantize=rtn4 --group-size 128) ;;
      f16-512) args=(--quantize=none --max-dim sequence=512) ;;
      rtn4-512) args=(--quantize=rtn4 --group-size 128 --max-dim sequence=512) ;;
      fp8) args=(--quantize=fp8 --act-scale=dynamic --max-dim prefill:sequence=512) ;;
      fp8w) args=(--quantize=fp8w --max-dim prefill:sequence=512) ;;
      w8a8) args=(--quantize=w8a8 --max-dim prefill:sequence=512 "${calib[@]}") ;;
      *) echo "unknown model $m" >&2; exit 2 ;;
    esac
    if [[ $m == *+kvfp8 ]]; then # per-kv-head scales from a calibration run over random token ids
      args+=(--kv-cache=fp8 "${calib[@]}")
    elif [[ $m == *+kvf* ]]; then
      args+=(--kv-cache="${m##*+kv}")
    fi
    /usr/bin/time -f "qopt $m: %e s, %M KiB max resident" \
      "$BIN/qopt" "$WORK/llama8b.onnx" --target=cuda:sm_90a "${args[@]}" --time -o "$WORK/$m.bin" 2>&1 |
      grep -v '^qopt:   qopt-\|^qopt:   canonicalize\|^qopt:   cse'
    # The weights' bytes (bench/gpu/goals.py's memory goal: weights + KV state + 10%).
    echo "model.bin $m: $(python3 "$ROOT/scripts/modelbin_info.py" "$WORK/$m.bin" | grep '^section weights')"
}
run() {
    local m="$1"
    stamp "qrun $m"
    for p in $DECODE_PROMPT; do
      "$BIN/qrun" "$WORK/$m.bin" --device="$DEVICE" --bench --prompt-len "$p" --max-tokens 256 --repeat "$REPEAT"
    done
    "$BIN/qrun" "$WORK/$m.bin" --device="$DEVICE" --bench --prompt-len 2048 --max-tokens 0 --repeat "$PREFILL_REPEAT"
    [ "${QOPT_BENCH_EXTRA:-1}" = 0 ] && return
    # The same decode with every launch waiting for the previous one to end (no programmatic dependent launch).
    QRT_PDL=0 "$BIN/qrun" "$WORK/$m.bin" --device="$DEVICE" --bench --prompt-len 32 --max-tokens 256 \
      --repeat "$REPEAT" |
      grep '^decode' | sed 's/^/QRT_PDL=0 /'
    # Where a decode step's time goes (each launch synchronized and timed: slower than the graph, but by family).
    QRT_PROFILE=1 "$BIN/qrun" "$WORK/$m.bin" --device="$DEVICE" --bench --prompt-len 1 --max-tokens 128 \
      --repeat 1 2>&1 |
      grep -v '^device\|^prefill\|^decode\|^memory' | head -16
    # The same for the 2048-token prefill (the measured run; the warm-up builds cuBLASLt plans and grows buffers), a
    # row per kernel and shapes.
    QRT_PROFILE=shapes QRT_PROFILE_WARMUP=1 "$BIN/qrun" "$WORK/$m.bin" --device="$DEVICE" --bench --prompt-len 2048 \
      --max-tokens 0 --repeat 1 2>&1 | grep -A24 "entry 'prefill" | head -25
}
if [ "${QOPT_BENCH_DISCARD:-0}" = 1 ] && step compile && step qrun; then
  for m in $MODELS; do
    compile "$m"
    run "$m"
    rm -f "$WORK/$m.bin"
  done
  rm -f "$WORK/llama8b.onnx" "$WORK/llama8b.onnx.data"
else
  if step compile; then
    for m in $MODELS; do # one after the other: each holds its model's weights in memory
      compile "$m"
    done
    ls -l "$WORK"/*.bin
    rm -f "$WORK/llama8b.onnx" "$WORK/llama8b.onnx.data" # 32 GB: the disk holds it or both model.bin files
  fi
  if step qrun; then
    for m in $MODELS; do
      run "$m"
    done
  fi
fi
if step torch; then
  stamp "torch"
  python3 "$ROOT/bench/gpu/llama_torch.py" --repeat "$REPEAT"
fi
stamp "done"
