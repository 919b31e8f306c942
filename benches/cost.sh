#!/usr/bin/env bash
# What one machine pays per request (#18): a crawl of a synthetic Medium (AUTHORS authors, 30
# stories and 16 follows each: 5 pages an author, 20 ms a response) by the release binary with
# --concurrency CONC and no rate cap, measured from outside the process (/usr/bin/time: user +
# sys of the whole run, publishing included) and from its own manifest (requests, and the
# harvest's wall time beside the whole run's).
#
#   benches/cost.sh [AUTHORS] [CONC] [RUNS]       (defaults: 1000 32 3)
#
# Prints one line per run and the medians: CPU per request (user + sys over requests), and the
# harvest's wall time against its lower bound: the larger of the ideal (requests x 20 ms / CONC)
# and the critical path (the publication stream's pages in turn, then the last author's longest
# stream in turn, 20 ms each). The synthetic Medium runs in its own
# process, so its CPU is not counted. With PERF=1 the last run is recorded by `perf record -g`
# (perf.data in the working directory). ETL_BIN=path measures that binary instead of building
# this tree's (an A/B against an older commit: build it in a `git worktree`).
set -euo pipefail
cd "$(dirname "$0")/.."
authors="${1:-1000}"
conc="${2:-32}"
runs="${3:-3}"
. benches/etl_bin.sh
. scripts/synth.sh
start_synth --authors "$authors" --latency-ms 20

for i in $(seq "$runs"); do
    out="$work/out$i"
    cmd=("$etl" run --date 2026-11-27 --collection-id 5a17e71c0de5 --base-url "$base"
        --max-rps 0 --concurrency "$conc" --out "$out" --quiet)
    if [ "${PERF:-0}" = 1 ] && [ "$i" = "$runs" ]; then
        perf record -q -F 2000 -o perf.data -- "${cmd[@]}" 2>/dev/null
        /usr/bin/time -f '%U %S %e %M' -o "$work/time$i" true
    else
        /usr/bin/time -f '%U %S %e %M' -o "$work/time$i" "${cmd[@]}"
    fi
    python3 - "$out/reports/date=2026-11-27/_manifest.json" "$work/time$i" "$conc" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
user, sys_, wall, rss_kb = open(sys.argv[2]).read().split()
conc = int(sys.argv[3])
n = m["requests_total"]
ideal = n * 0.020 / conc
# the critical path: the publication stream's pages one after another (each names the next),
# then the last author's longer stream (its pages also one after another)
by = {k: v["requests"] for k, v in m["requests"].items()}
authors = max(1, m["authors"]["harvested"])
per_author = max(by.get("profile_stream", 0), by.get("following", 0))
critical = (by.get("publication_stream", 0) + -(-per_author // authors)) * 0.020
bound = max(ideal, critical)
harvest = m["stages"]["harvest"]
cpu = float(user) + float(sys_)
# the harvest's own CPU (the process's user + sys from the run's start to the harvest's end,
# normalizing the finished authors included), as the run measured it
harvest_cpu = m.get("cpu_secs", {}).get("harvest", float("nan"))
print(f"{n} requests, user {float(user):.2f} s + sys {float(sys_):.2f} s = "
      f"{cpu / n * 1000:.3f} ms CPU/request (harvest {harvest_cpu:.2f} s = "
      f"{harvest_cpu / n * 1000:.3f} ms/request); wall {float(wall):.2f} s, "
      f"harvest {harvest:.2f} s, ideal {ideal:.2f} s, critical path {critical:.2f} s, "
      f"harvest/bound {harvest / bound:.2f}; "
      f"peak RSS {int(rss_kb) // 1024} MB")
PY
done | tee "$work/lines"
python3 - "$work/lines" <<'PY'
import re, statistics, sys
lines = open(sys.argv[1]).read().splitlines()
cpu = [float(re.search(r"= ([0-9.]+) ms CPU", l).group(1)) for l in lines]
hcpu = [float(re.search(r"harvest [0-9.]+ s = ([0-9.na]+) ms/request", l).group(1)) for l in lines]
ratio = [float(re.search(r"harvest/bound ([0-9.]+)", l).group(1)) for l in lines]
print(f"median: {statistics.median(cpu):.3f} ms CPU/request (the harvest's {statistics.median(hcpu):.3f}), harvest {statistics.median(ratio):.2f} x max(ideal, critical path)")
PY
