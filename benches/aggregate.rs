//! The per-author aggregation (polars lazy over Parquet) of 1,000,000 stories by 50,000 authors.
//! The tables are a synthetic Medium's, decoded and normalized by the product's own code and
//! written by its Parquet writer, so the bench follows the schema wherever it goes.
//!
//! `cargo bench --bench aggregate` (`cargo test --bench aggregate` runs it once, small)

use criterion::{criterion_group, criterion_main, Criterion};
use medium_etl::sinks::parquet::write_batch;
use medium_etl::transforms::aggregate::{author_metrics, publication_summary};
use medium_etl::transforms::normalize::normalize;
use medium_synth::{SyntheticMedium, SyntheticSpec};

mod support;

const STORIES_PER_AUTHOR: usize = 20;

/// Writes the four tables of a synthetic run of `authors` authors into `dir`; returns the
/// number of posts.
fn write_tables(dir: &std::path::Path, authors: usize) -> usize {
    let medium = SyntheticMedium::new(SyntheticSpec {
        authors,
        stories_per_author: STORIES_PER_AUTHOR,
        followings_per_author: 10,
        publication_page_size: 100,
        ..SyntheticSpec::default()
    });
    let tables = normalize(&support::decode(&medium.pages())).expect("normalizes");
    for (name, batch) in tables.named() {
        write_batch(&dir.join(format!("{name}.parquet")), batch, None).expect("writes a table");
    }
    tables.posts.num_rows()
}

fn aggregate(c: &mut Criterion) {
    let authors = if support::measuring() { 50_000 } else { 200 };
    let dir = tempfile::tempdir().expect("a temp dir");
    let posts = write_tables(dir.path(), authors);
    eprintln!("aggregate: {posts} posts by {authors} authors");
    let mut group = c.benchmark_group("aggregate");
    group.sample_size(10);
    group.bench_function("author_metrics 1M stories x 50k authors", |b| {
        b.iter(|| author_metrics(dir.path()).expect("aggregates"))
    });
    let metrics = author_metrics(dir.path()).expect("aggregates");
    assert_eq!(metrics.height(), authors);
    group.bench_function("publication_summary 50k authors", |b| {
        b.iter(|| publication_summary(dir.path(), &metrics).expect("summarizes"))
    });
    group.finish();
}

criterion_group!(benches, aggregate);
criterion_main!(benches);
