//! Faults and kills: a server that fails in every way Medium does, authors that never answer,
//! a process killed at any point, an output root that cannot be written. The promise: nothing
//! fetched is lost, nothing half-written is visible, and the numbers equal a clean day's.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use medium_etl::pipeline;
use medium_synth::{Faults, SyntheticMedium, SyntheticSpec};

use crate::metrics::{read_parquet, rows_by};
use crate::support::*;

fn spec(authors: usize) -> SyntheticSpec {
    SyntheticSpec {
        authors,
        stories_per_author: 8,
        followings_per_author: 10,
        loop_back_every: 7,
        ..SyntheticSpec::default()
    }
}

/// The date's reports and tables as comparable text: the report CSVs, and every table read
/// back from Parquet.
fn outputs(out: &Path) -> (Vec<String>, Vec<arrow::array::RecordBatch>) {
    let mut csvs = Vec::new();
    for name in ["author_metrics.csv", "publication_summary.csv"] {
        let p = out.join("reports/date=2026-11-27").join(name);
        csvs.push(std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())));
    }
    let tables = ["authors", "posts", "followings", "publications"]
        .iter()
        .map(|t| {
            crate::metrics::read_parquet(&out.join(format!("tables/date=2026-11-27/{t}.parquet")))
        })
        .collect();
    (csvs, tables)
}

