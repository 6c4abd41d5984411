#!/usr/bin/env bash
# Configures and builds one build type into one folder: build.sh [Release|Debug|Asan|Tsan] [dir]
# Asan (ASan+UBSan) builds with clang so the libFuzzer targets build in the same tree. Tsan builds
# with clang too: GCC 12 refuses -fsanitize=thread with Boost.Asio's fences under -Werror
# (-Wtsan). Both leave out the benchmarks, which mean nothing under a sanitizer.
# Every build also runs scripts/check_layers.py: an include that runs up the layers fails it.
set -euo pipefail
cd "$(dirname "$0")/.."
type=${1:-Release}
dir=${2:-build}
extra=()
case "$type" in
  Asan) extra=(-DCMAKE_CXX_COMPILER=clang++ -DCOFFER_FUZZ=ON -DCOFFER_BENCH=OFF) ;;
  Tsan) extra=(-DCMAKE_CXX_COMPILER=clang++ -DCOFFER_BENCH=OFF) ;;
esac
extra+=(-DCOFFER_WERROR=ON)  # warnings are errors, locally as in CI
# ccache in depend mode: on a miss it takes the headers from the compiler's own -MD output instead
# of running the preprocessor a second time (~0.7 s a file here, ~6% of a cold build such as CI's).
export CCACHE_DEPEND=${CCACHE_DEPEND:-1}
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "${extra[@]}" >/dev/null
cmake --build "$dir"
