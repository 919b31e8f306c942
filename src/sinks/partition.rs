//! Building a date's partitions in `<out>/.staging/` and publishing them by rename.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::SinkError;

/// The partition kinds, in publish order: tables first, then reports (whose manifest says the
/// date is finished).
pub const KINDS: [&str; 2] = ["tables", "reports"];

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A date's partitions under construction.
#[derive(Debug)]
pub struct Staging {
    out: PathBuf,
    date: String,
    root: PathBuf,
    published: bool,
}

/// `<out>/<kind>/date=<date>`.
pub fn partition_dir(out: &Path, kind: &str, date: &str) -> PathBuf {
    out.join(kind).join(format!("date={date}"))
}

impl Staging {
    /// Creates an empty staging area for `date` under `<out>/.staging/`, after sweeping the
    /// leftovers of runs that were killed.
    pub fn create(out: &Path, date: &str) -> Result<Staging, SinkError> {
        let staging = out.join(".staging");
        sweep_dead(&staging);
        let root = staging.join(format!(
            "date={date}.{}.{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        for kind in KINDS {
            let dir = root.join(kind);
            fs::create_dir_all(&dir).map_err(|e| SinkError::io(&dir, e))?;
        }
        Ok(Staging {
            out: out.to_path_buf(),
            date: date.to_owned(),
            root,
            published: false,
        })
    }

    /// Where a kind's files are written before publishing.
    pub fn dir(&self, kind: &str) -> PathBuf {
        self.root.join(kind)
    }

    /// Where a kind's files will be once published.
    pub fn final_dir(&self, kind: &str) -> PathBuf {
        partition_dir(&self.out, kind, &self.date)
    }

    /// Moves every kind's partition into place, replacing the date's previous one whole.
    pub fn publish(mut self) -> Result<(), SinkError> {
        for kind in KINDS {
            let parent = self.out.join(kind);
            fs::create_dir_all(&parent).map_err(|e| SinkError::io(&parent, e))?;
            let target = self.final_dir(kind);
            let staged = self.dir(kind);
            if target.exists() {
                // rename cannot replace a non-empty directory: move the old one aside first
                let old = self.root.join(format!("{kind}.replaced"));
                fs::rename(&target, &old).map_err(|e| SinkError::io(&target, e))?;
            }
            fs::rename(&staged, &target).map_err(|e| SinkError::io(&target, e))?;
            if let Ok(dir) = fs::File::open(&parent) {
                let _ = dir.sync_all();
            }
        }
        self.published = true;
        let _ = fs::remove_dir_all(&self.root);
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// Removes staging directories whose process is gone (a killed run's leftovers).
fn sweep_dead(staging: &Path) {
    let Ok(entries) = fs::read_dir(staging) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.rsplit('.').nth(1).and_then(|p| p.parse::<u32>().ok());
        let alive = pid
            .is_some_and(|p| p == std::process::id() || Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            tracing::info!(path = %entry.path().display(), "StagingSwept");
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishing_replaces_only_that_date_whole() {
        let out = tempfile::tempdir().unwrap();
        let other = partition_dir(out.path(), "reports", "2026-11-26");
        fs::create_dir_all(&other).unwrap();
        fs::write(other.join("keep.txt"), b"other date").unwrap();

        let s = Staging::create(out.path(), "2026-11-27").unwrap();
        fs::write(s.dir("reports").join("a.csv"), b"first").unwrap();
        fs::write(s.dir("reports").join("stale.csv"), b"only in the first run").unwrap();
        s.publish().unwrap();
        let s = Staging::create(out.path(), "2026-11-27").unwrap();
        fs::write(s.dir("reports").join("a.csv"), b"second").unwrap();
        s.publish().unwrap();

        let date = partition_dir(out.path(), "reports", "2026-11-27");
        assert_eq!(fs::read(date.join("a.csv")).unwrap(), b"second");
        assert!(!date.join("stale.csv").exists(), "replaced whole");
        assert_eq!(fs::read(other.join("keep.txt")).unwrap(), b"other date");
        assert!(partition_dir(out.path(), "tables", "2026-11-27").is_dir());
        assert_eq!(
            fs::read_dir(out.path().join(".staging")).unwrap().count(),
            0
        );
    }

    #[test]
    fn an_abandoned_staging_area_is_removed_and_publishes_nothing() {
        let out = tempfile::tempdir().unwrap();
        let s = Staging::create(out.path(), "2026-11-27").unwrap();
        fs::write(s.dir("tables").join("t.parquet"), b"x").unwrap();
        drop(s);
        assert!(!out.path().join("tables").exists());
        // a dead process's leftovers are swept by the next run
        let dead = out
            .path()
            .join(".staging/date=2026-11-27.999999999.0/tables");
        fs::create_dir_all(&dead).unwrap();
        let _s = Staging::create(out.path(), "2026-11-27").unwrap();
        assert!(!dead.exists());
    }
}
