#!/usr/bin/env bash
# Builds qopt with shared libraries (BUILD_SHARED_LIBS=ON) in build-shared/ and runs the lit suite there, including
# test/embedding (install + out-of-tree consumers linking the shared libraries). CI builds the static default; run
# this by hand after changing CMake files. Usage: scripts/check-shared-build.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-shared}
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
  -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
  -DLLVM_USE_LINKER=lld -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit
ninja -C "$dir"
QOPT_SKIP_STORIES15M=1 /usr/lib/llvm-22/bin/lit -sv "$dir/test"
