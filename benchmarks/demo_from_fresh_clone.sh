#!/usr/bin/env bash
# Measures the quickstart as a new user meets it: clone into a temporary directory, then
# `make demo` under GNU time (wall clock, peak resident memory of the largest process).
# Usage: benchmarks/demo_from_fresh_clone.sh [REPO_URL_OR_PATH]  (default: this checkout)
# The clone's virtual environment (~6 GB) is deleted at exit, so repeated measurements do not
# fill the disk; KEEP_VENV=1 keeps it. The logs, data and W&B runs stay.
set -euo pipefail
repo=${1:-$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)}
work=$(mktemp -d)
cleanup() {
    [ "${KEEP_VENV:-0}" = 1 ] || rm -rf "$work/allava/.venv"
    echo "left in $work"
}
trap cleanup EXIT
git clone -q "$repo" "$work/allava"
cd "$work/allava"
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 1; }
start=$(date +%s)
/usr/bin/time -v -o "$work/time.txt" make demo 2>&1 | tee "$work/demo.log"
end=$(date +%s)
echo "wall seconds: $((end - start))"
grep -E "Maximum resident set size|Elapsed \(wall clock\)" "$work/time.txt"
