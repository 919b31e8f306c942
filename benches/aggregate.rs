//! The per-author aggregation (polars lazy over Parquet) of 1,000,000 stories by 50,000 authors.
//!
//! `cargo bench --bench aggregate`

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, ListBuilder, RecordBatch,
    StringBuilder, TimestampMillisecondBuilder,
};
use criterion::{criterion_group, criterion_main, Criterion};
use medium_etl::schema;
use medium_etl::sinks::parquet::write_batch;
use medium_etl::transforms::aggregate::{author_metrics, publication_summary};

const AUTHORS: usize = 50_000;
const STORIES_PER_AUTHOR: usize = 20;
const FOLLOWINGS_PER_AUTHOR: usize = 10;
const PUBLICATIONS: usize = 5;

fn ts() -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::new().with_timezone("UTC")
}

/// Writes the four tables of a synthetic run (schemas of `medium_etl::schema`) into `dir`.
fn write_tables(dir: &std::path::Path) {
    let mut rng = fastrand::Rng::with_seed(7);
    let n = AUTHORS * STORIES_PER_AUTHOR;
    let titles = [
        "A guide to data",
        "Why\u{200a}—\u{200a}statistics",
        "",
        "Deep learning, fast",
        "naïve Bayes",
    ];
    let (mut post_id, mut creator, mut title, mut slug, mut home) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let (mut first, mut latest, mut in_response) = (ts(), ts(), StringBuilder::new());
    let (mut is_response, mut in_profile, mut is_story) = (
        BooleanBuilder::new(),
        BooleanBuilder::new(),
        BooleanBuilder::new(),
    );
    let (mut words, mut claps, mut images, mut responses) = (
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
    );
    let mut reading = Float64Builder::new();
    let mut tags = ListBuilder::new(StringBuilder::new());
    let (mut tag_count, mut link_count, mut hw, mut hc) = (
        Int32Builder::new(),
        Int32Builder::new(),
        Int32Builder::new(),
        Int32Builder::new(),
    );
    for i in 0..n {
        let a = i / STORIES_PER_AUTHOR;
        let t = titles[i % titles.len()];
        let response = i % 13 == 0;
        post_id.append_value(format!("p{i:08}"));
        creator.append_value(format!("u{a:06}"));
        title.append_value(t);
        slug.append_null();
        if i % 3 == 0 {
            home.append_null();
        } else {
            home.append_value(format!("c{}", i % PUBLICATIONS));
        }
        let when = 1_500_000_000_000 + i as i64 * 60_000;
        first.append_value(when);
        latest.append_value(when);
        in_response.append_option(response.then_some("p00000000"));
        is_response.append_value(response);
        in_profile.append_value(true);
        is_story.append_value(!response);
        let wc = rng.i64(50..5000);
        words.append_option((i % 11 != 0).then_some(wc));
        claps.append_option((i % 17 != 0).then(|| rng.i64(0..10_000)));
        reading.append_value(wc as f64 / 265.0);
        images.append_value(rng.i64(0..20));
        responses.append_value(rng.i64(0..9));
        let k = rng.usize(0..5);
        for j in 0..k {
            tags.values().append_value(format!("tag{j}"));
        }
        tags.append(true);
        tag_count.append_value(k as i32);
        link_count.append_value(rng.i32(0..40));
        hw.append_value(t.split_whitespace().count() as i32);
        hc.append_value(t.chars().count() as i32);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(post_id.finish()),
        Arc::new(creator.finish()),
        Arc::new(title.finish()),
        Arc::new(slug.finish()),
        Arc::new(home.finish()),
        Arc::new(first.finish()),
        Arc::new(latest.finish()),
        Arc::new(in_response.finish()),
        Arc::new(is_response.finish()),
        Arc::new(in_profile.finish()),
        Arc::new(is_story.finish()),
        Arc::new(words.finish()),
        Arc::new(claps.finish()),
        Arc::new(reading.finish()),
        Arc::new(images.finish()),
        Arc::new(responses.finish()),
        Arc::new(tags.finish()),
        Arc::new(tag_count.finish()),
        Arc::new(link_count.finish()),
        Arc::new(hw.finish()),
        Arc::new(hc.finish()),
    ];
    let posts = RecordBatch::try_new(schema::posts(), columns).expect("posts batch");
    write_batch(&dir.join("posts.parquet"), &posts).expect("writes posts");

    let mut user_id = StringBuilder::new();
    let mut username = StringBuilder::new();
    let mut rank = Int32Builder::new();
    let mut found_in = ListBuilder::new(StringBuilder::new());
    let mut pages = Int32Builder::new();
    let mut complete = BooleanBuilder::new();
    let mut follower = StringBuilder::new();
    let mut followee = StringBuilder::new();
    for a in 0..AUTHORS {
        user_id.append_value(format!("u{a:06}"));
        username.append_value(format!("author{a}"));
        rank.append_value(a as i32 + 1);
        found_in.values().append_value("c0");
        found_in.append(true);
        pages.append_value(2);
        complete.append_value(true);
        for k in 1..=FOLLOWINGS_PER_AUTHOR {
            follower.append_value(format!("u{a:06}"));
            followee.append_value(format!("u{:06}", (a + k * 7) % AUTHORS));
        }
    }
    let nulls = |n: usize| {
        let mut b = StringBuilder::new();
        (0..n).for_each(|_| b.append_null());
        Arc::new(b.finish()) as ArrayRef
    };
    let null_ts = |n: usize| {
        let mut b = ts();
        (0..n).for_each(|_| b.append_null());
        Arc::new(b.finish()) as ArrayRef
    };
    let pages = Arc::new(pages.finish()) as ArrayRef;
    let complete = Arc::new(complete.finish()) as ArrayRef;
    let authors = RecordBatch::try_new(
        schema::authors(),
        vec![
            Arc::new(user_id.finish()),
            Arc::new(username.finish()),
            nulls(AUTHORS),
            nulls(AUTHORS),
            nulls(AUTHORS),
            null_ts(AUTHORS),
            null_ts(AUTHORS),
            Arc::new(rank.finish()),
            Arc::new(found_in.finish()),
            pages.clone(),
            pages,
            complete.clone(),
            complete,
        ],
    )
    .expect("authors batch");
    write_batch(&dir.join("authors.parquet"), &authors).expect("writes authors");
    let m = AUTHORS * FOLLOWINGS_PER_AUTHOR;
    let followings = RecordBatch::try_new(
        schema::followings(),
        vec![
            Arc::new(follower.finish()),
            Arc::new(followee.finish()),
            nulls(m),
            nulls(m),
        ],
    )
    .expect("followings batch");
    write_batch(&dir.join("followings.parquet"), &followings).expect("writes followings");
    let mut id = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut harvested = BooleanBuilder::new();
    for p in 0..PUBLICATIONS {
        id.append_value(format!("c{p}"));
        name.append_value(format!("Publication {p}"));
        harvested.append_value(p == 0);
    }
    let publications = RecordBatch::try_new(
        schema::publications(),
        vec![
            Arc::new(id.finish()),
            Arc::new(name.finish()),
            nulls(PUBLICATIONS),
            nulls(PUBLICATIONS),
            nulls(PUBLICATIONS),
            nulls(PUBLICATIONS),
            Arc::new(harvested.finish()),
        ],
    )
    .expect("publications batch");
    write_batch(&dir.join("publications.parquet"), &publications).expect("writes publications");
}

fn aggregate(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temp dir");
    write_tables(dir.path());
    let mut group = c.benchmark_group("aggregate");
    group.sample_size(10);
    group.bench_function("author_metrics 1M stories x 50k authors", |b| {
        b.iter(|| author_metrics(dir.path()).expect("aggregates"))
    });
    let metrics = author_metrics(dir.path()).expect("aggregates");
    assert_eq!(metrics.height(), AUTHORS);
    group.bench_function("publication_summary 50k authors", |b| {
        b.iter(|| publication_summary(dir.path(), &metrics).expect("summarizes"))
    });
    group.finish();
}

criterion_group!(benches, aggregate);
criterion_main!(benches);
