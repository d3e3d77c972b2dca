#!/usr/bin/env bash
# The GPU test suite (test/gpu): every CUDA kernel template agrees with its CPU reference kernel on random inputs
# (qopt-gpu-kernel-check), and every test model compiled for CUDA runs on the GPU and agrees with the CPU backend
# (check_models.py).
#
#   bash scripts/test-gpu.sh                 # a machine with the build (qopt), NVRTC and a GPU: prepare, then run
#   bash scripts/test-gpu.sh prepare DIR     # where qopt is built: compile the test models into DIR, copy qrun
#   bash scripts/test-gpu.sh run DIR         # on the GPU machine (no compiler needed): run the checks on DIR
#
# Prints one line per check and `N passed, N failed` last; exits non-zero on a failure.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${QOPT_BUILD:-$ROOT/build}/bin"
ARCHS="${QOPT_CUDA_ARCHS:-sm_90a,sm_80}"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

prepare() {
  local dir="$1" m="$ROOT/models/stories260K" calib="$ROOT/data/tinystories/calib.txt"
  mkdir -p "$dir"
  local common=(--tokenizer "$m/tok512.bin" --target="cuda:$ARCHS")
  "$BIN/qopt" "$m/stories260K-kv.onnx" "${common[@]}" -o "$dir/stories260K-kv-none.bin"
  "$BIN/qopt" "$m/stories260K-kv.onnx" "${common[@]}" --quantize=rtn4 --group-size 32 -o "$dir/stories260K-kv-rtn4-g32.bin"
  "$BIN/qopt" "$m/stories260K-kv.onnx" "${common[@]}" --quantize=rtn4 --granularity channel -o "$dir/stories260K-kv-rtn4-channel.bin"
  "$BIN/qopt" "$m/stories260K-kv.onnx" "${common[@]}" --quantize=int8 -o "$dir/stories260K-kv-int8.bin"
  "$BIN/qopt" "$m/stories260K-kv.onnx" "${common[@]}" --quantize=fp8w -o "$dir/stories260K-kv-fp8w.bin"
  "$BIN/qopt" "$m/stories260K-kv.onnx" "${common[@]}" --quantize=fp8w --fp8-format=e5m2 -o "$dir/stories260K-kv-fp8w-e5m2.bin"
  "$BIN/qopt" "$m/stories260K-kv.onnx" "${common[@]}" --quantize=awq4 --group-size 32 --calib "$calib" -o "$dir/stories260K-kv-awq4-g32.bin"
  # W8A8 FP8: x rounded to FP8 in the kernels (static calibrated scales, and per-row scales).
  "$BIN/qopt" "$m/stories260K-kv.onnx" "${common[@]}" --quantize=fp8 --calib "$calib" --calib-samples 16 \
    -o "$dir/stories260K-kv-fp8-static.bin"
  "$BIN/qopt" "$m/stories260K-kv.onnx" "${common[@]}" --quantize=fp8 --act-scale=dynamic -o "$dir/stories260K-kv-fp8-dynamic.bin"
  # W8A8 int8 (SmoothQuant): x rounded to int8 in the kernels, per row (the default) and under static scales.
  "$BIN/qopt" "$m/stories260K-kv.onnx" "${common[@]}" --quantize=w8a8 --calib "$calib" --calib-samples 16 \
    -o "$dir/stories260K-kv-w8a8-dynamic.bin"
  "$BIN/qopt" "$m/stories260K-kv.onnx" "${common[@]}" --quantize=w8a8 --act-scale=static --calib "$calib" \
    --calib-samples 16 -o "$dir/stories260K-kv-w8a8-static.bin"
  # The models above keep a float16 KV cache (a CUDA target's default); these two a float32 one.
  "$BIN/qopt" "$m/stories260K-kv.onnx" "${common[@]}" --kv-cache=f32 -o "$dir/stories260K-kv-none-kvf32.bin"
  "$BIN/qopt" "$m/stories260K-kv.onnx" "${common[@]}" --kv-cache=f32 --quantize=rtn4 --group-size 32 -o "$dir/stories260K-kv-rtn4-g32-kvf32.bin"
  "$BIN/qopt" "$m/stories260K.onnx" "${common[@]}" -o "$dir/stories260K-none.bin"
  # An FP8 KV cache (calibrated per-kv-head scales): appends, decode attention and the prompts' row kernel (head
  # dim 8) over E4M3 codes.
  "$BIN/qopt" "$m/stories260K-kv.onnx" "${common[@]}" --kv-cache=fp8 --calib "$calib" --calib-samples 16 \
    -o "$dir/stories260K-kv-none-fp8kv.bin"
  # Launches without a CUDA kernel run on the host: a model compiled for the CPU, and the decomposed graph (pow...).
  "$BIN/qopt" "$m/stories260K-kv.onnx" --tokenizer "$m/tok512.bin" -o "$dir/fallback-stories260K-kv-cpu.bin"
  "$BIN/qopt" "$m/stories260K.onnx" "${common[@]}" --raise=false -o "$dir/fallback-stories260K-unraised.bin"
  # The Hugging Face families (random weights, 2 layers): with a KV cache, and the sdpa export without one.
  for h in llama.kv mistral.kv qwen2.kv phi3.kv llama.sdpa; do
    "$BIN/qopt" "$ROOT/test/hf/$h.onnx" --target="cuda:$ARCHS" -o "$dir/hf-$h.bin"
  done
  "$BIN/qopt" "$ROOT/test/hf/llama.kv.onnx" --target="cuda:$ARCHS" --quantize=rtn4 -o "$dir/hf-llama.kv-rtn4.bin"
  # An E5M2 KV cache under Llama's rotary keys (kv_append_rotary) and prompts on the tensor cores (head dim 16),
  # calibrated on random token ids.
  "$PY" -c "import numpy as np; np.save('$dir/ids.npy', np.random.default_rng(0).integers(3, 256, (8, 32)).astype(np.int32))"
  "$BIN/qopt" "$ROOT/test/hf/llama.kv.onnx" --target="cuda:$ARCHS" --kv-cache=fp8_e5m2 --calib "$dir/ids.npy" \
    --calib-seq-len 32 -o "$dir/hf-llama.kv-fp8kv-e5m2.bin"
  # Quantized weights in the GPU's tile layouts (qopt-tile-weights) in every product, both pairings (the gated
  # gate/up pairs gate and up rows): a random Llama whose widths are whole tiles, int4 and FP8 codes.
  "$PY" "$ROOT/scripts/make_random_llama.py" --dim 256 --hidden 768 --layers 2 --heads 4 --kv-heads 2 --vocab 512 \
    --max-sequence 256 -o "$dir/tiles.onnx" >/dev/null
  "$BIN/qopt" "$dir/tiles.onnx" --target="cuda:$ARCHS" --quantize=rtn4 -o "$dir/tiles-rtn4.bin"
  "$BIN/qopt" "$dir/tiles.onnx" --target="cuda:$ARCHS" --quantize=fp8w -o "$dir/tiles-fp8w.bin"
  # bfloat16 operands (--act-dtype=bf16: the tensor cores' operands, float weights, the embedding table and the KV
  # cache in bfloat16): float, int4 and FP8 weights, and the random Llamas (head dim 16: prompts and decode
  # attention on the tensor cores over the bfloat16 cache; whole tiles).
  "$BIN/qopt" "$m/stories260K-kv.onnx" "${common[@]}" --act-dtype=bf16 -o "$dir/stories260K-kv-none-bf16.bin"
  "$BIN/qopt" "$m/stories260K-kv.onnx" "${common[@]}" --act-dtype=bf16 --quantize=rtn4 --group-size 32 \
    -o "$dir/stories260K-kv-rtn4-g32-bf16.bin"
  "$BIN/qopt" "$m/stories260K-kv.onnx" "${common[@]}" --act-dtype=bf16 --quantize=fp8w -o "$dir/stories260K-kv-fp8w-bf16.bin"
  "$BIN/qopt" "$ROOT/test/hf/llama.kv.onnx" --target="cuda:$ARCHS" --act-dtype=bf16 -o "$dir/hf-llama.kv-bf16.bin"
  "$BIN/qopt" "$dir/tiles.onnx" --target="cuda:$ARCHS" --act-dtype=bf16 --quantize=rtn4 -o "$dir/tiles-rtn4-bf16.bin"
  cp "$BIN/qrun" "$BIN/qopt-gpu-kernel-check" "$dir/"
  # QOPT_GPU_PRECOMPILE=1: the kernel check's NVRTC images compiled here too (no GPU needed; about 7 s a case and
  # core, ~1000 cases), which run then finds in DIR/nvrtc-cache where its NVRTC is the same version.
  if [ "${QOPT_GPU_PRECOMPILE:-0}" = 1 ]; then
    compile_checks "$dir/qopt-gpu-kernel-check" "$dir/nvrtc-cache"
  fi
}

