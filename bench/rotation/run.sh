#!/usr/bin/env bash
# A CA rotation of a 1,000-node cluster: 1,000 simulated agents (the real agent code, each as
# `coffer agent run`: its loop and its long poll on the rotation document) against one server on
# the embedded store, then `coffer cluster rotate-ca --ca kubernetes` to the end.
#
#   bench/rotation/run.sh [AGENTS=1000] [MAX_UNAVAILABLE=100]
#
# Prints the server's CPU over 10 s with every agent idle and watching (the cost of the open
# long polls), then for each phase (trust, reissue, finalize) its wall time and the server's CPU
# time. The cluster setup and bootstrap are bench/agents/run.sh's. Not a test.
set -euo pipefail
exec env BENCH_MODE="rotate ${2:-100}" "$(dirname "$0")/../agents/run.sh" "${1:-1000}"
