//! #16: the lake: `--table-format delta` in a local directory, through the same object-store
//! code as `s3://` (which `scripts/check_lake.sh` runs against an S3 server and three Delta
//! readers in CI).

use std::path::Path;
use std::time::Duration;

use medium_etl::lake::delta::DeltaTable;
use medium_etl::lake::{Lake, LakeSettings};
use medium_etl::pipeline;
use medium_etl::run::CancelFlag;
use medium_synth::SyntheticSpec;

use crate::support::*;

fn spec() -> SyntheticSpec {
    SyntheticSpec {
        authors: 30,
        stories_per_author: 10,
        ..SyntheticSpec::default()
    }
}

fn lake_at(dir: &Path) -> Lake {
    Lake::open(&LakeSettings {
        url: url::Url::from_directory_path(std::fs::canonicalize(dir).unwrap()).unwrap(),
        options: vec![],
        upload_every: Duration::from_secs(5),
        lease_ttl: Duration::from_secs(120),
    })
    .unwrap()
}

/// A cancel flag that is set `after` from now (a run stopped mid-harvest).
fn stopped_after(after: Duration) -> CancelFlag {
    let cancel = CancelFlag::default();
    let stopper = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        stopper.cancel();
    });
    cancel
}

/// The rows of a Parquet file, as Arrow batches concatenated.
fn parquet_rows(path: &Path) -> arrow::record_batch::RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// Every table and report is a Delta table of the date; a second run of the date replaces it
/// in one commit a table; the first run's version can still be read (time travel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_output_replaces_its_date_in_one_commit_a_table_and_keeps_history() {
    let site = SyntheticSite::start(spec(), Duration::from_millis(1)).await;
    let out = tempfile::tempdir().unwrap();
    let settings = site.settings_into(out.path(), &["--table-format", "delta"]);
    assert!(
        settings.out.ends_with(".work"),
        "{}",
        settings.out.display()
    );
    let first = pipeline::run(&settings).await.unwrap();
    assert!(first.is_complete(), "{:?}", first.failures);
    let date = first.date.clone();
    let committed = first.lake.clone().expect("published to the lake");
    assert_eq!(committed.versions.len(), 7, "{committed:?}");
    assert!(committed.versions.values().all(|v| *v == 0));
    let lake = lake_at(out.path());
    for table in committed.versions.keys() {
        let snapshot = DeltaTable::new(&lake, table).snapshot(None).await.unwrap();
        let files = snapshot.files_of(&date);
        assert_eq!(files.len(), 1, "{table}");
        // the Delta file holds the rows of the run's own Parquet file
        let (kind, name) = table.split_once('/').unwrap();
        let local = settings
            .out
            .join(format!("{kind}/date={date}/{name}.parquet"));
        assert_eq!(
            parquet_rows(&out.path().join(table).join(&files[0].path)),
            parquet_rows(&local),
            "{table}"
        );
    }
    // the manifest and the CSV reports are published beside the tables
    let manifest = out
        .path()
        .join(format!("published/date={date}/_manifest.json"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    assert_eq!(manifest["lake"]["versions"]["tables/authors"], 0);
    // the manifest names every file where it is in the lake
    for file in manifest["files"].as_array().unwrap() {
        let path = file["path"].as_str().unwrap();
        assert!(out.path().join(path).is_file(), "the manifest names {path}");
    }
    assert!(out
        .path()
        .join(format!("published/date={date}/author_metrics.csv"))
        .is_file());

    let second = pipeline::run(&settings).await.unwrap();
    let versions = &second.lake.as_ref().unwrap().versions;
    assert!(versions.values().all(|v| *v == 1), "{versions:?}");
    let authors = DeltaTable::new(&lake, "tables/authors");
    let now = authors.snapshot(None).await.unwrap();
    let then = authors.snapshot(Some(0)).await.unwrap();
    let (now, then) = (
        now.files_of(&date)[0].clone(),
        then.files_of(&date)[0].clone(),
    );
    assert_ne!(now.path, then.path, "the date was replaced by a new file");
    assert!(out.path().join("tables/authors").join(&then.path).is_file());
    assert_eq!(
        parquet_rows(&out.path().join("tables/authors").join(&then.path)),
        parquet_rows(&out.path().join("tables/authors").join(&now.path)),
        "the same pages, the same rows"
    );
}

/// A work directory is a cache: a fresh one resumes the date from the lake's raw store (no
/// request), and the next date compares with the previous one pulled from the lake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_work_directory_is_rebuilt_from_the_lake() {
    let site = SyntheticSite::start(spec(), Duration::from_millis(1)).await;
    let out = tempfile::tempdir().unwrap();
    let work = |name: &str| out.path().join(name).to_string_lossy().into_owned();
    let run = |date: &str, w: &str| {
        site.settings_into(
            out.path(),
            &["--table-format", "delta", "--date", date, "--work-dir", w],
        )
    };
    let first = pipeline::run(&run("2026-11-27", &work("w1")))
        .await
        .unwrap();
    assert!(first.is_complete(), "{:?}", first.failures);
    let requests = site.requests();
    std::fs::remove_dir_all(out.path().join("w1")).unwrap();

    let again = pipeline::run(&run("2026-11-27", &work("w2")))
        .await
        .unwrap();
    assert!(again.is_complete(), "{:?}", again.failures);
    assert_eq!(site.requests(), requests, "every page came from the lake");
    assert_eq!(
        std::fs::read(again.reports_dir.join("author_metrics.csv")).unwrap(),
        std::fs::read(
            out.path()
                .join("published/date=2026-11-27/author_metrics.csv")
        )
        .unwrap()
    );

    let next = pipeline::run(&run("2026-11-28", &work("w3")))
        .await
        .unwrap();
    assert!(next.is_complete(), "{:?}", next.failures);
    let changes = parquet_rows(&next.reports_dir.join("author_changes.parquet"));
    let previous = changes
        .column_by_name("previous_date")
        .expect("author_changes has previous_date");
    assert_eq!(
        previous.null_count(),
        0,
        "every author compared with the previous date, pulled from the lake"
    );
}

