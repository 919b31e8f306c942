//! Progress you can see while a run works: indicatif bars on a terminal, a `HarvestProgressed`
//! log line every few seconds otherwise, and a live status file (`<out>/_status.json`) that
//! `etl serve` shows as the current run.
//!
//! The harvest only bumps counters ([`FetchStats`]); a reporter task reads them on a timer, so
//! no request waits on drawing. The status file is typed both ways ([`StatusSnapshot`],
//! [`read_status`]).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use medium_api::endpoints::Endpoint;
use serde::{Deserialize, Serialize};

use crate::layout::STATUS_FILE;
use crate::run::FetchStats;

/// What the reporter shows, shared with the run.
#[derive(Debug, Default)]
pub struct Progress {
    pub stats: Arc<FetchStats>,
    /// Rows written to the tables so far.
    pub rows_written: AtomicU64,
    stage: Mutex<Stage>,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Fetching pages.
    #[default]
    Harvest,
    /// Normalizing, aggregating and writing the partitions.
    Publish,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Harvest => "harvest",
            Stage::Publish => "publish",
        })
    }
}

/// Whether the run of a status file is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Finished,
}

/// A snapshot, as written to `_status.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    pub state: RunState,
    pub date: String,
    pub stage: Stage,
    pub started_at: String,
    pub updated_at: String,
    pub elapsed_secs: f64,
    pub publication_pages: u64,
    pub authors_found: u64,
    pub authors_done: u64,
    pub profile_pages: u64,
    pub following_pages: u64,
    pub requests: u64,
    pub retried: u64,
    pub failed: u64,
    pub rows_written: u64,
}

impl Progress {
    pub fn new(stats: Arc<FetchStats>) -> Self {
        Progress {
            stats,
            rows_written: AtomicU64::new(0),
            stage: Mutex::new(Stage::Harvest),
        }
    }

    pub fn set_stage(&self, stage: Stage) {
        if let Ok(mut s) = self.stage.lock() {
            *s = stage;
        }
    }

    pub fn stage(&self) -> Stage {
        self.stage.lock().map(|s| *s).unwrap_or_default()
    }

    /// Counts rows written to the tables and reports.
    pub fn rows_written(&self, rows: usize) {
        self.rows_written.fetch_add(rows as u64, Ordering::Relaxed);
    }

    fn snapshot(&self, state: RunState, date: &str, started: &Started) -> StatusSnapshot {
        let s = &self.stats;
        let totals = s.totals();
        StatusSnapshot {
            state,
            date: date.to_owned(),
            stage: self.stage(),
            started_at: started.at.clone(),
            updated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            elapsed_secs: started.instant.elapsed().as_secs_f64(),
            publication_pages: s.pages_done(Endpoint::PublicationStream),
            authors_found: s.authors_found(),
            authors_done: s.authors_done(),
            profile_pages: s.pages_done(Endpoint::ProfileStream),
            following_pages: s.pages_done(Endpoint::Following),
            requests: totals.requests,
            retried: totals.retried,
            failed: totals.failed,
            rows_written: self.rows_written.load(Ordering::Relaxed),
        }
    }
}

struct Started {
    at: String,
    instant: Instant,
}

/// The running reporter; [`Reporter::finish`] stops it and clears the bars.
pub struct Reporter {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The live status file under the output root `out`, when there is a readable one.
pub fn read_status(out: &std::path::Path) -> Option<StatusSnapshot> {
    let bytes = std::fs::read(out.join(STATUS_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl Reporter {
    /// Starts reporting. Bars are drawn only when `bars` is set and stderr is a terminal;
    /// otherwise a log line every `log_every`. The status file is rewritten every second.
    /// The status file is `<out>/_status.json`.
    pub fn start(
        progress: Arc<Progress>,
        date: String,
        out: &std::path::Path,
        bars: bool,
        log_every: Duration,
    ) -> Reporter {
        let status_file: PathBuf = out.join(STATUS_FILE);
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let bars = bars && std::io::stderr().is_terminal();
        let task = tokio::spawn(async move {
            let started = Started {
                at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                instant: Instant::now(),
            };
            let view = bars.then(Bars::new);
            let mut last_log = Instant::now();
            let mut last_status = Instant::now() - Duration::from_secs(60);
            loop {
                let snap = progress.snapshot(RunState::Running, &date, &started);
                if let Some(v) = &view {
                    v.update(&snap);
                } else if last_log.elapsed() >= log_every {
                    last_log = Instant::now();
                    tracing::info!(
                        stage = %snap.stage,
                        authors_done = snap.authors_done,
                        authors_found = snap.authors_found,
                        profile_pages = snap.profile_pages,
                        following_pages = snap.following_pages,
                        requests = snap.requests,
                        retried = snap.retried,
                        "HarvestProgressed"
                    );
                }
                if last_status.elapsed() >= Duration::from_secs(1) {
                    last_status = Instant::now();
                    write_status(&status_file, &snap);
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stopped.changed() => break,
                }
            }
            let snap = progress.snapshot(RunState::Finished, &date, &started);
            write_status(&status_file, &snap);
            if let Some(v) = view {
                v.finish();
            }
        });
        Reporter { stop, task }
    }

    pub async fn finish(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn write_status(path: &std::path::Path, snap: &StatusSnapshot) {
    if let Ok(json) = serde_json::to_vec_pretty(snap) {
        // best effort: a status file that cannot be written must not fail the run
        let _ = crate::atomic_file::write_atomic(path, &json, false);
    }
}

struct Bars {
    multi: MultiProgress,
    publication: ProgressBar,
    authors: ProgressBar,
    profile: ProgressBar,
    following: ProgressBar,
    rows: ProgressBar,
}

impl Bars {
    fn new() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let counter = |label: &str| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner}} {label:<18} {{pos:>8}}  {{msg:>9}}  {{elapsed}}"
                ))
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        };
        let publication = counter("publication pages");
        let authors = multi.add(ProgressBar::new(0));
        authors.set_style(
            ProgressStyle::with_template(
                "  authors            {pos:>8}/{len:<8} {msg:>9}  eta {eta}  {wide_bar}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let profile = counter("story pages");
        let following = counter("following pages");
        let rows = counter("rows written");
        Bars {
            multi,
            publication,
            authors,
            profile,
            following,
            rows,
        }
    }

    fn update(&self, s: &StatusSnapshot) {
        self.publication.set_position(s.publication_pages);
        self.authors.set_length(s.authors_found);
        self.authors.set_position(s.authors_done);
        self.profile.set_position(s.profile_pages);
        self.following.set_position(s.following_pages);
        self.rows.set_position(s.rows_written);
        for bar in [
            &self.publication,
            &self.profile,
            &self.following,
            &self.rows,
        ] {
            bar.tick();
        }
    }

    fn finish(self) {
        for bar in [
            &self.publication,
            &self.authors,
            &self.profile,
            &self.following,
            &self.rows,
        ] {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}
