//! One run for one date: wires the stages (harvest → normalize → aggregate → publish), owns
//! concurrency, and returns what happened for the summary and the exit code.
//!
//! A run with failed streams still publishes what it has (with `harvest_complete = false` on the
//! authors concerned and the failures in the manifest) and exits non-zero; re-running the date
//! fetches only what is missing and replaces the date's partitions whole.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};

use crate::atomic_file::remove_stale_temps;
use crate::config::Settings;
use crate::error::{RunError, SinkError};
use crate::progress::{Progress, Reporter, STATUS_FILE};
use crate::raw_store::RawStore;
use crate::schema;
use crate::sinks::manifest::{
    AuthorCounts, FileEntry, Manifest, ManifestSettings, Sources, TableColumns,
};
use crate::sinks::partition::{partition_dir, Staging};
use crate::sinks::{parquet, report};
use crate::sources::medium::client::{EndpointCounts, FetchStats, MediumClient};
use crate::sources::medium::endpoints::Endpoint;
use crate::sources::medium::harvest::{
    CancelFlag, Failure, Harvest, HarvestSettings, Harvester, Origin,
};
use crate::sources::medium::via::Via;
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
/// [`RunError::Cancelled`].
pub async fn run_until(settings: &Settings, cancel: CancelFlag) -> Result<RunOutcome, RunError> {
    let started = std::time::Instant::now();
    let started_at = Utc::now();
    let date = settings.date.to_string();
    let raw_store = RawStore::for_date(&settings.out, &date);
    let swept = remove_stale_temps(raw_store.root());
    if swept > 0 {
        tracing::info!(swept, "TempFilesSwept");
    }
    let stats = Arc::new(FetchStats::default());
    let origin = match &settings.source {
        Some(dir) => Origin::Replay(RawStore::new(dir)),
        None => Origin::Http(Box::new(MediumClient::new(
            settings.client.clone(),
            stats.clone(),
        )?)),
    };
    let harvester = Arc::new(Harvester::new(
        origin,
        raw_store.clone(),
        HarvestSettings {
            refresh: settings.refresh,
            max_pages: settings.max_pages,
            max_authors: settings.max_authors,
            tasks: settings.client.concurrency.max(4) * 4,
            cancel: cancel.clone(),
            via: settings.via,
        },
        stats.clone(),
    ));
    tracing::info!(
        date = %date,
        publications = settings.publications.len(),
        source = settings.source.as_ref().map(|s| s.display().to_string()).unwrap_or_else(|| settings.client.base_url.to_string()),
        "RunStarted"
    );
    let progress = Arc::new(Progress::new(stats.clone()));
    let reporter = Reporter::start(
        progress.clone(),
        date.clone(),
        settings.out.join(STATUS_FILE),
        !settings.quiet,
        Duration::from_secs(5),
    );
    let harvest = harvester.harvest(&settings.publications).await;
    let harvest_secs = started.elapsed().as_secs_f64();
    if cancel.is_cancelled() {
        reporter.finish().await;
        return Err(RunError::Cancelled);
    }
    progress.set_stage("publish");

    // A publication that yielded nothing at all ends the run: there is nothing to report.
    if !harvest.publications.is_empty()
        && harvest
            .publications
            .iter()
            .all(|p| p.stream.pages.is_empty() && p.stream.end.is_err())
    {
        reporter.finish().await;
        if let Some(p) = harvest.publications.into_iter().next() {
            if let Err(source) = p.stream.end {
                return Err(RunError::Publication {
                    publication: p.publication.to_string(),
                    source,
                });
            }
        }
        unreachable!("checked above: every publication failed");
    }

    let failures = harvest.failures();
    let requests: Vec<(Endpoint, EndpointCounts)> = Endpoint::ALL
        .iter()
        .map(|e| (*e, stats.counts(*e)))
        .collect();

    // Normalize → aggregate → publish. CPU-bound and synchronous: off the async workers.
    let out = settings.out.clone();
    let date_for_publish = date.clone();
    let mut base =
        manifest_before_publish(settings, &date, started_at, &harvest, &failures, &stats);
    base.stages.insert("harvest", harvest_secs);
    let publish_progress = progress.clone();
    let (harvest, manifest) = tokio::task::spawn_blocking(move || {
        let manifest = publish(
            &out,
            &date_for_publish,
            &harvest,
            base,
            started,
            &publish_progress,
        );
        (harvest, manifest)
    })
    .await
    .map_err(|e| RunError::Client(format!("the publish task failed: {e}")))?;
    reporter.finish().await;
    let manifest = manifest?;
    let reports_dir = partition_dir(&settings.out, "reports", &date);
    tracing::info!(date = %date, reports = %reports_dir.display(), "PartitionPublished");
    Ok(RunOutcome {
        tables_dir: partition_dir(&settings.out, "tables", &date),
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

/// The manifest as far as it is known before publishing (no rows, files or end time yet).
fn manifest_before_publish(
    settings: &Settings,
    date: &str,
    started_at: chrono::DateTime<Utc>,
    harvest: &Harvest,
    failures: &[Failure],
    stats: &FetchStats,
) -> Manifest {
    let totals = stats.totals();
    Manifest {
        tool: "medium-etl",
        version: env!("CARGO_PKG_VERSION"),
        date: date.to_owned(),
        arguments: settings.arguments.clone(),
        settings: ManifestSettings {
            publications: settings
                .publications
                .iter()
                .map(|p| p.key().to_owned())
                .collect(),
            base_url: settings.client.base_url.to_string(),
            source: settings.source.as_ref().map(|s| s.display().to_string()),
            out: settings.out.display().to_string(),
            concurrency: settings.client.concurrency,
            max_rps: settings.client.max_rps,
            refresh: settings.refresh,
            max_authors: settings.max_authors,
            max_pages: settings.max_pages,
            retries: settings.client.retries,
            timeout_secs: settings.client.timeout.as_secs_f64(),
        },
        started_at: started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        finished_at: String::new(),
        duration_secs: 0.0,
        complete: failures.is_empty(),
        requests: Endpoint::ALL
            .iter()
            .map(|e| (e.name(), stats.counts(*e)))
            .collect(),
        requests_total: totals.requests,
        retried_total: totals.retried,
        failed_total: totals.failed,
        bytes_fetched: stats.bytes(),
        authors: AuthorCounts {
            found: harvest.authors_found,
            harvested: harvest.authors.len(),
            complete: harvest.authors.iter().filter(|a| a.is_complete()).count(),
            capped_at: harvest.authors_capped_at,
            incomplete: harvest
                .authors
                .iter()
                .filter(|a| !a.is_complete())
                .map(|a| a.user.user_id.clone())
                .collect(),
            skipped_ids: harvest.skipped_ids.clone(),
        },
        failures: failures.to_vec(),
        sources: sources(settings, harvest, stats),
        rows: BTreeMap::new(),
        files: Vec::new(),
        stages: BTreeMap::new(),
    }
}

/// The manifest's `sources`: formats read per family, switches, streams not carried, and the
/// columns each format used fills.
fn sources(settings: &Settings, harvest: &Harvest, stats: &FetchStats) -> Sources {
    let pages: BTreeMap<&'static str, BTreeMap<Via, u64>> = Endpoint::ALL
        .iter()
        .map(|e| (e.name(), stats.pages_by_via(*e)))
        .filter(|(_, by_via)| !by_via.is_empty())
        .collect();
    let used: BTreeSet<Via> = pages.values().flat_map(|m| m.keys().copied()).collect();
    // Only followings can go uncarried: every format carries the other two families.
    let uncarried = harvest
        .authors
        .iter()
        .filter(|a| a.following.is_not_carried())
        .count();
    let not_carried: BTreeMap<&'static str, usize> = (uncarried > 0)
        .then_some((Endpoint::Following.name(), uncarried))
        .into_iter()
        .collect();
    let columns = used
        .iter()
        .map(|via| {
            let tables = [
                (schema::POSTS, schema::posts()),
                (schema::PUBLICATIONS, schema::publications()),
            ]
            .into_iter()
            .map(|(table, s)| {
                let null = schema::columns_not_carried(*via, table);
                let filled = s
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .filter(|name| !null.contains(&name.as_str()))
                    .collect();
                (
                    table,
                    TableColumns {
                        filled,
                        null: null.to_vec(),
                    },
                )
            })
            .collect();
            (*via, tables)
        })
        .collect();
    Sources {
        via: settings.via.to_string(),
        pages,
        switches: harvest.switches.clone(),
        not_carried,
        columns,
    }
}

fn relative(out: &Path, path: &Path) -> String {
    path.strip_prefix(out)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Builds the date's tables and reports in a staging area and publishes them.
fn publish(
    out: &Path,
    date: &str,
    harvest: &Harvest,
    mut manifest: Manifest,
    started: std::time::Instant,
    progress: &Progress,
) -> Result<Manifest, RunError> {
    let publish_started = std::time::Instant::now();
    let tables = normalize::normalize(harvest)?;
    let staging = Staging::create(out, date)?;
    for (name, batch) in tables.named() {
        let file = format!("{name}.parquet");
        let bytes = parquet::write_batch(&staging.dir("tables").join(&file), batch)?;
        manifest.rows.insert(name, batch.num_rows());
        progress.rows_written.fetch_add(
            batch.num_rows() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        manifest.files.push(FileEntry {
            path: relative(out, &staging.final_dir("tables").join(file)),
            bytes,
            rows: Some(batch.num_rows()),
        });
    }
    let tables_dir = staging.dir("tables");
    let mut metrics = aggregate::author_metrics(&tables_dir)
        .map_err(|e| SinkError::polars("computing author_metrics", e))?;
    let mut summary = aggregate::publication_summary(&tables_dir, &metrics)
        .map_err(|e| SinkError::polars("computing publication_summary", e))?;
    for (name, df) in [
        (schema::AUTHOR_METRICS, &mut metrics),
        (schema::PUBLICATION_SUMMARY, &mut summary),
    ] {
        let reports = staging.dir("reports");
        let rows = df.height();
        manifest.rows.insert(name, rows);
        let pq = format!("{name}.parquet");
        let bytes = report::write_parquet(df, &reports.join(&pq))?;
        manifest.files.push(FileEntry {
            path: relative(out, &staging.final_dir("reports").join(pq)),
            bytes,
            rows: Some(rows),
        });
        let csv = format!("{name}.csv");
        let bytes = report::write_csv(df, &reports.join(&csv))?;
        manifest.files.push(FileEntry {
            path: relative(out, &staging.final_dir("reports").join(csv)),
            bytes,
            rows: Some(rows),
        });
    }
    manifest
        .stages
        .insert("publish", publish_started.elapsed().as_secs_f64());
    manifest.finished_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    manifest.duration_secs = started.elapsed().as_secs_f64();
    let mut json = serde_json::to_vec_pretty(&manifest).map_err(|e| {
        SinkError::io(
            staging.dir("reports").join(schema::MANIFEST),
            std::io::Error::other(e),
        )
    })?;
    json.push(b'\n');
    crate::atomic_file::write_atomic(&staging.dir("reports").join(schema::MANIFEST), &json, true)
        .map_err(SinkError::from)?;
    staging.publish()?;
    Ok(manifest)
}

/// The run summary printed at the end of `etl run`.
pub fn summary(outcome: &RunOutcome) -> String {
    use std::fmt::Write;
    let h = &outcome.harvest;
    let mut s = String::new();
    let stage = |k: &str| outcome.manifest.stages.get(k).copied().unwrap_or(0.0);
    let _ = writeln!(
        s,
        "run {} finished in {:.1}s (harvest {:.1}s, normalize + aggregate + publish {:.1}s)",
        outcome.date,
        outcome.duration.as_secs_f64(),
        stage("harvest"),
        stage("publish")
    );
    for p in &h.publications {
        let name = p
            .collection
            .as_ref()
            .and_then(|c| c.name.clone())
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  {} {}: {} page(s){}",
            p.publication,
            if name.is_empty() {
                String::new()
            } else {
                format!("({name})")
            },
            p.stream.pages.len(),
            if p.stream.is_complete() {
                ""
            } else {
                ", FAILED"
            }
        );
    }
    let complete = h.authors.iter().filter(|a| a.is_complete()).count();
    let _ = writeln!(
        s,
        "  authors: {} found{}, {} harvested, {} incomplete",
        h.authors_found,
        h.authors_capped_at
            .map(|c| format!(" (capped at {c})"))
            .unwrap_or_default(),
        complete,
        h.authors.len() - complete
    );
    for (endpoint, c) in &outcome.requests {
        let _ = writeln!(
            s,
            "  {:<18} requests {:>6}  fetched {:>6}  from store {:>6}  retried {:>4}  failed {:>4}",
            endpoint.name(),
            c.requests,
            c.pages_fetched,
            c.pages_from_store,
            c.retried,
            c.failed
        );
    }
    let src = &outcome.manifest.sources;
    let per_family: Vec<String> = src
        .pages
        .iter()
        .map(|(family, by_via)| {
            let parts: Vec<String> = by_via.iter().map(|(v, n)| format!("{v} {n}")).collect();
            format!("{family} {}", parts.join(", "))
        })
        .collect();
    let _ = writeln!(
        s,
        "  sources (--via {}): {}",
        src.via,
        per_family.join("; ")
    );
    for sw in &src.switches {
        let _ = writeln!(
            s,
            "  switched {} {}: {} → {}: {}",
            if sw.family { "family" } else { "stream" },
            if sw.family {
                sw.endpoint.to_owned()
            } else {
                sw.stream.clone()
            },
            sw.from,
            sw.to
                .map_or("none (no other format carries it)", |t| t.name()),
            sw.reason
        );
    }
    for (family, n) in &src.not_carried {
        let _ = writeln!(
            s,
            "  not harvested: {family} of {n} author(s): no format in use carries it (followings exist only in the JSON API)"
        );
    }
    for (via, tables) in &src.columns {
        for (table, cols) in tables {
            if !cols.null.is_empty() {
                let _ = writeln!(s, "  {via} leaves null: {table}.{}", cols.null.join(", "));
            }
        }
    }
    let _ = writeln!(s, "  raw store: {}", outcome.raw_store.root().display());
    let rows = &outcome.manifest.rows;
    let _ = writeln!(
        s,
        "  tables:  {} ({} authors, {} posts, {} followings, {} publications)",
        outcome.tables_dir.display(),
        rows.get(schema::AUTHORS).copied().unwrap_or(0),
        rows.get(schema::POSTS).copied().unwrap_or(0),
        rows.get(schema::FOLLOWINGS).copied().unwrap_or(0),
        rows.get(schema::PUBLICATIONS).copied().unwrap_or(0),
    );
    let _ = writeln!(
        s,
        "  reports: {} (author_metrics, publication_summary, _manifest.json)",
        outcome.reports_dir.display()
    );
    if !outcome.failures.is_empty() {
        let _ = writeln!(s, "  {} failure(s):", outcome.failures.len());
        for f in &outcome.failures {
            let who = f
                .user_id
                .as_deref()
                .map(|u| format!(" user {u}"))
                .unwrap_or_default();
            let _ = writeln!(s, "    {}{}: {}", f.endpoint, who, f.error);
        }
        let _ = writeln!(s, "  re-run the same --date to fetch only what is missing");
    }
    s
}
