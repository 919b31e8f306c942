//! Building a date's partitions in `<out>/.staging/` and publishing them whole.
//!
//! Invariants:
//! - Only the holder of the date's lock ([`DateLock`]) builds, publishes or recovers a date's
//!   staging areas; a staging area is named `date=YYYY-MM-DD.<run id>`.
//! - Every staged file is fsynced when written, and each staged directory before it becomes
//!   visible.
//! - A published partition is never missing: each kind's new directory is swapped with the old
//!   one in one `renameat2(RENAME_EXCHANGE)` (Linux), so a reader sees the old partition or the
//!   new one. Where the file system cannot exchange, the old one is moved aside and the new one
//!   renamed in: a moment without the partition, which a crash can make long, and which the
//!   journal below repairs.
//! - Before the first swap a journal (`_publishing.json`, with the run id) is written durably
//!   into the staging area. A staging area left by a dead run is rolled *forward* by the next
//!   holder of the lock: every kind still holding that run's files (its run id is in the
//!   manifest and in each table's Parquet metadata) is installed, then the area is removed. A
//!   staging area without a journal never published anything and is removed. So the sweep never
//!   deletes data a published date still needs, and a date is never left with new reports over
//!   missing or old tables for longer than the next run's start.
//! - Tables and reports are two directories, swapped one after the other: for that instant a
//!   reader can see the new tables with the old reports, and tell by the run ids.

use std::fs;
use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use super::manifest::{FileEntry, Manifest};
use super::{parquet, report, DateSink};
use crate::atomic_file::write_atomic;
use crate::error::SinkError;
use crate::layout::{
    csv_file, date_dir_name, date_of_dir_name, parquet_file, partition_dir, relative, staging_dir,
    Kind, MANIFEST_FILE,
};
use crate::lock::{DateLock, RunId};

/// The journal a staging area holds while it is being published.
const JOURNAL: &str = "_publishing.json";

#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    run_id: String,
}

/// A date's partitions under construction.
#[derive(Debug)]
pub struct Staging {
    out: PathBuf,
    date: String,
    run_id: RunId,
    root: PathBuf,
    published: bool,
    /// The journal is written: from here on the area is the next lock holder's to finish, and
    /// is not removed on drop (an error between two swaps must not lose the way forward).
    journaled: bool,
}

