//! Keeping a lake in step with its local work directory: what a run pulls before it starts,
//! the raw store's upload while it runs, and the publish after it.
//!
//! The raw store is synced as its page log ([`crate::raw_store::log`]): the log only grows,
//! by whole records, so its bytes between two offsets are a valid log of their own. The
//! uploader puts each new stretch as an immutable segment, `raw/date=D/pages/<run id>-<seq>.log`,
//! and `_lake.json` in the local store records which segments the local log holds and how far
//! it is in the lake. A work directory that lacks segments (a run killed on another machine, a
//! cache deleted) appends them to its log before the run reads it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::delta::{Committed, DeltaTable};
use object_store::ObjectStoreExt;

use super::Lake;
use crate::error::LakeError;
use crate::layout::{csv_file, date_dir_name, parquet_file, partition_dir, Kind, MANIFEST_FILE};
use crate::raw_store::{RawStore, HARVEST_FILE, ORIGIN_FILE};
use crate::schema;

/// The local record of a raw store's sync, `_lake.json` in the store.
pub const SYNC_FILE: &str = "_lake.json";

/// Where a date's manifest is in the lake: `published/date=D/_manifest.json`.
pub fn manifest_key(date: &str) -> String {
    format!("{PUBLISHED}/{}/{MANIFEST_FILE}", date_dir_name(date))
}

/// The lake's directory of published dates' manifests and CSV reports.
pub const PUBLISHED: &str = "published";

/// Where a date's raw store is in the lake: `raw/date=D`.
pub fn raw_prefix(date: &str) -> String {
    format!("{}/{}", Kind::Raw.dir_name(), date_dir_name(date))
}

fn raw_key(date: &str, name: &str) -> String {
    format!("{}/{name}", raw_prefix(date))
}

/// The directory of a raw store's segments, under its prefix.
fn segments_of(prefix: &str) -> String {
    match prefix.trim_matches('/') {
        "" => "pages".to_owned(),
        p => format!("{p}/pages"),
    }
}

fn key_in(prefix: &str, name: &str) -> String {
    match prefix.trim_matches('/') {
        "" => name.to_owned(),
        p => format!("{p}/{name}"),
    }
}

/// A table's or report's Delta table in the lake: `tables/<name>` or `reports/<name>`.
pub fn table_dir(kind: Kind, name: &str) -> String {
    format!("{}/{name}", kind.dir_name())
}

/// The tables and reports a date publishes, in commit order.
pub fn published_tables() -> Vec<(Kind, &'static str)> {
    schema::TABLES
        .iter()
        .map(|t| (Kind::Tables, *t))
        .chain(schema::REPORTS.iter().map(|r| (Kind::Reports, *r)))
        .collect()
}

/// What `_lake.json` records.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct SyncState {
    /// The lake URL of the store this local store is a copy of (a work directory serves one
    /// lake: pointed at another, it would publish pages that lake does not have).
    #[serde(default)]
    lake: String,
    /// The segments the local log holds (pulled or uploaded).
    segments: BTreeSet<String>,
    /// The local log is in the lake up to this offset.
    synced_to: u64,
}

fn read_state(store: &Path, url: &str) -> Result<SyncState, LakeError> {
    let path = store.join(SYNC_FILE);
    let state = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<SyncState>(&bytes).map_err(|e| LakeError::Local {
            path: path.clone(),
            message: format!(
                "unreadable ({e}); delete the work directory's copy of this date to pull it again"
            ),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => SyncState::default(),
        Err(e) => {
            return Err(LakeError::Local {
                path,
                message: e.to_string(),
            })
        }
    };
    if !state.lake.is_empty() && state.lake != url {
        return Err(LakeError::Local {
            path,
            message: format!(
                "this work directory's store is a copy of {}, not of {url}: give this lake a --work-dir of its own",
                state.lake
            ),
        });
    }
    Ok(state)
}

fn write_state(store: &Path, url: &str, state: &mut SyncState) -> Result<(), LakeError> {
    let path = store.join(SYNC_FILE);
    state.lake = url.to_owned();
    let bytes = serde_json::to_vec_pretty(state).unwrap_or_default();
    crate::atomic_file::write_atomic(&path, &bytes, true).map_err(|e| LakeError::Local {
        path,
        message: e.to_string(),
    })
}

/// What a pull brought.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// Segments appended to local page logs.
    pub segments: usize,
    pub bytes: u64,
    /// Files downloaded (manifests, records, table files).
    pub files: usize,
}

