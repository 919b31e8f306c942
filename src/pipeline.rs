//! One run for one date: wires the stages (sources → raw store → normalize → aggregate →
//! sinks), owns concurrency and cancellation, and returns what happened for the summary and
//! the exit code. The only module below the command line that imports `sources`.
//!
//! A run with failed streams still publishes what it has (with `harvest_complete = false` on the
//! authors concerned and the failures in the manifest) and exits non-zero; re-running the date
//! fetches only what is missing and replaces the date's partitions whole.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use medium_api::endpoints::Endpoint;

use crate::atomic_file::remove_stale_temps;
use crate::config::Settings;
use crate::error::{RunError, SinkError, TransformError};
use crate::layout::{partition_dir, Kind};
use crate::lock::{DateLock, RunId};
use crate::progress::{Progress, Reporter, Stage};
use crate::raw_store::{HarvestRecord, OriginRecord, RawStore, StoreOrigin, StreamRecord};
use crate::run::{
    AuthorHarvest, AuthorSink, CancelFlag, EndpointCounts, Failure, FetchStats, SpentHarvest,
    StreamHarvest,
};
use crate::schema;
use crate::sinks::manifest::{Incremental, Manifest};
use crate::sinks::parquet::{TableFiles, WrittenTable};
use crate::sinks::partition::Staging;
use crate::sinks::DateSink;
use crate::sources::medium::carry::Previous;
use crate::sources::medium::client::MediumClient;
use crate::sources::medium::crawl::{HarvestSettings, Harvester};
use crate::sources::medium::origin::Origin;
use crate::transforms::aggregate;
use crate::transforms::normalize::{Normalized, Normalizer, TableBatch};

/// What a run did.
#[derive(Debug)]
pub struct RunOutcome {
    pub date: String,
    pub harvest: SpentHarvest,
    pub raw_store: RawStore,
    pub requests: Vec<(Endpoint, EndpointCounts)>,
    pub failures: Vec<Failure>,
    pub duration: Duration,
    /// The manifest that was published with the reports.
    pub manifest: Manifest,
    /// Where the date's tables and reports are.
    pub tables_dir: PathBuf,
    pub reports_dir: PathBuf,
    /// What was committed to the lake, with one.
    pub lake: Option<crate::lake::sync::LakePublished>,
}

