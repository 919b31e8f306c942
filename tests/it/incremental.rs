//! Incremental runs (#15) against a synthetic Medium whose world changes from day to day:
//! each incremental date equals a full run of that day, value for value, with far fewer
//! requests; a failed day is made good the next day; `--full-every` forces a full run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use medium_etl::pipeline;
use medium_synth::{Evolution, SyntheticSpec};

use crate::metrics::read_parquet;
use crate::support::*;

fn world(day: u32) -> SyntheticSpec {
    SyntheticSpec {
        authors: 40,
        stories_per_author: 40,
        followings_per_author: 20,
        evolution: Some(Evolution::from_2026_11_27(day)),
        ..SyntheticSpec::default()
    }
}

fn date(day: u32) -> String {
    (chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap() + chrono::Days::new(u64::from(day)))
        .format("%Y-%m-%d")
        .to_string()
}

/// A run of `day`'s world into `out`; the requests the server answered.
async fn run_day(out: &Path, day: u32, extra: &[&str]) -> (medium_etl::RunOutcome, u64) {
    let site = SyntheticSite::start(world(day), Duration::ZERO).await;
    let d = date(day);
    let mut flags = vec!["--date", d.as_str()];
    flags.extend_from_slice(extra);
    let o = pipeline::run(&site.settings_into(out, &flags))
        .await
        .expect("the run finishes");
    (o, site.requests())
}

/// A table's rows as text, keyed by `keys`, without the columns that describe the harvest
/// rather than Medium.
fn rows(batch: &RecordBatch, keys: &[&str]) -> BTreeMap<String, BTreeMap<String, String>> {
    const HARVEST_ONLY: [&str; 5] = [
        "observed_on",
        "profile_pages",
        "following_pages",
        "profile_carried_from",
        "following_carried_from",
    ];
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut out = BTreeMap::new();
    for row in cell_text(batch) {
        let cells: BTreeMap<String, String> = names.iter().cloned().zip(row).collect();
        let key = keys
            .iter()
            .map(|k| cells[*k].clone())
            .collect::<Vec<_>>()
            .join("|");
        let kept = cells
            .into_iter()
            .filter(|(n, _)| !HARVEST_ONLY.contains(&n.as_str()))
            .collect();
        out.insert(key, kept);
    }
    out
}

/// Asserts that `day`'s tables and reports under `a` and `b` are equal (harvest columns
/// aside).
fn assert_same_date(a: &Path, b: &Path, day: u32) {
    let d = date(day);
    for (table, keys) in [
        ("tables/authors", vec!["user_id"]),
        ("tables/posts", vec!["post_id"]),
        ("tables/followings", vec!["follower_id", "followee_id"]),
        ("tables/publications", vec!["collection_id"]),
        ("reports/author_metrics", vec!["user_id"]),
    ] {
        let (kind, name) = table.split_once('/').unwrap();
        let file = |root: &Path| root.join(format!("{kind}/date={d}/{name}.parquet"));
        let (x, y) = (
            rows(&read_parquet(&file(a)), &keys),
            rows(&read_parquet(&file(b)), &keys),
        );
        assert_eq!(x.len(), y.len(), "{table} on day {day}: row counts");
        for (k, row) in &x {
            assert_eq!(Some(row), y.get(k), "{table} on day {day}: row {k}");
        }
    }
    for csv in ["author_metrics.csv", "publication_summary.csv"] {
        let read =
            |root: &Path| std::fs::read_to_string(root.join(format!("reports/date={d}/{csv}")));
        assert_eq!(read(a).unwrap(), read(b).unwrap(), "{csv} on day {day}");
    }
}

