# Sourced (not run) by the bench and check scripts that drive a synthetic Medium with the etl
# binary: makes the scripts' scratch directory $work, removed on exit with the server, and
# defines start_synth.
#
#   start_synth ARGS...   runs `$etl synth ARGS` in the background (stopping one started
#                         before) and sets $base to its URL once it listens

work="$(mktemp -d)"
synth=""
trap '[ -n "$synth" ] && { kill "$synth" 2>/dev/null || true; }; rm -rf "$work"' EXIT

start_synth() {
    if [ -n "$synth" ]; then
        kill "$synth" 2>/dev/null && wait "$synth" 2>/dev/null || true
    fi
    "$etl" synth "$@" > "$work/synth.txt" &
    synth=$!
    for _ in $(seq 100); do grep -q "http://" "$work/synth.txt" 2>/dev/null && break; sleep 0.1; done
    base="$(grep -o 'http://[0-9.:]*' "$work/synth.txt" | head -1)"
    [ -n "$base" ] || { echo "etl synth did not start:"; cat "$work/synth.txt"; exit 1; }
}
