//! Guard stripping + typed parsing of the real fixture bodies (throughput in bytes/s).
//!
//! `cargo bench --bench parse`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use medium_etl::sources::medium::guard::parse_payload;
use medium_etl::sources::medium::models::{FollowingPayload, StreamPayload};

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

criterion_group!(benches, parse);
criterion_main!(benches);