/// #15: day 0 full, days 1 to 3 incremental: each incremental date equals a full run of that
/// day's world, and asks for a fraction of its requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_days_equal_full_runs_with_far_fewer_requests() {
    let inc = tempfile::tempdir().unwrap();
    let (first, _) = run_day(inc.path(), 0, &["--incremental"]).await;
    assert!(first.is_complete());
    assert_eq!(
        first.manifest.run_mode(),
        "full",
        "nothing earlier to carry from"
    );
    for day in 1..=3 {
        let full = tempfile::tempdir().unwrap();
        let (f, full_requests) = run_day(full.path(), day, &[]).await;
        let (o, requests) = run_day(inc.path(), day, &["--incremental"]).await;
        assert!(f.is_complete() && o.is_complete(), "{:?}", o.failures);
        assert_eq!(o.manifest.run_mode(), "incremental");
        assert_same_date(full.path(), inc.path(), day);
        assert!(
            requests * 10 <= full_requests * 4,
            "day {day}: {requests} requests incremental, {full_requests} full"
        );
        let carried = o.manifest.incremental.as_ref().unwrap();
        assert!(
            carried.posts_carried > 0 && carried.posts_fetched > 0,
            "{carried:?}"
        );
    }
    // carried rows say when they were observed: day 3's own, and earlier days'
    let posts = read_parquet(
        &inc.path()
            .join(format!("tables/date={}/posts.parquet", date(3))),
    );
    let observed = posts.column_by_name("observed_on").unwrap();
    let f = ArrayFormatter::try_new(observed.as_ref(), &FormatOptions::default()).unwrap();
    let days: std::collections::BTreeSet<String> = (0..posts.num_rows())
        .map(|i| f.value(i).to_string())
        .collect();
    assert!(
        days.contains(&date(3)) && days.contains(&date(0)),
        "{days:?}"
    );
}

/// A run of `day`'s world with `faults` into `out`.
async fn run_day_with(
    out: &Path,
    day: u32,
    faults: medium_synth::Faults,
    extra: &[&str],
) -> medium_etl::RunOutcome {
    let site = SyntheticSite::with_faults(world(day), Duration::ZERO, faults).await;
    let d = date(day);
    let mut flags = vec!["--date", d.as_str()];
    flags.extend_from_slice(extra);
    pipeline::run(&site.settings_into(out, &flags))
        .await
        .expect("the run finishes")
}

/// The authors whose stories stream was carried on `day`.
fn carried_authors(out: &Path, day: u32) -> std::collections::BTreeSet<String> {
    let authors = read_parquet(&out.join(format!("tables/date={}/authors.parquet", date(day))));
    let by_user = crate::metrics::rows_by(&authors, "user_id");
    by_user
        .into_iter()
        .filter(|(_, r)| r["profile_carried_from"] != "null")
        .map(|(u, _)| u)
        .collect()
}

/// #15: a day on which some authors failed is made good the next day: their streams are read
/// in full (an earlier date that did not read a stream completely is never carried from), and
/// the date equals a full run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_day_is_read_again_in_full_the_next_day() {
    let inc = tempfile::tempdir().unwrap();
    run_day(inc.path(), 0, &["--incremental"]).await;
    let medium = medium_synth::SyntheticMedium::new(world(1));
    let failing: std::collections::HashSet<String> = [3, 7].map(|a| medium.user_id(a)).into();
    let faults = medium_synth::Faults {
        always_fail: failing.clone(),
        ..medium_synth::Faults::default()
    };
    let day1 = run_day_with(inc.path(), 1, faults, &["--incremental", "--retries", "0"]).await;
    assert!(!day1.is_complete(), "two authors failed on day 1");
    let (day2, _) = run_day(inc.path(), 2, &["--incremental"]).await;
    assert!(day2.is_complete(), "{:?}", day2.failures);
    let carried = carried_authors(inc.path(), 2);
    assert!(!carried.is_empty());
    for id in &failing {
        assert!(
            !carried.contains(id),
            "{id} failed on day 1: read in full on day 2"
        );
    }
    let full = tempfile::tempdir().unwrap();
    run_day(full.path(), 2, &[]).await;
    assert_same_date(full.path(), inc.path(), 2);

    // the day with failures can be rebuilt: the streams that failed then fail again, no other
    let settings = medium_etl::rebuild::settings(inc.path(), &date(1), true).unwrap();
    let rebuilt = pipeline::run(&settings).await.unwrap();
    assert_eq!(rebuilt.failures.len(), day1.failures.len());
}

