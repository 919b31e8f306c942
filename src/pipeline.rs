//! One run for one date: wires the stages (harvest → ...), owns concurrency, and returns what
//! happened for the summary and the exit code.

use std::sync::Arc;
use std::time::Duration;

use crate::atomic_file::remove_stale_temps;
use crate::config::Settings;
use crate::error::RunError;
use crate::raw_store::RawStore;
use crate::sources::medium::client::{EndpointCounts, FetchStats, MediumClient};
use crate::sources::medium::endpoints::Endpoint;
use crate::sources::medium::harvest::{Failure, Harvest, HarvestSettings, Harvester, Origin};

/// What a run did.
#[derive(Debug)]
pub struct RunOutcome {
    pub date: String,
    pub harvest: Harvest,
    pub raw_store: RawStore,
    pub requests: Vec<(Endpoint, EndpointCounts)>,
    pub failures: Vec<Failure>,
    pub duration: Duration,
}

impl RunOutcome {
    /// Whether everything was harvested.
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs the job for `settings.date`.
pub async fn run(settings: &Settings) -> Result<RunOutcome, RunError> {
    let started = std::time::Instant::now();
    let date = settings.date.to_string();
    let raw_store = RawStore::for_date(&settings.out, &date);
    let swept = remove_stale_temps(raw_store.root());
    if swept > 0 {
        tracing::info!(swept, "removed temporary files of an interrupted run");
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
        },
        stats.clone(),
    ));
    tracing::info!(
        date = %date,
        publications = settings.publications.len(),
        source = settings.source.as_ref().map(|s| s.display().to_string()).unwrap_or_else(|| settings.client.base_url.to_string()),
        "run started"
    );
    let harvest = harvester.harvest(&settings.publications).await;

    // A publication that yielded nothing at all ends the run: there is nothing to report.
    if !harvest.publications.is_empty()
        && harvest
            .publications
            .iter()
            .all(|p| p.stream.pages.is_empty() && p.stream.end.is_err())
    {
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
    let requests = Endpoint::ALL
        .iter()
        .map(|e| (*e, stats.counts(*e)))
        .collect();
    Ok(RunOutcome {
        date,
        harvest,
        raw_store,
        requests,
        failures,
        duration: started.elapsed(),
    })
}

/// The run summary printed at the end of `etl run`.
pub fn summary(outcome: &RunOutcome) -> String {
    use std::fmt::Write;
    let h = &outcome.harvest;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "run {} finished in {:.1}s",
        outcome.date,
        outcome.duration.as_secs_f64()
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
    let _ = writeln!(s, "  raw store: {}", outcome.raw_store.root().display());
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
