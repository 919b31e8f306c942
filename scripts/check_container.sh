#!/usr/bin/env bash
# Builds the container image from a static etl built on this machine (the Dockerfile's
# `prebuilt` stage: no base image can be pulled here) and runs it with podman, as a user of the
# image would: the sample replayed into a volume, served (/ and /date/<today> answer 200), one
# scheduled run against a synthetic Medium on the host network, a clean exit on SIGTERM. Its
# last line says what it verified, with the image's size.
#
#   scripts/check_container.sh            (installs podman and runc when they are missing)
#
# podman here needs (../shared/CONTAINERS.md): runc, cgroupfs, host networking, and a
# containers.conf without default ulimits. The name-resolution check runs a DNS server of its
# own on 127.0.0.1:53 (the container is pointed at it with --dns), so it needs root and that
# port free; compose.yaml is run with podman-compose (installed from PyPI when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medium-etl-target}"
static_target="${STATIC_TARGET_DIR:-$HOME/.cache/medium-etl-static}"

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v curl >/dev/null \
    || ! command -v openssl >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq podman runc curl openssl >/dev/null
fi
# compose: podman-compose (PyPI) runs compose.yaml with podman; there is no Docker engine here
command -v podman-compose >/dev/null || python3 -m pip install -q --disable-pip-version-check \
    --root-user-action=ignore podman-compose==1.6.0
