#!/usr/bin/env bash
# CI's check of the sharded deployment (#16), through the binary:
#   - 4 shard processes side by side against a synthetic Medium, then `etl publish`: every
#     table and report equals one process's; a publish before the last shard exits 11 and publishes
#     nothing;
#   - deploy/k8s/*.yaml against the Kubernetes schemas (kubernetes-validate --strict, offline).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medium-etl-target}"
cargo build --quiet --bin etl
etl="$CARGO_TARGET_DIR/debug/etl"
. scripts/synth.sh
start_synth --authors 60 --latency-ms 2
flags=(--date 2026-11-27 --collection-id 5a17e71c0de5 --base-url "$base" --max-rps 0 --quiet)

"$etl" run "${flags[@]}" --out "$work/single"
pids=()
for k in 0 1 2; do
    "$etl" run "${flags[@]}" --shard "$k/4" --out "$work/sharded" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
set +e
"$etl" publish "${flags[@]}" --shards 4 --out "$work/sharded" 2> "$work/early.txt"
code=$?
set -e
[ "$code" = 11 ] || { cat "$work/early.txt"; echo "publish before shard 3 exited $code, not 11"; exit 1; }
grep -q "shard(s) 3 have not committed" "$work/early.txt"
[ ! -e "$work/sharded/reports/date=2026-11-27" ] || { echo "a publish before every shard published something"; exit 1; }
ETL_SHARD=3/4 "$etl" run "${flags[@]}" --out "$work/sharded"
"$etl" publish "${flags[@]}" --shards 4 --out "$work/sharded"
for f in author_metrics.csv publication_summary.csv author_changes.csv; do
    cmp "$work/single/reports/date=2026-11-27/$f" "$work/sharded/reports/date=2026-11-27/$f"
done
# and every table, row for row, read by pyarrow (installed by CI's readers step)
python3 - "$work/single" "$work/sharded" <<'PY'
import sys, pyarrow.parquet as pq
a, b = sys.argv[1], sys.argv[2]
for t in ["authors", "posts", "followings", "publications"]:
    x = pq.read_table(f"{a}/tables/date=2026-11-27/{t}.parquet")
    y = pq.read_table(f"{b}/tables/date=2026-11-27/{t}.parquet")
    if not x.equals(y):
        sys.exit(f"tables/{t}.parquet differs between one process and 4 shards + publish")
PY
echo "4 shards + publish: the tables and reports of one process (exit 11 before the last shard)"

command -v kubernetes-validate >/dev/null || python3 -m pip install --quiet \
    --disable-pip-version-check --root-user-action=ignore kubernetes-validate==1.37.0
python3 -m kubernetes_validate --strict --quiet deploy/k8s/*.yaml 2>/dev/null \
    || kubernetes-validate --strict --quiet deploy/k8s/*.yaml
echo "deploy/k8s: valid against the Kubernetes 1.37 schemas"
# the Jobs' config: lake.yaml's etl.toml with the Jobs' environment is a lake on S3, as etl reads it
python3 - "$work/k8s-etl.toml" "$work/k8s-env.txt" <<'PY'
import sys, yaml
lake = list(yaml.safe_load_all(open("deploy/k8s/lake.yaml")))
open(sys.argv[1], "w").write(next(d for d in lake if d["kind"] == "ConfigMap")["data"]["etl.toml"])
job = yaml.safe_load(open("deploy/k8s/shards-job.yaml"))
env = job["spec"]["template"]["spec"]["containers"][0]["env"]
open(sys.argv[2], "w").write("\n".join(f"{e['name']}={e['value']}" for e in env if e["name"] == "ETL_OUT"))
PY
env ETL_OUT=/data $(cat "$work/k8s-env.txt") "$etl" config --config "$work/k8s-etl.toml" --shard 1/4 \
    > "$work/k8s-config.txt"
grep -q '^lake (the shard.s part) = s3://.*/shards/shard=1-of-4' "$work/k8s-config.txt" \
    && grep -q '^work_dir = "/work"' "$work/k8s-config.txt" \
    || { cat "$work/k8s-config.txt"; echo "deploy/k8s: the Jobs' config is not a lake on S3"; exit 1; }
echo "deploy/k8s: the Jobs' etl.toml and environment make each shard's part of the lake on S3"