async fn clean_run(spec: SyntheticSpec) -> tempfile::TempDir {
    let site = SyntheticSite::start(spec, Duration::ZERO).await;
    site.run_complete(&[]).await;
    site.out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_faults_at_50_rps_give_the_clean_report_value_for_value() {
    let clean = clean_run(spec(100)).await;
    let faults = Faults {
        seed: 7,
        rate: 0.10,
        stall: Duration::from_millis(1500),
        ..Faults::default()
    };
    let site = SyntheticSite::with_faults(spec(100), Duration::from_millis(2), faults).await;
    let (medium, server, out) = (&site.medium, &site.server, &site.out);
    let o = site
        .run_complete(&[
            "--max-rps",
            "50",
            "--concurrency",
            "8",
            "--timeout",
            "0.5",
            "--retries",
            "8",
            "--backoff",
            "0.02",
            "--max-backoff",
            "1",
        ])
        .await;
    let injected = server.stats.faults.load(Ordering::SeqCst);
    assert!(injected >= 10, "faults were injected ({injected})");
    let m = &o.manifest;
    assert!(
        m.retried_total > 0 && m.retried_total <= injected,
        "retried {} of {injected} faults",
        m.retried_total
    );
    assert!(m.requests_total as usize >= medium.expected_requests() + m.retried_total as usize);
    assert_eq!(outputs(out.path()), outputs(clean.path()));
    // the cursors that point back ended their streams without another request
    let loops = o
        .harvest
        .authors
        .iter()
        .filter(|a| {
            a.profile.end.as_ref().ok()
                == Some(&medium_etl::sources::medium::paging::StreamEnd::NoNewItems)
        })
        .count();
    assert!(loops > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_author_that_always_fails_is_named_and_a_healed_rerun_fetches_only_it() {
    let clean = clean_run(spec(20)).await;
    let broken = SyntheticMedium::new(spec(20)).user_id(5);
    let faults = Faults {
        always_fail: HashSet::from([broken.clone()]),
        ..Faults::default()
    };
    let site = SyntheticSite::with_faults(spec(20), Duration::ZERO, faults).await;
    let out = &site.out;
    let o = pipeline::run(&site.settings(&["--retries", "1"]))
        .await
        .unwrap();
    assert_eq!(o.failures.len(), 2, "{:?}", o.failures);
    for f in &o.failures {
        assert_eq!(f.user_id.as_deref(), Some(broken.as_str()));
        assert!(
            f.url.contains(&format!("/_/api/users/{broken}/")),
            "{}",
            f.url
        );
    }
    assert_eq!(
        o.harvest.authors.iter().filter(|a| a.is_complete()).count(),
        19
    );
    assert_eq!(o.manifest.authors.incomplete, vec![broken.clone()]);
    // published anyway, with the author flagged
    let csv = std::fs::read_to_string(
        out.path()
            .join("reports/date=2026-11-27/author_metrics.csv"),
    )
    .unwrap();
    let row = csv.lines().find(|l| l.starts_with(&broken)).unwrap();
    assert!(row.ends_with(",false"), "{row}");

    // healed: only the broken author's pages are requested
    let healed = SyntheticSite::start(spec(20), Duration::ZERO).await;
    let o = pipeline::run(&healed.settings_into(out.path(), &[]))
        .await
        .unwrap();
    assert!(o.is_complete(), "{:?}", o.failures);
    let own_pages = healed
        .medium
        .pages()
        .iter()
        .filter(|p| p.stream.key() == broken)
        .count() as u64;
    assert_eq!(healed.requests(), own_pages);
    assert_eq!(outputs(out.path()), outputs(clean.path()));
}

/// Every partition under tables/ and reports/ is whole: it has its manifest, and every file
/// the manifest lists has the recorded size.
fn assert_nothing_partial(out: &Path) {
    for kind in ["tables", "reports"] {
        let Ok(entries) = std::fs::read_dir(out.join(kind)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                name.starts_with("date="),
                "{kind}/{name} is not a partition"
            );
        }
    }
    let reports = out.join("reports/date=2026-11-27");
    let tables = out.join("tables/date=2026-11-27");
    if !reports.exists() {
        return;
    }
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(reports.join("_manifest.json"))
            .expect("a published report has its manifest"),
    )
    .unwrap();
    for f in manifest["files"].as_array().unwrap() {
        let p = out.join(f["path"].as_str().unwrap());
        assert_eq!(
            std::fs::metadata(&p).map(|m| m.len()).ok(),
            f["bytes"].as_u64(),
            "{}",
            p.display()
        );
    }
    assert!(tables.exists(), "reports are published after tables");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_any_point_leaves_nothing_partial_and_a_rerun_completes() {
    let spec = SyntheticSpec {
        authors: 40,
        stories_per_author: 30,
        followings_per_author: 10,
        ..SyntheticSpec::default()
    };
    let clean = clean_run(spec).await;
    let total = SyntheticMedium::new(spec).expected_requests() as u64;
    // kill after N requests, and after the last request with delays that land in normalize,
    // aggregate and publish
    let points: Vec<(u64, u64)> = vec![
        (1, 0),
        (10, 0),
        (total / 2, 0),
        (total, 0),
        (total, 15),
        (total, 40),
        (total, 80),
        (total, 150),
        (total, 300),
        (total, 1500),
    ];
    for (after, delay_ms) in points {
        let site = SyntheticSite::start(spec, Duration::from_millis(2)).await;
        let (server, out) = (&site.server, &site.out);
        let mut child = Command::new(env!("CARGO_BIN_EXE_etl"))
            .args(["run", "--date", "2026-11-27", "-q"])
            .args(site.flags())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while server.stats.requests.load(Ordering::SeqCst) < after
            && started.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert_nothing_partial(out.path());
        // a page counts as stored once its record is whole (a torn last one is not)
        let stored = stored_pages(&out.path().join("raw/date=2026-11-27")).len() as u64;
        // A request the killed process wrote just before it died can reach the server's
        // counter after the kill (under load, the server reads its socket later): wait until
        // the count is quiet, so the re-run is not charged for it.
        let mut sent_before = server.stats.requests.load(Ordering::SeqCst);
        let quiet_since = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = server.stats.requests.load(Ordering::SeqCst);
            if now == sent_before || quiet_since.elapsed() > Duration::from_secs(5) {
                break;
            }
            sent_before = now;
        }
        let staged = std::fs::read_dir(out.path().join(".staging"))
            .map(|d| d.count())
            .unwrap_or(0);
        eprintln!(
            "killed after {after} requests + {delay_ms} ms: {stored} pages stored, staging areas {staged}, tables {}, reports {}",
            out.path().join("tables/date=2026-11-27").exists(),
            out.path().join("reports/date=2026-11-27").exists()
        );

        let o = pipeline::run(&site.settings(&[])).await.unwrap();
        assert!(
            o.is_complete(),
            "after a kill at {after}+{delay_ms}ms: {:?}",
            o.failures
        );
        let sent = server.stats.requests.load(Ordering::SeqCst) - sent_before;
        assert_eq!(
            sent,
            total - stored,
            "after {after}+{delay_ms}ms: the re-run fetches only the pages not stored"
        );
        assert_eq!(
            outputs(out.path()),
            outputs(clean.path()),
            "after a kill at {after}+{delay_ms}ms"
        );
        let staging = out.path().join(".staging");
        assert!(!staging.exists() || std::fs::read_dir(&staging).unwrap().next().is_none());
    }
}

fn etl(args: &[&str]) -> std::process::Output {
    crate::support::etl(args, &repo())
}

#[test]
fn an_output_root_that_is_a_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let o = etl(&[
        "run",
        "--source",
        "data/sample",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(6));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not-a-dir"), "{err}");
}

#[test]
fn publishing_into_an_unwritable_tables_dir_keeps_the_raw_store() {
    let out = tempfile::tempdir().unwrap();
    // tables/ is a file: publishing must fail, naming it, after the raw store was written
    std::fs::write(out.path().join("tables"), b"in the way").unwrap();
    let o = etl_on_sample(out.path(), &[]);
    assert_eq!(o.status.code(), Some(6));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("tables"), "{err}");
    assert_eq!(
        stored_pages(&out.path().join("raw/date=2026-11-27")).len(),
        40,
        "the raw store is intact"
    );
    assert!(!out.path().join("reports").exists());
    assert!(
        !out.path().join(".staging").exists()
            || std::fs::read_dir(out.path().join(".staging"))
                .unwrap()
                .next()
                .is_none()
    );
}

