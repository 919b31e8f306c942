//! The real `etl` binary: the README's quick start, bad input and exit codes.

use std::process::{Command, Output};

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

#[test]
fn the_quick_start_runs_on_the_bundled_sample_without_network() {
    let out = tempfile::tempdir().unwrap();
    let sample = repo().join("data/sample");
    let args = [
        "run",
        "--date",
        "2026-11-27",
        "--source",
        sample.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--base-url",
        "http://127.0.0.1:9",
    ];
    let o = etl(&args, &repo());
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let raw = out.path().join("raw/date=2026-11-27");
    assert_eq!(stored_pages(&raw).len(), 40);
    // the real publication page is kept byte for byte
    assert_eq!(
        stored_page(&raw, "collections/7f60cf5620c9/stream/page-0001.json").body,
        fixture("collection_stream.json")
    );
    let summary = text(&o.stdout);
    assert!(summary.contains("authors: 10 found"), "{summary}");
    // replaying the run's own raw store gives the same pages
    let again = tempfile::tempdir().unwrap();
    let o = etl(
        &[
            "run",
            "--date",
            "2026-11-28",
            "--source",
            raw.to_str().unwrap(),
            "--out",
            again.path().to_str().unwrap(),
            "-q",
        ],
        &repo(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        stored_pages(&again.path().join("raw/date=2026-11-28")).len(),
        40
    );
}

#[test]
fn an_invalid_date_is_one_line_exit_2_and_writes_nothing() {
    let out = tempfile::tempdir().unwrap();
    for bad in ["2026-02-30", "tomorrow"] {
        let o = etl(
            &[
                "run",
                "--date",
                bad,
                "--out",
                "o",
                "--source",
                "data/sample",
            ],
            out.path(),
        );
        assert_eq!(o.status.code(), Some(2));
        let err = text(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(bad), "{err}");
        assert!(!out.path().join("o").exists());
    }
}

#[test]
fn a_source_that_cannot_answer_names_the_missing_file() {
    let empty = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = etl(
        &[
            "run",
            "--date",
            "2026-11-27",
            "--source",
            empty.path().to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ],
        &repo(),
    );
    assert_eq!(o.status.code(), Some(6));
    let err = text(&o.stderr);
    assert!(
        err.contains("collections/7f60cf5620c9/stream/page-0001.json"),
        "{err}"
    );
    let o = etl(
        &[
            "run",
            "--source",
            "/nonexistent/dir",
            "--out",
            out.path().to_str().unwrap(),
        ],
        &repo(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("/nonexistent/dir"));
}

async fn run_against(server: &MockServer, extra: &[&str]) -> (Output, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let uri = server.uri();
    let mut args = vec![
        "run",
        "--date",
        "2026-11-27",
        "--base-url",
        &uri,
        "--retries",
        "1",
        "--backoff",
        "0.01",
        "--max-rps",
        "0",
    ];
    let out_s = out.path().to_str().unwrap().to_owned();
    args.extend_from_slice(&["--out", &out_s]);
    args.extend_from_slice(extra);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let cwd = repo();
    let o = tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        etl(&a, &cwd)
    })
    .await
    .unwrap();
    (o, out)
}

