//! `etl schedule`: runs per date, skips finished dates, survives failed runs, stops cleanly.

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use medium_synth::SyntheticSpec;

use crate::support::*;

fn today() -> String {
    chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

fn schedule(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_etl"));
    c.arg("schedule")
        .args(args)
        .current_dir(repo())
        .env_remove("RUST_LOG");
    c
}

#[test]
fn runs_each_new_date_once_and_skips_a_finished_one() {
    let out = tempfile::tempdir().unwrap();
    let o = schedule(&[
        "--every",
        "1s",
        "--max-runs",
        "2",
        "--source",
        "data/sample",
        "--out",
        out.path().to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("ScheduledRunFinished") && err.contains("ScheduledRunSkipped"),
        "{err}"
    );
    assert!(out
        .path()
        .join(format!("reports/date={}/_manifest.json", today()))
        .exists());
}

#[test]
fn a_failed_run_does_not_stop_the_schedule() {
    let port = closed_port();
    let out = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let o = schedule(&[
        "--every",
        "1s",
        "--max-runs",
        "2",
        "--base-url",
        &base,
        "--retries",
        "0",
        "--out",
        out.path().to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("ScheduledRunFailed").count(), 2, "{err}");
    assert_eq!(o.status.code(), Some(4), "the last run's exit code");
}

#[test]
fn needs_a_schedule() {
    let o = schedule(&["--source", "data/sample"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--every or --at"));
    let o = schedule(&["--every", "soon"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

fn sigterm(pid: u32) {
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
}

#[test]
fn sigterm_while_waiting_exits_0() {
    let out = tempfile::tempdir().unwrap();
    let child = schedule(&[
        "--every",
        "1h",
        "--source",
        "data/sample",
        "--out",
        out.path().to_str().unwrap(),
    ])
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let manifest = out
        .path()
        .join(format!("reports/date={}/_manifest.json", today()));
    let started = Instant::now();
    while !manifest.exists() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    sigterm(child.id());
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("ScheduleStopped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_run_keeps_what_was_fetched_and_publishes_nothing_partial() {
    let spec = SyntheticSpec {
        authors: 60,
        stories_per_author: 30,
        ..SyntheticSpec::default()
    };
    let site = SyntheticSite::start(spec, Duration::from_millis(20)).await;
    let (medium, server, out) = (&site.medium, &site.server, &site.out);
    let child = schedule(&["--every", "1h", "--concurrency", "2"])
        .args(site.flags())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while server.stats.requests.load(Ordering::SeqCst) < 30
        && started.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sigterm(child.id());
    let stop_sent = Instant::now();
    let o = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        stop_sent.elapsed() < Duration::from_secs(5),
        "stopped promptly"
    );
    assert!(err.contains("ScheduledRunStopped"), "{err}");
    let requests = server.stats.requests.load(Ordering::SeqCst) as usize;
    assert!(
        requests < medium.expected_requests(),
        "stopped before the end ({requests})"
    );
    assert!(!out.path().join("reports").exists(), "nothing published");
    let kept = stored_pages(&out.path().join(format!("raw/date={}", today()))).len();
    assert!(
        kept >= 30 && kept <= requests,
        "{kept} pages kept of {requests} requests"
    );
}

/// #14: two writers of one date used to fail with "Directory not empty" or publish one run's
/// tables with the other's reports; now the second `etl run` exits 9 naming the holder, and
/// `etl schedule` waits for the lock, then runs.
#[test]
fn one_run_writes_a_date_at_a_time() {
    use medium_etl::lock::{DateLock, RunId};
    let out = tempfile::tempdir().unwrap();
    let id = RunId::new(chrono::Utc::now());
    let held = DateLock::acquire(out.path(), &today(), &id).unwrap();

    let o = etl_on_sample(out.path(), &["--date", &today()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(9), "{err}");
    assert!(err.contains("another run is writing date"), "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert!(err.contains(id.as_str()), "{err}");
    assert!(!out.path().join("tables").exists());
    assert!(
        !out.path().join("raw").exists(),
        "touched nothing of the date"
    );

    let child = schedule(&[
        "--every",
        "1h",
        "--max-runs",
        "1",
        "--source",
        "data/sample",
        "--out",
        out.path().to_str().unwrap(),
    ])
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let manifest = out
        .path()
        .join(format!("reports/date={}/_manifest.json", today()));
    assert!(!manifest.exists(), "waits while the date is locked");
    drop(held);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("WaitingForDateLock"), "{err}");
    assert!(manifest.exists());
}
