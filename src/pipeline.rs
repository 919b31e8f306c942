//! One run for one date: wires the stages (sources → raw store → normalize → aggregate →
//! sinks), owns concurrency and cancellation, and returns what happened for the summary and
//! the exit code. The only module below the command line that imports `sources`.
//!
//! A run with failed streams still publishes what it has (with `harvest_complete = false` on the
//! authors concerned and the failures in the manifest) and exits non-zero; re-running the date
//! fetches only what is missing and replaces the date's partitions whole.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use medium_api::endpoints::Endpoint;

use crate::atomic_file::remove_stale_temps;
use crate::config::Settings;
use crate::error::{RunError, TransformError};
use crate::layout::{partition_dir, Kind};
use crate::lock::{DateLock, RunId};
use crate::progress::{Progress, Reporter, Stage};
use crate::raw_store::{HarvestRecord, OriginRecord, RawStore, StoreOrigin, StreamRecord};
use crate::run::{CancelFlag, EndpointCounts, Failure, FetchStats, Harvest, StreamHarvest};
use crate::schema;
use crate::sinks::manifest::{Incremental, Manifest};
use crate::sinks::partition::Staging;
use crate::sinks::DateSink;
use crate::sources::medium::carry::Previous;
use crate::sources::medium::client::MediumClient;
use crate::sources::medium::crawl::{HarvestSettings, Harvester};
use crate::sources::medium::origin::Origin;
use crate::transforms::{aggregate, normalize};

/// What a run did.
#[derive(Debug)]
pub struct RunOutcome {
    pub date: String,
    pub harvest: Harvest,
    pub raw_store: RawStore,
    pub requests: Vec<(Endpoint, EndpointCounts)>,
    pub failures: Vec<Failure>,
    pub duration: Duration,
    /// The manifest that was published with the reports.
    pub manifest: Manifest,
    /// Where the date's tables and reports are.
    pub tables_dir: PathBuf,
    pub reports_dir: PathBuf,
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
pub async fn run_locked(
    settings: &Settings,
    cancel: CancelFlag,
    lock: DateLock,
    run_id: RunId,
) -> Result<RunOutcome, RunError> {
    let started = Instant::now();
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
    let harvest = harvester.harvest(&settings.publications).await;
    let harvest_secs = started.elapsed().as_secs_f64();
    if cancel.is_cancelled() {
        reporter.finish().await;
        return Err(RunError::Cancelled);
    }
    progress.set_stage(Stage::Publish);
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

    // Normalize → aggregate → publish. CPU-bound and synchronous: off the async workers.
    let out = settings.out.clone();
    let max_drift_pct = settings.max_drift_pct;
    let publish_progress = progress.clone();
    let (harvest, manifest) = tokio::task::spawn_blocking(move || {
        let manifest = publish(
            &out,
            compared_with.as_deref(),
            max_drift_pct,
            &lock,
            &run_id,
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
        Some(dir) => Origin::Replay(RawStore::new(dir)),
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
        },
        stats.clone(),
    ))
}

/// Refuses to read a date's stored pages that came from elsewhere than this run reads from, or
/// (replaying) whose origin is unknown, or that a `--refresh` left half-replaced (unless `--refresh`, which reads every page anew),
/// and records this run's origin: as `refreshing` until a `--refresh` has read every stream.
fn check_origin(settings: &Settings, store: &RawStore) -> Result<(), RunError> {
    let requested = match &settings.source {
        Some(dir) => StoreOrigin::Source {
            dir: std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone()),
        },
        None => StoreOrigin::Network {
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
fn carried_summary(previous: &Previous, settings: &Settings, harvest: &Harvest) -> Incremental {
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

/// Rows of a table observed on `date` and carried from earlier dates.
fn fetched_and_carried(batch: &arrow::record_batch::RecordBatch, date: &str) -> (usize, usize) {
    use arrow::array::{Array, Date32Array};
    let today = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .and_then(|d| i32::try_from((d - chrono::NaiveDate::default()).num_days()).ok());
    let Some(col) = batch
        .column_by_name("observed_on")
        .and_then(|c| c.as_any().downcast_ref::<Date32Array>())
    else {
        return (batch.num_rows(), 0);
    };
    let fetched = (0..col.len())
        .filter(|&i| col.is_valid(i) && Some(col.value(i)) == today)
        .count();
    (fetched, col.len() - fetched)
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

/// How the harvest read each stream, for later incremental runs and `etl rebuild`.
fn harvest_record(
    settings: &Settings,
    store: &RawStore,
    harvest: &Harvest,
    previous: &Option<Arc<Previous>>,
) -> HarvestRecord {
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
fn origin_settled(store: &RawStore, harvest: &Harvest) -> Result<(), RunError> {
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
fn reportable(mut harvest: Harvest) -> Result<Harvest, RunError> {
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

/// Builds the date's tables and reports in a staging area and publishes them whole.
#[allow(clippy::too_many_arguments)]
fn publish(
    out: &Path,
    compared_with: Option<&str>,
    max_drift_pct: f64,
    lock: &DateLock,
    run_id: &RunId,
    harvest: &Harvest,
    mut manifest: Manifest,
    started: Instant,
    progress: &Progress,
) -> Result<Manifest, RunError> {
    let publish_started = Instant::now();
    let tables = normalize::normalize(harvest)?;
    if !tables.rejected.is_empty() {
        tracing::warn!(count = tables.rejected.len(), "ValuesRejected");
    }
    manifest.rejected_values = tables.rejected.clone();
    let date_text = manifest.date.clone();
    if let Some(inc) = manifest.incremental.as_mut() {
        (inc.posts_fetched, inc.posts_carried) = fetched_and_carried(&tables.posts, &date_text);
        (inc.followings_fetched, inc.followings_carried) =
            fetched_and_carried(&tables.followings, &date_text);
    }
    let mut date = Staging::create(out, lock, run_id)?;
    for (name, batch) in tables.named() {
        let file = date.write_table(name, batch)?;
        manifest.rows.insert(name.to_owned(), batch.num_rows());
        progress.rows_written(batch.num_rows());
        manifest.files.push(file);
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
        &tables,
        before_tables.as_ref().map(|(d, p)| (*d, p.as_path())),
        max_drift_pct,
    );
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
    manifest.finished_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    manifest.duration_secs = started.elapsed().as_secs_f64();
    date.commit(&manifest)?;
    Ok(manifest)
}
