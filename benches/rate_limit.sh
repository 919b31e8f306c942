#!/usr/bin/env bash
# #14 §1: the client against a host that allows 50 requests/s, with no cap of its own
# (`--max-rps 0`): how many requests got 429, how long the harvest took against
# requests ÷ 50, and whether every author is exact (the same report as an unlimited host's).
# Usage: benches/rate_limit.sh [AUTHORS]   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
authors="${1:-100}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medium-etl-release}"
cargo build --release --quiet
etl="$CARGO_TARGET_DIR/release/etl"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$etl" synth --addr 127.0.0.1:0 --authors "$authors" --latency-ms 5 --rate-limit 50 > "$work/limited.txt" &
"$etl" synth --addr 127.0.0.1:0 --authors "$authors" --latency-ms 5 > "$work/open.txt" &
for f in limited open; do
    until grep -q "^synthetic Medium on" "$work/$f.txt" 2>/dev/null; do sleep 0.1; done
done
url() { sed -n 's/^synthetic Medium on \([^ ]*\) .*/\1/p' "$work/$1.txt"; }
run() {
    "$etl" run --base-url "$(url "$1")" --collection-id 5a17e71c0de5 --max-rps 0 \
        --concurrency 16 --date 2026-01-01 --out "$work/$1" --quiet
}
run open
start=$(date +%s.%N)
run limited
end=$(date +%s.%N)
python3 - "$work" "$start" "$end" <<'PY'
import json, sys, csv
work, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
m = json.load(open(f"{work}/limited/reports/date=2026-01-01/_manifest.json"))
def report(d):
    with open(f"{work}/{d}/reports/date=2026-01-01/author_metrics.csv") as f:
        return sorted(csv.reader(f))
requests = m["requests_total"]
throttled = m["throttled_total"]
wall = end - start
print(f"requests {requests} (429s {throttled} = {100 * throttled / requests:.1f} %), "
      f"wall {wall:.2f} s = {wall / (requests / 50):.2f} x requests/50, "
      f"settled at {m['settled_rps']} req/s, failed {m['failed_total']}, "
      f"exact: {report('limited') == report('open')}")
PY
