#!/usr/bin/env bash
# clang-tidy (.clang-tidy's checks) over the .cc files the last commit changed, warnings as
# errors. Needs a configured build folder for compile_commands.json (default: build, the Release
# build test.sh makes first):  scripts/tidy.sh [build-dir] [file.cc ...]
# Without files it takes `git diff --name-only HEAD~1 -- '*.cc'` (so, locally, uncommitted changes
# count too); with no HEAD~1 (a first commit, a shallow clone) there is nothing to compare and it
# passes. Only diagnostics in the listed files fail it: headers are reported by the .cc file that
# owns them when that file changes.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [ ! -f "$dir/compile_commands.json" ]; then
  echo "tidy: $dir/compile_commands.json is missing: configure $dir first (scripts/build.sh)" >&2
  exit 2
fi
if [ $# -gt 0 ]; then
  files=("$@")
else
  if ! git rev-parse -q --verify HEAD~1 >/dev/null 2>&1; then
    echo "tidy: no HEAD~1 to compare with: nothing to check"
    exit 0
  fi
  mapfile -t files < <(git diff --name-only HEAD~1 -- '*.cc')
fi
# A unity build (CMakeLists.txt, COFFER_UNITY) lists its batches, not the files in them: each
# batch's command is given back to every file it includes, in a database of our own.
db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT
python3 - "$dir/compile_commands.json" "$db/compile_commands.json" <<'PY'
import json, re, sys
entries = json.load(open(sys.argv[1]))
out = []
for e in entries:
    if "/Unity/unity_" not in e["file"]:
        out.append(e)
        continue
    for line in open(e["file"]):
        m = re.match(r'#include "(.+\.cc)"', line.strip())
        if m:
            out.append(dict(e, file=m.group(1), command=e["command"].replace(e["file"], m.group(1))))
json.dump(out, open(sys.argv[2], "w"), indent=1)
PY
# Only files that still exist and that the build compiles (fuzz targets are in the ASan build
# only, for instance).
checked=()
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  if grep -qF "\"file\": \"$PWD/$f\"" "$db/compile_commands.json"; then checked+=("$f"); else
    echo "tidy: skipping $f (not in $dir/compile_commands.json)"
  fi
done
if [ ${#checked[@]} -eq 0 ]; then
  echo "tidy: no changed .cc files to check"
  exit 0
fi
echo "tidy: clang-tidy on ${#checked[@]} file(s), $(nproc) at a time"
# The database is GCC's: clang does not know some of its -Wno-error= flags.
# xargs exits non-zero if any clang-tidy run failed; every file is still checked.
set +e
printf '%s\n' "${checked[@]}" | xargs -P "$(nproc)" -I{} \
  clang-tidy -p "$db" --quiet --warnings-as-errors='*' --extra-arg=-Wno-unknown-warning-option {} \
  2>&1 | grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$'
status=${PIPESTATUS[1]}
set -e
if [ "$status" -ne 0 ]; then
  echo "tidy: clang-tidy found problems in the changed files (above)" >&2
  exit 1
fi
echo "tidy: clean"
