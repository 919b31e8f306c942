//! The numbers: typed tables and per-author metrics, checked against values computed by hand
//! from the real fixtures, against edge cases, and (proptest) against a naive computation.
//! Reports are read back with arrow-rs' Parquet reader, independent of the polars writer.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use arrow::array::{
    Array, AsArray, BooleanArray, Float64Array, Int64Array, ListArray, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, TimeUnit};
use medium_etl::pipeline;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::json;
use wiremock::MockServer;

use crate::support::*;

/// Reads a whole Parquet file into one batch.
pub fn read_parquet(path: &Path) -> RecordBatch {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let schema = batches[0].schema();
    plain_types(arrow::compute::concat_batches(&schema, &batches).unwrap())
}

/// polars writes `LargeUtf8` / `Utf8View` strings and `LargeList`s; the tables use `Utf8` and
/// `List`. Casting to the plain types lets one set of accessors read both.
fn plain_types(batch: RecordBatch) -> RecordBatch {
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;
    let plain = |t: &DataType| match t {
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::LargeList(_) | DataType::List(_) => {
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
        }
        other => other.clone(),
    };
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        let t = plain(f.data_type());
        columns.push(arrow::compute::cast(c, &t).unwrap());
        fields.push(Field::new(f.name(), t, true));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// One author's row of `author_metrics`, as name → value text ("null" for nulls).
fn metrics_by_user(batch: &RecordBatch) -> HashMap<String, HashMap<String, String>> {
    rows_by(batch, "user_id")
}

/// Every row of a table keyed by its `key` column, as column name → value text ("null" for
/// nulls, epoch ms for times).
pub fn rows_by(batch: &RecordBatch, key: &str) -> HashMap<String, HashMap<String, String>> {
    let ids = batch
        .column_by_name(key)
        .unwrap()
        .as_string::<i32>()
        .clone();
    let mut out = HashMap::new();
    for row in 0..batch.num_rows() {
        let mut m = HashMap::new();
        for (i, field) in batch.schema().fields().iter().enumerate() {
            let col = batch.column(i);
            let text = if col.is_null(row) {
                "null".to_owned()
            } else if matches!(col.data_type(), DataType::Timestamp(..)) {
                // epoch ms (displaying a named zone needs chrono-tz)
                let ms = arrow::compute::cast(col, &DataType::Int64).unwrap();
                arrow::util::display::array_value_to_string(&ms, row).unwrap()
            } else {
                arrow::util::display::array_value_to_string(col, row).unwrap()
            };
            m.insert(field.name().clone(), text);
        }
        out.insert(ids.value(row).to_owned(), m);
    }
    out
}

fn f64_col(batch: &RecordBatch, name: &str, row: usize) -> Option<f64> {
    let a = batch
        .column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    (!a.is_null(row)).then(|| a.value(row))
}

fn i64_col(batch: &RecordBatch, name: &str, row: usize) -> Option<i64> {
    let a = batch
        .column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    (!a.is_null(row)).then(|| a.value(row))
}

fn list_col(batch: &RecordBatch, name: &str, row: usize) -> Vec<String> {
    let list = batch
        .column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<ListArray>()
        .unwrap();
    let items = list.value(row);
    let items = items.as_any().downcast_ref::<StringArray>().unwrap();
    items.iter().map(|v| v.unwrap().to_owned()).collect()
}

fn assert_close(actual: Option<f64>, expected: f64, what: &str) {
    let a = actual.unwrap_or_else(|| panic!("{what} is null"));
    assert!(
        (a - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{what}: {a} != {expected}"
    );
}

/// The real profile stream of Will Koehrsen (3 stories) and his real following page, listed by
/// a one-page publication.
async fn serve_will(server: &MockServer) {
    page(server, "/_/api/collections/c0ffee/stream", "", guarded(json!({
        "collection": {"id": "c0ffee", "name": "Coffee", "slug": "coffee"},
        "references": {"User": {"e2f299e30cb9": user("e2f299e30cb9")}, "Post": {"p0": post("p0", "someone-else", 1)}},
        "paging": {"next": {"to": "null", "page": 2}}
    }))).await;
    page(
        server,
        "/_/api/users/e2f299e30cb9/profile/stream",
        "",
        fixture("user_profile_stream.json"),
    )
    .await;
    page(
        server,
        "/_/api/users/e2f299e30cb9/profile/stream",
        "limit=10&source=overview&page=2",
        guarded(json!({"references": {}, "paging": {"next": {"page": 3}}})),
    )
    .await;
    page(
        server,
        "/_/api/users/e2f299e30cb9/following",
        "",
        fixture("user_following.json"),
    )
    .await;
}

/// A complete run of [`serve_will`]'s publication; the server and the output root.
async fn run_will() -> (MockServer, tempfile::TempDir) {
    let server = MockServer::start().await;
    serve_will(&server).await;
    let out = tempfile::tempdir().unwrap();
    let s = settings(&server.uri(), out.path(), &["--collection-id", "c0ffee"]);
    let o = pipeline::run(&s).await.unwrap();
    assert!(o.is_complete(), "{:?}", o.failures);
    (server, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_metrics_of_the_real_profile_stream() {
    let (_server, out) = run_will().await;

    let m = read_parquet(
        &out.path()
            .join("reports/date=2026-11-27/author_metrics.parquet"),
    );
    assert_eq!(m.num_rows(), 1);
    let r = 0;
    // The three stories of user_profile_stream.json, by hand:
    //   6c68789e5a53 "The Disappearing Poor"                    words 3 chars 21, wc 2050, claps   0, rt  9.135849056603773, 5 tags, 31 links, no publication, first 1546442915912
    //   e16cc71abb64 "Announcing the Reality Project"           words 4 chars 30, wc 1519, claps 215, rt  5.932075471698114, 5 tags, 31 links, no publication, first 1546438512631
    //   24c6491a8ff0 "Analyzing Medium Story Stats with Python" words 6 chars 40, wc 2654, claps 306, rt 11.965094339622642, 5 tags, 26 links, 7f60cf5620c9,   first 1546300377981
    assert_eq!(i64_col(&m, "story_count", r), Some(3));
    assert_eq!(i64_col(&m, "total_claps", r), Some(521));
    assert_close(f64_col(&m, "mean_claps", r), 521.0 / 3.0, "mean_claps");
    assert_close(f64_col(&m, "median_claps", r), 215.0, "median_claps");
    assert_eq!(i64_col(&m, "max_claps", r), Some(306));
    assert_close(
        f64_col(&m, "mean_headline_words", r),
        13.0 / 3.0,
        "mean_headline_words",
    );
    assert_close(
        f64_col(&m, "mean_headline_chars", r),
        91.0 / 3.0,
        "mean_headline_chars",
    );
    assert_close(
        f64_col(&m, "mean_word_count", r),
        6223.0 / 3.0,
        "mean_word_count",
    );
    assert_close(
        f64_col(&m, "mean_reading_time_min", r),
        (9.135849056603773 + 5.932075471698114 + 11.965094339622642) / 3.0,
        "mean_reading_time_min",
    );
    assert_close(f64_col(&m, "mean_tag_count", r), 5.0, "mean_tag_count");
    assert_close(
        f64_col(&m, "mean_link_count", r),
        88.0 / 3.0,
        "mean_link_count",
    );
    assert_eq!(i64_col(&m, "publication_count", r), Some(1));
    assert_eq!(list_col(&m, "publications", r), ["7f60cf5620c9"]);
    assert_eq!(
        list_col(&m, "publication_names", r),
        ["Towards Data Science"]
    );
    assert_eq!(i64_col(&m, "following_count", r), Some(3));
    let first = m.column_by_name("first_published_at").unwrap();
    assert_eq!(
        first.data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    let first = first
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .unwrap();
    assert_eq!(first.value(r), 1546300377981);
    let last = m
        .column_by_name("last_published_at")
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .unwrap();
    assert_eq!(last.value(r), 1546442915912);
    let complete = m
        .column_by_name("harvest_complete")
        .unwrap()
        .as_any()
        .downcast_ref::<BooleanArray>()
        .unwrap();
    assert!(complete.value(r));

    // the posts table: typed, one row per post, counts as sent
    let posts = read_parquet(&out.path().join("tables/date=2026-11-27/posts.parquet"));
    assert_eq!(
        posts.num_rows(),
        4,
        "3 stories + the publication page's post"
    );
    let tags = posts.column_by_name("tags").unwrap();
    assert!(matches!(tags.data_type(), DataType::List(f) if f.data_type() == &DataType::Utf8));
    let followings = read_parquet(&out.path().join("tables/date=2026-11-27/followings.parquet"));
    assert_eq!(followings.num_rows(), 3);

    // CSV: same numbers, lists joined with ';'
    let csv = std::fs::read_to_string(
        out.path()
            .join("reports/date=2026-11-27/author_metrics.csv"),
    )
    .unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header, medium_etl::schema::AUTHOR_METRICS_COLUMNS);
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("e2f299e30cb9,user_e2f299e30cb9,User e2f299e30cb9,3,521,"),
        "{row}"
    );
    assert!(
        row.contains(",7f60cf5620c9,Towards Data Science,3,2018-12-31T23:52:57.981+0000,"),
        "{row}"
    );
}

/// Authors with awkward data: no stories at all; duplicates across pages; missing counts;
/// empty and whitespace-only titles; a hair space between words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_cases_count_exactly() {
    let server = MockServer::start().await;
    page(&server, "/_/api/collections/c0ffee/stream", "", guarded(json!({
        "references": {"User": {"zero": user("zero"), "dup": user("dup")}, "Post": {"p0": post("p0", "dup", 1)}},
        "paging": {"next": {"to": "null"}}
    }))).await;
    let mut response = post("r1", "zero", 50);
    response["inResponseToPostId"] = json!("p0");
    // "zero": only a response and another creator's post on their profile
    page(
        &server,
        "/_/api/users/zero/profile/stream",
        "",
        guarded(json!({
            "references": {"Post": {"r1": response, "x1": post("x1", "dup", 99)}},
            "paging": {"next": {"limit": 10}}
        })),
    )
    .await;
    page(
        &server,
        "/_/api/users/zero/following",
        "",
        guarded(json!({"value": [], "paging": {"next": {"limit": 8}}})),
    )
    .await;
    let mut s1 = post("s1", "dup", 10);
    s1["title"] = json!("");
    s1["virtuals"].as_object_mut().unwrap().remove("wordCount");
    s1["homeCollectionId"] = json!("");
    let mut s2 = post("s2", "dup", 20);
    s2["title"] = json!("  \t ");
    s2["homeCollectionId"] = json!("beef");
    let mut s3 = post("s3", "dup", 0);
    s3["title"] = json!("a\u{200a}b c");
    s3["virtuals"]
        .as_object_mut()
        .unwrap()
        .remove("totalClapCount");
    s3["virtuals"]["wordCount"] = json!(300);
    page(&server, "/_/api/users/dup/profile/stream", "", guarded(json!({
        "references": {"Post": {"s1": s1.clone(), "s2": s2}, "Collection": {"beef": {"id": "beef", "name": "Beef Weekly"}}},
        "paging": {"next": {"page": 2}}
    }))).await;
    page(
        &server,
        "/_/api/users/dup/profile/stream",
        "page=2",
        guarded(json!({
            "references": {"Post": {"s1": s1, "s3": s3}},
            "paging": {"next": {"page": 3}}
        })),
    )
    .await;
    page(
        &server,
        "/_/api/users/dup/profile/stream",
        "page=3",
        guarded(json!({
            "references": {"Post": {}}, "paging": {"next": {"page": 4}}
        })),
    )
    .await;
    page(
        &server,
        "/_/api/users/dup/following",
        "",
        guarded(json!({
            "value": [user("f1"), user("f2"), user("f1")], "paging": {"next": {"limit": 8}}
        })),
    )
    .await;

    let out = tempfile::tempdir().unwrap();
    let s = settings(&server.uri(), out.path(), &["--collection-id", "c0ffee"]);
    let o = pipeline::run(&s).await.unwrap();
    assert!(o.is_complete(), "{:?}", o.failures);
    let m = read_parquet(
        &out.path()
            .join("reports/date=2026-11-27/author_metrics.parquet"),
    );
    let rows = metrics_by_user(&m);
    assert_eq!(m.num_rows(), 2);

    let zero = &rows["zero"];
    assert_eq!(zero["story_count"], "0");
    for c in [
        "total_claps",
        "mean_claps",
        "median_claps",
        "max_claps",
        "mean_headline_words",
        "mean_word_count",
        "mean_link_count",
        "first_published_at",
    ] {
        assert_eq!(zero[c], "null", "{c} of an author without stories");
    }
    assert_eq!(zero["publication_count"], "0");
    assert_eq!(zero["publications"], "[]");
    assert_eq!(zero["following_count"], "0");

    // dup: stories s1 (claps 10, no word count, title ""), s2 (claps 20, wc 100, title of
    // white space only) and s3 (no claps, wc 300, "a<hair space>b c"); s1 twice, counted once;
    // x1 (by dup, but on zero's profile) and p0 (publication page only) are not dup's stories.
    let dup = &rows["dup"];
    assert_eq!(dup["story_count"], "3");
    assert_eq!(dup["total_claps"], "30");
    assert_eq!(dup["mean_claps"], "15.0");
    assert_eq!(dup["median_claps"], "15.0");
    assert_eq!(dup["max_claps"], "20");
    assert_eq!(dup["mean_word_count"], "200.0");
    assert_eq!(dup["mean_headline_words"], "1.0"); // (0 + 0 + 3) / 3
    assert_eq!(dup["mean_headline_chars"], "3.0"); // (0 + 4 + 5) / 3
                                                   // s2 in beef (named in the references), s3 in c0ffee (no name known: the id stands in)
    assert_eq!(dup["publication_count"], "2");
    assert_eq!(dup["publications"], "[beef, c0ffee]");
    assert_eq!(dup["publication_names"], "[Beef Weekly, c0ffee]");
    assert_eq!(dup["following_count"], "2");

    let posts = read_parquet(&out.path().join("tables/date=2026-11-27/posts.parquet"));
    let ids: Vec<&str> = posts
        .column_by_name("post_id")
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids.len(), sorted.len(), "one row per post id: {ids:?}");
    assert_eq!(sorted, ["p0", "r1", "s1", "s2", "s3", "x1"]);
    let wc = posts.column_by_name("word_count").unwrap();
    let s1_row = ids.iter().position(|i| *i == "s1").unwrap();
    assert!(wc.is_null(s1_row), "a missing word count is null, not 0");
    let followings = read_parquet(&out.path().join("tables/date=2026-11-27/followings.parquet"));
    assert_eq!(followings.num_rows(), 2, "one row per pair");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifest_records_requests_rows_and_every_file() {
    let server = MockServer::start().await;
    small_publication(&server).await;
    let out = tempfile::tempdir().unwrap();
    let s = settings(&server.uri(), out.path(), &["--collection-id", "c0ffee"]);
    pipeline::run(&s).await.unwrap();
    let dir = out.path().join("reports/date=2026-11-27");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["tool"], "medium-etl");
    assert_eq!(manifest["date"], "2026-11-27");
    assert_eq!(manifest["complete"], true);
    assert_eq!(manifest["requests_total"], 11);
    assert_eq!(manifest["requests"]["profile_stream"]["requests"], 6);
    assert_eq!(manifest["rows"]["authors"], 3);
    assert_eq!(manifest["rows"]["author_metrics"], 3);
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 4 + 6, "4 tables, 3 reports as Parquet and CSV");
    for f in files {
        let path = out.path().join(f["path"].as_str().unwrap());
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            f["bytes"].as_u64().unwrap(),
            "{}",
            path.display()
        );
    }
    assert!(manifest["started_at"].as_str().unwrap() <= manifest["finished_at"].as_str().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_replaces_its_date_whole_and_leaves_other_dates() {
    let server = MockServer::start().await;
    small_publication(&server).await;
    let out = tempfile::tempdir().unwrap();
    for date in ["2026-11-26", "2026-11-27"] {
        let mut s = settings(&server.uri(), out.path(), &["--collection-id", "c0ffee"]);
        s.date = medium_etl::RunDate::parse(date).unwrap();
        pipeline::run(&s).await.unwrap();
    }
    let other = out.path().join("reports/date=2026-11-26/_manifest.json");
    let before = std::fs::read(&other).unwrap();
    let stray = out.path().join("reports/date=2026-11-27/stray.txt");
    std::fs::write(&stray, b"from an older version").unwrap();
    let s = settings(
        &server.uri(),
        out.path(),
        &["--collection-id", "c0ffee", "--max-authors", "1"],
    );
    let o = pipeline::run(&s).await.unwrap();
    assert_eq!(o.manifest.authors.capped_at, Some(1));
    assert!(!stray.exists(), "the date's partition was replaced whole");
    assert_eq!(
        std::fs::read(&other).unwrap(),
        before,
        "another date is untouched"
    );
    let m = read_parquet(
        &out.path()
            .join("reports/date=2026-11-27/author_metrics.parquet"),
    );
    assert_eq!(m.num_rows(), 1);
    assert!(!out
        .path()
        .join(".staging")
        .read_dir()
        .unwrap()
        .any(|_| true));
}

/// Medium's own follower figures come from the profile stream's `SocialStats` (the real
/// fixture: 17,573 followers, 15 followed), beside the count of the list it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_counts_come_from_the_profile_streams_social_stats() {
    let (_server, out) = run_will().await;
    let authors = read_parquet(&out.path().join("tables/date=2026-11-27/authors.parquet"));
    assert_eq!(i64_col(&authors, "follower_count", 0), Some(17_573));
    assert_eq!(i64_col(&authors, "following_count_reported", 0), Some(15));
    let m = read_parquet(
        &out.path()
            .join("reports/date=2026-11-27/author_metrics.parquet"),
    );
    assert_eq!(i64_col(&m, "follower_count", 0), Some(17_573));
    let listed = i64_col(&m, "following_count", 0).unwrap();
    assert!(listed > 0 && listed <= 15, "{listed} listed of 15 reported");
}
