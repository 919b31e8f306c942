//! #16: sharded harvests (`etl run --shard K/N`) and `etl publish`.

use std::time::Duration;

use medium_etl::pipeline;
use medium_synth::SyntheticSpec;

use crate::incremental::published_date;
use crate::support::*;

fn spec() -> SyntheticSpec {
    SyntheticSpec {
        authors: 40,
        stories_per_author: 12,
        ..SyntheticSpec::default()
    }
}

/// 4 shards plus a publish give the tables and reports of one process, row for row; each
/// author is harvested by exactly one shard; the publish reads no network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_and_a_publish_give_the_tables_and_reports_of_one_run() {
    let site = SyntheticSite::start(spec(), Duration::from_millis(1)).await;
    let single = tempfile::tempdir().unwrap();
    let one = pipeline::run(&site.settings_into(single.path(), &[]))
        .await
        .unwrap();
    assert!(one.is_complete(), "{:?}", one.failures);
    let date = one.date.clone();

    let sharded = tempfile::tempdir().unwrap();
    let mut harvested = Vec::new();
    for k in 0..4 {
        let shard = format!("{k}/4");
        let s = site.settings_into(sharded.path(), &["--shard", &shard]);
        let o = pipeline::run(&s).await.unwrap();
        assert!(o.is_complete(), "shard {shard}: {:?}", o.failures);
        assert!(
            o.tables_dir.starts_with(
                sharded
                    .path()
                    .join(format!("shards/shard={k}-of-4/tables/date={date}"))
            ),
            "{}",
            o.tables_dir.display()
        );
        assert!(o.harvest.authors.len() < 40, "shard {shard} took a part");
        harvested.extend(o.harvest.authors.iter().map(|a| a.user.user_id.clone()));
    }
    harvested.sort();
    let mut all: Vec<String> = one
        .harvest
        .authors
        .iter()
        .map(|a| a.user.user_id.to_string())
        .collect();
    all.sort();
    assert_eq!(
        harvested, all,
        "every author harvested by exactly one shard"
    );
    assert!(
        !sharded.path().join(format!("reports/date={date}")).exists(),
        "nothing published yet"
    );

    // a publish asked for something else than the shards were is refused (usage)
    let other = site.settings_into(sharded.path(), &["--max-pages", "3"]);
    let err = medium_etl::shards::publish_settings(other, 4).unwrap_err();
    assert_eq!(medium_etl::exit_code(&err), 2, "{err}");
    assert!(err.to_string().contains("was asked for"), "{err}");
    // a shard being written (its lock held) holds the publish back (retry later)
    {
        let root = sharded.path().join("shards/shard=2-of-4");
        let _held = medium_etl::lock::DateLock::try_acquire(&root, &date)
            .unwrap()
            .unwrap();
        let err = medium_etl::shards::publish_settings(site.settings_into(sharded.path(), &[]), 4)
            .unwrap_err();
        assert_eq!(medium_etl::exit_code(&err), 11, "{err}");
        assert!(
            err.to_string().contains("shard 2/4 is being written"),
            "{err}"
        );
    }

    let requests = site.requests();
    let publish =
        medium_etl::shards::publish_settings(site.settings_into(sharded.path(), &[]), 4).unwrap();
    let published = pipeline::run(&publish.settings).await.unwrap();
    assert!(published.is_complete(), "{:?}", published.failures);
    let shards = published
        .manifest
        .shards
        .as_ref()
        .expect("a shards section");
    assert_eq!((shards.count, shards.runs.len()), (4, 4));
    assert_eq!(
        shards.requests_total,
        one.manifest.requests_total + 3 * publication_pages(&one)
    );
    assert_eq!(shards.runs.iter().map(|r| r.authors).sum::<usize>(), 40);
    assert_eq!(shards.runs[1].shard, "1/4");
    assert_eq!(
        site.requests(),
        requests,
        "the publish reads only the shards' raw stores"
    );
    let (a, b) = (
        published_date(single.path(), &date),
        published_date(sharded.path(), &date),
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    // publishing again copies no page twice into the date's own raw store
    drop(publish);
    let log = sharded.path().join(format!("raw/date={date}/pages.log"));
    let size = std::fs::metadata(&log).unwrap().len();
    let again =
        medium_etl::shards::publish_settings(site.settings_into(sharded.path(), &[]), 4).unwrap();
    assert!(pipeline::run(&again.settings).await.unwrap().is_complete());
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        size,
        "the page log did not grow"
    );
    for (name, text) in &a {
        assert!(
            text == &b[name],
            "{name} differs between one run and 4 shards + publish"
        );
    }
}

