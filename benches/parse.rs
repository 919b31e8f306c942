//! Guard stripping + typed parsing of the real fixture bodies (throughput in bytes/s), and the
//! same authors and stories read from their HTML pages and RSS feeds (`decode html|rss`).
//!
//! `cargo bench --bench parse`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use medium_etl::sources::medium::endpoints::{PublicationRef, StreamId};
use medium_etl::sources::medium::guard::parse_payload;
use medium_etl::sources::medium::models::{FollowingPayload, StreamPayload};
use medium_etl::sources::medium::via::Via;
use medium_etl::sources::medium::StreamPage;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/medium/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The body re-serialized without white space (Medium serves minified JSON; the fixtures are
/// pretty-printed), guard kept.
fn minified(body: &[u8]) -> Vec<u8> {
    let guard = b"])}while(1);</x>";
    let json: serde_json::Value =
        serde_json::from_slice(body.strip_prefix(guard).unwrap_or(body)).expect("fixture JSON");
    let mut out = guard.to_vec();
    out.extend(serde_json::to_vec(&json).expect("serializes"));
    out
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("guard+parse");
    for name in ["collection_stream.json", "user_profile_stream.json"] {
        let body = minified(&fixture(name));
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| parse_payload::<StreamPayload>(body).expect("parses"))
        });
    }
    let body = minified(&fixture("user_following.json"));
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_with_input(
        BenchmarkId::from_parameter("user_following.json"),
        &body,
        |b, body| b.iter(|| parse_payload::<FollowingPayload>(body).expect("parses")),
    );
    group.finish();

    // The floor: the same bytes scanned by serde_json without building anything.
    let mut group = c.benchmark_group("scan only (IgnoredAny)");
    for name in ["collection_stream.json", "user_profile_stream.json"] {
        let body = minified(&fixture(name));
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| {
                serde_json::from_slice::<serde::de::IgnoredAny>(
                    medium_etl::sources::medium::guard::strip_guard(body),
                )
                .expect("JSON")
            })
        });
    }
    group.finish();
}

/// The other two formats, on the fixtures `scripts/build_feeds.py` made from the JSON ones.
fn other_formats(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    let profile = StreamId::Profile("e2f299e30cb9".into());
    let publication = StreamId::Publication(PublicationRef::Slug("towards-data-science".into()));
    for (via, name, stream) in [
        (Via::Html, "collection_page.html", &publication),
        (Via::Html, "user_profile_page.html", &profile),
        (Via::Rss, "collection_feed.xml", &publication),
        (Via::Rss, "user_feed.xml", &profile),
    ] {
        let body = fixture(name);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new(via.name(), name), &body, |b, body| {
            b.iter(|| StreamPayload::decode(via, stream, "", body).expect("decodes"))
        });
    }
    group.finish();
}

criterion_group!(benches, parse, other_formats);
criterion_main!(benches);