impl RunOutcome {
    /// Whether everything was harvested.
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs the job for `settings.date`.
pub async fn run(settings: &Settings) -> Result<RunOutcome, RunError> {
    run_until(settings, CancelFlag::default()).await
}

/// Runs the job for `settings.date` unless `cancel` is set: then no new page is requested, the
/// pages fetched so far stay in the raw store, nothing is published, and the result is
/// [`RunError::Cancelled`]. If another run holds the date's lock, ends at once with
/// [`RunError::Locked`].
pub async fn run_until(settings: &Settings, cancel: CancelFlag) -> Result<RunOutcome, RunError> {
    let run_id = RunId::new(Utc::now());
    let lock = DateLock::acquire(&settings.out, &settings.date.to_string(), &run_id)?;
    run_locked(settings, cancel, lock, run_id).await
}

/// [`run_until`] for a caller that holds the date's lock already (`etl schedule` waits for it).
///
/// With a lake ([`crate::lake`]) the run works in the local work directory `settings.out`:
/// it first pulls what it reads from the lake, uploads its raw store as it goes (also when it
/// fails or is stopped, so a rerun anywhere resumes), and publishes to the lake after it has
/// published locally.
pub async fn run_locked(
    settings: &Settings,
    cancel: CancelFlag,
    lock: DateLock,
    run_id: RunId,
) -> Result<RunOutcome, RunError> {
    if let (Some(from), Some(dir)) = (&settings.source_lake, &settings.source) {
        let pulled = crate::lake::sync::pull_source(from, dir).await?;
        tracing::info!(source = %from.url, segments = pulled.segments, bytes = pulled.bytes, "SourcePulled");
    }
    let Some(lake_settings) = &settings.lake else {
        return run_local(settings, cancel, lock, run_id).await;
    };
    use crate::lake::Lake;
    let lake = Lake::open(lake_settings)?;
    let date = settings.date.to_string();
    // one writer of the date across machines, from before the pull to after the manifest
    let lease =
        crate::lake::lease::Lease::acquire(&lake, &date, run_id.as_str(), lake_settings.lease_ttl)
            .await?;
    let outcome = run_in_lake(settings, cancel, lock, run_id, &lake, lake_settings, &lease).await;
    let released = lease.release().await;
    let outcome = outcome?;
    if let Err(e) = released {
        tracing::warn!(date = %date, error = %e, "LakeLeaseNotReleased");
    }
    Ok(outcome)
}

/// A run of a lake's date under its lease: pull, run locally while uploading, publish.
async fn run_in_lake(
    settings: &Settings,
    cancel: CancelFlag,
    lock: DateLock,
    run_id: RunId,
    lake: &crate::lake::Lake,
    lake_settings: &crate::lake::LakeSettings,
    lease: &crate::lake::lease::Lease,
) -> Result<RunOutcome, RunError> {
    use crate::lake::sync;
    let date = settings.date.to_string();
    sync::pull(lake, &settings.out, &date, settings.incremental).await?;
    let uploader = sync::RawUploader::new(
        lake.clone(),
        RawStore::for_date(&settings.out, &date),
        &sync::raw_prefix(&date),
        run_id.as_str(),
    );
    let uploading = sync::Uploading::start(uploader, lake_settings.upload_every);
    let ran = run_local(settings, cancel, lock, run_id.clone()).await;
    let uploaded = uploading.finish().await;
    let mut outcome = ran?;
    uploaded?;
    if lease.lost() {
        // another writer took the date over while this run was stalled: it publishes, not us
        return Err(crate::error::LakeError::Leased {
            url: lake.url_of(&format!("locks/date={date}.json")),
            holder: "another writer, which took it over while this run did not renew it".into(),
            until: "its run ends".into(),
        }
        .into());
    }
    let published = sync::publish(lake, &settings.out, &date, run_id.as_str()).await?;
    outcome.lake = Some(published);
    Ok(outcome)
}

/// The run in a local output root.
async fn run_local(
    settings: &Settings,
    cancel: CancelFlag,
    lock: DateLock,
    run_id: RunId,
) -> Result<RunOutcome, RunError> {
    let started = Instant::now();
    let cpu_at_start = crate::memory::cpu_secs();
    let started_at = Utc::now();
    let date = settings.date.to_string();
    debug_assert_eq!(lock.date(), date);
    let raw_store = RawStore::for_date(&settings.out, &date);
    let swept = remove_stale_temps(raw_store.root());
    if swept > 0 {
        tracing::info!(swept, "TempFilesSwept");
    }
    // a run of this date killed while publishing is finished now, not after this harvest
    crate::sinks::partition::recover_date(&settings.out, &lock)?;
    if !settings.rebuild {
        check_origin(settings, &raw_store)?;
    }
    // read the page log to its end (cutting what a killed run left half-written) before any
    // stream starts, not in the first append on an async worker
    raw_store.prepare_for_appending()?;
    let stats = Arc::new(FetchStats::default());
    let previous = if settings.rebuild {
        // follow the date's own decisions: stop where it stopped, carry what it carried
        let record = raw_store
            .harvest_record()?
            .ok_or_else(|| RunError::Rebuild {
                date: date.clone(),
                missing: vec![raw_store
                    .root()
                    .join(crate::raw_store::HARVEST_FILE)
                    .display()
                    .to_string()],
            })?;
        Previous::follow(&settings.out, settings.date.0, record).map(Arc::new)
    } else if settings.incremental {
        Previous::find(&settings.out, settings.date.0, settings.carry).map(Arc::new)
    } else {
        None
    };
    if let Some(p) = &previous {
        tracing::info!(date = %date, previous = %p.date, cutoff_ms = p.cutoff_ms, "IncrementalRun");
    }
    let harvester = Arc::new(harvester(settings, &raw_store, &cancel, &stats, &previous)?);
    // the tables are built as the authors arrive, into the date's staging area (declared
    // before the tables so that it is removed after their writer has stopped)
    let staging = Staging::create(&settings.out, &lock, &run_id)?;
    let tables = TablesInProgress::start(&staging, &run_id, &date)?;
    tracing::info!(
        date = %date,
        run_id = %run_id,
        publications = settings.publications.len(),
        source = settings.source.as_ref().map(|s| s.display().to_string()).unwrap_or_else(|| settings.client.base_url.to_string()),
        "RunStarted"
    );
    let progress = Arc::new(Progress::new(stats.clone()));
    let reporter = Reporter::start(
        progress.clone(),
        date.clone(),
        &settings.out,
        !settings.quiet,
        Duration::from_secs(5),
    );
    let harvest = harvester
        .harvest(&settings.publications, tables.sink())
        .await;
    let harvest_secs = started.elapsed().as_secs_f64();
    let harvest_cpu = crate::memory::cpu_secs() - cpu_at_start;
    if cancel.is_cancelled() {
        reporter.finish().await;
        return Err(RunError::Cancelled);
    }
    progress.set_stage(Stage::Publish);
    // the authors' pages are gone: give their memory back before the queries allocate theirs
    crate::memory::release_free();
    let recorded = match settings.rebuild {
        true => raw_store.harvest_record().ok().flatten(),
        false => None,
    };
    if let Some(record) = &recorded {
        // a rebuild publishes what the date's run published, or nothing: the streams that
        // failed then may fail again, no other
        let unexpected: Vec<String> = harvest
            .failures()
            .into_iter()
            .filter(|f| !failed_then(record, &raw_store, f))
            .map(|f| f.error)
            .collect();
        if !unexpected.is_empty() {
            reporter.finish().await;
            return Err(RunError::Rebuild {
                date: date.clone(),
                missing: unexpected,
            });
        }
    }
    let mut record = harvest_record(settings, &raw_store, &harvest, &previous);
    if let Some(then) = &recorded {
        record.compared_with = then.compared_with.clone();
    }
    let compared_with = record.compared_with.clone();
    if let Err(e) = raw_store.set_harvest_record(&record) {
        reporter.finish().await;
        return Err(e.into());
    }
    // (a rebuild reads the date's own store and leaves its origin as it was)
    if !settings.rebuild {
        if let Err(e) = origin_settled(&raw_store, &harvest) {
            reporter.finish().await;
            return Err(e);
        }
    }
    let harvest = match reportable(harvest) {
        Ok(harvest) => harvest,
        Err(error) => {
            reporter.finish().await;
            return Err(error);
        }
    };
    let failures = harvest.failures();
    let requests: Vec<(Endpoint, EndpointCounts)> = Endpoint::ALL
        .iter()
        .map(|e| (*e, stats.counts(*e)))
        .collect();
    let mut manifest = Manifest::of_harvest(settings, started_at, &harvest, &stats, &run_id);
    manifest.incremental = previous
        .as_ref()
        .map(|p| carried_summary(p, settings, &harvest));
    manifest.stages.insert("harvest".into(), harvest_secs);
    manifest
        .cpu_secs
        .insert("harvest".into(), harvest_cpu.max(0.0));
    if !settings.shard_sources.is_empty() {
        manifest.shards = Some(crate::shards::summary(&settings.shard_sources, &date));
    }

    // Normalize → aggregate → publish. CPU-bound and synchronous: off the async workers.
    let out = settings.out.clone();
    let max_drift_pct = settings.max_drift_pct;
    let publish_progress = progress.clone();
    let (harvest, manifest) = tokio::task::spawn_blocking(move || {
        let manifest = publish(
            &out,
            compared_with.as_deref(),
            max_drift_pct,
            (staging, tables),
            &harvest,
            manifest,
            started,
            &publish_progress,
        );
        drop(lock);
        (harvest, manifest)
    })
    .await
    .map_err(|e| RunError::Publish(e.to_string()))?;
    reporter.finish().await;
    let manifest = manifest?;
    let reports_dir = partition_dir(&settings.out, Kind::Reports, &date);
    tracing::info!(date = %date, reports = %reports_dir.display(), "PartitionPublished");
    Ok(RunOutcome {
        tables_dir: partition_dir(&settings.out, Kind::Tables, &date),
        reports_dir,
        date,
        harvest,
        raw_store,
        requests,
        failures,
        duration: started.elapsed(),
        manifest,
        lake: None,
    })
}

/// The crawl of a run: pages from the network or from `--source`, through the date's raw
/// store.
fn harvester(
    settings: &Settings,
    raw_store: &RawStore,
    cancel: &CancelFlag,
    stats: &Arc<FetchStats>,
    previous: &Option<Arc<Previous>>,
) -> Result<Harvester, RunError> {
    let origin = match &settings.source {
        Some(_) if !settings.shard_sources.is_empty() => {
            Origin::Replay(settings.shard_sources.iter().map(RawStore::new).collect())
        }
        Some(dir) => Origin::Replay(vec![RawStore::new(dir)]),
        None => Origin::Http(Box::new(MediumClient::new(
            settings.client.clone(),
            stats.clone(),
        )?)),
    };
    Ok(Harvester::new(
        origin,
        raw_store.clone(),
        HarvestSettings {
            refresh: settings.refresh,
            max_pages: settings.max_pages,
            max_authors: settings.max_authors,
            tasks: settings.client.concurrency.max(4) * 4,
            cancel: cancel.clone(),
            via: settings.via,
            date: settings.date.to_string(),
            previous: previous.clone(),
            shard: settings.shard,
        },
        stats.clone(),
    ))
}

/// Refuses to read a date's stored pages that came from elsewhere than this run reads from, or
/// (replaying) whose origin is unknown, or that a `--refresh` left half-replaced (unless `--refresh`, which reads every page anew),
/// and records this run's origin: as `refreshing` until a `--refresh` has read every stream.
fn check_origin(settings: &Settings, store: &RawStore) -> Result<(), RunError> {
    let requested = match (&settings.source, &settings.source_lake) {
        // a raw store in a lake is the same source from any machine's copy of it
        (Some(_), Some(from)) => StoreOrigin::Source {
            dir: PathBuf::from(from.url.as_str()),
        },
        (Some(dir), None) => StoreOrigin::Source {
            dir: std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone()),
        },
        (None, _) => StoreOrigin::Network {
            base_url: crate::config::redact(settings.client.base_url.as_str()),
        },
    };
    let refuse = |stored: String| RunError::OtherOrigin {
        store: store.root().to_path_buf(),
        stored,
        requested: requested.to_string(),
    };
    let record = |refreshing| OriginRecord {
        origin: requested.clone(),
        refreshing,
    };
    match store.origin()? {
        None if !store.has_pages() => store.set_origin(&record(false))?,
        // a store from before origins were recorded, resumed from the network: what every
        // such store was resumed from until then
        None if settings.source.is_none() => {
            tracing::warn!(store = %store.root().display(), "StoreOriginAssumed");
            store.set_origin(&record(false))?
        }
        None if !settings.refresh => {
            return Err(refuse(
                "an unknown origin (stored before medium-etl recorded origins)".into(),
            ))
        }
        Some(r) if r.origin.same_as(&requested) && !r.refreshing => {}
        Some(r) if r.origin.same_as(&requested) && !settings.refresh => {
            return Err(refuse(format!(
                "{} and from before it (a --refresh that did not finish)",
                r.origin
            )))
        }
        Some(r) if !r.origin.same_as(&requested) && !settings.refresh => {
            return Err(refuse(r.origin.to_string()))
        }
        // --refresh over other, unknown or half-replaced pages
        _ => store.set_origin(&record(true))?,
    }
    Ok(())
}