/// A publish before every shard has committed names the missing shards, exits 11 and
/// publishes nothing; a shard stopped part-way is re-run alone, fetches only the rest, and the
/// publish then succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_shard_is_rerun_alone_and_resumes_from_its_raw_store() {
    let site = SyntheticSite::start(spec(), Duration::from_millis(3)).await;
    let out = tempfile::tempdir().unwrap();
    for k in [0, 2, 3] {
        let s = site.settings_into(out.path(), &["--shard", &format!("{k}/4")]);
        assert!(pipeline::run(&s).await.unwrap().is_complete());
    }
    // shard 1 is stopped after a few of its requests
    let s = site.settings_into(out.path(), &["--shard", "1/4", "--concurrency", "2"]);
    let cancel = medium_etl::run::CancelFlag::default();
    let start = site.requests();
    let stopper = {
        let cancel = cancel.clone();
        let stats = site.server.stats.clone();
        tokio::spawn(async move {
            while stats.requests.load(std::sync::atomic::Ordering::SeqCst) < start + 25 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            cancel.cancel();
        })
    };
    let err = pipeline::run_until(&s, cancel).await.unwrap_err();
    stopper.await.unwrap();
    assert!(
        matches!(err, medium_etl::error::RunError::Cancelled),
        "{err}"
    );
    let fetched_before = site.requests() - start;

    let publish = || medium_etl::shards::publish_settings(site.settings_into(out.path(), &[]), 4);
    let err = publish().unwrap_err();
    assert_eq!(medium_etl::exit_code(&err), 11, "{err}");
    assert!(
        err.to_string().contains("shard(s) 1 have not committed"),
        "{err}"
    );
    let date = s.date.to_string();
    assert!(!out.path().join(format!("reports/date={date}")).exists());

    // the re-run of shard 1 alone asks only for what it had not fetched
    let before = site.requests();
    let o = pipeline::run(&s).await.unwrap();
    assert!(o.is_complete(), "{:?}", o.failures);
    let rest = site.requests() - before;
    let full = {
        let fresh = tempfile::tempdir().unwrap();
        let b = site.requests();
        pipeline::run(&site.settings_into(fresh.path(), &["--shard", "1/4"]))
            .await
            .unwrap();
        site.requests() - b
    };
    assert_eq!(
        fetched_before + rest,
        full,
        "kept {fetched_before} + fetched {rest} = {full}"
    );

    let publish = publish().unwrap();
    let published = pipeline::run(&publish.settings).await.unwrap();
    assert!(published.is_complete(), "{:?}", published.failures);
    assert_eq!(published.manifest.rows["authors"], 40);
}

/// `--shard` is checked: K/N with 0 <= K < N.
#[test]
fn a_malformed_shard_is_a_usage_error_naming_the_flag() {
    for bad in ["4/4", "1", "a/b", "0/0", "-1/3"] {
        let err = medium_etl::config::Shard::parse(bad).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("--shard") && text.contains(bad),
            "{bad}: {text}"
        );
    }
    let s = medium_etl::config::Shard::parse("3/8").unwrap();
    assert_eq!((s.index, s.count, s.to_string()), (3, 8, "3/8".to_owned()));
    // the assignment is fixed (FNV-1a, not a seeded hash): these ids land where they always have
    let of = medium_etl::config::shard_of;
    assert_eq!(
        (of("a1", 4), of("32262feb6e95", 4), of("user7", 7)),
        (3, 0, 2)
    );
    let spread: std::collections::BTreeSet<u32> = (0..100)
        .map(|i| medium_etl::config::shard_of(&format!("user{i}"), 4))
        .collect();
    assert_eq!(spread.len(), 4, "100 ids reach all 4 shards");
}

/// A shard's output root holds every date's, so a shard's incremental run carries from the
/// shard's own earlier date.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shards_incremental_run_carries_from_its_earlier_date() {
    let site = SyntheticSite::start(spec(), Duration::from_millis(1)).await;
    let out = tempfile::tempdir().unwrap();
    let day = |date: &str| {
        site.settings_into(
            out.path(),
            &["--shard", "1/2", "--incremental", "--date", date],
        )
    };
    let first = pipeline::run(&day("2026-11-27")).await.unwrap();
    assert_eq!(
        first.manifest.run_mode(),
        "full",
        "nothing to carry from yet"
    );
    let second = pipeline::run(&day("2026-11-28")).await.unwrap();
    assert!(second.is_complete(), "{:?}", second.failures);
    assert_eq!(second.manifest.run_mode(), "incremental");
    assert_eq!(
        second
            .manifest
            .incremental
            .as_ref()
            .map(|i| i.previous_date.as_str()),
        Some("2026-11-27")
    );
    // its pages continue on the earlier date's: a publish from such shards is refused
    let other = |date: &str| {
        site.settings_into(
            out.path(),
            &["--shard", "0/2", "--incremental", "--date", date],
        )
    };
    pipeline::run(&other("2026-11-27")).await.unwrap();
    pipeline::run(&other("2026-11-28")).await.unwrap();
    let publish = site.settings_into(out.path(), &["--date", "2026-11-28"]);
    let err = medium_etl::shards::publish_settings(publish, 2).unwrap_err();
    assert_eq!(medium_etl::exit_code(&err), 2, "{err}");
    assert!(err.to_string().contains("ran --incremental"), "{err}");
}

/// The requests a run made for the publication's stream (each shard reads it again).
fn publication_pages(o: &pipeline::RunOutcome) -> u64 {
    o.manifest.requests["publication_stream"].requests
}
