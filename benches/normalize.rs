//! Guard stripping + parsing + normalization to Arrow, on the real fixture bodies (bytes/s),
//! and normalization alone on a synthetic harvest of 1,000 authors × 20 stories (rows/s).
//!
//! `cargo bench --bench normalize`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use medium_api::guard::parse_payload;
use medium_api::models::{FollowingPayload, StreamPayload};
use medium_etl::transforms::normalize::normalize;
use medium_synth::{SyntheticMedium, SyntheticSpec};

mod support;

fn minified(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/medium/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let guard = b"])}while(1);</x>";
    let json: serde_json::Value =
        serde_json::from_slice(body.strip_prefix(guard).unwrap_or(&body)).expect("fixture JSON");
    let mut out = guard.to_vec();
    out.extend(serde_json::to_vec(&json).expect("serializes"));
    out
}

fn fixtures(c: &mut Criterion) {
    let collection = minified("collection_stream.json");
    let profile = minified("user_profile_stream.json");
    let following = minified("user_following.json");
    let bytes = (collection.len() + profile.len() + following.len()) as u64;
    let mut group = c.benchmark_group("fixtures");
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("guard+parse+normalize", |b| {
        b.iter(|| {
            let publication: StreamPayload = parse_payload(&collection).expect("parses");
            let profile_page: StreamPayload = parse_payload(&profile).expect("parses");
            let following_page: FollowingPayload = parse_payload(&following).expect("parses");
            let user = profile_page.user.clone().expect("the profile's user");
            let h = support::harvest(
                vec![publication],
                vec![(user, vec![profile_page], vec![following_page])],
            );
            normalize(&h).expect("normalizes")
        })
    });
    group.finish();
}

fn synthetic(c: &mut Criterion) {
    let authors = if support::measuring() { 1_000 } else { 20 };
    let medium = SyntheticMedium::new(SyntheticSpec {
        authors,
        stories_per_author: 20,
        ..SyntheticSpec::default()
    });
    let pages = medium.pages();
    let h = support::decode(&pages);
    let rows = normalize(&h).expect("normalizes").posts.num_rows() as u64;
    let bytes: u64 = pages.iter().map(|p| p.body.len() as u64).sum();
    let mut group = c.benchmark_group("synthetic");
    group.throughput(Throughput::Elements(rows));
    group.sample_size(20);
    group.bench_function("normalize 1000 authors x 20 stories (posts/s)", |b| {
        b.iter(|| normalize(&h).expect("normalizes"))
    });
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function(
        "guard+parse+normalize 1000 authors x 20 stories (bytes/s)",
        |b| b.iter(|| normalize(&support::decode(&pages)).expect("normalizes")),
    );
    group.finish();
}

criterion_group!(benches, fixtures, synthetic);
criterion_main!(benches);