/// The manifest's `incremental` section, before the rows are counted (publish does that).
fn carried_summary(
    previous: &Previous,
    settings: &Settings,
    harvest: &SpentHarvest,
) -> Incremental {
    let streams = harvest
        .publications
        .iter()
        .map(|p| p.stream.carried.len())
        .chain(
            harvest
                .authors
                .iter()
                .flat_map(|a| [a.profile.carried.len(), a.following.carried.len()]),
        );
    let (mut carried, mut full, mut pages) = (0, 0, 0);
    for n in streams {
        match n {
            0 => full += 1,
            n => {
                carried += 1;
                pages += n;
            }
        }
    }
    let cutoff = chrono::DateTime::from_timestamp_millis(previous.cutoff_ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default();
    Incremental {
        previous_date: previous.date.clone(),
        cutoff,
        lag_days: settings.carry.lag_days,
        streams_carried: carried,
        pages_carried: pages,
        streams_read_in_full: full,
        ..Incremental::default()
    }
}

/// Whether the date's run recorded the stream of `failure` as not complete (it failed then).
fn failed_then(record: &HarvestRecord, store: &RawStore, failure: &Failure) -> bool {
    use medium_api::endpoints::{Endpoint, StreamId};
    let Some(user) = failure.user_id.clone() else {
        return false;
    };
    let stream = match failure.endpoint {
        Endpoint::ProfileStream | Endpoint::PostBodies => StreamId::Profile(user),
        Endpoint::Following => StreamId::Following(user),
        Endpoint::PublicationStream => return false,
    };
    record
        .streams
        .get(&store.stream_key(&stream))
        .is_none_or(|s| !s.complete)
}

/// What a run is asked to harvest, as flags (its harvest record's `flags`): publications as
/// `--collection-id` / `--publication`, `--max-authors`, `--max-pages` and `--via`.
pub fn harvest_flags(settings: &Settings) -> Vec<String> {
    use medium_api::endpoints::PublicationRef;
    let mut flags = Vec::new();
    for p in &settings.publications {
        let (flag, key) = match p {
            PublicationRef::Id(id) => ("--collection-id", id),
            PublicationRef::Slug(slug) => ("--publication", slug),
        };
        flags.extend([flag.to_owned(), key.clone()]);
    }
    if let Some(n) = settings.max_authors {
        flags.extend(["--max-authors".to_owned(), n.to_string()]);
    }
    flags.extend(["--max-pages".to_owned(), settings.max_pages.to_string()]);
    flags.extend(["--via".to_owned(), settings.via.to_string()]);
    flags
}

/// How the harvest read each stream, for later incremental runs and `etl rebuild`.
fn harvest_record(
    settings: &Settings,
    store: &RawStore,
    harvest: &SpentHarvest,
    previous: &Option<Arc<Previous>>,
) -> HarvestRecord {
    let flags = harvest_flags(settings);
    fn record<P>(store: &RawStore, s: &StreamHarvest<P>) -> Option<(String, StreamRecord)> {
        Some((
            store.stream_key(&s.stream),
            StreamRecord {
                via: s.via?,
                complete: s.is_complete(),
                pages: s.pages.len(),
                carried_from: s.carried_from().map(str::to_owned),
            },
        ))
    }
    let mut streams = std::collections::BTreeMap::new();
    for p in &harvest.publications {
        streams.extend(record(store, &p.stream));
    }
    for a in &harvest.authors {
        streams.extend(record(store, &a.profile));
        streams.extend(record(store, &a.following));
    }
    let followings_full = harvest
        .authors
        .iter()
        .all(|a| a.following.carried.is_empty());
    HarvestRecord {
        incremental: previous.is_some(),
        followings_full,
        previous_date: previous.as_ref().map(|p| p.date.clone()),
        cutoff_ms: previous.as_ref().map(|p| p.cutoff_ms),
        flags,
        compared_with: previous_published(&settings.out, &settings.date.to_string()),
        streams,
    }
}

/// After a harvest that read every stream, a `--refresh` has replaced whatever the store held
/// before: its pages are all from the recorded origin now.
fn origin_settled(store: &RawStore, harvest: &SpentHarvest) -> Result<(), RunError> {
    if let Some(r) = store.origin()? {
        if r.refreshing && harvest.failures().is_empty() {
            store.set_origin(&OriginRecord {
                refreshing: false,
                ..r
            })?;
        }
    }
    Ok(())
}

/// The harvest, unless every publication yielded nothing at all: then there is nothing to
/// report, and the run ends with the first one's error.
fn reportable(mut harvest: SpentHarvest) -> Result<SpentHarvest, RunError> {
    let all_failed = !harvest.publications.is_empty()
        && harvest
            .publications
            .iter()
            .all(|p| p.stream.pages.is_empty() && p.stream.end.is_err());
    if !all_failed {
        return Ok(harvest);
    }
    let p = harvest.publications.swap_remove(0);
    match p.stream.end {
        Err(source) => Err(RunError::Publication {
            publication: p.publication.to_string(),
            source,
        }),
        Ok(_) => unreachable!("checked above: every publication's stream ended in an error"),
    }
}

/// The latest published date before `date` under `out` (its manifest exists).
fn previous_published(out: &Path, date: &str) -> Option<String> {
    let entries = std::fs::read_dir(out.join(Kind::Reports.dir_name())).ok()?;
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            crate::layout::date_of_dir_name(&name).map(str::to_owned)
        })
        .filter(|d| d.as_str() < date && chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
        .filter(|d| crate::layout::manifest_path(out, d).exists())
        .max()
}

