#!/usr/bin/env bash
# Runs qopt's libFuzzer targets (fuzz/) for a fixed time each, one after another, and prints per target the
# seconds, executions, corpus size and whether it stopped on a crash, leak or timeout.
#
#   scripts/fuzz.sh [-t SECONDS] [-d BUILD_DIR] [-n] [TARGET...]
#
# TARGET: onnx, model, tokenizer, npy (default: all four). -n: run the targets as built, without rebuilding. The build dir is scripts/test-sanitized.sh's
# (build-sanitized: ASan + UBSan + libFuzzer); it is configured and built if needed. Seeds come from the test
# tree (ONNX's backend test models, the shipped stories260K, model.bin files compiled from them, .npy files and
# tokenizer.bin images from fuzz/make_seeds.py); each target keeps its corpus in BUILD_DIR/fuzz/corpus/TARGET
# across runs, and a crashing input is written to BUILD_DIR/fuzz/artifacts/TARGET/. Each run appends a line to
# BUILD_DIR/fuzz/runs.tsv (date, target, seconds, executions, corpus files, result), so totals can be added up.
# Exit status: non-zero if any target found a problem. Reproduce one with: BUILD_DIR/bin/qopt-fuzz-TARGET FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=60 dir=build-sanitized rebuild=1
while getopts "t:d:n" o; do
  case $o in
  t) seconds=$OPTARG ;; d) dir=$OPTARG ;; n) rebuild= ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
targets=("$@")
((${#targets[@]})) || targets=(onnx model tokenizer npy)
for t in "${targets[@]}"; do
  case $t in onnx | model | tokenizer | npy) ;; *) echo "fuzz.sh: unknown target '$t' (onnx, model, tokenizer, npy)" >&2; exit 2 ;; esac
done

if [ ! -x "$dir/bin/qopt-fuzz-npy" ] || ! grep -q "QOPT_FUZZ:BOOL=ON" "$dir/CMakeCache.txt" 2>/dev/null; then
  QOPT_SANITIZED_BUILD_ONLY=1 bash scripts/test-sanitized.sh "$dir"
fi
[ -z "$rebuild" ] || ninja -C "$dir" qopt-fuzz-onnx qopt-fuzz-model qopt-fuzz-tokenizer qopt-fuzz-npy qopt >/dev/null

fz="$dir/fuzz"
seeds="$fz/seeds"
if [ ! -f "$seeds/.done" ]; then
  rm -rf "$seeds"
  mkdir -p "$seeds"/{onnx,model,tokenizer,npy}
  /usr/bin/python3 fuzz/make_seeds.py "$seeds"
  n=0
  for m in /usr/share/libonnx-testdata/data/*/*/model.onnx; do
    n=$((n + 1))
    cp "$m" "$seeds/onnx/$(basename "$(dirname "$m")").onnx"
  done
  cp models/stories260K/stories260K.onnx "$seeds/onnx/"
  cp models/stories260K/tok512.bin "$seeds/tokenizer/"
  find test fuzz/regressions -name '*.npy' -size -1M -exec cp {} "$seeds/npy/" \; 2>/dev/null || true
  # model.bin seeds: a sample of the backend models (one per op family) compiled by qopt, and stories260K with
  # its tokenizer, in float and quantized (the matmul_q operands).
  for m in "$seeds"/onnx/test_*.onnx; do
    b=$(basename "$m" .onnx)
    case $b in *_expanded* | *_example* | *random*) continue ;; esac
    [ "$(ls "$seeds/model" | wc -l)" -lt 300 ] || break
    "$dir/bin/qopt" "$m" -o "$seeds/model/$b.bin" 2>/dev/null || rm -f "$seeds/model/$b.bin"
  done
  "$dir/bin/qopt" models/stories260K/stories260K.onnx --tokenizer models/stories260K/tok512.bin \
    -o "$seeds/model/stories260K.bin" 2>/dev/null
  "$dir/bin/qopt" models/stories260K/stories260K.onnx --quantize=rtn4 --group-size 32 \
    -o "$seeds/model/stories260K-rtn4.bin" 2>/dev/null
  # With session state: the KV cache graph (Storage::State values, kv_append/kv_advance in place).
  "$dir/bin/qopt" models/stories260K/stories260K-kv.onnx -o "$seeds/model/stories260K-kv.bin" 2>/dev/null
  "$dir/bin/qopt" test/reliability/Inputs/tiny-kv.mlir -o "$seeds/model/tiny-kv.bin" 2>/dev/null
  touch "$seeds/.done"
fi

export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:${ASAN_OPTIONS:-}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}
status=0
printf "%-10s %8s %12s %8s %10s  %s\n" target seconds executions corpus kB result
for t in "${targets[@]}"; do
  corpus="$fz/corpus/$t" art="$fz/artifacts/$t/"
  mkdir -p "$corpus" "$art"
  log="$fz/$t.log"
  rc=0
  start=$(date +%s)
  # -max_len: ONNX models and model.bins are larger than libFuzzer's default 4 KB; stories260K's are ~1 MB.
  maxlen=4096
  case $t in onnx | model) maxlen=1200000 ;; tokenizer) maxlen=65536 ;; esac
  "$dir/bin/qopt-fuzz-$t" "$corpus" "$seeds/$t" fuzz/regressions/$t -max_total_time="$seconds" -timeout=30 \
    -rss_limit_mb=3072 -max_len=$maxlen -artifact_prefix="$art" \
    -print_final_stats=1 >"$log" 2>&1 || rc=$?
  took=$(($(date +%s) - start))
  execs=$(grep -h "stat::number_of_executed_units" "$log" | awk '{s += $2} END {print s + 0}')
  files=$(find "$corpus" -type f | wc -l)
  kb=$(du -sk "$corpus" | cut -f1)
  result=ok
  if [ $rc -ne 0 ]; then
    result="FAILED (rc $rc): $(grep -m1 -E "ERROR: |SUMMARY: |runtime error" "$log" || echo see "$log")"
    status=1
  fi
  printf "%-10s %8s %12s %8s %10s  %s\n" "$t" "$took" "$execs" "$files" "$kb" "$result"
  printf "%s\t%s\t%s\t%s\t%s\t%s\n" "$(date -u +%FT%TZ)" "$t" "$took" "$execs" "$files" "$result" \
    >>"$fz/runs.tsv"
done
exit $status