/// A run stopped mid-harvest has put its pages in the lake: a fresh work directory fetches
/// only the rest. A live lease of the date keeps a second writer out (exit 9).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_resumes_elsewhere_and_a_held_date_is_refused() {
    let site = SyntheticSite::start(spec(), Duration::from_millis(40)).await;
    let reference = tempfile::tempdir().unwrap();
    pipeline::run(&site.settings_into(reference.path(), &[]))
        .await
        .unwrap();
    let full = site.requests();

    let out = tempfile::tempdir().unwrap();
    let w1 = out.path().join("w1").to_string_lossy().into_owned();
    let settings = site.settings_into(
        out.path(),
        &[
            "--table-format",
            "delta",
            "--work-dir",
            &w1,
            "--concurrency",
            "2",
        ],
    );
    let cancel = stopped_after(Duration::from_millis(400));
    let before = site.requests();
    let err = pipeline::run_until(&settings, cancel).await.unwrap_err();
    assert!(matches!(err, medium_etl::RunError::Cancelled), "{err}");
    let fetched = site.requests() - before;
    assert!(fetched > 0 && fetched < full, "{fetched} of {full}");
    let segments = std::fs::read_dir(out.path().join("raw/date=2026-11-27/pages"))
        .unwrap()
        .count();
    assert!(segments >= 1, "the stopped run's pages are in the lake");
    assert!(!out.path().join("published").exists(), "nothing published");

    // a date another writer holds
    let lake = lake_at(out.path());
    let held = medium_etl::lake::lease::Lease::acquire(
        &lake,
        "2026-11-27",
        "someone-else",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let w2 = out.path().join("w2").to_string_lossy().into_owned();
    let resume = site.settings_into(out.path(), &["--table-format", "delta", "--work-dir", &w2]);
    let err = pipeline::run(&resume).await.unwrap_err();
    assert_eq!(medium_etl::exit_code(&err), 9, "{err}");
    assert!(err.to_string().contains("someone-else"), "{err}");
    held.release().await.unwrap();

    let before = site.requests();
    let resumed = pipeline::run(&resume).await.unwrap();
    assert!(resumed.is_complete(), "{:?}", resumed.failures);
    let rest = site.requests() - before;
    assert!(
        rest < full && rest + fetched >= full,
        "the fresh work directory fetched {rest}, the stopped run {fetched}, of {full}"
    );
    assert_eq!(
        std::fs::read(resumed.reports_dir.join("author_metrics.csv")).unwrap(),
        std::fs::read(
            reference
                .path()
                .join("reports/date=2026-11-27/author_metrics.csv")
        )
        .unwrap()
    );
}

