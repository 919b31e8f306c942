#!/usr/bin/env bash
# Wall time, time per post and peak RSS of an offline replay run of AUTHORS x STORIES (the
# synthetic Medium's store), measured with /usr/bin/time -v on the release binary. #16's
# memory target is `benches/peak_rss.sh 10000 50` (at most 300 MB, and within 2x the time per
# post of `benches/peak_rss.sh 1000 20`). ETL_BIN runs another build (an A/B).
#
#   benches/peak_rss.sh [AUTHORS] [STORIES]      (defaults: 1000 20)
set -euo pipefail
cd "$(dirname "$0")/.."
authors="${1:-1000}"
stories="${2:-20}"
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)"; exit 2; }
. benches/etl_bin.sh
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$etl" synth --authors "$authors" --stories "$stories" --write-raw-store "$work/store"
for run in 1 2 3; do
    rm -rf "$work/out"
    /usr/bin/time -v "$etl" run --date 2026-11-27 --collection-id 5a17e71c0de5 \
        --source "$work/store" --out "$work/out" --quiet 2> "$work/time.txt"
    wall="$(grep 'Elapsed (wall clock)' "$work/time.txt" | awk '{print $NF}')"
    rss="$(grep 'Maximum resident set size' "$work/time.txt" | awk '{print $NF}')"
    secs="$(grep 'Elapsed (wall clock)' "$work/time.txt" | awk '{print $NF}' | awk -F: '{print ($1 * 60) + $2}')"
    per_post="$(awk -v s="$secs" -v n="$((authors * stories))" 'BEGIN { printf "%.1f", s / n * 1e6 }')"
    echo "replay $authors authors x $stories stories, run $run: wall $wall ($per_post us a post), peak RSS $((rss / 1024)) MiB"
done
