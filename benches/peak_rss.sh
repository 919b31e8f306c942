#!/usr/bin/env bash
# Wall time and peak RSS of an offline replay run of 1,000 authors x 20 stories, measured with
# /usr/bin/time -v on the release binary.
#
#   benches/peak_rss.sh [AUTHORS] [STORIES]      (defaults: 1000 20)
set -euo pipefail
cd "$(dirname "$0")/.."
authors="${1:-1000}"
stories="${2:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medium-etl-target}"
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)"; exit 2; }
cargo build --release --quiet
etl="$CARGO_TARGET_DIR/release/etl"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$etl" synth --authors "$authors" --stories "$stories" --write-raw-store "$work/store"
for run in 1 2 3; do
    rm -rf "$work/out"
    /usr/bin/time -v "$etl" run --date 2026-11-27 --collection-id 5a17e71c0de5 \
        --source "$work/store" --out "$work/out" --quiet 2> "$work/time.txt"
    wall="$(grep 'Elapsed (wall clock)' "$work/time.txt" | awk '{print $NF}')"
    rss="$(grep 'Maximum resident set size' "$work/time.txt" | awk '{print $NF}')"
    echo "replay $authors authors x $stories stories, run $run: wall $wall, peak RSS $((rss / 1024)) MB"
done