/// #15: `--full-every 2` makes the second day after a full run a full run again; a plain
/// `etl run` (no --incremental) is always full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_every_forces_a_full_run() {
    let inc = tempfile::tempdir().unwrap();
    let flags = ["--incremental", "--full-every", "2"];
    run_day(inc.path(), 0, &flags).await;
    let (d1, _) = run_day(inc.path(), 1, &flags).await;
    assert_eq!(d1.manifest.run_mode(), "incremental");
    let (d2, _) = run_day(inc.path(), 2, &flags).await;
    assert_eq!(
        d2.manifest.run_mode(),
        "full",
        "two days after the last full run"
    );
    assert!(carried_authors(inc.path(), 2).is_empty());
    let (d3, _) = run_day(inc.path(), 3, &flags).await;
    assert_eq!(d3.manifest.run_mode(), "incremental");
    let (plain, _) = run_day(inc.path(), 4, &[]).await;
    assert_eq!(plain.manifest.run_mode(), "full");
}

/// #15: an incremental run stopped part-way (SIGTERM, kill) keeps what it fetched; the re-run
/// reads it from the raw store, asks only for the rest, and ends where a full run would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_incremental_run_resumes() {
    let inc = tempfile::tempdir().unwrap();
    run_day(inc.path(), 0, &["--incremental"]).await;
    // day 1, stopped after about 40 pages
    let site = SyntheticSite::start(world(1), Duration::from_millis(5)).await;
    let d = date(1);
    let settings = site.settings_into(
        inc.path(),
        &["--date", &d, "--incremental", "--concurrency", "2"],
    );
    let cancel = medium_etl::run::CancelFlag::default();
    let stopper = {
        let cancel = cancel.clone();
        let stats = site.server.stats.clone();
        tokio::spawn(async move {
            while stats.requests.load(std::sync::atomic::Ordering::SeqCst) < 40 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            cancel.cancel();
        })
    };
    let stopped = pipeline::run_until(&settings, cancel).await;
    stopper.await.unwrap();
    assert!(matches!(stopped, Err(medium_etl::RunError::Cancelled)));
    let before = site.requests();
    let o = pipeline::run(&settings).await.unwrap();
    assert!(o.is_complete(), "{:?}", o.failures);
    assert_eq!(o.manifest.run_mode(), "incremental");
    let resumed = site.requests() - before;
    let full = tempfile::tempdir().unwrap();
    let (_, full_requests) = run_day(full.path(), 1, &[]).await;
    assert!(
        resumed + before <= full_requests,
        "{before} + {resumed} vs {full_requests}"
    );
    assert_same_date(full.path(), inc.path(), 1);
}

/// Every published file of `day` under `out`, by name: bytes for CSV and JSON, decoded rows
/// and metadata without the run id for Parquet.
fn published(out: &Path, day: u32) -> BTreeMap<String, String> {
    published_date(out, &date(day))
}

/// [`published`] of a date named as text.
pub(crate) fn published_date(out: &Path, date: &str) -> BTreeMap<String, String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut files = BTreeMap::new();
    for kind in ["tables", "reports"] {
        let dir = out.join(format!("{kind}/date={date}"));
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = format!("{kind}/{}", path.file_name().unwrap().to_string_lossy());
            let text = match path.extension().and_then(|e| e.to_str()) {
                Some("parquet") => {
                    let reader =
                        SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
                    let meta: Vec<String> = reader
                        .metadata()
                        .file_metadata()
                        .key_value_metadata()
                        .into_iter()
                        .flatten()
                        .filter(|kv| kv.key != "medium_etl.run_id")
                        .map(|kv| format!("{}={:?}", kv.key, kv.value))
                        .collect();
                    format!("{meta:?}\n{:?}", all_rows(&read_parquet(&path)))
                }
                Some("json") => continue, // the manifest: times and run id differ
                _ => std::fs::read_to_string(&path).unwrap(),
            };
            files.insert(name, text);
        }
    }
    files
}

