#!/usr/bin/env bash
# Sharded against single-process wall time (#16) on a synthetic Medium (AUTHORS authors, 30
# stories and 16 follows each, 20 ms a response, its own process), with the release binary:
#   - one `etl run --concurrency CONC`;
#   - N shards (`etl run --shard K/N --concurrency CONC`) started together, as N machines
#     would be (here they share this machine's cores), then `etl publish --shards N`;
#   - one `etl run --concurrency N x CONC` (the same requests in flight as the N shards).
# Checks that the published author_metrics.csv equals the single run's.
#
#   benches/shards.sh [AUTHORS] [SHARDS] [CONC]       (defaults: 1000 4 8)
set -euo pipefail
cd "$(dirname "$0")/.."
authors="${1:-1000}"
shards="${2:-4}"
conc="${3:-8}"
. benches/etl_bin.sh
. scripts/synth.sh
start_synth --authors "$authors" --latency-ms 20
flags=(--date 2026-11-27 --collection-id 5a17e71c0de5 --base-url "$base" --max-rps 0 --quiet)
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

t0="$(now)"
"$etl" run "${flags[@]}" --concurrency "$conc" --out "$work/single"
t1="$(now)"
pids=()
for k in $(seq 0 $((shards - 1))); do
    "$etl" run "${flags[@]}" --concurrency "$conc" --shard "$k/$shards" --out "$work/sharded" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
t2="$(now)"
"$etl" publish "${flags[@]}" --shards "$shards" --out "$work/sharded"
t3="$(now)"
"$etl" run "${flags[@]}" --concurrency "$((shards * conc))" --out "$work/wide"
t4="$(now)"
report=reports/date=2026-11-27/author_metrics.csv
cmp "$work/single/$report" "$work/sharded/$report"
cmp "$work/single/$report" "$work/wide/$report"
requests="$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['requests_total'])" "$work/single/reports/date=2026-11-27/_manifest.json")"
echo "$authors authors, $requests requests, 20 ms a response:"
echo "  one process, --concurrency $conc:            $(secs "$t0" "$t1") s"
echo "  $shards shards, --concurrency $conc each:        $(secs "$t1" "$t2") s harvest + $(secs "$t2" "$t3") s publish = $(secs "$t1" "$t3") s"
echo "  one process, --concurrency $((shards * conc)):           $(secs "$t3" "$t4") s"
echo "  author_metrics.csv: the same in all three"
