#!/usr/bin/env bash
# qopt's linear kernels next to PyTorch's at Llama-3-8B shapes, in the same run on the GPU machine:
#   bash bench/gpu/gemm.sh DIR [--cold]   (DIR from `bash scripts/test-gpu.sh prepare DIR`: qopt-gpu-kernel-check)
# --cold: both sides take a product's weights from copies in turn (256 MB or more in all), read from DRAM as in a
# decode step, not partly from L2 as back-to-back calls on one copy are.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DIR="${1:?usage: gemm.sh DIR [--cold]}"
shift
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
"$DIR/qopt-gpu-kernel-check" --bench --arch "${QOPT_CUDA_ARCH:-sm_90a}" "$@"
python3 "$ROOT/bench/gpu/gemm_torch.py" "$@"