/// The dates the lake has published (their manifests), in order.
pub async fn published_dates(lake: &Lake) -> Result<Vec<String>, LakeError> {
    let mut dates = Vec::new();
    for (key, _) in lake.list(PUBLISHED).await? {
        if let Some(d) = manifest_date(&key) {
            dates.push(d.to_owned());
        }
    }
    Ok(dates)
}

/// The date whose manifest `key` is (`published/date=D/_manifest.json`), if it is one.
fn manifest_date(key: &str) -> Option<&str> {
    let mut parts = key.split('/');
    let (Some(PUBLISHED), Some(dir), Some(MANIFEST_FILE), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    crate::layout::date_of_dir_name(dir)
        .filter(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
}

/// Pulls what a run of `date` reads into the work directory `work`:
/// - the date's raw store (segments the local log lacks, its origin and harvest records) and
///   its manifest, if the lake has one;
/// - every earlier published date's manifest and harvest record (small: what `--incremental`
///   decides from);
/// - the latest earlier date's tables and reports (what `author_changes` compares with);
/// - with `incremental`, the raw stores of the dates since the latest full run (what is carried).
pub async fn pull(
    lake: &Lake,
    work: &Path,
    date: &str,
    incremental: bool,
) -> Result<Pulled, LakeError> {
    pull_as(lake, work, date, incremental, Access::Sync).await
}

async fn pull_as(
    lake: &Lake,
    work: &Path,
    date: &str,
    incremental: bool,
    access: Access,
) -> Result<Pulled, LakeError> {
    let mut pulled = Pulled::default();
    let dates = published_dates(lake).await?;
    drop_unpublished(work, &dates)?;
    let store = RawStore::for_date(work, date);
    pull_store(lake, &raw_prefix(date), &store, access, &mut pulled).await?;
    if dates.iter().any(|d| d == date) {
        pull_manifest(lake, work, date, &mut pulled).await?;
    }
    let earlier: Vec<&String> = dates.iter().filter(|d| d.as_str() < date).collect();
    for d in &earlier {
        pull_manifest(lake, work, d, &mut pulled).await?;
        for name in [HARVEST_FILE, ORIGIN_FILE] {
            pull_record(
                lake,
                &raw_key(d, name),
                &partition_dir(work, Kind::Raw, d).join(name),
                &mut pulled,
            )
            .await?;
        }
    }
    if let Some(previous) = earlier.last() {
        pull_date_tables(lake, work, previous, &mut pulled).await?;
    }
    if incremental {
        // a full run carries nothing: the chains of carried pages start at the latest one
        let mut since = None;
        for d in earlier.iter().rev() {
            let record = RawStore::for_date(work, d).harvest_record().ok().flatten();
            if record.is_some_and(|r| !r.incremental) {
                since = Some(d.as_str());
                break;
            }
        }
        for d in earlier
            .iter()
            .filter(|d| since.is_some_and(|s| d.as_str() >= s))
        {
            // an earlier date's store is another date's: written only under its lock (a run
            // of that date here holds it; then its store is its own business)
            let Some(_held) =
                crate::lock::DateLock::try_acquire(work, d).map_err(|e| LakeError::Local {
                    path: work.to_path_buf(),
                    message: e.to_string(),
                })?
            else {
                tracing::warn!(date = %d, "LakePullSkippedLocked");
                continue;
            };
            // read only: that date's store in the lake is its own runs' (under its lease)
            let store = RawStore::for_date(work, d);
            pull_store(lake, &raw_prefix(d), &store, Access::ReadOnly, &mut pulled).await?;
        }
    }
    if pulled != Pulled::default() {
        tracing::info!(
            lake = %lake.url(),
            segments = pulled.segments,
            bytes = pulled.bytes,
            files = pulled.files,
            "LakePulled"
        );
    }
    Ok(pulled)
}

/// Removes the manifests of dates the work directory published but the lake does not have
/// (a run whose lake publish failed): such a date is not done, and not the previous date of
/// the next.
fn drop_unpublished(work: &Path, dates: &[String]) -> Result<(), LakeError> {
    let reports = work.join(Kind::Reports.dir_name());
    let Ok(entries) = std::fs::read_dir(&reports) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(date) = crate::layout::date_of_dir_name(&name) else {
            continue;
        };
        let manifest = e.path().join(MANIFEST_FILE);
        if !dates.iter().any(|d| d == date) && manifest.exists() {
            tracing::warn!(date, manifest = %manifest.display(), "LocalOnlyDateDropped");
            std::fs::remove_file(&manifest).map_err(|e| LakeError::Local {
                path: manifest.clone(),
                message: e.to_string(),
            })?;
        }
    }
    Ok(())
}

/// Brings a small record (`_harvest.json`, `_origin.json`) to `local` when the lake's differs.
async fn pull_record(
    lake: &Lake,
    key: &str,
    local: &Path,
    pulled: &mut Pulled,
) -> Result<(), LakeError> {
    if let Some(bytes) = lake.get(key).await? {
        if std::fs::read(local).ok().as_deref() != Some(&bytes[..]) {
            write_local(local, &bytes)?;
            pulled.files += 1;
        }
    }
    Ok(())
}

/// How a pull treats the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// The run's own lake: what only the local log holds is uploaded first.
    Sync,
    /// Somebody else's raw store (`--source s3://…`): only read.
    ReadOnly,
}