/// Every cell of every row, in order (nothing left out).
fn all_rows(batch: &RecordBatch) -> Vec<String> {
    cell_text(batch).into_iter().map(|r| r.join("|")).collect()
}

/// Each row's cells as text, "null" for nulls, times as epoch ms (displaying a named zone
/// needs chrono-tz).
fn cell_text(batch: &RecordBatch) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("null");
    // times as epoch ms (displaying a named zone needs chrono-tz)
    let columns: Vec<_> = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            arrow::datatypes::DataType::Timestamp(..) => {
                arrow::compute::cast(c, &arrow::datatypes::DataType::Int64).unwrap()
            }
            _ => c.clone(),
        })
        .collect();
    let formatters: Vec<_> = columns
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
        .collect();
    (0..batch.num_rows())
        .map(|row| {
            formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect()
        })
        .collect()
}

/// #15: `etl rebuild` derives days 0 to 3 (a full day and three incremental ones, following
/// the carry chain) from the raw store alone: every file as the runs published it (the
/// Parquet files' run id aside), no request sent; a missing raw page is an error naming it,
/// and the published date is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_derives_each_date_again_from_the_raw_store_alone() {
    let inc = tempfile::tempdir().unwrap();
    for day in 0..=3 {
        run_day(inc.path(), day, &["--incremental"]).await;
    }
    let before: Vec<_> = (0..=3).map(|d| published(inc.path(), d)).collect();
    let from = chrono::NaiveDate::parse_from_str(&date(0), "%Y-%m-%d").unwrap();
    let to = chrono::NaiveDate::parse_from_str(&date(3), "%Y-%m-%d").unwrap();
    let dates = medium_etl::rebuild::dates(inc.path(), None, Some((from, to))).unwrap();
    assert_eq!(dates.len(), 4);
    for d in &dates {
        let settings = medium_etl::rebuild::settings(inc.path(), d, true).unwrap();
        let o = pipeline::run(&settings).await.unwrap();
        assert!(o.is_complete());
        assert_eq!(o.requests.iter().map(|(_, c)| c.requests).sum::<u64>(), 0);
    }
    for day in 0..=3 {
        assert_eq!(
            published(inc.path(), day),
            before[day as usize],
            "day {day}"
        );
    }

    // a raw page gone: an error naming it, and day 2 stays published as it was
    let raw = inc.path().join(format!("raw/date={}", date(1)));
    let page = stored_pages(&raw)
        .into_iter()
        .find(|p| p.name.contains("profile_stream"))
        .unwrap()
        .name;
    remove_stored_page(&raw, &page);
    let settings = medium_etl::rebuild::settings(inc.path(), &date(2), true).unwrap();
    let err = pipeline::run(&settings).await.unwrap_err();
    assert_eq!(medium_etl::exit_code(&err), 6, "{err}");
    assert!(
        err.to_string().contains(&format!("pages.log#{page}")),
        "{err}"
    );
    assert_eq!(published(inc.path(), 2), before[2]);
}

/// #15: `author_changes` against the previous published date, checked against the synthetic
/// world's own changes: stories added (responses are not stories), claps gained (all on young
/// stories: the base world's never change), follows added; the first date has nulls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn author_changes_tell_what_changed_since_the_previous_date() {
    let out = tempfile::tempdir().unwrap();
    for day in 0..=2 {
        run_day(out.path(), day, &["--incremental"]).await;
    }
    let changes = |day: u32| {
        crate::metrics::rows_by(
            &read_parquet(
                &out.path()
                    .join(format!("reports/date={}/author_changes.parquet", date(day))),
            ),
            "user_id",
        )
    };
    let first = changes(0);
    assert!(first
        .values()
        .all(|r| r["previous_date"] == "null" && r["stories_added"] == "null"));
    for day in 1..=2 {
        let (now, then) = (
            medium_synth::SyntheticMedium::new(world(day)),
            medium_synth::SyntheticMedium::new(world(day - 1)),
        );
        let rows = changes(day);
        assert_eq!(rows.len(), 40);
        for a in 0..40 {
            let r = &rows[&now.user_id(a)];
            assert_eq!(r["previous_date"], date(day - 1));
            let added = (then.stories_of(a)..now.stories_of(a))
                .filter(|s| !medium_synth::SyntheticMedium::is_response(*s))
                .count();
            assert_eq!(
                r["stories_added"],
                added.to_string(),
                "author {a} day {day}"
            );
            assert_eq!(
                r["claps_gained"], r["claps_gained_recent"],
                "author {a} day {day}"
            );
            let follows = usize::from((a + day as usize).is_multiple_of(10));
            assert_eq!(
                r["following_change"],
                follows.to_string(),
                "author {a} day {day}"
            );
            assert_eq!(r["follower_change"], "0");
        }
        assert!(rows.values().any(|r| r["claps_gained"] != "0"));
    }
}