/// 00:00 UTC of a `YYYY-MM-DD` date, in epoch ms.
fn day_start_ms(date: &str) -> i64 {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or_default()
}

/// Builds the date's reports beside the tables the harvest wrote into the staging area, and
/// publishes them whole.
#[allow(clippy::too_many_arguments)]
fn publish(
    out: &Path,
    compared_with: Option<&str>,
    max_drift_pct: f64,
    (mut date, tables): (Staging, TablesInProgress),
    harvest: &SpentHarvest,
    mut manifest: Manifest,
    started: Instant,
    progress: &Progress,
) -> Result<Manifest, RunError> {
    let publish_started = Instant::now();
    let publish_cpu = crate::memory::cpu_secs();
    let (written, normalized) = tables.finish(harvest)?;
    if !normalized.rejected.is_empty() {
        tracing::warn!(count = normalized.rejected.len(), "ValuesRejected");
    }
    if let Some(inc) = manifest.incremental.as_mut() {
        (inc.posts_fetched, inc.posts_carried) =
            (normalized.posts_fetched, normalized.posts_carried);
        (inc.followings_fetched, inc.followings_carried) =
            (normalized.followings_fetched, normalized.followings_carried);
    }
    let Normalized { rejected, .. } = normalized;
    manifest.rejected_values = rejected;
    let mut rows = std::collections::BTreeMap::new();
    for table in written {
        manifest.rows.insert(table.name.to_owned(), table.rows);
        rows.insert(table.name, table.rows);
        progress.rows_written(table.rows);
        manifest
            .files
            .push(date.table_entry(table.name, table.bytes, table.rows));
    }
    let tables_dir = date.staged_tables();
    let polars = |report| move |source| TransformError::Polars { report, source };
    let mut metrics =
        aggregate::author_metrics(&tables_dir).map_err(polars(schema::AUTHOR_METRICS))?;
    let mut summary = aggregate::publication_summary(&tables_dir, &metrics)
        .map_err(polars(schema::PUBLICATION_SUMMARY))?;
    let previous = compared_with.map(str::to_owned);
    let before_tables = previous
        .as_ref()
        .map(|d| (d.as_str(), partition_dir(out, Kind::Tables, d)));
    manifest.checks = crate::transforms::checks::run(
        &tables_dir,
        &rows,
        before_tables.as_ref().map(|(d, p)| (*d, p.as_path())),
        max_drift_pct,
    )
    .map_err(polars("the quality checks"))?;
    for c in manifest.failed_checks() {
        tracing::warn!(check = %c.name, detail = %c.detail, items = c.items.len(), "QualityCheckFailed");
    }
    let before = previous.map(|d| aggregate::Before {
        tables_dir: partition_dir(out, Kind::Tables, &d),
        reports_dir: partition_dir(out, Kind::Reports, &d),
        date: d,
    });
    let mut changes =
        aggregate::author_changes(&tables_dir, &metrics, day_start_ms(&manifest.date), before)
            .map_err(polars(schema::AUTHOR_CHANGES))?;
    for (name, df) in [
        (schema::AUTHOR_METRICS, &mut metrics),
        (schema::PUBLICATION_SUMMARY, &mut summary),
        (schema::AUTHOR_CHANGES, &mut changes),
    ] {
        manifest.rows.insert(name.to_owned(), df.height());
        manifest.files.extend(date.write_report(name, df)?);
    }
    manifest
        .stages
        .insert("publish".into(), publish_started.elapsed().as_secs_f64());
    manifest.cpu_secs.insert(
        "publish".into(),
        (crate::memory::cpu_secs() - publish_cpu).max(0.0),
    );
    manifest.finished_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    manifest.duration_secs = started.elapsed().as_secs_f64();
    date.commit(&manifest)?;
    Ok(manifest)
}

