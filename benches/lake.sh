#!/usr/bin/env bash
# What the lake costs (#16), with the release binary, against moto (an S3 server in Python on
# this machine, so its numbers are an upper bound for the store's share; a real S3 is farther
# away and faster):
#   1. a harvest of a synthetic Medium (AUTHORS authors, STORIES stories each, 20 ms a response,
#      --concurrency 8) into a local output root, and the same harvest into s3://, which
#      uploads the page log every 5 s while it harvests;
#   2. a replay of that harvest's raw store (no network) into a local hive output, a local
#      Delta output, and s3://.
# Prints wall times, and checks that the author_metrics.csv of every output is the same.
#
#   benches/lake.sh [AUTHORS] [STORIES]       (defaults: 1000 20)
set -euo pipefail
cd "$(dirname "$0")/.."
authors="${1:-1000}"
stories="${2:-20}"
. benches/etl_bin.sh
moto_server="$(command -v moto_server || echo "$HOME/.cache/medium-etl-lakevenv/bin/moto_server")"
. scripts/synth.sh
moto=""
trap 'for p in "$synth" "$moto"; do [ -n "$p" ] && { kill "$p" 2>/dev/null || true; }; done; rm -rf "$work"' EXIT
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$moto_server" -H 127.0.0.1 -p "$port" > "$work/moto.txt" 2>&1 &
moto=$!
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
for _ in $(seq 100); do curl -s -o /dev/null "$AWS_ENDPOINT_URL" && break; sleep 0.1; done
curl -s -X PUT "$AWS_ENDPOINT_URL/bench" > /dev/null
start_synth --authors "$authors" --stories "$stories" --latency-ms 20
date=2026-11-27
flags=(--date "$date" --collection-id 5a17e71c0de5 --max-rps 0 --quiet)
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
timed() { # name, then the command: prints the wall time
    local name="$1"; shift
    local t0; t0="$(now)"
    "$@"
    printf '%-34s %6s s\n' "$name" "$(secs "$t0" "$(now)")"
}

echo "== harvest: $authors authors x $stories stories, 20 ms a response, --concurrency 8"
timed "local (hive Parquet)" "$etl" run "${flags[@]}" --base-url "$base" --out "$work/h-local"
timed "s3:// (Delta, uploads every 5 s)" "$etl" run "${flags[@]}" --base-url "$base" \
    --out s3://bench/harvest --work-dir "$work/h-s3"
pages="$(python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); print(sum(e["pages_fetched"] for e in m["requests"].values()))' "$work/h-local/reports/date=$date/_manifest.json")"
log="$(stat -c %s "$work/h-local/raw/date=$date/pages.log")"
echo "  ($pages pages, a $((log >> 20)) MiB page log)"

echo "== replay of that raw store (no network)"
source=(--source "$work/h-local/raw/date=$date")
timed "local (hive Parquet)" "$etl" run "${flags[@]}" "${source[@]}" --out "$work/r-local"
timed "local Delta" "$etl" run "${flags[@]}" "${source[@]}" --out "$work/r-delta" --table-format delta
timed "s3:// (Delta)" "$etl" run "${flags[@]}" "${source[@]}" --out s3://bench/replay --work-dir "$work/r-s3"
for out in "$work/h-s3" "$work/r-local" "$work/r-delta/.work" "$work/r-s3"; do
    cmp "$work/h-local/reports/date=$date/author_metrics.csv" "$out/reports/date=$date/author_metrics.csv"
done
echo "author_metrics.csv is the same in all five outputs"
