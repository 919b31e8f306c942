#!/usr/bin/env bash
# The publication stream's hops (#18): one crawl of a synthetic Medium (AUTHORS authors, 20 ms a
# response) by the release binary at --concurrency CONC, then, from the page log's `fetched_at`
# times, how long each publication page took after the one before it (each names the next, so
# they go one at a time: the crawl's critical path), when the first and the last page came, and
# the harvest's wall time against that path (the publication's pages in turn, then an author's
# longest stream in turn, 20 ms a page).
#
#   benches/hops.sh [AUTHORS] [CONC] [etl run args...]   (defaults: 200 128)
#
# `benches/hops.sh 200 128 --max-authors 1` reads the publication stream with no authors'
# requests beside it. ETL_BIN=path measures that binary instead of building this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
authors="${1:-200}"
conc="${2:-128}"
shift $(( $# < 2 ? $# : 2 ))
. benches/etl_bin.sh
. scripts/synth.sh
start_synth --authors "$authors" --latency-ms 20
"$etl" run --date 2026-11-27 --collection-id 5a17e71c0de5 --base-url "$base" --max-rps 0 \
    --concurrency "$conc" --out "$work/out" --quiet "$@"
python3 - "$work/out" <<'PY'
import datetime, json, sys
out = sys.argv[1]
log = open(f"{out}/raw/date=2026-11-27/pages.log", "rb").read()
m = json.load(open(f"{out}/reports/date=2026-11-27/_manifest.json"))
at = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
t0 = at(m["started_at"])
pages = []
for line in log.split(b"\n"):
    if line.startswith(b"@page "):
        h = json.loads(line[6:])
        pages.append((at(h["fetched_at"]) - t0, h["stream"]))
pub = [t for t, s in pages if s.startswith("collections/")]
hops = [(b - a) * 1000 for a, b in zip(pub, pub[1:])]
by = {k: v["requests"] for k, v in m["requests"].items()}
per_author = max(by.get("profile_stream", 0), by.get("following", 0))
chain = len(pub) + -(-per_author // max(1, m["authors"]["harvested"]))
harvest = m["stages"]["harvest"]
print(f"{m['requests_total']} requests; {len(pub)} publication pages, a hop "
      f"{sum(hops) / max(1, len(hops)):.1f} ms on average ({min(hops, default=0):.0f}-"
      f"{max(hops, default=0):.0f}); first page at {pub[0] * 1000:.0f} ms, last page at "
      f"{max(t for t, _ in pages) * 1000:.0f} ms; harvest {harvest:.2f} s = "
      f"{harvest / (chain * 0.020):.2f} x the critical path ({chain} pages in turn, 20 ms each)")
PY
