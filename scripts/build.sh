#!/usr/bin/env bash
# Configures and builds one build type into one folder: build.sh [Release|Debug|Asan|Tsan] [dir]
# Asan (ASan+UBSan) builds with clang so the libFuzzer targets build in the same tree.
set -euo pipefail
cd "$(dirname "$0")/.."
type=${1:-Release}
dir=${2:-build}
extra=()
if [ "$type" = "Asan" ]; then
  extra=(-DCMAKE_CXX_COMPILER=clang++ -DCOFFER_FUZZ=ON)
fi
extra+=(-DCOFFER_WERROR=ON)  # warnings are errors, locally as in CI
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "${extra[@]}" >/dev/null
cmake --build "$dir"