/// A full disk: a small tmpfs (needs root; skipped elsewhere) is filled up after a first run;
/// the re-run cannot publish, says where, and loses neither the raw store nor the published date.
#[test]
fn a_full_disk_is_a_clear_error_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&mnt);
    let out = mnt.join("data");
    let o = etl_on_sample(&out, &["-q"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let raw_before = stored_pages(&out.join("raw/date=2026-11-27"));
    let report_before =
        std::fs::read(out.join("reports/date=2026-11-27/author_metrics.csv")).unwrap();
    // fill the disk
    let mut filler = std::fs::File::create(mnt.join("filler")).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
    drop(filler);
    let o = etl_on_sample(&out, &["-q"]);
    assert_eq!(o.status.code(), Some(6));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(out.to_str().unwrap()) && err.contains("No space left"),
        "{err}"
    );
    let raw_after = stored_pages(&out.join("raw/date=2026-11-27"));
    assert_eq!(raw_after, raw_before, "the raw store is intact");
    assert_eq!(
        std::fs::read(out.join("reports/date=2026-11-27/author_metrics.csv")).unwrap(),
        report_before,
        "the published date is intact"
    );
}

/// #14: a page over `--max-body-mb` fails its stream, naming the URL; nothing of it is stored,
/// and the other authors are harvested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_page_is_not_stored() {
    let spec = SyntheticSpec {
        authors: 4,
        ..SyntheticSpec::default()
    };
    let victim = SyntheticMedium::new(spec).user_id(1);
    let path = format!("/_/api/users/{victim}/profile/stream?");
    let faults = Faults {
        answer: medium_synth::Answer::new(move |key, _| {
            (key == path).then(|| (200, bytes::Bytes::from(vec![b'x'; 3 << 20])))
        }),
        ..Faults::default()
    };
    let site = SyntheticSite::with_faults(spec, Duration::ZERO, faults).await;
    let o = pipeline::run(&site.settings(&["--via", "json", "--max-body-mb", "1"]))
        .await
        .unwrap();
    assert_eq!(o.failures.len(), 1, "{:?}", o.failures);
    assert!(
        o.failures[0].error.contains("larger than 1 MiB"),
        "{:?}",
        o.failures
    );
    let stored: Vec<_> = stored_pages(&site.out.path().join("raw/date=2026-11-27"))
        .into_iter()
        .map(|p| p.name)
        .filter(|n| n.starts_with(&format!("users/{victim}/profile_stream/")))
        .collect();
    assert!(stored.is_empty(), "{stored:?}");
    assert_eq!(
        o.harvest
            .authors
            .iter()
            .filter(|a| a.profile.is_complete())
            .count(),
        3
    );
}

