//! One writer per date: an exclusive lock per output root and date, and the run id that names
//! what a run writes.
//!
//! A run holds `<out>/.locks/date=YYYY-MM-DD.lock` (an advisory `flock`, via
//! [`std::fs::File::try_lock`]) from before it touches the date's raw store until its partitions
//! are published. A second `etl run` for the same root and date exits at once with
//! [`crate::error::exit::LOCKED`] and the holder's pid and run id; `etl schedule` waits for the
//! lock instead ([`DateLock::wait`]). The kernel releases the lock when the holder exits, however
//! it exits (kill -9 included), so there is no stale lock to clean up: the lock file itself stays
//! and is reused.
//!
//! Holding the lock is also what makes a date's staging leftovers safe to recover or remove
//! ([`crate::sinks::partition`]): nobody else can be writing them.

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::LockError;
use crate::layout::{lock_path, locks_dir};
use crate::run::CancelFlag;

/// The id of one run: when it started, its process and a random part
/// (`20261201T133157Z-4242-9f3c`). Recorded in the manifest, in every Parquet file's metadata
/// (key [`RUN_ID_KEY`]) and in the lock file, so a reader can tell which run wrote what.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId(String);

/// The Parquet key-value metadata key that holds the run id.
pub const RUN_ID_KEY: &str = "medium_etl.run_id";

impl RunId {
    /// A fresh id for a run starting at `started_at`.
    pub fn new(started_at: DateTime<Utc>) -> RunId {
        RunId(format!(
            "{}-{}-{:04x}",
            started_at.format("%Y%m%dT%H%M%SZ"),
            std::process::id(),
            fastrand::u16(..)
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The lock on one output root and date, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DateLock {
    file: File,
    path: PathBuf,
    date: String,
}

impl DateLock {
    /// Takes the lock for `date` under `out`, or says who holds it. A holder that lets go
    /// within about a second (another run's sweep of leftovers) is waited for.
    pub fn acquire(out: &Path, date: &str, run_id: &RunId) -> Result<DateLock, LockError> {
        for attempt in 0..=10 {
            if let Some(mut lock) = DateLock::try_acquire(out, date)? {
                lock.record_holder(&format!("run {run_id}"))?;
                return Ok(lock);
            }
            if attempt < 10 {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Err(LockError::Busy {
            path: lock_path(out, date),
            date: date.to_owned(),
            holder: holder(&lock_path(out, date)),
        })
    }

    /// [`DateLock::try_acquire`] for another date's leftovers, saying so in the lock file.
    pub fn try_acquire_to_sweep(out: &Path, date: &str) -> Result<Option<DateLock>, LockError> {
        let Some(mut lock) = DateLock::try_acquire(out, date)? else {
            return Ok(None);
        };
        lock.record_holder("sweeping a dead run's leftovers")?;
        Ok(Some(lock))
    }

    /// Takes the lock for `date` if nobody holds it (`None` if somebody does). Used by the
    /// staging sweep, which must not touch a date another run is writing.
    pub fn try_acquire(out: &Path, date: &str) -> Result<Option<DateLock>, LockError> {
        let dir = locks_dir(out);
        fs::create_dir_all(&dir).map_err(|e| LockError::io(&dir, e))?;
        let path = lock_path(out, date);
        // never through a symlink (a planted link would have the holder line written over its
        // target), and only a regular file
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(|e| LockError::io(&path, e))?;
        let is_file = file.metadata().map(|m| m.is_file());
        if !is_file.map_err(|e| LockError::io(&path, e))? {
            return Err(LockError::io(
                &path,
                std::io::Error::other("not a regular file"),
            ));
        }
        match file.try_lock() {
            Ok(()) => Ok(Some(DateLock {
                file,
                path,
                date: date.to_owned(),
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(LockError::io(&path, e)),
        }
    }

    /// Waits for the lock (checking every `poll`), unless `cancel` is set first (then `None`).
    /// `etl schedule` uses this: a manual run of the same date finishes first.
    pub async fn wait(
        out: &Path,
        date: &str,
        run_id: &RunId,
        poll: Duration,
        cancel: &CancelFlag,
    ) -> Result<Option<DateLock>, LockError> {
        let mut announced = false;
        loop {
            match DateLock::acquire(out, date, run_id) {
                Ok(lock) => return Ok(Some(lock)),
                Err(LockError::Busy { holder, .. }) => {
                    if !announced {
                        tracing::info!(date, holder = %holder, "WaitingForDateLock");
                        announced = true;
                    }
                }
                Err(e) => return Err(e),
            }
            if cancel.is_cancelled() {
                return Ok(None);
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// The date this lock is for.
    pub fn date(&self) -> &str {
        &self.date
    }

    /// Writes who holds the lock into the lock file, for the message a second run prints.
    fn record_holder(&mut self, what: &str) -> Result<(), LockError> {
        let line = format!(
            "pid {} {} since {}\n",
            std::process::id(),
            what,
            Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        let write = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            file.write_all(line.as_bytes())
        };
        write(&mut self.file).map_err(|e| LockError::io(&self.path, e))
    }
}

/// What the lock file says about its holder (`unknown` if it cannot be read).
fn holder(path: &Path) -> String {
    let mut text = String::new();
    let read = File::open(path).and_then(|f| f.take(512).read_to_string(&mut text));
    match read {
        Ok(_) if !text.trim().is_empty() => text.trim().to_owned(),
        _ => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_per_root_and_date_until_dropped() {
        let out = tempfile::tempdir().unwrap();
        let id = RunId::new(Utc::now());
        let first = DateLock::acquire(out.path(), "2026-12-01", &id).unwrap();
        let err = DateLock::acquire(out.path(), "2026-12-01", &id).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("2026-12-01"), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains(id.as_str()), "{text}");
        // another date is free
        let _other = DateLock::acquire(out.path(), "2026-12-02", &id).unwrap();
        assert!(DateLock::try_acquire(out.path(), "2026-12-01")
            .unwrap()
            .is_none());
        drop(first);
        assert!(DateLock::try_acquire(out.path(), "2026-12-01")
            .unwrap()
            .is_some());
    }

    #[test]
    fn a_symlinked_lock_file_is_refused_and_its_target_untouched() {
        let out = tempfile::tempdir().unwrap();
        let victim = out.path().join("victim.txt");
        fs::write(&victim, b"keep me").unwrap();
        fs::create_dir_all(locks_dir(out.path())).unwrap();
        std::os::unix::fs::symlink(&victim, lock_path(out.path(), "2026-12-01")).unwrap();
        let id = RunId::new(Utc::now());
        assert!(DateLock::acquire(out.path(), "2026-12-01", &id).is_err());
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
    }

    #[test]
    fn run_ids_differ_and_name_their_start() {
        let t = DateTime::parse_from_rfc3339("2026-12-01T13:31:57Z")
            .unwrap()
            .with_timezone(&Utc);
        let ids: std::collections::HashSet<_> = (0..64).map(|_| RunId::new(t)).collect();
        assert!(ids.len() > 60);
        assert!(ids
            .iter()
            .all(|id| id.as_str().starts_with("20261201T133157Z-")));
    }
}