/// Writers racing on one local Delta table (different dates) all commit: create-only log
/// entries on the local file system (a hard link), the losers retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_commits_on_the_local_file_system_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_at(dir.path());
    let data = dir.path().join("data.parquet");
    std::fs::write(&data, b"rows").unwrap();
    let schema = arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
        "user_id",
        arrow::datatypes::DataType::Utf8,
        false,
    )]);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (lake, data, schema) = (lake.clone(), data.clone(), schema.clone());
        tasks.push(tokio::spawn(async move {
            DeltaTable::new(&lake, "tables/t")
                .replace_date(
                    &format!("2026-12-0{}", i + 1),
                    &data,
                    &schema,
                    1,
                    &format!("w{i}"),
                )
                .await
                .unwrap()
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap().version);
    }
    versions.sort_unstable();
    assert_eq!(versions, (0..8).collect::<Vec<u64>>());
    let snapshot = DeltaTable::new(&lake, "tables/t")
        .snapshot(None)
        .await
        .unwrap();
    assert_eq!(snapshot.dates().len(), 8);
}

/// `--out s3://…` is a lake with Delta tables; hive Parquet there is refused (no rename);
/// a shard's part of the lake is under shards/.
#[test]
fn object_storage_settings() {
    let s = settings("http://127.0.0.1:1", Path::new("s3://bucket/prefix"), &[]);
    let lake = s.lake.clone().expect("a lake");
    assert_eq!(lake.url.as_str(), "s3://bucket/prefix");
    assert_eq!(s.table_format, medium_etl::lake::TableFormat::Delta);
    assert!(
        s.out.ends_with("medium-etl/s3/bucket/prefix"),
        "{}",
        s.out.display()
    );
    let sharded = settings(
        "http://127.0.0.1:1",
        Path::new("s3://bucket/prefix"),
        &["--shard", "1/4", "--work-dir", "/tmp/w"],
    );
    assert_eq!(
        sharded.lake.unwrap().url.as_str(),
        "s3://bucket/prefix/shards/shard=1-of-4"
    );
    assert_eq!(sharded.out, Path::new("/tmp/w/shards/shard=1-of-4"));

    let parse = |out: &str, extra: &[&str]| {
        let mut args = vec!["etl", "run", "--out", out];
        args.extend_from_slice(extra);
        let medium_etl::cli::Command::Run(run) =
            <medium_etl::cli::Cli as clap::Parser>::try_parse_from(args)
                .unwrap()
                .command
        else {
            panic!("expected run")
        };
        medium_etl::Settings::from_args(&run)
    };
    let err = parse("s3://bucket/p", &["--table-format", "parquet"]).unwrap_err();
    assert!(err.to_string().contains("no rename"), "{err}");
    assert!(parse("memory:///x", &[]).is_err());
    assert!(parse("s3://bucket/p", &["--upload-every", "0.01"]).is_err());
    assert!(parse("s3://bucket/p", &["--lease-secs", "0"]).is_err());
    let local = parse("data", &["--table-format", "delta"]).unwrap();
    assert_eq!(local.out, Path::new("data/.work"));
    assert!(local.lake.unwrap().url.as_str().starts_with("file:///"));
}

