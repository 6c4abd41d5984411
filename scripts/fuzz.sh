#!/usr/bin/env bash
# Longer randomized fuzzing of every libFuzzer target (ASan+UBSan build), two at a time:
#   scripts/fuzz.sh [SECONDS_PER_TARGET=60]
# Crashes are written to build-asan/fuzz-findings/<target>/; CI runs a short fixed-seed pass.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
./scripts/build.sh Asan build-asan >/dev/null
cd build-asan
for f in *_fuzz; do
  name=${f%_fuzz}
  mkdir -p "fuzz-findings/$f" "fuzz-work/$name"
  cp -r ../fuzz/corpus/"$name"/. "fuzz-work/$name/"
  ( ( ./"$f" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=4096 -artifact_prefix="fuzz-findings/$f/" \
      "fuzz-work/$name" > "fuzz-findings/$f.log" 2>&1 && echo "$f: no crash in ${secs}s" ) || echo "$f: FOUND A CRASH (fuzz-findings/$f)" ) &
  [ "$(jobs -r | wc -l)" -ge 2 ] && wait -n
done
wait
# Any crash, leak or timeout input left behind fails the run.
! ls fuzz-findings/*/crash-* fuzz-findings/*/leak-* fuzz-findings/*/timeout-* 2>/dev/null | grep -q .