/// #15: the quality checks at publish: on a day when every author has fewer stories than the
/// day before, `story_counts_not_lower` lists the stories gone and `row_drift` the tables that
/// moved too far; the date is published either way, and `--strict` makes the run exit 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_checks_fail_on_lost_stories_and_strict_exits_10() {
    let out = tempfile::tempdir().unwrap();
    let (first, _) = run_day(out.path(), 0, &[]).await;
    assert!(
        first.manifest.checks.iter().all(|c| c.passed),
        "{:?}",
        first.manifest.checks
    );
    assert_eq!(
        first.manifest.checks.len(),
        2,
        "nothing earlier to compare with"
    );
    let shrunk = SyntheticSpec {
        stories_per_author: 30,
        ..world(0)
    };
    let site = SyntheticSite::start(shrunk, Duration::ZERO).await;
    let mut args: Vec<String> = vec!["run".into(), "--date".into(), date(1)];
    args.extend(site.flags());
    args.extend(
        [
            "--out",
            out.path().to_str().unwrap(),
            "--strict",
            "--max-drift",
            "10",
            "-q",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = etl(&args, &repo());
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(10), "{stdout}{stderr}");
    assert!(stdout.contains("story_counts_not_lower failed"), "{stdout}");
    let manifest: medium_etl::sinks::manifest::Manifest = serde_json::from_slice(
        &std::fs::read(
            out.path()
                .join(format!("reports/date={}/_manifest.json", date(1))),
        )
        .unwrap(),
    )
    .unwrap();
    let check = |name: &str| {
        manifest
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .clone()
    };
    let stories = check("story_counts_not_lower");
    assert!(!stories.passed);
    assert_eq!(stories.items.len(), 40, "every author lost stories");
    assert!(
        stories.items[0].contains("stories on 2026-11-27") && stories.items[0].contains("gone: "),
        "{:?}",
        stories.items[0]
    );
    let drift = check("row_drift");
    assert!(
        !drift.passed && drift.items.iter().any(|i| i.starts_with("posts:")),
        "{drift:?}"
    );
    assert!(check("unique_ids").passed && check("non_negative_counts").passed);
}

/// #15: `--followings-every 1` reads every following list in full on each incremental day,
/// while stories are still carried; without it, unchanged lists are carried and marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followings_every_forces_full_following_reads() {
    let carried_followings = |out: &Path, day: u32| {
        let authors = read_parquet(&out.join(format!("tables/date={}/authors.parquet", date(day))));
        crate::metrics::rows_by(&authors, "user_id")
            .into_values()
            .filter(|r| r["following_carried_from"] != "null")
            .count()
    };
    let forced = tempfile::tempdir().unwrap();
    run_day(forced.path(), 0, &["--incremental"]).await;
    run_day(
        forced.path(),
        1,
        &["--incremental", "--followings-every", "1"],
    )
    .await;
    assert_eq!(carried_followings(forced.path(), 1), 0);
    assert!(
        !carried_authors(forced.path(), 1).is_empty(),
        "stories still carried"
    );
    let plain = tempfile::tempdir().unwrap();
    run_day(plain.path(), 0, &["--incremental"]).await;
    run_day(plain.path(), 1, &["--incremental"]).await;
    // 4 of the 40 authors followed someone new on day 1: their lists are read in full
    assert_eq!(carried_followings(plain.path(), 1), 36);
}