/// The versions of the tables a date's manifest (in the lake) says it published.
fn manifest_versions(manifest: &[u8]) -> BTreeMap<String, u64> {
    serde_json::from_slice::<serde_json::Value>(manifest)
        .ok()
        .and_then(|m| m.get("lake")?.get("versions").cloned())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// For `etl rebuild` of a lake: pulls the raw stores of the published dates from `from` to
/// `to` (and those their incremental runs carried from), read only, into the work directory;
/// the dates pulled.
pub async fn pull_for_rebuild(
    lake: &Lake,
    work: &Path,
    from: &str,
    to: &str,
) -> Result<Vec<String>, LakeError> {
    let wanted: Vec<String> = published_dates(lake)
        .await?
        .into_iter()
        .filter(|d| d.as_str() >= from && d.as_str() <= to)
        .collect();
    for d in &wanted {
        // as a run of the date would, carry chain included
        pull_as(lake, work, d, true, Access::ReadOnly).await?;
    }
    Ok(wanted)
}

/// Pulls what `etl publish --shards count` reads of each shard's part of the lake
/// (`<lake>/shards/shard=K-of-N`): the date's raw store and manifest, into the shard's root
/// under the work directory, where a shard run on this machine would have left them.
pub async fn pull_shards(
    lake: &super::LakeSettings,
    work: &Path,
    date: &str,
    count: u32,
) -> Result<Pulled, LakeError> {
    let mut total = Pulled::default();
    for index in 0..count {
        let part = lake.shard_part(index, count);
        let root = crate::layout::shard_root(work, index, count);
        // a shard being written here is pulled by its own run, not under it
        let Some(_held) =
            crate::lock::DateLock::try_acquire(&root, date).map_err(|e| LakeError::Local {
                path: root.clone(),
                message: e.to_string(),
            })?
        else {
            continue;
        };
        // read only: a shard's part of the lake is its own runs' (under their leases)
        let pulled = pull_as(&Lake::open(&part)?, &root, date, false, Access::ReadOnly).await?;
        total.segments += pulled.segments;
        total.bytes += pulled.bytes;
        total.files += pulled.files;
    }
    Ok(total)
}

/// Mirrors every published date's reports (Parquet from the Delta tables, CSV, and last the
/// manifest) into the work directory, for `etl serve`. A date whose manifest has not changed
/// since the last mirror is not read again.
pub async fn mirror_published(lake: &Lake, work: &Path) -> Result<Pulled, LakeError> {
    let mut pulled = Pulled::default();
    let mut snapshots = BTreeMap::new();
    for (key, _, version) in lake.list_versions(PUBLISHED).await? {
        let Some(date) = manifest_date(&key) else {
            continue;
        };
        let dir = date_dir_name(date);
        let reports = partition_dir(work, Kind::Reports, date);
        let marker = reports.join(".manifest.lake");
        if std::fs::read_to_string(&marker).ok().as_deref() == Some(version.as_str())
            && reports.join(MANIFEST_FILE).exists()
        {
            continue;
        }
        let Some(manifest) = lake.get(&key).await? else {
            continue;
        };
        let versions = manifest_versions(&manifest);
        let mut complete = true;
        for name in schema::REPORTS {
            let csv = csv_file(name);
            let key = format!("{PUBLISHED}/{dir}/{csv}");
            if lake.download(&key, &reports.join(&csv)).await? {
                pulled.files += 1;
            } else {
                complete = false;
            }
            let table = table_dir(Kind::Reports, name);
            let version = versions.get(&table).copied();
            if let std::collections::btree_map::Entry::Vacant(e) =
                snapshots.entry((table.clone(), version))
            {
                e.insert(DeltaTable::new(lake, &table).snapshot(version).await?);
            }
            let files = snapshots
                .get(&(table.clone(), version))
                .map(|s| s.files_of(date))
                .unwrap_or_default();
            match files.as_slice() {
                [file] => {
                    let key = format!("{table}/{}", file.path);
                    if lake
                        .download(&key, &reports.join(parquet_file(name)))
                        .await?
                    {
                        pulled.files += 1;
                    } else {
                        complete = false;
                    }
                }
                _ => complete = false,
            }
        }
        write_local(&reports.join(MANIFEST_FILE), &manifest)?;
        pulled.files += 1;
        if complete {
            write_local(&marker, version.as_bytes())?;
        } else {
            tracing::warn!(date, "LakeDateIncomplete");
        }
    }
    Ok(pulled)
}

/// Pulls `date`'s manifest from the lake, if it has one (`etl schedule` judges from it whether
/// the date is done).
/// Whether the lake has published `date`. A local manifest of a date the lake does not have
/// (its lake publish failed) is removed: the date is not done.
pub async fn pull_published(lake: &Lake, work: &Path, date: &str) -> Result<bool, LakeError> {
    let published = lake.get(&manifest_key(date)).await?.is_some();
    if published {
        pull_manifest(lake, work, date, &mut Pulled::default()).await?;
    } else {
        let manifest = crate::layout::manifest_path(work, date);
        if manifest.exists() {
            tracing::warn!(date, manifest = %manifest.display(), "LocalOnlyDateDropped");
            std::fs::remove_file(&manifest).map_err(|e| LakeError::Local {
                path: manifest.clone(),
                message: e.to_string(),
            })?;
        }
    }
    Ok(published)
}

async fn pull_manifest(
    lake: &Lake,
    work: &Path,
    date: &str,
    pulled: &mut Pulled,
) -> Result<(), LakeError> {
    let local = crate::layout::manifest_path(work, date);
    let remote = lake.get(&manifest_key(date)).await?;
    let Some(remote) = remote else {
        return Ok(());
    };
    if std::fs::read(&local).ok().as_deref() != Some(&remote[..]) {
        write_local(&local, &remote)?;
        pulled.files += 1;
    }
    Ok(())
}

fn write_local(path: &Path, bytes: &[u8]) -> Result<(), LakeError> {
    crate::atomic_file::write_atomic(path, bytes, false).map_err(|e| LakeError::Local {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Downloads `date`'s live file of every table and report (its latest snapshot) to the local
/// layout, unless the local copy is that file already.
async fn pull_date_tables(
    lake: &Lake,
    work: &Path,
    date: &str,
    pulled: &mut Pulled,
) -> Result<(), LakeError> {
    // the versions the date's manifest names: the tables of one run, even if a later run of
    // the date committed some tables and not the rest
    let manifest = std::fs::read(crate::layout::manifest_path(work, date)).unwrap_or_default();
    let versions = manifest_versions(&manifest);
    for (kind, name) in published_tables() {
        let dir = table_dir(kind, name);
        let table = DeltaTable::new(lake, &dir);
        let snapshot = table.snapshot(versions.get(&dir).copied()).await?;
        let files = snapshot.files_of(date);
        let file = match files.as_slice() {
            [] => continue,
            [one] => *one,
            many => {
                return Err(LakeError::Delta {
                    table: table.url(),
                    reason: format!(
                        "date {date} has {} files; medium-etl writes one a date",
                        many.len()
                    ),
                })
            }
        };
        let dir = partition_dir(work, kind, date);
        let local = dir.join(parquet_file(name));
        // which lake file the local copy is, beside it
        let marker = dir.join(format!(".{name}.lake"));
        if std::fs::read_to_string(&marker).ok().as_deref() == Some(file.path.as_str())
            && local.exists()
        {
            continue;
        }
        let key = format!("{}/{}", table_dir(kind, name), file.path);
        if !lake.download(&key, &local).await? {
            return Err(LakeError::Delta {
                table: table.url(),
                reason: format!("its log names {}, which is not there", file.path),
            });
        }
        write_local(&marker, file.path.as_bytes())?;
        pulled.files += 1;
    }
    Ok(())
}

/// Brings the raw store at `url` (`s3://…/raw/date=D`) into the local directory `dir`, for
/// `--source` (a replay from a lake).
pub async fn pull_source(url: &super::LakeSettings, dir: &Path) -> Result<Pulled, LakeError> {
    let lake = Lake::open(url)?;
    let mut pulled = Pulled::default();
    pull_store(
        &lake,
        "",
        &RawStore::new(dir),
        Access::ReadOnly,
        &mut pulled,
    )
    .await?;
    if !dir.join(crate::raw_store::log::LOG_FILE).exists() && pulled.files == 0 {
        return Err(LakeError::Store {
            url: lake.url().to_owned(),
            message: "no raw store there (no pages/ segments, no _harvest.json)".into(),
        });
    }
    Ok(pulled)
}

/// Appends the lake's segments under `prefix` that the local page log of `store` lacks (with
/// [`Access::Sync`], after uploading what the local log holds and the lake does not: pages a
/// run here fetched before it was killed), then takes the lake's records. Each segment is
/// checked to be as long as the lake lists it and recorded as held once appended, so a pull
/// killed half-way goes on where it stopped.
async fn pull_store(
    lake: &Lake,
    prefix: &str,
    store: &RawStore,
    access: Access,
    pulled: &mut Pulled,
) -> Result<(), LakeError> {
    let dir = store.root().to_path_buf();
    let url = lake.url_of(prefix);
    let remote = lake.list(&segments_of(prefix)).await?;
    let local_log = dir.join(crate::raw_store::log::LOG_FILE);
    let local = |path: &Path, e: std::io::Error| LakeError::Local {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if !remote.is_empty() || local_log.exists() {
        read_state(&dir, &url)?;
        // cut a torn tail (what a killed writer left) before anything is appended
        store
            .prepare_for_appending()
            .map_err(|e| LakeError::Local {
                path: dir.clone(),
                message: e.to_string(),
            })?;
        let mut tail = 0;
        if access == Access::Sync {
            // named by when its first page was fetched (the run that fetched it was killed
            // before it said), so that it sorts among the lake's segments where that run's
            // would; "-local" and a random part keep it apart from any other machine's
            let state = read_state(&dir, &url)?;
            let when = first_fetch(&local_log, state.synced_to)
                .unwrap_or_else(chrono::Utc::now)
                .format("%Y%m%dT%H%M%SZ");
            let name = format!("{when}-local");
            let mut uploader = RawUploader::new(lake.clone(), store.clone(), prefix, &name);
            tail = uploader.flush_segments().await?;
        }
        let mut state = read_state(&dir, &url)?;
        let mut remote = remote;
        let lacks = |state: &SyncState, remote: &[(String, u64)]| {
            remote.iter().any(|(key, _)| {
                !state
                    .segments
                    .contains(key.rsplit('/').next().unwrap_or_default())
            })
        };
        if tail > 0 && lacks(&state, &remote) {
            // This machine's pages (a killed run's) now follow segments another machine put
            // since, in the lake's order, but precede them here. A position both hold would
            // be answered by different records here and on a machine that pulls it all.
            // Rebuild this log in the lake's order; the old one is kept beside it.
            remote = lake.list(&segments_of(prefix)).await?;
            let aside = dir.join(format!(
                "{}.before-pull-{}",
                crate::raw_store::log::LOG_FILE,
                chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
            ));
            std::fs::rename(&local_log, &aside).map_err(|e| local(&local_log, e))?;
            tracing::warn!(store = %dir.display(), kept = %aside.display(), "RawLogRebuiltInLakeOrder");
            state.segments.clear();
            state.synced_to = 0;
            write_state(&dir, &url, &mut state)?;
        }
        let missing: Vec<&(String, u64)> = remote
            .iter()
            .filter(|(key, _)| {
                !state
                    .segments
                    .contains(key.rsplit('/').next().unwrap_or_default())
            })
            .collect();
        if !missing.is_empty() {
            std::fs::create_dir_all(&dir).map_err(|e| local(&dir, e))?;
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&local_log)
                .await
                .map_err(|e| local(&local_log, e))?;
            for (key, size) in missing {
                let before = file
                    .metadata()
                    .await
                    .map_err(|e| local(&local_log, e))?
                    .len();
                let appended = lake.append_to(key, &mut file, &local_log).await;
                let n = match appended {
                    Ok(n) => n,
                    Err(e) => {
                        // half a segment is not a log's end: cut it off again
                        file.set_len(before)
                            .await
                            .map_err(|e| local(&local_log, e))?;
                        return Err(e);
                    }
                };
                file.sync_all().await.map_err(|e| local(&local_log, e))?;
                if n != *size {
                    // a short (or long) answer: cut it off again, and say which
                    file.set_len(before)
                        .await
                        .map_err(|e| local(&local_log, e))?;
                    return Err(LakeError::Store {
                        url: lake.url_of(key),
                        message: format!("read {n} bytes of a segment listed at {size}"),
                    });
                }
                state
                    .segments
                    .insert(key.rsplit('/').next().unwrap_or_default().to_owned());
                state.synced_to = before + n;
                write_state(&dir, &url, &mut state)?;
                pulled.segments += 1;
                pulled.bytes += n;
            }
        }
    }
    // the lake's records are the newest whole ones (a run elsewhere wrote them last)
    for name in [HARVEST_FILE, ORIGIN_FILE] {
        pull_record(lake, &key_in(prefix, name), &dir.join(name), pulled).await?;
    }
    Ok(())
}

/// When the record at `offset` of the log was fetched (its header's `fetched_at`).
fn first_fetch(log: &Path, offset: u64) -> Option<chrono::DateTime<chrono::Utc>> {
    use std::io::{BufRead, Read, Seek};
    let mut file = std::io::BufReader::new(std::fs::File::open(log).ok()?);
    file.seek(std::io::SeekFrom::Start(offset)).ok()?;
    let mut line = Vec::new();
    file.take(1 << 20).read_until(b'\n', &mut line).ok()?;
    let header: serde_json::Value = serde_json::from_slice(line.strip_prefix(b"@page ")?).ok()?;
    let at = header.get("fetched_at")?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Puts a raw store's new page-log records in the lake as segments, and its records.
pub struct RawUploader {
    lake: Lake,
    store: RawStore,
    /// The store's place in the lake (`raw/date=D`).
    prefix: String,
    run_id: String,
    seq: u32,
    /// The records' bytes last put, so an unchanged one is not put again.
    records: BTreeMap<&'static str, Vec<u8>>,
}

impl RawUploader {
    /// An uploader of `store` to `prefix` in the lake. The records as they are now (just
    /// pulled: the lake's) are not put again until the run changes them.
    pub fn new(lake: Lake, store: RawStore, prefix: &str, run_id: &str) -> RawUploader {
        let mut records = BTreeMap::new();
        for name in [ORIGIN_FILE, HARVEST_FILE] {
            if let Ok(bytes) = std::fs::read(store.root().join(name)) {
                records.insert(name, bytes);
            }
        }
        RawUploader {
            lake,
            store,
            prefix: prefix.to_owned(),
            run_id: run_id.to_owned(),
            seq: 0,
            records,
        }
    }

    /// Puts the records appended since the last flush as one segment, then the origin and
    /// harvest records if they changed.
    pub async fn flush(&mut self) -> Result<u64, LakeError> {
        let put = self.flush_segments().await?;
        let dir = self.store.root().to_path_buf();
        for name in [ORIGIN_FILE, HARVEST_FILE] {
            let Ok(bytes) = std::fs::read(dir.join(name)) else {
                continue;
            };
            if self.records.get(name) != Some(&bytes) {
                self.lake
                    .put(&key_in(&self.prefix, name), Bytes::from(bytes.clone()))
                    .await?;
                self.records.insert(name, bytes);
            }
        }
        Ok(put)
    }

    /// Puts the page log's records after what the lake has as one segment (whole records
    /// only: up to where the last whole one ends).
    async fn flush_segments(&mut self) -> Result<u64, LakeError> {
        let dir = self.store.root().to_path_buf();
        let url = self.lake.url_of(&self.prefix);
        let (log, end) = self.store.log_extent().map_err(|e| LakeError::Local {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        let mut state = read_state(&dir, &url)?;
        if end > state.synced_to {
            self.seq += 1;
            let name = format!(
                "{}-{:06}-{:08x}.log",
                self.run_id,
                self.seq,
                fastrand::u32(..)
            );
            let key = format!("{}/{name}", segments_of(&self.prefix));
            let put = self
                .lake
                .upload_range(&log, state.synced_to, end - state.synced_to, &key)
                .await?;
            state.segments.insert(name);
            state.synced_to = end;
            write_state(&dir, &url, &mut state)?;
            return Ok(put);
        }
        if end < state.synced_to {
            // The log is shorter than what the lake has of it (gone, or cut by hand, or a
            // rebuild killed half-way): which segments it still holds is unknown. Set it
            // aside and forget them all; the pull brings them back in the lake's order.
            if log.exists() {
                let aside = dir.join(format!(
                    "{}.short-{}",
                    crate::raw_store::log::LOG_FILE,
                    chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
                ));
                std::fs::rename(&log, &aside).map_err(|e| LakeError::Local {
                    path: log.clone(),
                    message: e.to_string(),
                })?;
            }
            tracing::warn!(store = %dir.display(), "RawLogShorterThanLake");
            state.segments.clear();
            state.synced_to = 0;
            write_state(&dir, &url, &mut state)?;
        }
        Ok(0)
    }
}

/// The uploader of a running harvest: flushes every [`UPLOAD_EVERY`] until finished.
pub struct Uploading {
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<(RawUploader, Result<(), LakeError>)>,
}

impl Uploading {
    pub fn start(mut uploader: RawUploader, every: Duration) -> Uploading {
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stopped.notified() => return (uploader, Ok(())),
                }
                if let Err(e) = uploader.flush().await {
                    // the next flush tries again; the last one's error is the run's
                    tracing::warn!(error = %e, "LakeUploadFailed");
                }
            }
        });
        Uploading { stop, task }
    }

    /// Stops the ticks and flushes what is left.
    pub async fn finish(self) -> Result<(), LakeError> {
        self.stop.notify_one();
        let (mut uploader, _) = self.task.await.map_err(|e| LakeError::Store {
            url: "the raw store's uploader".into(),
            message: e.to_string(),
        })?;
        uploader.flush().await.map(drop)
    }
}

/// What a publish to the lake committed.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct LakePublished {
    pub url: String,
    /// `tables/authors` → the version committed.
    pub versions: BTreeMap<String, u64>,
    /// Versions other writers took first, retried.
    pub conflicts: u32,
    /// `tables/authors` → the data file committed, relative to the table.
    #[serde(skip)]
    pub files: BTreeMap<String, String>,
}

/// Publishes `date` from the work directory: one Delta commit a table and report, then the
/// CSV reports, then the manifest (with the versions committed), which says the date is
/// published.
pub async fn publish(
    lake: &Lake,
    work: &Path,
    date: &str,
    run_id: &str,
) -> Result<LakePublished, LakeError> {
    probe_create_only(lake).await?;
    let mut commits = Vec::new();
    for (kind, name) in published_tables() {
        let file = partition_dir(work, kind, date).join(parquet_file(name));
        let lake = lake.clone();
        let run_id = run_id.to_owned();
        let date = date.to_owned();
        commits.push(async move {
            let (schema, rows) = parquet_schema(&file)?;
            let table = DeltaTable::new(&lake, &table_dir(kind, name));
            let committed: Committed = table
                .replace_date(&date, &file, &schema, rows, &run_id)
                .await?;
            Ok::<_, LakeError>((table_dir(kind, name), committed))
        });
    }
    let mut published = LakePublished {
        url: lake.url().to_owned(),
        ..Default::default()
    };
    // every table is committed or fails on its own: none is cancelled half-way because
    // another failed (the manifest, not put then, says the date is not published)
    let mut failed = None;
    for result in futures_util::future::join_all(commits).await {
        match result {
            Ok((dir, committed)) => {
                published.conflicts += committed.conflicts;
                published.versions.insert(dir.clone(), committed.version);
                published.files.insert(dir, committed.path);
            }
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let reports = partition_dir(work, Kind::Reports, date);
    for name in schema::REPORTS {
        let csv = csv_file(name);
        let key = format!("{PUBLISHED}/{}/{csv}", date_dir_name(date));
        lake.upload(&reports.join(&csv), &key).await?;
    }
    let manifest_path = reports.join(MANIFEST_FILE);
    let mut manifest: serde_json::Value = std::fs::read(&manifest_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| LakeError::Local {
            path: manifest_path.clone(),
            message: "the date's manifest is missing or not JSON".into(),
        })?;
    if let Some(m) = manifest.as_object_mut() {
        m.insert(
            "lake".into(),
            serde_json::to_value(&published).unwrap_or_default(),
        );
        // the files where they are in the lake, not in the work directory
        if let Some(files) = m.get_mut("files").and_then(|f| f.as_array_mut()) {
            for file in files {
                let Some(path) = file.get("path").and_then(|p| p.as_str()) else {
                    continue;
                };
                if let Some(lake_path) = lake_path_of(path, date, &published.files) {
                    file["path"] = serde_json::Value::String(lake_path);
                }
            }
        }
    }
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    lake.put(&manifest_key(date), Bytes::from(bytes.clone()))
        .await?;
    write_local(&manifest_path, &bytes)?;
    tracing::info!(date, lake = %lake.url(), conflicts = published.conflicts, "LakePublished");
    Ok(published)
}

/// Where a file of the local layout (`tables/date=D/authors.parquet`, as the manifest names it)
/// is in the lake: the Delta file committed, or the CSV beside the manifest.
fn lake_path_of(path: &str, date: &str, committed: &BTreeMap<String, String>) -> Option<String> {
    let (kind, rest) = path.split_once('/')?;
    let name = rest.strip_prefix(&format!("{}/", date_dir_name(date)))?;
    if let Some(table) = name.strip_suffix(".parquet") {
        let dir = format!("{kind}/{table}");
        let file = committed.get(&dir)?;
        return Some(format!("{dir}/{file}"));
    }
    name.ends_with(".csv")
        .then(|| format!("{PUBLISHED}/{}/{name}", date_dir_name(date)))
}

/// Refuses a store that does not honour create-only writes (some S3-compatible servers ignore
/// `If-None-Match`): on it, two writers' commits would overwrite each other unseen.
async fn probe_create_only(lake: &Lake) -> Result<(), LakeError> {
    let key = format!("locks/.probe-{:016x}", fastrand::u64(..));
    let first = lake.put_new(&key, Bytes::from_static(b"1")).await?;
    let second = lake.put_new(&key, Bytes::from_static(b"2")).await?;
    lake.delete(&key).await?;
    if first && !second {
        return Ok(());
    }
    Err(LakeError::Store {
        url: lake.url_of(&key),
        message: "this store does not refuse a second create-only write of one object \
                  (If-None-Match), so Delta commits could overwrite each other"
            .into(),
    })
}

/// A local Parquet file's Arrow schema and row count.
fn parquet_schema(path: &PathBuf) -> Result<(arrow::datatypes::Schema, u64), LakeError> {
    let bad = |message: String| LakeError::Local {
        path: path.clone(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| bad(e.to_string()))?;
    let rows = builder.metadata().file_metadata().num_rows();
    let mut schema = builder.schema().as_ref().clone();
    schema.metadata.clear();
    Ok((schema, u64::try_from(rows).unwrap_or(0)))
}

impl Lake {
    /// Streams `rel` onto the end of the open local `file`; the bytes appended.
    pub async fn append_to(
        &self,
        rel: &str,
        file: &mut tokio::fs::File,
        path: &Path,
    ) -> Result<u64, LakeError> {
        use futures_util::StreamExt;
        let got = self
            .store
            .get(&self.path(rel))
            .await
            .map_err(|e| self.error(rel, e))?;
        let mut stream = got.into_stream();
        let mut n = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.error(rel, e))?;
            file.write_all(&chunk).await.map_err(|e| LakeError::Local {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            n += chunk.len() as u64;
        }
        Ok(n)
    }

    /// Uploads `len` bytes of the local file `from` from `offset` to `rel`.
    pub async fn upload_range(
        &self,
        from: &Path,
        offset: u64,
        len: u64,
        rel: &str,
    ) -> Result<u64, LakeError> {
        let io = |e: std::io::Error| LakeError::Local {
            path: from.to_path_buf(),
            message: e.to_string(),
        };
        let mut file = tokio::fs::File::open(from).await.map_err(io)?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(io)?;
        let mut part = file.take(len);
        let mut writer = object_store::buffered::BufWriter::with_capacity(
            self.store.clone(),
            self.path(rel),
            super::UPLOAD_PART,
        );
        let fail = |e: std::io::Error| LakeError::Store {
            url: self.url_of(rel),
            message: e.to_string(),
        };
        match tokio::io::copy(&mut part, &mut writer).await {
            Ok(n) if n == len => {
                writer.shutdown().await.map_err(fail)?;
                Ok(n)
            }
            Ok(n) => {
                let _ = writer.abort().await;
                Err(io(std::io::Error::other(format!(
                    "{n} of {len} bytes could be read"
                ))))
            }
            Err(e) => {
                let _ = writer.abort().await;
                Err(fail(e))
            }
        }
    }
}
