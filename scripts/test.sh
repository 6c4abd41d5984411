#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test, in stages:
#   1. Release (gcc): build (which also checks the layering of every include) and all tests;
#   2. the Debian package built from it (cpack), installed with dpkg, run and purged;
#   3. clang-tidy over the .cc files the last commit changed, warnings as errors
#      (scripts/tidy.sh, with build/compile_commands.json);
#   4. ASan+UBSan (clang): build, all tests, and each libFuzzer target over its seed corpus;
#   5. ThreadSanitizer (clang): build, the unit and end-to-end tests.
# A failing stage does not stop the later ones (a lint error should not hide a race): the script
# runs them all, prints each stage's result and time, and fails if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh || exit 1
jobs=$(nproc)
# Tests run two per core: most of the end-to-end tests' time is waiting (timers, renewals,
# etcd members restarting), and a Release run used ~27% of the CPU at one per core. ctest starts
# the longest ones first (their COST in CMakeLists.txt).
test_jobs=$((jobs * 2))
export CCACHE_DIR=${CCACHE_DIR:-$PWD/.cache/ccache}

results=()
failed=0
# stage NAME COMMAND: runs COMMAND (a shell snippet, with -e) and records how it went.
stage() {
  local name=$1 start=$SECONDS status
  echo "==> $name"
  bash -euo pipefail -c "$2"
  status=$?
  local t=$((SECONDS - start))
  local verdict=passed
  if [ $status -ne 0 ]; then verdict="FAILED (status $status)"; failed=1; fi
  results+=("$(printf '  %-34s %3dm%02ds  %s' "$name" $((t / 60)) $((t % 60)) "$verdict")")
  echo "==> $name: $verdict"
}

stage "Release build and tests" '
  ./scripts/build.sh Release build
  ctest --test-dir build --output-on-failure -j '"$test_jobs"

# The .deb from the Release build: contents and Depends, then dpkg -i, `coffer server -dev` from
# it as the coffer user, remove and purge (scripts/package_test.sh; installing needs root).
stage "Debian package (cpack, dpkg -i)" '
  ./scripts/package_test.sh build'

stage "clang-tidy on changed files" '
  ./scripts/tidy.sh build'

stage "ASan+UBSan build and tests" '
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ./scripts/build.sh Asan build-asan
  ctest --test-dir build-asan --output-on-failure -j '"$test_jobs"

# TSAN_OPTIONS reaches the coffer processes the end-to-end tests start: a race there fails the
# test too. With coffer::Mutex (util/mutex.h) in place of absl::Mutex, TSan sees every lock of
# Coffer's own code. The only suppressions are for uninstrumented Debian libraries (gRPC,
# protobuf, abseil: libc calls made from inside them), compiled into TSan binaries by
# src/kms/server.cc, which says why; races in Coffer's code are still reported.
stage "ThreadSanitizer build and tests" '
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
  ./scripts/build.sh Tsan build-tsan
  ctest --test-dir build-tsan --output-on-failure -j '"$test_jobs"

echo "==> stages"
printf '%s\n' "${results[@]}"
if [ $failed -ne 0 ]; then
  echo "==> FAILED"
  exit 1
fi
echo "==> all tests passed"
