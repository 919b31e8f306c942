#!/usr/bin/env bash
# Peak RSS and wall time of a run against the adversarial server (#14): a 50 requests/s host
# whose author 1 streams a body of MB MiB with no length, author 2 answers a gzip bomb inflating
# to MB MiB, author 3 nests 100,000 deep and author 4 sends values out of range; the client is
# uncapped (--max-rps 1000) with the default --max-body-mb 32. Measured with /usr/bin/time -v on
# the release binary.
#
#   benches/hostile.sh [MB] [AUTHORS]      (defaults: 2048 30)
set -euo pipefail
cd "$(dirname "$0")/.."
mb="${1:-2048}"
authors="${2:-30}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medium-etl-target}"
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)"; exit 2; }
cargo build --release --quiet
etl="$CARGO_TARGET_DIR/release/etl"
. scripts/synth.sh
start_synth --authors "$authors" --latency-ms 0 --rate-limit 50 --hostile "$mb"
set +e
/usr/bin/time -v "$etl" run --date 2026-11-27 --collection-id 5a17e71c0de5 --base-url "$base" \
    --max-rps 1000 --out "$work/out" --quiet > "$work/summary.txt" 2> "$work/time.txt"
code=$?
set -e
wall="$(grep 'Elapsed (wall clock)' "$work/time.txt" | awk '{print $NF}')"
rss="$(grep 'Maximum resident set size' "$work/time.txt" | awk '{print $NF}')"
manifest="$work/out/reports/date=2026-11-27/_manifest.json"
python3 - "$manifest" "$mb" "$authors" "$code" "$wall" "$((rss / 1024))" <<'PY'
import json, sys
path, mb, authors, code, wall, rss = sys.argv[1:]
m = json.load(open(path))
print(f"hostile server ({mb} MiB bodies, {authors} authors, 50 req/s): exit {code}, wall {wall}, "
      f"peak RSS {rss} MB, {m['requests_total']} requests, {m['throttled_total']} throttled, "
      f"{len(m['failures'])} failed streams, {len(m['rejected_values'])} rejected values, "
      f"{m['authors']['complete']} of {m['authors']['harvested']} authors complete")
for f in m["failures"]:
    print("  failed:", f["error"][:160])
PY