# The kernel check's images (float16 and bfloat16 operands) into the cache CACHE, compiled by one process per core
# (`--shard I/N`); images already there (same source, options and NVRTC version) are not compiled again.
compile_checks() {
  local check="$1" cache="$2" jobs i dtype pids=()
  jobs="${QOPT_GPU_JOBS:-$(nproc)}"
  for dtype in f16 bf16; do
    for ((i = 0; i < jobs; i++)); do
      "$check" --arch "${ARCHS%%,*}" --compile-only --act-dtype "$dtype" --cache "$cache" --shard "$i/$jobs" \
        >"$cache.$dtype.$i.log" 2>&1 &
      pids+=($!)
    done
  done
  local rc=0 pid
  for pid in "${pids[@]}"; do
    wait "$pid" || rc=1
  done
  if [ $rc != 0 ]; then
    grep -h '^FAIL' "$cache".*.log >&2 || true
    echo "test-gpu.sh: compiling the kernel check's kernels failed (logs: $cache.*.log)" >&2
  fi
  rm -f "$cache".*.log
  return $rc
}

run() {
  local dir="$1" log passed=0 failed=0 rc=0
  log="$(mktemp)"
  # Every image the checks need, compiled first by all cores (a case compiled alone takes seconds; the checks would
  # otherwise compile ~1000 of them one after the other).
  mkdir -p "$dir/nvrtc-cache"
  compile_checks "$dir/qopt-gpu-kernel-check" "$dir/nvrtc-cache" || rc=1
  "$dir/qopt-gpu-kernel-check" --arch "${ARCHS%%,*}" --cache "$dir/nvrtc-cache" | tee -a "$log" || rc=1
  # The argmax and sampling helpers again with one block a row: sm_80's way, which a GPU with clusters otherwise
  # takes only when a cluster cannot be placed.
  QRT_ROW_BLOCKS=1 "$dir/qopt-gpu-kernel-check" --arch "${ARCHS%%,*}" --cache "$dir/nvrtc-cache" --only helper |
    grep -E '^(PASS|FAIL) ' | sed -E 's/^(PASS|FAIL) /\1 [one block a row] /' | tee -a "$log" || rc=1
  # Every kernel again compiled for bfloat16 operands (--act-dtype=bf16).
  "$dir/qopt-gpu-kernel-check" --arch "${ARCHS%%,*}" --cache "$dir/nvrtc-cache" --act-dtype bf16 |
    grep -E '^(PASS|FAIL) ' | sed -E 's/^(PASS|FAIL) /\1 [bf16] /' | tee -a "$log" || rc=1
  "$PY" "$ROOT/test/gpu/check_models.py" --qrun "$dir/qrun" --eval "$ROOT/data/tinystories/eval.txt" \
    "$dir"/*.bin | tee -a "$log" || rc=1
  passed=$(grep -c '^PASS' "$log" || true)
  failed=$(grep -c '^FAIL' "$log" || true)
  rm -f "$log"
  echo "GPU suite: $passed passed, $failed failed"
  return $rc
}

case "${1:-all}" in
  prepare) prepare "${2:?usage: test-gpu.sh prepare DIR}" ;;
  run) run "${2:?usage: test-gpu.sh run DIR}" ;;
  all)
    dir="$(mktemp -d)"
    trap 'rm -rf "$dir"' EXIT
    prepare "$dir" 2>/dev/null
    run "$dir"
    ;;
  *) echo "usage: test-gpu.sh [prepare DIR | run DIR]" >&2; exit 2 ;;
esac
