#!/usr/bin/env bash
# Installs what qopt needs on Debian 12 (bookworm): LLVM/MLIR 22, clang-22 + lld, ninja, ccache, ONNX 1.12 with
# protobuf, GoogleTest, clang's sanitizer and fuzzer runtimes (libclang-rt-22-dev), and Debian's python3 with onnx
# and numpy for the test-model scripts. Idempotent.
set -euo pipefail
pkgs=(cmake ninja-build ccache clang-22 lld-22 libclang-rt-22-dev llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
      libonnx-dev libonnx-testdata protobuf-compiler libprotobuf-dev libzstd-dev libgtest-dev
      python3-onnx python3-numpy time npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm may come from the image (nodesource) rather than Debian; any working npm will do.
if command -v npm >/dev/null; then
  missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
