#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test: the Release build, then the same suite
# under ASan+UBSan (clang), which also runs each libFuzzer target over its seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc)
export CCACHE_DIR=${CCACHE_DIR:-$PWD/.cache/ccache}

echo "==> Release build and tests"
./scripts/build.sh Release build
ctest --test-dir build --output-on-failure -j "$jobs"

echo "==> ASan+UBSan build and tests"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
./scripts/build.sh Asan build-asan
ctest --test-dir build-asan --output-on-failure -j "$jobs"
echo "==> all tests passed"