/// The date's tables while the harvest runs: the normalizer, fed by the crawl as each author
/// finishes ([`FeedTables`]), and the thread that writes its batches into the staging area.
/// Dropped unfinished (a cancelled or failed run), it stops the writer and waits for it, so
/// the staging area can then be removed.
struct TablesInProgress {
    building: Arc<Mutex<Building>>,
    writer: Option<std::thread::JoinHandle<Result<Vec<WrittenTable>, SinkError>>>,
}

struct Building {
    normalizer: Option<Normalizer>,
    /// `None` once the writer has stopped (it failed: its error comes when it is joined).
    to_writer: Option<std::sync::mpsc::SyncSender<TableBatch>>,
    error: Option<TransformError>,
}

impl Building {
    fn send(&mut self, batches: Vec<TableBatch>) {
        for batch in batches {
            let Some(tx) = &self.to_writer else {
                return;
            };
            if tx.send(batch).is_err() {
                self.to_writer = None;
            }
        }
    }
}

/// The crawl's handle on the normalizer.
struct FeedTables(Arc<Mutex<Building>>);

impl AuthorSink for FeedTables {
    fn author(&mut self, _index: usize, author: &AuthorHarvest) {
        let mut b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if b.error.is_some() {
            return;
        }
        let Some(normalizer) = b.normalizer.as_mut() else {
            return;
        };
        match normalizer.author(author) {
            Ok(batches) => b.send(batches),
            Err(e) => b.error = Some(e),
        }
    }
}

