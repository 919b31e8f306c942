//! `etl schedule`: the job on a timer, in one process (in place of the old pipeline's sleeping
//! container and central scheduler).
//!
//! Invariants: runs never overlap (one loop, one run at a time), and a run waits for its date's
//! lock (a manual `etl run` of that date finishes first, and completeness is checked after);
//! each run is for the UTC date
//! of its start, and a date whose reports are already published complete is skipped, so a
//! restart or a short interval never redoes a finished day; `--at` started after today's time
//! runs at once (a missed run catches up, as with anacron); a failed run is logged and the
//! schedule goes on; a stop signal lets in-flight requests finish and be stored, publishes
//! nothing half-done, and ends the loop with exit code 0.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::config::{RunDate, Schedule, Settings};
use crate::error::{exit, exit_code, RunError};
use crate::lock::{DateLock, RunId};
use crate::pipeline;
use crate::run::CancelFlag;
use crate::sinks::manifest::read_published;

/// How often a scheduled run that found its date locked checks the lock again.
const LOCK_POLL: Duration = Duration::from_millis(500);

/// When the next run starts, given the previous start (if any).
pub fn next_start(
    schedule: Schedule,
    now: DateTime<Utc>,
    last_start: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    match schedule {
        Schedule::Every(interval) => match last_start {
            None => now,
            Some(last) => {
                let next =
                    last + chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX);
                next.max(now)
            }
        },
        Schedule::At(time) => {
            let today = now.date_naive().and_time(time).and_utc();
            // started after today's time (a restart, a machine that was off): catch up now,
            // as anacron does; the run skips the date if it is complete already
            if last_start.is_none() && today < now {
                return now;
            }
            let after_last = |t: DateTime<Utc>| last_start.is_none_or(|l| t > l);
            if today >= now && after_last(today) {
                today
            } else {
                today + chrono::Duration::days(1)
            }
        }
    }
}

/// Whether `date`'s reports are published and complete: nothing failed (streams cut by
/// `--max-pages` are as complete as that setting allows; running again would cut them the
/// same way). A manifest that cannot be read is reported and counts as not complete (the date
/// is run again).
pub fn date_is_complete(settings: &Settings, date: &str) -> bool {
    match read_published(&settings.out, date) {
        Ok(manifest) => manifest.is_some_and(|m| m.complete || m.failures.is_empty()),
        Err(e) => {
            tracing::warn!(date, error = %e, "ManifestUnreadable");
            false
        }
    }
}

/// Runs the schedule until `stop` is set (then exit 0) or `max_runs` runs have started (then
/// the exit code of the last run).
pub async fn run_schedule(
    settings: Settings,
    schedule: Schedule,
    max_runs: Option<u32>,
    stop: CancelFlag,
    stopped: Arc<Notify>,
) -> u8 {
    tracing::info!(schedule = %schedule, out = %settings.out.display(), "ScheduleStarted");
    let mut last_start = None;
    let mut runs = 0u32;
    loop {
        let now = Utc::now();
        let start = next_start(schedule, now, last_start);
        let wait = (start - now).to_std().unwrap_or(Duration::ZERO);
        if !wait.is_zero() {
            tracing::info!(next_run = %start.to_rfc3339(), "RunScheduled");
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.notified() => {}
        }
        if stop.is_cancelled() {
            break;
        }
        last_start = Some(Utc::now());
        runs += 1;
        let date = RunDate(Utc::now().date_naive());
        let date_text = date.to_string();
        // the date's lock first: a manual `etl run` of the same date finishes before this one
        // starts (and may leave nothing to do)
        let run_id = RunId::new(Utc::now());
        let lock = match DateLock::wait(&settings.out, &date_text, &run_id, LOCK_POLL, &stop).await
        {
            Ok(Some(lock)) => lock,
            Ok(None) => break,
            Err(e) => {
                tracing::error!(date = %date_text, error = %e, "ScheduledRunFailed");
                if max_runs.is_some_and(|m| runs >= m) {
                    return exit_code(&RunError::Locked(e));
                }
                continue;
            }
        };
        // a run of this date killed while publishing is finished before completeness is judged
        if let Err(e) = crate::sinks::partition::recover_date(&settings.out, &lock) {
            tracing::error!(date = %date_text, error = %e, "ScheduledRunFailed");
        }
        // with a lake, the lake says whether the date is done (unreachable: it is not)
        let in_lake = match &settings.lake {
            None => true,
            Some(lake) => {
                let published = match crate::lake::Lake::open(lake) {
                    Ok(lake) => {
                        crate::lake::sync::pull_published(&lake, &settings.out, &date_text).await
                    }
                    Err(e) => Err(e),
                };
                published.unwrap_or_else(|e| {
                    tracing::warn!(date = %date_text, error = %e, "LakeUnreachable");
                    false
                })
            }
        };
        let last_code = if in_lake && date_is_complete(&settings, &date_text) {
            tracing::info!(date = %date_text, "ScheduledRunSkipped");
            exit::OK
        } else {
            let run_settings = Settings {
                date,
                ..settings.clone()
            };
            match pipeline::run_locked(&run_settings, stop.clone(), lock, run_id).await {
                Ok(outcome) if outcome.is_complete() => {
                    tracing::info!(date = %date_text, secs = outcome.duration.as_secs_f64(), "ScheduledRunFinished");
                    exit::OK
                }
                Ok(outcome) => {
                    tracing::warn!(date = %date_text, failures = outcome.failures.len(), "ScheduledRunIncomplete");
                    exit::PARTIAL
                }
                Err(RunError::Cancelled) => {
                    tracing::info!(date = %date_text, "ScheduledRunStopped");
                    break;
                }
                Err(e) => {
                    tracing::error!(date = %date_text, error = %e, "ScheduledRunFailed");
                    exit_code(&e)
                }
            }
        };
        if stop.is_cancelled() {
            break;
        }
        if max_runs.is_some_and(|m| runs >= m) {
            return last_code;
        }
    }
    tracing::info!(runs, "ScheduleStopped");
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn every_runs_now_then_each_interval_after_the_last_start() {
        let every = Schedule::Every(Duration::from_secs(3600));
        let now = t("2026-11-27T10:00:00Z");
        assert_eq!(next_start(every, now, None), now);
        assert_eq!(
            next_start(every, now, Some(t("2026-11-27T09:30:00Z"))),
            t("2026-11-27T10:30:00Z")
        );
        // a run that took longer than the interval: the next starts right away, never overlapping
        assert_eq!(next_start(every, now, Some(t("2026-11-27T08:00:00Z"))), now);
    }

    #[test]
    fn at_runs_daily_at_the_time_utc() {
        let at = Schedule::At(chrono::NaiveTime::from_hms_opt(2, 0, 0).unwrap());
        assert_eq!(
            next_start(at, t("2026-11-27T01:00:00Z"), None),
            t("2026-11-27T02:00:00Z")
        );
        // #14: started after today's time, it catches up at once (it used to wait for
        // tomorrow, so today's date was never produced)
        assert_eq!(
            next_start(at, t("2026-11-27T03:00:00Z"), None),
            t("2026-11-27T03:00:00Z")
        );
        // and after that run, tomorrow at the time
        assert_eq!(
            next_start(
                at,
                t("2026-11-27T03:05:00Z"),
                Some(t("2026-11-27T03:00:00Z"))
            ),
            t("2026-11-28T02:00:00Z")
        );
        assert_eq!(
            next_start(
                at,
                t("2026-11-27T02:00:00Z"),
                Some(t("2026-11-27T02:00:00Z"))
            ),
            t("2026-11-28T02:00:00Z")
        );
    }
}
