#!/usr/bin/env bash
# Opens a date page of `etl serve` in headless Chromium (Debian's `chromium`) and checks that the
# rendered page holds the top-authors table with rows and the claps chart.
#
#   scripts/check_serve_page.sh [DATA_DIR] [DATE]     (defaults: data, the newest date)
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-data}"
date="${2:-$(ls "$data/reports" | sed -n 's/^date=//p' | sort | tail -1)}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medium-etl-target}"
cargo build --quiet
etl="$CARGO_TARGET_DIR/debug/etl"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
work="$(mktemp -d)"
"$etl" serve --addr "127.0.0.1:$port" --data "$data" > "$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do
    curl -fs "http://127.0.0.1:$port/" > /dev/null && break
    sleep 0.1
done
url="http://127.0.0.1:$port/date/$date"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile" --virtual-time-budget=2000 \
    --dump-dom "$url" > "$work/dom.html" 2> "$work/chromium.log"
rows="$(grep -o '<tr>' "$work/dom.html" | wc -l)"
grep -q '<table id="top-authors">' "$work/dom.html" || { echo "no top-authors table in $url"; exit 1; }
grep -q '<svg id="claps-chart"' "$work/dom.html" || { echo "no claps chart in $url"; exit 1; }
[ "$rows" -ge 2 ] || { echo "the table has no rows ($rows)"; exit 1; }
echo "chromium rendered $url: top-authors table with $((rows - 1)) author rows and the claps chart"
