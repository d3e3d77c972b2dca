#!/usr/bin/env bash
# The one-row products of a Llama-3-8B decode layer (int4 g128 codes: q/k/v, o, the gated gate/up and the down
# product with its residual) timed under several kernel choices next to the compiler's own, in one run on the GPU
# machine:
#   bash bench/gpu/row_gemv_tune.sh DIR        (DIR holds qopt-gpu-kernel-check: `scripts/test-gpu.sh prepare`)
# Each choice is `--tune tiles=T,warps=W,bps=B,batch=U,stages=S` of qopt-gpu-kernel-check (16-row tiles per block,
# warps per block, blocks per SM the registers are capped for, chunks per batch of loads, batches in flight through
# shared memory; absent keeps the compiler's); every
# line is checked against the CPU reference first, then timed (mean of 200 back-to-back launches). Set
# QOPT_TUNE_NCU=1 to also profile the compiler's choice of the gated and the down product with Nsight Compute.
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
  "$CHECK" --bench --only "$only" "${args[@]}" | grep -v '^[0-9]* passed'
}
run "int4 g128 gated M=1 K=4096 N=2x14336" \
  tiles=7,warps=8,bps=2,batch=2 tiles=5,warps=8,bps=3,batch=2 tiles=7,warps=8,bps=2,batch=4 \
  tiles=7,warps=8,bps=2,stages=3 tiles=4,warps=8,bps=2,stages=3 tiles=5,warps=4,bps=3,stages=4 \
  tiles=14,warps=8,bps=1,stages=6 tiles=14,warps=16,bps=1,stages=3 tiles=7,warps=8,bps=2,stages=3,batch=1 \
  tiles=4,warps=4,bps=4,stages=3,batch=1
run "int4 g128 M=1 K=14336 N=4096 +residual" \
  tiles=1,warps=4,bps=4,batch=4 tiles=1,warps=8,bps=2,batch=2 tiles=1,warps=4,bps=2,stages=4 \
  tiles=2,warps=8,bps=1,stages=4 tiles=2,warps=16,bps=1,stages=2 tiles=1,warps=8,bps=2,stages=2 \
  tiles=1,warps=8,bps=2,stages=3,batch=1
for n in 6144 4096; do
  run "int4 g128 M=1 K=4096 N=$n" \
    tiles=1,warps=8,bps=2,batch=2 tiles=1,warps=4,bps=3,stages=4 tiles=2,warps=8,bps=2,stages=3 \
    tiles=1,warps=8,bps=2,stages=3 tiles=1,warps=4,bps=4,stages=3,batch=1
done
# qGemvMma: float16 weights at one row, codes at 2-16 rows.
run "f16 gated M=1 K=4096 N=2x14336" stages=3 stages=4,batch=2 stages=6,batch=2 stages=3,batch=2,warps=4
for s in "f16 M=1 K=4096 N=14336" "f16 M=1 K=14336 N=4096" "int4 g128 M=4 K=4096 N=14336" \
  "int4 g128 M=16 K=4096 N=14336" "int4 g128 M=4 K=14336 N=4096"; do
  run "$s" stages=3 stages=4,batch=2 stages=6,batch=2 stages=4,batch=2,warps=4
done
if [ "${QOPT_TUNE_NCU:-0}" = 1 ]; then
  for only in "int4 g128 gated M=1 K=4096 N=2x14336" "int4 g128 M=1 K=14336 N=4096 +residual"; do
    ncu --kernel-name regex:q_matmul --launch-count 1 --section SpeedOfLight --section LaunchStats \
      --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis_Tables \
      --section SchedulerStats --section SourceCounters "$CHECK" --bench --only "$only"
  done
fi