/// #14: values out of range or malformed are one bad cell, not a lost page or date: a
/// `firstPublishedAt` of i64::MAX (it panicked the CSV writer), claps of i64::MAX (their sum
/// wrapped), a `wordCount` of 12.5 (it failed the page), a negative image count. Each is null,
/// listed in the manifest with its post and column; the page's other values are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_values_are_null_and_listed() {
    let spec = SyntheticSpec {
        authors: 3,
        stories_per_author: 4,
        ..SyntheticSpec::default()
    };
    let medium = SyntheticMedium::new(spec);
    let victim = medium.user_id(1);
    let path = format!("/_/api/users/{victim}/profile/stream");
    let page = medium.respond(&path, "").unwrap();
    let mut json: serde_json::Value =
        serde_json::from_slice(&page[medium_etl::sources::medium::guard::XSSI_GUARD.len()..])
            .unwrap();
    let posts = json["payload"]["references"]["Post"]
        .as_object_mut()
        .unwrap();
    let ids: Vec<String> = posts.keys().cloned().collect();
    posts[&ids[0]]["firstPublishedAt"] = serde_json::json!(i64::MAX);
    posts[&ids[0]]["virtuals"]["totalClapCount"] = serde_json::json!(i64::MAX);
    posts[&ids[1]]["virtuals"]["totalClapCount"] = serde_json::json!(i64::MAX);
    posts[&ids[2]]["virtuals"]["wordCount"] = serde_json::json!(12.5);
    posts[&ids[3]]["virtuals"]["imageCount"] = serde_json::json!(-3);
    let body = format!("{GUARD}{json}");
    let key = format!("{path}?");
    let faults = Faults {
        answer: medium_synth::Answer::new(move |k, _| {
            (k == key).then(|| (200, bytes::Bytes::from(body.clone())))
        }),
        ..Faults::default()
    };
    let site = SyntheticSite::with_faults(spec, Duration::ZERO, faults).await;
    let o = site.run_complete(&["--via", "json"]).await;
    let rejected: Vec<(String, String, String)> = o
        .manifest
        .rejected_values
        .iter()
        .map(|r| (r.id.clone(), r.column.clone(), r.value.clone()))
        .collect();
    let want = |i: usize, col: &str, v: &str| (ids[i].clone(), col.to_owned(), v.to_owned());
    for w in [
        want(0, "first_published_at", &i64::MAX.to_string()),
        want(0, "total_clap_count", &i64::MAX.to_string()),
        want(1, "total_clap_count", &i64::MAX.to_string()),
        want(2, "word_count", "malformed"),
        want(3, "image_count", "-3"),
    ] {
        assert!(rejected.contains(&w), "{w:?} not in {rejected:?}");
    }
    let posts = rows_by(
        &read_parquet(&site.out.path().join("tables/date=2026-11-27/posts.parquet")),
        "post_id",
    );
    assert_eq!(posts[&ids[0]]["first_published_at"], "null");
    assert_eq!(posts[&ids[2]]["word_count"], "null");
    assert_ne!(
        posts[&ids[2]]["total_clap_count"], "null",
        "the rest of the post is kept"
    );
    let metrics = rows_by(
        &read_parquet(
            &site
                .out
                .path()
                .join("reports/date=2026-11-27/author_metrics.parquet"),
        ),
        "user_id",
    );
    let total: i64 = metrics[&victim]["total_claps"].parse().unwrap();
    assert!(total >= 0, "no wrap: {total}");
    assert!(site
        .out
        .path()
        .join("reports/date=2026-11-27/author_metrics.csv")
        .exists());
}