/// #14: `--source B` on a date holding pages from elsewhere published the old pages while the
/// manifest claimed B. Now the run refuses (exit 2, naming both), and `--refresh` reads B.
#[test]
fn a_date_holding_pages_from_elsewhere_is_not_replayed_as_another_source() {
    let out = tempfile::tempdir().unwrap();
    let o = etl_on_sample(out.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // B: the same pages at another path, one author's claps changed
    let b = tempfile::tempdir().unwrap();
    let copy = Command::new("cp")
        .args(["-r", "data/sample/.", b.path().to_str().unwrap()])
        .current_dir(repo())
        .status()
        .unwrap();
    assert!(copy.success());
    let manifest = out.path().join("reports/date=2026-11-27/_manifest.json");
    let before = std::fs::read(&manifest).unwrap();

    let o = etl_on_sample(out.path(), &["--source", b.path().to_str().unwrap()]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("data/sample") && err.contains(b.path().to_str().unwrap()),
        "{err}"
    );
    assert!(err.contains("--refresh"), "{err}");
    assert_eq!(
        std::fs::read(&manifest).unwrap(),
        before,
        "nothing published"
    );
    // nor the network over pages replayed from a directory
    let o = etl(
        &[
            "run",
            "--date",
            "2026-11-27",
            "--out",
            out.path().to_str().unwrap(),
            "--base-url",
            "http://127.0.0.1:9",
        ],
        &repo(),
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("the network"), "{err}");

    let o = etl_on_sample(
        out.path(),
        &["--source", b.path().to_str().unwrap(), "--refresh"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    assert_eq!(m["settings"]["source"], b.path().to_str().unwrap());
    // and from then on the date is B's: replaying B needs no --refresh
    let o = etl_on_sample(out.path(), &["--source", b.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    // a --refresh that did not finish (killed, or a stream failed) leaves older pages behind:
    // only another --refresh may use the store
    let origin = out.path().join("raw/date=2026-11-27/_origin.json");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&origin).unwrap()).unwrap();
    assert_eq!(record["refreshing"], false);
    record["refreshing"] = serde_json::json!(true);
    std::fs::write(&origin, record.to_string()).unwrap();
    let o = etl_on_sample(out.path(), &["--source", b.path().to_str().unwrap()]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("did not finish"), "{err}");
    // and a store from before origins were recorded is of unknown origin
    std::fs::remove_file(&origin).unwrap();
    let o = etl_on_sample(out.path(), &["--source", b.path().to_str().unwrap()]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown origin"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_collection_exits_3_naming_the_url() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let (o, _out) = run_against(&server, &["--collection-id", "deadbeef0000"]).await;
    assert_eq!(o.status.code(), Some(3));
    let err = text(&o.stderr);
    assert!(
        err.contains("/_/api/collections/deadbeef0000/stream") && err.contains("404"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_publication_page_exits_5() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>challenge</html>"))
        .mount(&server)
        .await;
    let (o, _out) = run_against(&server, &[]).await;
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("HTML"));
}

#[test]
fn an_unreachable_host_exits_4() {
    let port = closed_port();
    let out = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let o = etl(
        &[
            "run",
            "--base-url",
            &base,
            "--out",
            out.path().to_str().unwrap(),
            "--retries",
            "0",
        ],
        &repo(),
    );
    assert_eq!(o.status.code(), Some(4));
    let err = text(&o.stderr);
    assert!(err.contains(&base) && err.contains("connect"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_author_exits_1_and_the_summary_names_the_url() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/_/api/users/a3/following"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    small_publication(&server).await;
    let (o, out) = run_against(&server, &["--collection-id", "c0ffee"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(stdout.contains("/_/api/users/a3/following"), "{stdout}");
    assert!(stdout.contains("user a3"), "{stdout}");
    // what was fetched is kept
    assert_eq!(
        stored_pages(&out.path().join("raw/date=2026-11-27")).len(),
        2 + 9 - 1
    );
}

#[test]
fn etl_config_shows_each_value_and_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("etl.toml"),
        "concurrency = 3\nout = \"elsewhere\"\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_etl"))
        .args(["config", "--max-rps", "2"])
        .current_dir(dir.path())
        .env("ETL_RETRIES", "6")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for want in [
        "concurrency = 3",
        "# file etl.toml",
        "max_rps = 2.0",
        "# flag",
        "retries = 6",
        "# env ETL_RETRIES",
        "timeout = 30.0",
        "# default",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
}

#[test]
fn the_example_config_is_valid() {
    let o = etl(&["config", "--config", "etl.example.toml"], &repo());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("schedule = daily at 02:00 UTC"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn a_malformed_config_is_one_line_and_exit_7() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    for body in [
        "concurrency = \"eight\"\n",
        "colection_ids = [\"x\"]\n",
        "concurrency = \n",
    ] {
        std::fs::write(&file, body).unwrap();
        let o = etl(
            &[
                "run",
                "--config",
                file.to_str().unwrap(),
                "--source",
                "data/sample",
                "--out",
                dir.path().join("o").to_str().unwrap(),
            ],
            &repo(),
        );
        assert_eq!(o.status.code(), Some(7), "{body}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("bad.toml"), "{err}");
        assert!(!dir.path().join("o").exists());
    }
}

/// Progress: without a terminal, a `HarvestProgressed` line every 5 s; on a terminal (a pty
/// made by `script`), bars with the stage counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_shows_as_log_lines_without_a_terminal_and_as_bars_on_one() {
    let spec = medium_synth::SyntheticSpec {
        authors: 12,
        stories_per_author: 25,
        ..medium_synth::SyntheticSpec::default()
    };
    let site = SyntheticSite::start(spec, std::time::Duration::from_millis(110)).await;
    let mut args: Vec<String> = vec!["run".into(), "--concurrency".into(), "1".into()];
    args.extend(site.flags());
    let piped = {
        let args = args.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_etl"))
                .args(&args)
                .env_remove("RUST_LOG")
                .output()
                .unwrap()
        })
    }
    .await
    .unwrap();
    assert_eq!(piped.status.code(), Some(0), "{}", text(&piped.stderr));
    let err = text(&piped.stderr);
    assert!(
        err.contains("HarvestProgressed") && err.contains("authors_done="),
        "{err}"
    );
    assert!(!err.contains("story pages"), "no bars without a terminal");

    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.out.path().join("_status.json")).unwrap())
            .unwrap();
    assert_eq!(status["state"], "finished");
    assert_eq!(status["authors_done"], 12);

    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped the terminal half: no `script` here");
        return;
    }
    let line = format!(
        "{} {} --refresh --max-authors 3",
        env!("CARGO_BIN_EXE_etl"),
        args.join(" ")
    );
    let tty = tokio::task::spawn_blocking(move || {
        Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let screen = text(&tty.stdout);
    assert_eq!(tty.status.code(), Some(0), "{screen}");
    for label in [
        "publication pages",
        "authors",
        "story pages",
        "following pages",
        "rows written",
        "eta",
    ] {
        assert!(screen.contains(label), "{label:?} not drawn:\n{screen}");
    }
    let quiet = {
        let line = format!(
            "{} {} --refresh --quiet --max-authors 1",
            env!("CARGO_BIN_EXE_etl"),
            args.join(" ")
        );
        tokio::task::spawn_blocking(move || {
            Command::new("script")
                .args(["-qec", &line, "/dev/null"])
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    assert!(
        !text(&quiet.stdout).contains("story pages"),
        "--quiet hides the bars"
    );
}

/// #15: `etl rebuild` on the quick start's output: the same reports, no network; a date with
/// no raw store is exit 6 naming the record it needs.
#[test]
fn etl_rebuild_derives_a_date_again_and_names_what_is_missing() {
    let out = tempfile::tempdir().unwrap();
    let o = etl_on_sample(out.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let csv = out
        .path()
        .join("reports/date=2026-11-27/author_metrics.csv");
    let before = std::fs::read(&csv).unwrap();
    let dir = out.path().to_str().unwrap();
    let o = etl(&["rebuild", "--date", "2026-11-27", "--out", dir], &repo());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("rebuilt 2026-11-27"));
    assert_eq!(std::fs::read(&csv).unwrap(), before);
    let o = etl(&["rebuild", "--date", "2026-11-28", "--out", dir], &repo());
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(6), "{err}");
    assert!(err.contains("raw/date=2026-11-28/_harvest.json"), "{err}");
    let o = etl(&["rebuild", "--out", dir], &repo());
    assert_eq!(o.status.code(), Some(2), "needs --date or --from/--to");
}

#[test]
fn a_run_on_one_thread_or_on_n_workers_and_a_bad_worker_count_is_a_config_error() {
    let sample = repo().join("data/sample");
    for threads in [None, Some("2")] {
        let out = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_etl"));
        cmd.args(["run", "--date", "2026-11-27", "-q", "--source"])
            .arg(&sample)
            .arg("--out")
            .arg(out.path());
        if let Some(n) = threads {
            cmd.env("TOKIO_WORKER_THREADS", n);
        }
        let o = cmd.output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{threads:?}: {}", text(&o.stderr));
        assert!(out
            .path()
            .join("reports/date=2026-11-27/author_metrics.csv")
            .exists());
    }
    for bad in ["0", "many", "", "-1"] {
        let out = tempfile::tempdir().unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_etl"))
            .args(["run", "--date", "2026-11-27", "-q", "--source"])
            .arg(&sample)
            .arg("--out")
            .arg(out.path())
            .env("TOKIO_WORKER_THREADS", bad)
            .output()
            .unwrap();
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(7), "{bad:?}: {err}");
        assert!(err.contains("TOKIO_WORKER_THREADS"), "{bad:?}: {err}");
        assert!(!err.contains("panicked"), "{bad:?}: {err}");
        assert!(!out.path().join("reports").exists(), "{bad:?}");
    }
}
