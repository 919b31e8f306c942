//! Building a date's partitions in `<out>/.staging/` and publishing them by rename.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::record_batch::RecordBatch;
use polars::prelude::DataFrame;

use super::manifest::{FileEntry, Manifest};
use super::{parquet, report, DateSink};
use crate::atomic_file::write_atomic;
use crate::error::SinkError;
use crate::layout::{
    csv_file, date_dir_name, parquet_file, partition_dir, relative, staging_dir, Kind,
    MANIFEST_FILE,
};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A date's partitions under construction.
#[derive(Debug)]
pub struct Staging {
    out: PathBuf,
    date: String,
    root: PathBuf,
    published: bool,
}

impl Staging {
    /// Creates an empty staging area for `date` under `<out>/.staging/`, after sweeping the
    /// leftovers of runs that were killed.
    pub fn create(out: &Path, date: &str) -> Result<Staging, SinkError> {
        let staging = staging_dir(out);
        sweep_dead(&staging);
        let root = staging.join(format!(
            "{}.{}.{}",
            date_dir_name(date),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        for kind in Kind::PUBLISHED {
            let dir = root.join(kind.dir_name());
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
    pub fn dir(&self, kind: Kind) -> PathBuf {
        self.root.join(kind.dir_name())
    }

    /// Where a kind's files will be once published.
    pub fn final_dir(&self, kind: Kind) -> PathBuf {
        partition_dir(&self.out, kind, &self.date)
    }

    /// Moves every kind's partition into place, replacing the date's previous one whole.
    pub fn publish(mut self) -> Result<(), SinkError> {
        for kind in Kind::PUBLISHED {
            let parent = self.out.join(kind.dir_name());
            fs::create_dir_all(&parent).map_err(|e| SinkError::io(&parent, e))?;
            let target = self.final_dir(kind);
            let staged = self.dir(kind);
            if target.exists() {
                // rename cannot replace a non-empty directory: move the old one aside first
                let old = self.root.join(format!("{}.replaced", kind.dir_name()));
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

impl Staging {
    /// The manifest entry of a file written into `kind`'s staging directory, named by where it
    /// will be once published.
    fn entry(&self, kind: Kind, file: &str, bytes: u64, rows: usize) -> FileEntry {
        FileEntry {
            path: relative(&self.out, &self.final_dir(kind).join(file)),
            bytes,
            rows: Some(rows),
        }
    }
}

impl DateSink for Staging {
    fn write_table(&mut self, name: &str, batch: &RecordBatch) -> Result<FileEntry, SinkError> {
        let file = parquet_file(name);
        let bytes = parquet::write_batch(&self.dir(Kind::Tables).join(&file), batch)?;
        Ok(self.entry(Kind::Tables, &file, bytes, batch.num_rows()))
    }

    fn staged_tables(&self) -> PathBuf {
        self.dir(Kind::Tables)
    }

    fn write_report(
        &mut self,
        name: &str,
        df: &mut DataFrame,
    ) -> Result<Vec<FileEntry>, SinkError> {
        let dir = self.dir(Kind::Reports);
        let rows = df.height();
        let (pq, csv) = (parquet_file(name), csv_file(name));
        let pq_bytes = report::write_parquet(df, &dir.join(&pq))?;
        let csv_bytes = report::write_csv(df, &dir.join(&csv))?;
        Ok(vec![
            self.entry(Kind::Reports, &pq, pq_bytes, rows),
            self.entry(Kind::Reports, &csv, csv_bytes, rows),
        ])
    }

    fn commit(self, manifest: &Manifest) -> Result<(), SinkError> {
        let path = self.dir(Kind::Reports).join(MANIFEST_FILE);
        let mut json = serde_json::to_vec_pretty(manifest)
            .map_err(|e| SinkError::io(&path, std::io::Error::other(e)))?;
        json.push(b'\n');
        write_atomic(&path, &json, true)?;
        self.publish()
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
        let other = partition_dir(out.path(), Kind::Reports, "2026-11-26");
        fs::create_dir_all(&other).unwrap();
        fs::write(other.join("keep.txt"), b"other date").unwrap();

        let s = Staging::create(out.path(), "2026-11-27").unwrap();
        fs::write(s.dir(Kind::Reports).join("a.csv"), b"first").unwrap();
        fs::write(
            s.dir(Kind::Reports).join("stale.csv"),
            b"only in the first run",
        )
        .unwrap();
        s.publish().unwrap();
        let s = Staging::create(out.path(), "2026-11-27").unwrap();
        fs::write(s.dir(Kind::Reports).join("a.csv"), b"second").unwrap();
        s.publish().unwrap();

        let date = partition_dir(out.path(), Kind::Reports, "2026-11-27");
        assert_eq!(fs::read(date.join("a.csv")).unwrap(), b"second");
        assert!(!date.join("stale.csv").exists(), "replaced whole");
        assert_eq!(fs::read(other.join("keep.txt")).unwrap(), b"other date");
        assert!(partition_dir(out.path(), Kind::Tables, "2026-11-27").is_dir());
        assert_eq!(
            fs::read_dir(out.path().join(".staging")).unwrap().count(),
            0
        );
    }

    #[test]
    fn an_abandoned_staging_area_is_removed_and_publishes_nothing() {
        let out = tempfile::tempdir().unwrap();
        let s = Staging::create(out.path(), "2026-11-27").unwrap();
        fs::write(s.dir(Kind::Tables).join("t.parquet"), b"x").unwrap();
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