work="$(mktemp -d)"
conf="$work/containers.conf"
printf '[containers]\ndefault_ulimits = []\n' > "$conf"
export CONTAINERS_CONF="$conf"
podman_run() { podman --runtime runc --cgroup-manager cgroupfs run --network host "$@"; }
image=medium-etl:ci
volume="medium-etl-ci-$$"
project="etlci$$"
pids=()
compose() {
    ETL_IMAGE="$image" ETL_VOLUME="$project-data" podman-compose --podman-args "--runtime runc --cgroup-manager cgroupfs" -p "$project" \
        -f "$work/compose/compose.yaml" -f "$work/compose/compose.ci.yaml" "$@"
}
cleanup() {
    for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null || true; done
    podman rm -f etl-serve-$$ etl-sched-$$ >/dev/null 2>&1 || true
    [ -f "$work/compose/compose.ci.yaml" ] && compose down -v -t 5 >/dev/null 2>&1 || true
    podman volume rm -f "$volume" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# the static binary (glibc, statically linked: nothing to find in an empty image); the dev
# profile by default, which keeps CI's cold path short (CONTAINER_PROFILE=release for the
# binary users get: a cold static release build takes 26 min here)
profile="${CONTAINER_PROFILE:-dev}"
CARGO_TARGET_DIR="$static_target" RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --profile "$profile" --locked --quiet --target x86_64-unknown-linux-gnu --bin etl
dir="$profile"; [ "$profile" = dev ] && dir=debug
scripts/container_rootfs.sh "$static_target/x86_64-unknown-linux-gnu/$dir/etl" "$work/ctx"
podman build --quiet --target prebuilt -t "$image" -f Dockerfile "$work/ctx" >/dev/null
size_mb=$(( $(podman image inspect --format '{{.Size}}' "$image") / 1000000 ))
today="$(date -u +%F)"

# 1. replay the sample into a volume (offline)
podman volume create "$volume" >/dev/null
podman_run --rm -v "$volume:/data" "$image" run --source /sample --date "$today" --quiet

# 2. serve it
port="$(free_port)"
podman_run -d --name etl-serve-$$ -v "$volume:/data:ro" "$image" \
    serve --addr "127.0.0.1:$port" --data /data >/dev/null
for path in / "/date/$today"; do
    code=""
    for _ in $(seq 50); do
        code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$path" || true)"
        [ "$code" = 200 ] && break
        sleep 0.2
    done
    [ "$code" = 200 ] || { echo "container: GET $path answered $code"; podman logs etl-serve-$$; exit 1; }
done
podman stop -t 10 etl-serve-$$ >/dev/null
code="$(podman inspect --format '{{.State.ExitCode}}' etl-serve-$$)"
[ "$code" = 0 ] || { echo "container: serve exited $code on SIGTERM"; exit 1; }

# 3. one scheduled run against a synthetic Medium on the host
host_etl="$static_target/x86_64-unknown-linux-gnu/$dir/etl"
synth() { # name args...: a synthetic Medium on the host; sets $base
    local name="$1"; shift
    "$host_etl" synth "$@" > "$work/$name.txt" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do grep -q "http://" "$work/$name.txt" 2>/dev/null && break; sleep 0.1; done
    base="$(grep -o 'http://[0-9.:]*' "$work/$name.txt" | head -1 || true)"
    [ -n "$base" ] || { echo "container: etl synth did not start:"; cat "$work/$name.txt"; exit 1; }
}
synth slow --authors 20 --latency-ms 300
slow_base="$base"
synth synth --authors 20 --latency-ms 0
podman_run --rm -v "$volume:/data" "$image" schedule --every 1h --max-runs 1 \
    --base-url "$base" --collection-id 5a17e71c0de5 --max-rps 0 --quiet \
    --out /data/synthetic

# 4. SIGTERM ends a waiting schedule with exit 0 (once its handler is in place: it logs
# RunScheduled after that)
# Whether a container logged a message. Not `grep -q`: it exits at the first match, podman then
# dies of SIGPIPE writing the later lines, and under pipefail the match reads as a miss (this
# failed CI twice).
logged() { # container message
    podman logs "$1" 2>&1 | grep -F "\"message\":\"$2\"" >/dev/null
}
wait_log() { # container message
    for _ in $(seq 200); do
        logged "$1" "$2" && return 0
        sleep 0.1
    done
    echo "container: $1 never logged $2:"; podman logs "$1"; exit 1
}
stopped_with() { # container code
    podman stop -t 20 "$1" >/dev/null
    code="$(podman inspect --format '{{.State.ExitCode}}' "$1")"
    [ "$code" = "$2" ] || { echo "container: $1 exited $code on SIGTERM, not $2"; podman logs "$1"; exit 1; }
}
podman_run -d --name etl-sched-$$ -v "$volume:/data" "$image" schedule --every 24h \
    --base-url "$base" --collection-id 5a17e71c0de5 --max-rps 0 --out /data/synthetic >/dev/null
wait_log etl-sched-$$ RunScheduled
stopped_with etl-sched-$$ 0
podman rm etl-sched-$$ >/dev/null
# in the middle of a run (300 ms a response): the requests in flight finish, nothing is
# published, what was fetched stays in the raw store, and the next run resumes from it
podman_run -d --name etl-sched-$$ -v "$volume:/data" "$image" schedule --every 24h \
    --base-url "$slow_base" --collection-id 5a17e71c0de5 --max-rps 0 --out /data/slow >/dev/null
wait_log etl-sched-$$ RunStarted
run_day="$(podman logs etl-sched-$$ 2>&1 | grep -m1 '"RunStarted"' | python3 -c 'import json, sys; print(json.loads(sys.stdin.read())["date"])')"
sleep 1.5
stopped_with etl-sched-$$ 0
podman rm etl-sched-$$ >/dev/null
volume_dir="$(podman volume inspect --format '{{.Mountpoint}}' "$volume")"
[ ! -e "$volume_dir/slow/reports/date=$run_day" ] \
    || { echo "container: a run stopped by SIGTERM published its date"; exit 1; }
kept="$(python3 scripts/raw_pages.py "$volume_dir/slow/raw/date=$run_day")"
[ "$kept" -gt 0 ] || { echo "container: the stopped run kept no fetched page"; exit 1; }
podman_run --rm -v "$volume:/data" "$image" run --date "$run_day" --quiet \
    --base-url "$slow_base" --collection-id 5a17e71c0de5 --max-rps 0 --out /data/slow
full="$(grep -o '[0-9]* requests per full harvest' "$work/slow.txt" | grep -o '^[0-9]*')"
resumed="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["requests_total"])' \
    "$volume_dir/slow/reports/date=$run_day/_manifest.json")"
[ $((resumed + kept)) -eq "$full" ] \
    || { echo "container: resumed with $resumed requests after $kept kept pages, of $full"; exit 1; }

# 5. names and TLS, as for medium.com but without the internet: a DNS server of ours (--dns)
# that knows only *.medium.test, and an HTTPS server whose certificate a CA of ours signed
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=medium-etl test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=etl.medium.test" \
    -keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:etl.medium.test\nextendedKeyUsage=serverAuth\n' > "$work/tls.ext"
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -CAcreateserial -days 2 -extfile "$work/tls.ext" -out "$work/tls.pem" 2>/dev/null
tls_port="$(free_port)"
python3 scripts/container_peers.py dns 127.0.0.1:53 medium.test 127.0.0.1 > "$work/dns.txt" 2>&1 &
pids+=($!)
python3 scripts/container_peers.py tls "127.0.0.1:$tls_port" "$work/tls.pem" "$work/tls.key" \
    > "$work/tls.txt" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
    grep -q ready "$work/dns.txt" && grep -q ready "$work/tls.txt" && break
    sleep 0.1
done
for peer in dns tls; do
    grep -q ready "$work/$peer.txt" \
        || { echo "container: the test $peer server did not start:"; cat "$work/$peer.txt"; exit 1; }
done
probe() { podman_run --rm --dns 127.0.0.1 "$@" 2>&1; }
url="https://etl.medium.test:$tls_port/"
# the image's own CA roots do not know our CA: the certificate is checked, and refused
out="$(probe "$image" probe "$url")" && { echo "container: $url was trusted without its CA"; exit 1; }
grep -q UnknownIssuer <<<"$out" || { echo "container: unexpected TLS failure: $out"; exit 1; }
# with our CA in the image's bundle path, the name resolves through DNS and the peer is trusted
probe -v "$work/ca.pem:/etc/ssl/certs/ca-certificates.crt:ro" "$image" probe "$url" >/dev/null \
    || { echo "container: $url failed with the test CA installed"; exit 1; }
# a name the machine's own resolver knows (the package index CI installs from) but ours does
# not: refused, with an error naming it, so the lookups above did go through our server
known="pypi.org"
getent hosts "$known" >/dev/null || known="nowhere.example.invalid"
out="$(probe "$image" probe "http://$known/")" \
    && { echo "container: $known resolved past the test's DNS server"; exit 1; }
grep -q "$known.*dns error" <<<"$out" || { echo "container: $out"; exit 1; }

# 6. compose.yaml as users run it (podman-compose), with what this machine needs on top in
# compose.ci.yaml: host networking, a free port, a daily time already past (the schedule
# catches up at once), and an etl.toml pointing at the synthetic Medium
mkdir -p "$work/compose"
cp compose.yaml "$work/compose/"
printf 'collection_ids = ["5a17e71c0de5"]\nbase_url = "%s"\nmax_rps = 0\n' "$base" \
    > "$work/compose/etl.toml"
web_port="$(free_port)"
cat > "$work/compose/compose.ci.yaml" <<YAML
services:
  harvest:
    network_mode: host
    command: ["schedule", "--at", "00:00"]
    environment:
      ETL_CONCURRENCY: "3"
  reports:
    network_mode: host
    command: ["serve", "--addr", "127.0.0.1:$web_port", "--data", "/data"]
    ports: !reset []
    healthcheck: !override
      interval: 30s
      test: ["CMD", "/etl", "probe", "http://127.0.0.1:$web_port/status"]
YAML
compose_up() { compose up -d > "$work/compose.log" 2>&1 || { cat "$work/compose.log"; exit 1; }; }
compose_stop() {
    compose stop -t 30 > "$work/compose.log" 2>&1 || { cat "$work/compose.log"; exit 1; }
    for service in harvest reports; do
        code="$(podman inspect --format '{{.State.ExitCode}}' "${project}_${service}_1")"
        [ "$code" = 0 ] || {
            echo "compose: $service exited $code on stop"
            podman logs "${project}_${service}_1"
            exit 1
        }
    done
}
compose_up
# the date the harvest published is the one it logs (a check that crosses midnight UTC moves on)
wait_log "${project}_harvest_1" PartitionPublished
today="$(podman logs "${project}_harvest_1" 2>/dev/null | python3 -c 'import json, sys
lines = [json.loads(l) for l in sys.stdin if "\"PartitionPublished\"" in l]
print(lines[0]["date"])')"
code=""
for _ in $(seq 150); do
    code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$web_port/date/$today" || true)"
    [ "$code" = 200 ] && break
    sleep 0.2
done
[ "$code" = 200 ] || { echo "compose: /date/$today answered $code"; podman logs "${project}_harvest_1"; exit 1; }
podman --runtime runc --cgroup-manager cgroupfs healthcheck run "${project}_reports_1" >/dev/null \
    || { echo "compose: the reports health check failed"; exit 1; }
# the reports copied out of the volume, as the README says (docker compose cp does this)
podman cp "${project}_reports_1:/data/reports" "$work/copied" \
    && [ -s "$work/copied/date=$today/author_metrics.csv" ] \
    || { echo "compose: reports/date=$today/author_metrics.csv did not copy out"; exit 1; }
# `run --rm harvest config` shows the mounted etl.toml and the environment's override
compose run --rm harvest config > "$work/config.txt" 2>&1 \
    || { echo "compose: harvest config failed:"; cat "$work/config.txt"; exit 1; }
grep -q 'collection_ids = \["5a17e71c0de5"\] *# file /etc/medium-etl/etl.toml' "$work/config.txt" \
    && grep -q 'concurrency = 3 *# env ETL_CONCURRENCY' "$work/config.txt" \
    || { echo "compose: harvest config did not come from etl.toml and the environment:"; cat "$work/config.txt"; exit 1; }
compose_stop
# a restart finds the date complete and skips it; the logs are JSON, one object a line
compose_up
# (up to 30 s: a restart under podman-compose once took longer than 10 s here)
for _ in $(seq 300); do
    logged "${project}_harvest_1" ScheduledRunSkipped && break
    sleep 0.1
done
compose_stop
logged "${project}_harvest_1" ScheduledRunSkipped || {
    echo "compose: the restarted harvest did not skip the complete date; its last log lines:"
    podman logs "${project}_harvest_1" 2>&1 | tail -20
    exit 1
}
for service in harvest reports; do
    podman logs "${project}_${service}_1" 2>/dev/null | python3 -c '
import json, sys
lines = [line for line in sys.stdin if line.strip()]
assert lines, "no log lines"
for line in lines:
    json.loads(line)' || { echo "compose: $service's stdout is not JSON lines"; exit 1; }
done

echo "container: image $image ${size_mb} MB ($profile profile; scratch: static etl, CA roots, sample; uid 10001); replayed the sample into a volume, served / and /date/$today (200), ran etl schedule --max-runs 1 against a synthetic Medium on the host network, serve and schedule exit 0 on SIGTERM (waiting, and mid-run: nothing published, $kept pages kept, the rerun fetched the other $resumed of $full); resolved a name through the test's DNS server and refused one only the machine's resolver knows ($known), refused a certificate the CA bundle does not vouch for and took it with the CA added; compose.yaml (podman-compose): harvest published $today from the mounted etl.toml with an env override, reports served it and was healthy and its files copied out, a restart skipped the complete date, JSON logs on stdout, both services exit 0 on stop"