impl Staging {
    /// Creates an empty staging area for the locked date under `<out>/.staging/`, after
    /// recovering or removing what killed runs left there (see the module docs).
    pub fn create(out: &Path, lock: &DateLock, run_id: &RunId) -> Result<Staging, SinkError> {
        let staging = staging_dir(out);
        sweep(out, lock)?;
        let date = lock.date();
        let root = staging.join(format!("{}.{run_id}", date_dir_name(date)));
        for kind in Kind::PUBLISHED {
            let dir = root.join(kind.dir_name());
            fs::create_dir_all(&dir).map_err(|e| SinkError::io(&dir, e))?;
        }
        Ok(Staging {
            out: out.to_path_buf(),
            date: date.to_owned(),
            run_id: run_id.clone(),
            root,
            published: false,
            journaled: false,
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

    /// Publishes every kind's partition, replacing the date's previous one whole.
    pub fn publish(mut self) -> Result<(), SinkError> {
        self.begin_publish()?;
        self.journaled = true;
        for (i, kind) in Kind::PUBLISHED.into_iter().enumerate() {
            let staged = self.dir(kind);
            if let Err(e) = install(&staged, &self.final_dir(kind)) {
                // failed before anything moved: nothing was published, nothing to finish
                let untouched = staged_run_id(kind, &staged).as_deref()
                    == Some(self.run_id.as_str())
                    && !staged.with_extension("replaced").exists();
                if i == 0 && untouched {
                    self.journaled = false;
                }
                return Err(e);
            }
        }
        self.published = true;
        let _ = fs::remove_dir_all(&self.root);
        sync_dir(&staging_dir(&self.out));
        Ok(())
    }

    /// Makes the staged directories durable, then writes the journal that lets a later run
    /// finish this publication if the process dies during it.
    fn begin_publish(&self) -> Result<(), SinkError> {
        for kind in Kind::PUBLISHED {
            let dir = self.dir(kind);
            sync_dir_checked(&dir)?;
        }
        let journal = Journal {
            run_id: self.run_id.to_string(),
        };
        let path = self.root.join(JOURNAL);
        let json = serde_json::to_vec(&journal)
            .map_err(|e| SinkError::io(&path, std::io::Error::other(e)))?;
        write_atomic(&path, &json, true)?;
        sync_dir_checked(&self.root)
    }

    /// The manifest entry of table `name`, written into the staging area's tables directory.
    pub fn table_entry(&self, name: &str, bytes: u64, rows: usize) -> FileEntry {
        self.entry(Kind::Tables, &parquet_file(name), bytes, rows)
    }

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
        let pq_bytes = report::write_parquet(df, &dir.join(&pq), Some(&self.run_id))?;
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
        if !self.published && !self.journaled {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// Puts `staged` in `target`'s place. An existing `target` is swapped out (it ends up at
/// `staged`'s path, to be removed with the staging area); the parent is fsynced after.
fn install(staged: &Path, target: &Path) -> Result<(), SinkError> {
    let parent = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| SinkError::io(parent, e))?;
    if !target.exists() {
        fs::rename(staged, target).map_err(|e| SinkError::io(target, e))?;
    } else if !exchange(staged, target).map_err(|e| SinkError::io(target, e))? {
        // no atomic exchange here: move the old one aside, then the new one in (the journal
        // covers a crash in between)
        let aside = staged.with_extension("replaced");
        fs::rename(target, &aside).map_err(|e| SinkError::io(target, e))?;
        fs::rename(staged, target).map_err(|e| SinkError::io(target, e))?;
    }
    sync_dir(parent);
    if let Some(staging_root) = staged.parent() {
        sync_dir(staging_root);
    }
    Ok(())
}

/// Swaps two directories atomically. `Ok(false)`: this system or file system cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<bool> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    use rustix::io::Errno;
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<bool> {
    Ok(false)
}

/// Finishes or removes what dead runs left in the staging area of the locked date (a run killed
/// between its swaps is rolled forward). A run calls this as soon as it holds the date's lock,
/// before harvesting, so a date is never left half-published for longer than that.
pub fn recover_date(out: &Path, lock: &DateLock) -> Result<(), SinkError> {
    for (date, path) in staging_areas(out) {
        if date == lock.date() {
            recover(out, &date, &path)?;
        }
    }
    Ok(())
}

/// The staging areas under `out`, with their dates (canonical `YYYY-MM-DD` only).
fn staging_areas(out: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(staging_dir(out)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let date = date_of_dir_name(&name)?.split('.').next()?;
            let parsed = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
            (parsed.format("%Y-%m-%d").to_string() == date).then(|| (date.to_owned(), entry.path()))
        })
        .collect()
}

/// Recovers or removes the staging areas of every date nobody is writing: the locked date's
/// always, another date's only if its lock is free right now (an error there is logged and
/// left for that date's next run).
fn sweep(out: &Path, lock: &DateLock) -> Result<(), SinkError> {
    for (date, path) in staging_areas(out) {
        if date == lock.date() {
            recover(out, &date, &path)?;
            continue;
        }
        let other = match DateLock::try_acquire_to_sweep(out, &date) {
            Ok(Some(other)) => other,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(date, error = %e, "StagingSweepSkipped");
                continue;
            }
        };
        if let Err(e) = recover(out, &date, &path) {
            tracing::warn!(date, error = %e, "StagingSweepSkipped");
        }
        drop(other);
    }
    Ok(())
}

/// Finishes or discards one dead staging area (its date's lock is held by the caller).
fn recover(out: &Path, date: &str, root: &Path) -> Result<(), SinkError> {
    let journal: Option<Journal> = fs::read(root.join(JOURNAL))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    if let Some(journal) = journal {
        for kind in Kind::PUBLISHED {
            let staged = root.join(kind.dir_name());
            if staged_run_id(kind, &staged).as_deref() == Some(journal.run_id.as_str()) {
                install(&staged, &partition_dir(out, kind, date))?;
                tracing::warn!(date, kind = %kind, run_id = %journal.run_id, "PublishRolledForward");
            }
        }
    }
    tracing::info!(path = %root.display(), "StagingSwept");
    let _ = fs::remove_dir_all(root);
    Ok(())
}

/// The run id of the files in a staged (or swapped-out) kind directory: the manifest's for
/// reports, the first table's Parquet metadata for tables.
fn staged_run_id(kind: Kind, dir: &Path) -> Option<String> {
    match kind {
        Kind::Reports => {
            let bytes = fs::read(dir.join(MANIFEST_FILE)).ok()?;
            let manifest: Manifest = serde_json::from_slice(&bytes).ok()?;
            Some(manifest.run_id).filter(|id| !id.is_empty())
        }
        _ => {
            let mut tables: Vec<PathBuf> = fs::read_dir(dir)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
                .collect();
            tables.sort();
            parquet::run_id_of(tables.first()?)
        }
    }
}

fn sync_dir_checked(dir: &Path) -> Result<(), SinkError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SinkError::io(dir, e))
}

