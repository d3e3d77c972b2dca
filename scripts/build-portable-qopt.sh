#!/usr/bin/env bash
# Builds a qopt that runs on a machine without LLVM 22 or the ONNX packages (for example the GPU machine):
# MLIR and LLVM linked statically into one stripped binary, with the three shared libraries Debian has no static
# build of (libonnx, libonnx_proto, libprotobuf) copied beside it and found through the binary's $ORIGIN rpath.
#
# usage: scripts/build-portable-qopt.sh OUT_DIR      (builds in ./build-portable; OUT_DIR gets qopt, qrun, lib/)
# Needs only glibc >= 2.36 and libstdc++ with GLIBCXX_3.4.30 where it runs.
set -euo pipefail
out=${1:?usage: $0 OUT_DIR}
cd "$(dirname "$0")/.."
cmake -S . -B build-portable -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 -DLLVM_USE_LINKER=lld \
  -DQOPT_STATIC_LLVM=ON -DQOPT_BUILD_TESTS=OFF \
  "-DCMAKE_EXE_LINKER_FLAGS=-fuse-ld=lld -Wl,--as-needed -Wl,--icf=all -Wl,--strip-all" \
  "-DCMAKE_BUILD_RPATH=\$ORIGIN/lib" >/dev/null
ninja -C build-portable qopt qrun
mkdir -p "$out/lib"
cp build-portable/bin/qopt build-portable/bin/qrun "$out/"
# The shared libraries qopt needs beyond glibc/libstdc++, resolved here and copied (dereferenced) beside it.
for lib in libonnx.so libonnx_proto.so libprotobuf.so; do
  path=$(ldd build-portable/bin/qopt | awk -v l="$lib" 'index($1, l) == 1 { print $3 }')
  [ -n "$path" ] || { echo "build-portable-qopt: qopt does not link $lib?" >&2; exit 1; }
  cp -L "$path" "$out/lib/"
done
ldd "$out/qopt" | awk '{ print "  " $1 " => " $3 }'
du -sh "$out"
