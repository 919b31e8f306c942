#!/usr/bin/env bash
# Requests and wall time of a daily incremental run against a full one (#15): a synthetic
# publication of AUTHORS authors x STORIES stories (FOLLOWINGS follows each), 20 ms a response;
# day 0 is harvested in full, then day 1 (5 % of the authors published a story since, 10 %
# followed someone new, young stories gained claps) both in full and incrementally. Release
# binary; --max-rps 0 --concurrency 8.
#
#   benches/incremental.sh [AUTHORS] [STORIES] [FOLLOWINGS]      (defaults: 1000 30 16)
set -euo pipefail
cd "$(dirname "$0")/.."
authors="${1:-1000}"
stories="${2:-30}"
followings="${3:-16}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medium-etl-target}"
cargo build --release --quiet
etl="$CARGO_TARGET_DIR/release/etl"
. scripts/synth.sh

serve_day() {
    start_synth --authors "$authors" --stories "$stories" --followings "$followings" --day "$1"
}

run() { # out date extra...
    local out="$1" date="$2"; shift 2
    local start end
    start=$(date +%s.%N)
    "$etl" run --date "$date" --collection-id 5a17e71c0de5 --base-url "$base" --max-rps 0 \
        --concurrency 8 --out "$out" --quiet "$@"
    end=$(date +%s.%N)
    python3 - "$out/reports/date=$date/_manifest.json" "$(echo "$end - $start" | bc)" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
inc = m.get("incremental")
mode = "incremental" if inc else "full"
extra = ""
if inc:
    extra = (f", posts {inc['posts_fetched']} fetched / {inc['posts_carried']} carried, "
             f"{inc['streams_carried']} streams carried")
print(f"{m['date']} {mode:11}: {m['requests_total']:6} requests, wall {float(sys.argv[2]):.2f} s{extra}")
PY
}

serve_day 0
run "$work/inc" 2026-11-27 --incremental
serve_day 1
run "$work/full" 2026-11-28
run "$work/inc" 2026-11-28 --incremental
python3 - "$work" <<'PY'
import json, sys
full = json.load(open(f"{sys.argv[1]}/full/reports/date=2026-11-28/_manifest.json"))
inc = json.load(open(f"{sys.argv[1]}/inc/reports/date=2026-11-28/_manifest.json"))
print(f"incremental / full requests: {inc['requests_total'] / full['requests_total']:.1%}")
a = open(f"{sys.argv[1]}/full/reports/date=2026-11-28/author_metrics.csv").read()
b = open(f"{sys.argv[1]}/inc/reports/date=2026-11-28/author_metrics.csv").read()
print("author_metrics.csv identical:", a == b)
PY
