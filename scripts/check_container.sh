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
# containers.conf without default ulimits.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medium-etl-target}"
static_target="${STATIC_TARGET_DIR:-$HOME/.cache/medium-etl-static}"

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v curl >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq podman runc curl >/dev/null
fi
work="$(mktemp -d)"
conf="$work/containers.conf"
printf '[containers]\ndefault_ulimits = []\n' > "$conf"
export CONTAINERS_CONF="$conf"
podman_run() { podman --runtime runc --cgroup-manager cgroupfs run --network host "$@"; }
image=medium-etl:ci
volume="medium-etl-ci-$$"
synth=""
cleanup() {
    [ -n "$synth" ] && kill "$synth" 2>/dev/null || true
    podman rm -f etl-serve-$$ etl-sched-$$ >/dev/null 2>&1 || true
    podman volume rm -f "$volume" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

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
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
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
"$CARGO_TARGET_DIR/debug/etl" synth --authors 20 --latency-ms 0 > "$work/synth.txt" &
synth=$!
for _ in $(seq 100); do grep -q "http://" "$work/synth.txt" 2>/dev/null && break; sleep 0.1; done
base="$(grep -o 'http://[0-9.:]*' "$work/synth.txt" | head -1)"
podman_run --rm -v "$volume:/data" "$image" schedule --every 1h --max-runs 1 \
    --base-url "$base" --collection-id 5a17e71c0de5 --max-rps 0 --quiet \
    --out /data/synthetic

# 4. SIGTERM ends a waiting schedule with exit 0
podman_run -d --name etl-sched-$$ -v "$volume:/data" "$image" schedule --every 24h \
    --base-url "$base" --collection-id 5a17e71c0de5 --max-rps 0 --out /data/synthetic >/dev/null
sleep 2
podman stop -t 20 etl-sched-$$ >/dev/null
code="$(podman inspect --format '{{.State.ExitCode}}' etl-sched-$$)"
[ "$code" = 0 ] || { echo "container: schedule exited $code on SIGTERM"; podman logs etl-sched-$$; exit 1; }

echo "container: image $image ${size_mb} MB ($profile profile; scratch: static etl, CA roots, sample; uid 10001); replayed the sample into a volume, served / and /date/$today (200), ran etl schedule --max-runs 1 against a synthetic Medium on the host network, serve and schedule exit 0 on SIGTERM"
