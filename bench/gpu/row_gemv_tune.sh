#!/usr/bin/env bash
# The one-row products of a Llama-3-8B decode layer (int4 g128 codes: q/k/v, o, the gated gate/up and the down
# product with its residual; float16 weights) timed under several kernel choices next to the compiler's own, in one
# run on the GPU machine:
#   bash bench/gpu/row_gemv_tune.sh DIR        (DIR holds qopt-gpu-kernel-check: `scripts/test-gpu.sh prepare`)
# Each choice is `--tune tiles=T,warps=W,bps=B,batch=U,groups=G,wt=V` of qopt-gpu-kernel-check (16-row tiles per
# group of warps, warps per block, blocks per SM the registers are capped for, chunks per batch of loads, shared (1)
# or per-lane (-1) scale loads, groups of warps side by side, the rest splitting K; absent keeps the compiler's;
# warps without wt: all the warps split K);
# every line is checked against the CPU reference first, then timed (mean of 200 back-to-back launches; a FAIL
# line does not stop the sweep). Set QOPT_TUNE_NCU=1 to also profile the compiler's choice of the gated and the down
# product with Nsight Compute.
set -euo pipefail
DIR="${1:?usage: row_gemv_tune.sh DIR}"
CHECK="$DIR/qopt-gpu-kernel-check"
export QOPT_NVRTC="${QOPT_NVRTC:-/usr/local/cuda/lib64/libnvrtc.so}"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run() { # case-name filter, then tunings
  local only="$1"
  shift
  local args=()
  for t in default "$@"; do args+=(--tune "$t"); done
  "$CHECK" --bench --only "$only" "${args[@]}" | grep -v '^[0-9]* passed' || true
}
run "int4 g128 gated M=1 K=4096 N=2x14336 +norm" \
  tiles=7,warps=8,bps=2 tiles=7,warps=8,bps=2,groups=-1 warps=8,wt=8,tiles=1,bps=2 warps=8,wt=8,tiles=1,bps=2,batch=4 \
  warps=8,wt=4,tiles=2,bps=2 warps=4,wt=4,tiles=1,bps=4 warps=16,wt=8,tiles=2,bps=1
run "int4 g128 M=1 K=14336 N=4096 +residual" \
  tiles=1,warps=8,bps=2 warps=8,wt=2,tiles=1,bps=2 warps=16,wt=4,tiles=1,bps=1 warps=16,wt=1,tiles=2,bps=1
for n in 14336 6144 4096; do
  run "int4 g128 M=1 K=4096 N=$n" \
    tiles=1,warps=4,bps=4 warps=8,wt=2,tiles=1,bps=2 warps=4,wt=2,tiles=1,bps=4 warps=8,wt=4,tiles=1,bps=2 \
    warps=16,wt=8,tiles=1,bps=1
done
# Float16 weights at one row (qGemvMma): warps per block.
for only in "f16 gated M=1 K=4096 N=2x14336" "f16 M=1 K=4096 N=14336" "f16 M=1 K=14336 N=4096"; do
  run "$only" warps=1 warps=2 warps=4 warps=8
done
if [ "${QOPT_TUNE_NCU:-0}" = 1 ]; then
  for only in "int4 g128 gated M=1 K=4096 N=2x14336" "int4 g128 M=1 K=14336 N=4096 +residual"; do
    ncu --kernel-name regex:q_matmul --launch-count 1 --section SpeedOfLight --section LaunchStats \
      --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis_Tables \
      --section SchedulerStats --section SourceCounters --section InstructionStats "$CHECK" --bench --only "$only"
  done
fi
