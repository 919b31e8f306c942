#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each and prints libFuzzer's final stats.
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on a stable toolchain RUSTC_BOOTSTRAP=1 lets it
# use the sanitizer flags. A crash leaves its input in fuzz/artifacts/<target>/ and fails.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medium-etl-fuzz-target}"
mkdir -p corpus/guard_and_payloads corpus/paging_query corpus/feeds_and_pages corpus/graphql_replies
# seeds: the real fixtures, and the paging objects they carry
cp ../tests/fixtures/medium/*.json corpus/guard_and_payloads/
cp ../tests/fixtures/medium/*.html ../tests/fixtures/medium/*.xml corpus/feeds_and_pages/
cp ../tests/fixtures/medium/graphql_*.json corpus/graphql_replies/
# a reply nested far deeper than any real one (the decoders must not recurse on it)
python3 -c 'print("[" * 100000)' > corpus/graphql_replies/deep
# a feed item's story and a page nested 100,000 deep (not parsed: bounded in time and stack)
python3 -c 'd="<div>"*100000; print("<?xml version=\"1.0\"?><rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel><title>t</title><item><guid>https://medium.com/p/abc</guid><content:encoded><![CDATA["+d+"]]></content:encoded></item></channel></rss>")' > corpus/feeds_and_pages/deep_feed
python3 -c 'print("<html><body>" + "<b>"*100000 + "</body></html>")' > corpus/feeds_and_pages/deep_page
printf '%s' '{"next":{"to":"null","ignoredIds":[],"page":4}}' > corpus/paging_query/collection
printf '%s' '{"path":"x","next":{"limit":10,"source":"overview","ignoredIds":[],"page":2}}' > corpus/paging_query/profile
printf '%s' '{"next":{"limit":8,"to":"48dfcde4c4fd"}}' > corpus/paging_query/following
for target in guard_and_payloads paging_query feeds_and_pages graphql_replies; do
    echo "== $target (${seconds}s)"
    # the feed/page seeds are whole 150 KB documents: cut inputs to 4 KiB so the fuzzer mutates
    # more than it parses (1.8 k runs/min uncut, 13 k/min cut)
    extra=""
    [ "$target" = feeds_and_pages ] && extra="-max_len=4096"
    cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -print_final_stats=1 $extra 2>&1 \
        | grep -E "stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs|ERROR|panicked|SUMMARY" || true
    if ls "artifacts/$target"/crash-* >/dev/null 2>&1; then
        echo "crash found in $target: see fuzz/artifacts/$target/"
        exit 1
    fi
done