impl TablesInProgress {
    /// Batches the normalizer may have waiting for the writer: a few, so a slow disk slows
    /// the normalizer rather than filling memory.
    const QUEUE: usize = 4;

    fn start(staging: &Staging, run_id: &RunId, date: &str) -> Result<TablesInProgress, RunError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<TableBatch>(Self::QUEUE);
        let mut files = TableFiles::new(&staging.staged_tables(), Some(run_id));
        let writer = std::thread::Builder::new()
            .name("table-writer".into())
            .spawn(move || {
                for (table, batch) in rx {
                    // on an error the thread ends; the sender sees it and stops sending
                    files.write(table, &batch)?;
                }
                files.close()
            })
            .map_err(|e| RunError::Publish(format!("cannot start the table writer: {e}")))?;
        Ok(TablesInProgress {
            building: Arc::new(Mutex::new(Building {
                normalizer: Some(Normalizer::new(date)),
                to_writer: Some(tx),
                error: None,
            })),
            writer: Some(writer),
        })
    }

    fn sink(&self) -> Box<dyn AuthorSink> {
        Box::new(FeedTables(self.building.clone()))
    }

    /// The rest of the tables from the spent harvest; waits for the writer to close them.
    fn finish(
        mut self,
        harvest: &SpentHarvest,
    ) -> Result<(Vec<WrittenTable>, Normalized), RunError> {
        let mut b = self.building.lock().unwrap_or_else(|e| e.into_inner());
        let result = match (b.error.take(), b.normalizer.take()) {
            (Some(e), _) => Err(e.into()),
            (None, Some(n)) => n.finish(harvest).map_err(RunError::from),
            // only this consuming method takes the normalizer
            (None, None) => Err(RunError::Publish("the tables were finished twice".into())),
        };
        let normalized = result.map(|(batches, normalized)| {
            b.send(batches);
            normalized
        });
        b.to_writer = None;
        drop(b);
        let mut written = self.join()?;
        written.sort_by_key(|t| schema::TABLES.iter().position(|name| *name == t.name));
        Ok((written, normalized?))
    }

    fn join(&mut self) -> Result<Vec<WrittenTable>, RunError> {
        let Some(writer) = self.writer.take() else {
            return Ok(Vec::new());
        };
        match writer.join() {
            Ok(written) => Ok(written?),
            Err(_) => Err(RunError::Publish("the table writer panicked".into())),
        }
    }
}

impl Drop for TablesInProgress {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let mut b = self.building.lock().unwrap_or_else(|e| e.into_inner());
            b.to_writer = None;
            drop(b);
            let _ = self.join();
        }
    }
}