/// Best effort: a directory whose entries changed is flushed (an error here loses nothing that
/// is not already visible).
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    use arrow::array::StringArray;
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;

    use super::*;

    const DATE: &str = "2026-11-27";

    fn lock(out: &Path) -> (DateLock, RunId) {
        let id = RunId::new(chrono::Utc::now());
        (DateLock::acquire(out, DATE, &id).unwrap(), id)
    }

    /// A staging area holding a real table and a report file, both saying `text`.
    fn staged(out: &Path, lock: &DateLock, id: &RunId, text: &str) -> Staging {
        let s = Staging::create(out, lock, id).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Utf8, false)]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![text]))]).unwrap();
        let table = s.staged_tables().join(parquet_file("authors"));
        parquet::write_batch(&table, &batch, Some(id)).unwrap();
        fs::write(s.dir(Kind::Reports).join("a.csv"), text).unwrap();
        s
    }

    fn manifest(id: &RunId) -> Manifest {
        Manifest {
            run_id: id.to_string(),
            ..Manifest::default()
        }
    }

    /// The first run's date published, and a second run's staged whole (manifest included)
    /// with its journal written: the moment before its first swap.
    fn first_published_second_journaled(
        out: &Path,
        lock: &DateLock,
        first: &RunId,
    ) -> (Staging, RunId) {
        staged(out, lock, first, "first")
            .commit(&manifest(first))
            .unwrap();
        let second = RunId::new(chrono::Utc::now());
        let s = staged(out, lock, &second, "second");
        fs::write(
            s.dir(Kind::Reports).join(MANIFEST_FILE),
            serde_json::to_vec(&manifest(&second)).unwrap(),
        )
        .unwrap();
        s.begin_publish().unwrap();
        (s, second)
    }

    fn published_run_ids(out: &Path) -> (Option<String>, Option<String>) {
        (
            staged_run_id(Kind::Tables, &partition_dir(out, Kind::Tables, DATE)),
            staged_run_id(Kind::Reports, &partition_dir(out, Kind::Reports, DATE)),
        )
    }

    #[test]
    fn publishing_replaces_only_that_date_whole() {
        let out = tempfile::tempdir().unwrap();
        let other = partition_dir(out.path(), Kind::Reports, "2026-11-26");
        fs::create_dir_all(&other).unwrap();
        fs::write(other.join("keep.txt"), b"other date").unwrap();
        let (lock, id) = lock(out.path());

        let s = staged(out.path(), &lock, &id, "first");
        fs::write(s.dir(Kind::Reports).join("stale.csv"), b"only in the first").unwrap();
        s.commit(&manifest(&id)).unwrap();
        let second = RunId::new(chrono::Utc::now());
        let s = staged(out.path(), &lock, &second, "second");
        s.commit(&manifest(&second)).unwrap();

        let date = partition_dir(out.path(), Kind::Reports, DATE);
        assert_eq!(fs::read(date.join("a.csv")).unwrap(), b"second");
        assert!(!date.join("stale.csv").exists(), "replaced whole");
        assert_eq!(fs::read(other.join("keep.txt")).unwrap(), b"other date");
        // #14: the run id is in the table's Parquet metadata and in the manifest
        let ids = published_run_ids(out.path());
        assert_eq!(ids, (Some(second.to_string()), Some(second.to_string())));
        assert_eq!(fs::read_dir(staging_dir(out.path())).unwrap().count(), 0);
    }

    #[test]
    fn an_abandoned_staging_area_is_removed_and_publishes_nothing() {
        let out = tempfile::tempdir().unwrap();
        let (lock, id) = lock(out.path());
        let s = staged(out.path(), &lock, &id, "x");
        drop(s);
        assert!(!out.path().join("tables").exists());
        // a killed run's leftovers (no journal: it never began publishing) are swept
        let dead = staging_dir(out.path()).join("date=2026-11-27.999999999.0/tables");
        fs::create_dir_all(&dead).unwrap();
        let _s = Staging::create(out.path(), &lock, &id).unwrap();
        assert!(!dead.exists());
        assert!(!out.path().join("tables").exists());
    }

    /// #14: a kill -9 between the tables' swap and the reports' used to lose the date's tables
    /// for good; the next run finishes the publication instead.
    #[test]
    fn a_publication_killed_between_its_swaps_is_rolled_forward() {
        let out = tempfile::tempdir().unwrap();
        let (lock, first) = lock(out.path());
        let (s, second) = first_published_second_journaled(out.path(), &lock, &first);
        install(&s.dir(Kind::Tables), &s.final_dir(Kind::Tables)).unwrap();
        std::mem::forget(s); // killed here: tables are the second run's, reports the first's
        assert_eq!(
            published_run_ids(out.path()),
            (Some(second.to_string()), Some(first.to_string()))
        );
        drop(lock);

        let (lock, third) = self::lock(out.path());
        let _s = Staging::create(out.path(), &lock, &third).unwrap();
        assert_eq!(
            published_run_ids(out.path()),
            (Some(second.to_string()), Some(second.to_string()))
        );
        let reports = partition_dir(out.path(), Kind::Reports, DATE);
        assert_eq!(fs::read(reports.join("a.csv")).unwrap(), b"second");
    }

    /// Where there is no atomic exchange the old partition is moved aside first; killed right
    /// after that, the date has no tables until the next run puts the staged ones in place.
    #[test]
    fn a_publication_killed_after_moving_the_old_partition_aside_is_rolled_forward() {
        let out = tempfile::tempdir().unwrap();
        let (lock, first) = lock(out.path());
        let (s, second) = first_published_second_journaled(out.path(), &lock, &first);
        let tables = s.final_dir(Kind::Tables);
        fs::rename(&tables, s.dir(Kind::Tables).with_extension("replaced")).unwrap();
        std::mem::forget(s);
        assert!(!tables.exists());

        let third = RunId::new(chrono::Utc::now());
        let _s = Staging::create(out.path(), &lock, &third).unwrap();
        assert_eq!(
            published_run_ids(out.path()),
            (Some(second.to_string()), Some(second.to_string()))
        );
    }

    /// An ordinary error between the swaps (here: `reports/` is not a directory) keeps the
    /// staging area and its journal, and the next holder of the lock finishes the publication.
    #[test]
    fn an_error_between_the_swaps_is_finished_by_the_next_holder() {
        let out = tempfile::tempdir().unwrap();
        let (lock, first) = lock(out.path());
        let s = staged(out.path(), &lock, &first, "first");
        fs::write(out.path().join("reports"), b"in the way").unwrap();
        assert!(s.commit(&manifest(&first)).is_err());
        assert_eq!(
            published_run_ids(out.path()),
            (Some(first.to_string()), None),
            "the tables went in, the reports could not"
        );
        fs::remove_file(out.path().join("reports")).unwrap();
        recover_date(out.path(), &lock).unwrap();
        assert_eq!(
            published_run_ids(out.path()),
            (Some(first.to_string()), Some(first.to_string()))
        );
        assert!(staging_areas(out.path()).is_empty());
    }

    #[test]
    fn only_canonical_dates_name_staging_areas() {
        let out = tempfile::tempdir().unwrap();
        for name in ["date=2026-1-1.x", "date=2026-02-30.x", "date=../x", "notes"] {
            fs::create_dir_all(staging_dir(out.path()).join(name)).unwrap();
        }
        fs::create_dir_all(staging_dir(out.path()).join("date=2026-11-27.r")).unwrap();
        let dates: Vec<String> = staging_areas(out.path())
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(dates, vec!["2026-11-27".to_owned()]);
    }

    /// The sweep leaves alone a date another run is writing.
    #[test]
    fn the_sweep_skips_dates_locked_by_another_run() {
        let out = tempfile::tempdir().unwrap();
        let busy_id = RunId::new(chrono::Utc::now());
        let busy = DateLock::acquire(out.path(), "2026-11-28", &busy_id).unwrap();
        let theirs = staged(out.path(), &busy, &busy_id, "theirs");
        let (lock, id) = lock(out.path());
        let _mine = Staging::create(out.path(), &lock, &id).unwrap();
        assert!(theirs.dir(Kind::Tables).join("authors.parquet").exists());
        drop(busy);
        std::mem::forget(theirs);
        let _again = Staging::create(out.path(), &lock, &id).unwrap();
        let left: Vec<_> = fs::read_dir(staging_dir(out.path()))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            left.iter().all(|n| n.starts_with("date=2026-11-27")),
            "{left:?}"
        );
    }

    /// #14: while a date was re-published over and over, readers used to find its files
    /// missing; now every read finds a whole partition.
    #[test]
    fn readers_never_find_a_republished_partition_missing() {
        let out = tempfile::tempdir().unwrap();
        let (lock, id) = lock(out.path());
        staged(out.path(), &lock, &id, "0")
            .commit(&manifest(&id))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (missing, reads) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let reader = {
            let (root, stop, missing, reads) = (
                out.path().to_path_buf(),
                stop.clone(),
                missing.clone(),
                reads.clone(),
            );
            std::thread::spawn(move || {
                let table = partition_dir(&root, Kind::Tables, DATE).join("authors.parquet");
                let reports = partition_dir(&root, Kind::Reports, DATE);
                while !stop.load(Ordering::Relaxed) {
                    for file in [
                        table.clone(),
                        reports.join("a.csv"),
                        reports.join(MANIFEST_FILE),
                    ] {
                        reads.fetch_add(1, Ordering::Relaxed);
                        if fs::metadata(&file).is_err() {
                            missing.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        };
        for i in 1..=60 {
            let id = RunId::new(chrono::Utc::now());
            staged(out.path(), &lock, &id, &i.to_string())
                .commit(&manifest(&id))
                .unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        assert!(reads.load(Ordering::Relaxed) > 0);
        assert_eq!(missing.load(Ordering::Relaxed), 0);
    }
}
