#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test, in stages:
#   1. Release (gcc): build (which also checks the layering of every include) and all tests;
#   2. clang-tidy over the .cc files the last commit changed, warnings as errors;
#   3. ASan+UBSan (clang): build, all tests, and each libFuzzer target over its seed corpus;
#   4. ThreadSanitizer (clang): build, the unit and end-to-end tests.
# Prints each stage's time at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc)
export CCACHE_DIR=${CCACHE_DIR:-$PWD/.cache/ccache}

timings=()
stage_name="" stage_start=0 in_stage=0
begin() { stage_name=$1; stage_start=$SECONDS; in_stage=1; echo "==> $1"; }
took() { printf '%dm%02ds' $(((SECONDS - stage_start) / 60)) $(((SECONDS - stage_start) % 60)); }
end() { timings+=("$(printf '  %-34s %s' "$stage_name" "$(took)")"); in_stage=0; }
report() {
  echo "==> stage times"
  if [ ${#timings[@]} -gt 0 ]; then printf '%s\n' "${timings[@]}"; fi
  if [ "$in_stage" = 1 ]; then printf '  %-34s %s (FAILED)\n' "$stage_name" "$(took)"; fi
}
trap report EXIT

begin "Release build and tests"
./scripts/build.sh Release build
ctest --test-dir build --output-on-failure -j "$jobs"
end

begin "clang-tidy on changed files"
./scripts/tidy.sh build
end

begin "ASan+UBSan build and tests"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
./scripts/build.sh Asan build-asan
ctest --test-dir build-asan --output-on-failure -j "$jobs"
end

begin "ThreadSanitizer build and tests"
# Inherited by the coffer processes the end-to-end tests start: a race there fails the test too.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
./scripts/build.sh Tsan build-tsan
ctest --test-dir build-tsan --output-on-failure -j "$jobs"
end
echo "==> all tests passed"