/// #14: a host that allows 40 requests/s, an uncapped client, one retry: every 429 pauses
/// the whole host and lowers the pace instead of using up the retry, so every author is read,
/// exactly; the manifest says how often the host throttled and where the pace settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limited_host_slows_the_client_instead_of_failing_it() {
    let spec = SyntheticSpec {
        authors: 30,
        ..SyntheticSpec::default()
    };
    let plain = SyntheticSite::start(spec, Duration::ZERO).await;
    plain.run_complete(&[]).await;
    let faults = Faults {
        rate_limit: Some(40.0),
        ..Faults::default()
    };
    let site = SyntheticSite::with_faults(spec, Duration::ZERO, faults).await;
    let o = site
        .run_complete(&["--max-rps", "0", "--concurrency", "16", "--retries", "1"])
        .await;
    assert!(o.manifest.throttled_total > 0, "the host throttled");
    assert_eq!(o.manifest.failed_total, 0);
    let settled = o.manifest.settled_rps.expect("a settled pace");
    assert!(settled > 0.0 && settled < 100.0, "{settled}");
    let report = |out: &Path| {
        rows_by(
            &read_parquet(&out.join("reports/date=2026-11-27/author_metrics.parquet")),
            "user_id",
        )
    };
    assert_eq!(report(plain.out.path()), report(site.out.path()));
}

/// #14's adversarial server, as one piece: a 50 requests/s host with 5 % faults, an uncapped
/// client, and four attacked authors (a streamed body four times the cap, a gzip bomb, arrays
/// nested 100,000 deep, values out of range). Each attack costs its stream or its values, named
/// with the URL or the post; nothing oversized is stored; every other author is exact; the run
/// publishes and exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hostile_server_costs_the_attacked_streams_never_the_run() {
    let clean = clean_run(spec(20)).await;
    let faults = Faults {
        seed: 11,
        rate: 0.05,
        rate_limit: Some(50.0),
        hostile: Some(std::sync::Arc::new(medium_synth::Hostile::standard(
            16 << 20,
        ))),
        ..Faults::default()
    };
    let site = SyntheticSite::with_faults(spec(20), Duration::ZERO, faults).await;
    let m = &site.medium;
    let o = pipeline::run(&site.settings(&["--max-rps", "1000", "--max-body-mb", "4"]))
        .await
        .expect("publishes despite the attacks");

    let failed: Vec<(String, String)> = o
        .failures
        .iter()
        .map(|f| (f.user_id.clone().unwrap_or_default(), f.error.clone()))
        .collect();
    let failed_for = |a: usize| -> Vec<&String> {
        failed
            .iter()
            .filter(|(u, _)| *u == m.user_id(a))
            .map(|(_, e)| e)
            .collect()
    };
    let too_large = |a: usize, stream: &str| {
        let errors = failed_for(a);
        assert!(
            errors.iter().any(|e| e.contains("4 MiB")
                && e.contains(&format!("/_/api/users/{}/{stream}", m.user_id(a)))),
            "author {a}: {errors:?}"
        );
    };
    too_large(1, "profile/stream");
    too_large(2, "following");
    assert_eq!(
        failed.len(),
        2 + failed_for(3).len(),
        "only the attacked fail: {failed:?}"
    );
    assert!(
        o.manifest
            .rejected_values
            .iter()
            .filter(|r| r.column == "total_clap_count" || r.column == "word_count")
            .count()
            >= 3,
        "{:?}",
        o.manifest.rejected_values
    );
    // nothing oversized was stored
    for a in [1, 2] {
        let big = stored_pages(&site.out.path().join("raw/date=2026-11-27"))
            .into_iter()
            .filter(|p| p.name.starts_with(&format!("users/{}/", m.user_id(a))))
            .filter(|p| p.body.len() > 1 << 20)
            .count();
        assert_eq!(big, 0, "author {a}");
    }
    // every author not attacked is exact
    let rows = |out: &Path| {
        rows_by(
            &read_parquet(&out.join("reports/date=2026-11-27/author_metrics.parquet")),
            "user_id",
        )
    };
    let (want, got) = (rows(clean.path()), rows(site.out.path()));
    // the deep page is read without recursing on it (serde_json skips what it ignores with a
    // stack of its own): no stories, or a failed stream, never a crash
    let deep = &got[&m.user_id(3)];
    assert!(
        deep["story_count"] == "0" || !failed_for(3).is_empty(),
        "{deep:?}"
    );
    for a in (0..20).filter(|a| !(1..=4).contains(a)) {
        let id = m.user_id(a);
        assert_eq!(got[&id], want[&id], "author {a}");
    }
}
