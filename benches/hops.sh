#!/usr/bin/env bash
# The publication stream's hops (#18): crawls of a synthetic Medium (AUTHORS authors, 20 ms a
# response) by the release binary at --concurrency CONC, and from each page log's `fetched_at`
# times how long each publication page took after the one before it (each names the next, so
# they go one at a time: the crawl's critical path), when the first and the last page came, and
# the harvest's wall time against that path, two ways:
#   - nominal: the publication's pages in turn, then an author's story pages in turn (the
#     crawl's profile or following requests, whichever are more, per author), 20 ms a page;
#   - measured: the same pages at the pace this machine and server give a page when only the
#     publication stream and one author run (the mean hop of a first crawl, `--max-authors 1`;
#     with 10 authors or fewer it has no hop, and this line is left out).
#
#   benches/hops.sh [AUTHORS] [CONC] [etl run args...]   (defaults: 200 128)
#
# With etl run args (such as `--max-authors 1`) only that crawl is made and the nominal path is
# the only one. ETL_BIN=path measures that binary instead of building this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
authors="${1:-200}"
conc="${2:-128}"
shift $(( $# < 2 ? $# : 2 ))
. benches/etl_bin.sh
. scripts/synth.sh
start_synth --authors "$authors" --latency-ms 20
crawl() {
    "$etl" run --date 2026-11-27 --collection-id 5a17e71c0de5 --base-url "$base" --max-rps 0 \
        --concurrency "$conc" --out "$1" --quiet "${@:2}"
}
alone=""
if [ $# -eq 0 ]; then
    crawl "$work/alone" --max-authors 1
    alone="$work/alone"
fi
crawl "$work/out" "$@"
python3 - "$work/out" "$alone" <<'PY'
import datetime, json, sys

def read(out):
    log = open(f"{out}/raw/date=2026-11-27/pages.log", "rb").read()
    m = json.load(open(f"{out}/reports/date=2026-11-27/_manifest.json"))
    at = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    t0 = at(m["started_at"])
    pages = []
    for line in log.split(b"\n"):
        if line.startswith(b"@page "):
            h = json.loads(line[6:])
            pages.append((at(h["fetched_at"]) - t0, h["stream"]))
    pub = sorted(t for t, s in pages if s.startswith("collections/"))
    hops = [(b - a) * 1000 for a, b in zip(pub, pub[1:])]
    return m, pages, pub, hops

m, pages, pub, hops = read(sys.argv[1])
by = {k: v["requests"] for k, v in m["requests"].items()}
per_author = max(by.get("profile_stream", 0), by.get("following", 0))
tail = -(-per_author // max(1, m["authors"]["harvested"]))
chain = len(pub) + tail
harvest = m["stages"]["harvest"]
mean = lambda xs: sum(xs) / max(1, len(xs))
# where each publication page came among the authors' pages that answered around it
late = []
for a, b in zip(pub, pub[1:]):
    burst = [t for t, s in pages if not s.startswith("collections/") and b - 0.005 < t <= b + 0.005]
    late.append(sum(1 for t in burst if t < b))
if not pub:
    sys.exit("no publication page in the page log")
print(f"{m['requests_total']} requests; {len(pub)} publication pages, a hop {mean(hops):.1f} ms "
      f"on average ({min(hops, default=0):.0f}-{max(hops, default=0):.0f}), after "
      f"{mean(late):.0f} authors' pages of those within 5 ms of it; first page at {pub[0] * 1000:.0f} ms, "
      f"last page at {max(t for t, _ in pages) * 1000:.0f} ms; harvest {harvest:.2f} s = "
      f"{harvest / (chain * 0.020):.2f} x the nominal critical path ({chain} pages in turn, 20 ms each)")
_, _, pub1, hops1 = read(sys.argv[2]) if sys.argv[2] else (None, None, [], [])
if hops1:
    path = chain * mean(hops1) / 1000
    print(f"alone (--max-authors 1): a hop {mean(hops1):.1f} ms, first page at {pub1[0] * 1000:.0f} ms; "
          f"measured critical path {path:.3f} s ({chain} pages at that hop); harvest = "
          f"{harvest / path:.2f} x it")
PY