/// A machine whose killed run left pages the lake lacks, pulling after another machine
/// finished the date, ends with the log every other machine pulls: the lake's order, byte for
/// byte (else a position both hold could be answered differently on each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_machine_reads_a_date_s_pages_in_the_lake_s_order() {
    let site = SyntheticSite::start(spec(), Duration::from_millis(40)).await;
    let out = tempfile::tempdir().unwrap();
    let w = |name: &str| out.path().join(name);
    let settings = |work: &Path| {
        let work = work.to_string_lossy().into_owned();
        site.settings_into(
            out.path(),
            &[
                "--table-format",
                "delta",
                "--work-dir",
                &work,
                "--concurrency",
                "2",
            ],
        )
    };
    let cancel = stopped_after(Duration::from_millis(400));
    let err = pipeline::run_until(&settings(&w("a")), cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, medium_etl::RunError::Cancelled), "{err}");
    // as if its last uploads had been lost with the machine: the lake lacks the log's tail
    let store = w("a/raw/date=2026-11-27");
    let sync_file = store.join(medium_etl::lake::sync::SYNC_FILE);
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sync_file).unwrap()).unwrap();
    let end = state["synced_to"].as_u64().unwrap();
    let log = std::fs::read(store.join("pages.log")).unwrap();
    // the start of a record about half-way, where a flush could have ended
    let half = (end / 2) as usize;
    let cut = half
        + log[half..]
            .windows(7)
            .position(|w| w == b"\n@page ")
            .unwrap()
        + 1;
    state["synced_to"] = serde_json::json!(cut);
    std::fs::write(&sync_file, serde_json::to_vec(&state).unwrap()).unwrap();

    // another machine finishes the date
    let done = pipeline::run(&settings(&w("b"))).await.unwrap();
    assert!(done.is_complete(), "{:?}", done.failures);
    let lake = lake_at(out.path());
    medium_etl::lake::sync::pull(&lake, &w("a"), "2026-11-27", false)
        .await
        .unwrap();
    medium_etl::lake::sync::pull(&lake, &w("c"), "2026-11-27", false)
        .await
        .unwrap();
    let a = std::fs::read(w("a/raw/date=2026-11-27/pages.log")).unwrap();
    let c = std::fs::read(w("c/raw/date=2026-11-27/pages.log")).unwrap();
    assert!(
        a == c,
        "machine a's log ({} bytes) is not the lake's ({} bytes)",
        a.len(),
        c.len()
    );
    let kept = std::fs::read_dir(&store)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("pages.log.before-pull-")
        })
        .count();
    assert_eq!(kept, 1, "the old log is kept beside the rebuilt one");
}

/// `etl rebuild` of a local Delta output whose work directory is gone: the date's raw store
/// comes back from the lake, and the date is committed anew, with the same reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_s_date_is_rebuilt_from_its_raw_store_in_the_lake() {
    let site = SyntheticSite::start(spec(), Duration::from_millis(1)).await;
    let out = tempfile::tempdir().unwrap();
    let first = pipeline::run(&site.settings_into(out.path(), &["--table-format", "delta"]))
        .await
        .unwrap();
    assert!(first.is_complete(), "{:?}", first.failures);
    let csv = out
        .path()
        .join("published/date=2026-11-27/author_metrics.csv");
    let before = std::fs::read(&csv).unwrap();
    std::fs::remove_dir_all(out.path().join(".work")).unwrap();
    let requests = site.requests();
    let lake = out.path().to_string_lossy().into_owned();
    let done = etl(
        &["rebuild", "--date", "2026-11-27", "--out", &lake, "--quiet"],
        out.path(),
    );
    assert!(done.status.success(), "{}", text(&done.stderr));
    assert_eq!(site.requests(), requests, "no network");
    assert_eq!(std::fs::read(&csv).unwrap(), before);
    let snapshot = DeltaTable::new(&lake_at(out.path()), "tables/authors")
        .snapshot(None)
        .await
        .unwrap();
    assert_eq!(
        snapshot.version,
        Some(1),
        "the rebuild committed the date anew"
    );
    assert_eq!(snapshot.files_of("2026-11-27").len(), 1);
}
