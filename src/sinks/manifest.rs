//! The run manifest, `reports/date=YYYY-MM-DD/_manifest.json`: what ran, with which arguments,
//! what it fetched and retried, what failed (with URLs), where the data came from, and every
//! file it published with its size. Written last into the staging area, so a published
//! manifest means a finished date.
//!
//! Typed both ways: [`Manifest::of_harvest`] builds it from the run's values, `serde` writes it,
//! and [`read_published`] reads it back as the same type for `etl serve` and `etl schedule`
//! (no key strings elsewhere). Every field has a default when read, so a manifest written by an
//! earlier version (before `sources` or `stages` existed) still reads. The per-family maps are
//! keyed by the family's name (`publication_stream`, ...), as the JSON has always had them. [`Sources::report`] renders where the data came from, once, for
//! the run summary and the served date page.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use medium_api::endpoints::Endpoint;
use medium_api::via::Via;
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::layout::manifest_path;
use crate::lock::RunId;
use crate::run::{
    EndpointCounts, Failure, FetchStats, RejectedValue, SourceSwitch, SpentHarvest as Harvest,
};
use crate::schema;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Manifest {
    pub tool: String,
    pub version: String,
    pub date: String,
    /// The run that wrote this date: also in every Parquet file's metadata
    /// (`medium_etl.run_id`), so tables and reports can be matched to their run.
    pub run_id: String,
    /// The command line, as given.
    pub arguments: Vec<String>,
    pub settings: ManifestSettings,
    pub started_at: String,
    pub finished_at: String,
    pub duration_secs: f64,
    /// Every author and publication stream was harvested to its end (none failed, none was cut
    /// by `--max-pages`).
    pub complete: bool,
    /// Streams `--max-pages` cut: they may have more pages.
    #[serde(default)]
    pub capped_streams: Vec<String>,
    /// Per request family (`publication_stream`, `profile_stream`, `following`).
    pub requests: BTreeMap<String, EndpointCounts>,
    pub requests_total: u64,
    pub retried_total: u64,
    /// Times the host asked to wait (429, 503 with `Retry-After`); not counted as retries.
    #[serde(default)]
    pub throttled_total: u64,
    /// The pace the client settled at after being throttled, in requests per second (null:
    /// never throttled).
    #[serde(default)]
    pub settled_rps: Option<f64>,
    pub failed_total: u64,
    pub bytes_fetched: u64,
    pub authors: AuthorCounts,
    pub failures: Vec<Failure>,
    /// Values from the network the tables could not hold (out of range, or not a number
    /// where one belongs): null in the tables, listed here with the row and column.
    #[serde(default)]
    pub rejected_values: Vec<RejectedValue>,
    /// Which formats were read, what moved on to another format, and what each leaves null.
    pub sources: Sources,
    /// Rows per table and report.
    pub rows: BTreeMap<String, usize>,
    /// Published files, relative to the output root.
    pub files: Vec<FileEntry>,
    /// Seconds per stage: `harvest` (fetching), `publish` (normalize, aggregate, write).
    pub stages: BTreeMap<String, f64>,
    /// CPU seconds (user + system, all threads) per stage, as `stages` names them: what the
    /// run cost the machine (a harvest is mostly waiting; its CPU over `requests_total` is
    /// the cost of a request).
    #[serde(default)]
    pub cpu_secs: BTreeMap<String, f64>,
    /// The quality checks of the published tables ([`crate::transforms::checks`]).
    #[serde(default)]
    pub checks: Vec<crate::transforms::checks::Check>,
    /// What an incremental run carried from earlier dates (absent: a full run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<Incremental>,
    /// For a date published from shards (`etl publish`): what each shard's run did (this
    /// manifest's own `requests` are the replay's, none over the network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<ShardsSummary>,
}

/// `shards` in the manifest of a date published from shards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShardsSummary {
    pub count: u32,
    /// The shards' requests and bytes over the network, summed.
    pub requests_total: u64,
    pub bytes_fetched: u64,
    /// Each shard's run: `shard` (K/N), its `run_id`, `authors` harvested, `requests_total`,
    /// `failures`.
    pub runs: Vec<ShardRun>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShardRun {
    pub shard: String,
    pub run_id: String,
    pub authors: usize,
    pub requests_total: u64,
    pub failures: usize,
}

/// `incremental` in the manifest: where the run carried from and how much.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Incremental {
    /// The latest earlier published date, carried from.
    pub previous_date: String,
    /// Stories first published before this (UTC) were taken as unchanged.
    pub cutoff: String,
    pub lag_days: u32,
    /// Streams whose rest was carried, and the earlier pages that make it up.
    pub streams_carried: usize,
    pub pages_carried: usize,
    /// Streams read in full this date.
    pub streams_read_in_full: usize,
    /// Rows read this date, and rows carried from earlier dates.
    pub posts_fetched: usize,
    pub posts_carried: usize,
    pub followings_fetched: usize,
    pub followings_carried: usize,
}

impl Manifest {
    /// The checks that failed.
    pub fn failed_checks(&self) -> impl Iterator<Item = &crate::transforms::checks::Check> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// `full` or `incremental`.
    pub fn run_mode(&self) -> &'static str {
        match self.incremental {
            Some(_) => "incremental",
            None => "full",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ManifestSettings {
    pub publications: Vec<String>,
    pub base_url: String,
    pub source: Option<String>,
    pub out: String,
    pub concurrency: usize,
    pub max_rps: Option<f64>,
    pub refresh: bool,
    pub max_authors: Option<usize>,
    pub max_pages: usize,
    pub retries: u32,
    pub timeout_secs: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthorCounts {
    /// Distinct authors listed by the publication streams.
    pub found: usize,
    /// Authors harvested (after the cap).
    pub harvested: usize,
    /// Authors whose two streams were harvested to their end.
    pub complete: usize,
    pub capped_at: Option<usize>,
    /// User ids of the authors with a failed stream.
    pub incomplete: Vec<String>,
    /// User ids that could not be used in a URL, skipped.
    pub skipped_ids: Vec<String>,
}

/// `sources` in the manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sources {
    /// `--via` as given: `json`, `graphql`, `html`, `rss` or `auto`.
    pub via: String,
    /// Pages read per request family and format.
    pub pages: BTreeMap<String, BTreeMap<Via, u64>>,
    /// Streams (and families) that moved on to another format under `auto`, with the answer
    /// that made them.
    pub switches: Vec<SourceSwitch>,
    /// Streams not harvested because no format in use carries them (followings outside
    /// JSON), per request family.
    pub not_carried: BTreeMap<String, usize>,
    /// Per format used: per table, the columns it filled and the ones it leaves null.
    pub columns: BTreeMap<Via, BTreeMap<String, TableColumns>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TableColumns {
    pub filled: Vec<String>,
    pub null: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub rows: Option<usize>,
}

impl Manifest {
    /// The manifest of a harvest, as far as it is known before publishing (no rows, files,
    /// publish stage or end time yet: the publish step adds them).
    pub fn of_harvest(
        settings: &Settings,
        started_at: DateTime<Utc>,
        harvest: &Harvest,
        stats: &FetchStats,
        run_id: &RunId,
    ) -> Manifest {
        let totals = stats.totals();
        let failures = harvest.failures();
        Manifest {
            tool: "medium-etl".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            date: settings.date.to_string(),
            run_id: run_id.to_string(),
            arguments: settings.arguments.clone(),
            settings: ManifestSettings::of(settings),
            started_at: started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            finished_at: String::new(),
            duration_secs: 0.0,
            complete: failures.is_empty() && harvest.capped().is_empty(),
            capped_streams: harvest.capped(),
            requests: Endpoint::ALL
                .iter()
                .map(|e| (e.name().to_owned(), stats.counts(*e)))
                .collect(),
            requests_total: totals.requests,
            retried_total: totals.retried,
            throttled_total: stats.throttled(),
            settled_rps: stats.settled_rps(),
            failed_total: totals.failed,
            bytes_fetched: stats.bytes(),
            authors: AuthorCounts::of(harvest),
            failures,
            rejected_values: Vec::new(),
            sources: Sources::of(settings, harvest, stats),
            rows: BTreeMap::new(),
            files: Vec::new(),
            stages: BTreeMap::new(),
            cpu_secs: BTreeMap::new(),
            incremental: None,
            shards: None,
            checks: Vec::new(),
        }
    }
}

impl ManifestSettings {
    fn of(settings: &Settings) -> ManifestSettings {
        ManifestSettings {
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
        }
    }
}

impl AuthorCounts {
    fn of(harvest: &Harvest) -> AuthorCounts {
        let incomplete: Vec<String> = harvest
            .authors
            .iter()
            .filter(|a| !a.is_complete())
            .map(|a| a.user.user_id.to_string())
            .collect();
        AuthorCounts {
            found: harvest.authors_found,
            harvested: harvest.authors.len(),
            complete: harvest.authors.len() - incomplete.len(),
            capped_at: harvest.authors_capped_at,
            incomplete,
            skipped_ids: harvest.skipped_ids.clone(),
        }
    }
}

impl Sources {
    /// Formats read per family, switches, streams not carried, and the columns each format
    /// used fills (from the table of what each format carries).
    fn of(settings: &Settings, harvest: &Harvest, stats: &FetchStats) -> Sources {
        let pages: BTreeMap<String, BTreeMap<Via, u64>> = Endpoint::ALL
            .iter()
            .map(|e| (e.name().to_owned(), stats.pages_by_via(*e)))
            .filter(|(_, by_via)| !by_via.is_empty())
            .collect();
        let used: BTreeSet<Via> = pages.values().flat_map(|m| m.keys().copied()).collect();
        let columns = used
            .iter()
            .map(|via| {
                let tables = schema::tables_by_source()
                    .into_iter()
                    .map(|(table, s)| {
                        let null = schema::columns_not_carried(*via, table);
                        let filled = s
                            .fields()
                            .iter()
                            .map(|f| f.name().clone())
                            .filter(|name| !null.contains(&name.as_str()))
                            .collect();
                        let null = null.iter().map(|c| (*c).to_owned()).collect();
                        (table.to_owned(), TableColumns { filled, null })
                    })
                    .collect();
                (*via, tables)
            })
            .collect();
        Sources {
            via: settings.via.to_string(),
            pages,
            switches: harvest.switches.clone(),
            not_carried: harvest
                .not_carried()
                .into_iter()
                .map(|(family, n)| (family.name().to_owned(), n))
                .collect(),
            columns,
        }
    }

    /// Where the data came from, in words: the one rendering of `sources`, for the run
    /// summary and `etl serve`'s date page.
    pub fn report(&self) -> SourcesReport {
        let families: Vec<String> = self
            .pages
            .iter()
            .map(|(family, by_via)| {
                let parts: Vec<String> = by_via.iter().map(|(v, n)| format!("{v} {n}")).collect();
                format!("{family} {}", parts.join(", "))
            })
            .collect();
        let switches = self
            .switches
            .iter()
            .map(|sw| {
                let (scope, what) = match sw.family {
                    true => ("family", sw.endpoint.name().to_owned()),
                    false => ("stream", sw.stream.clone()),
                };
                let to = sw.to.map_or("none (no other format carries it)", Via::name);
                format!("{scope} {what}: {} → {to}: {}", sw.from, sw.reason)
            })
            .collect();
        let not_carried = self
            .not_carried
            .iter()
            .map(|(family, n)| {
                let only = Endpoint::ALL
                    .iter()
                    .find(|e| e.name() == family)
                    .map(|e| Via::only_in(*e))
                    .unwrap_or_default();
                format!(
                    "{family} of {n} author(s): no format in use carries it ({family} exists only in {only})"
                )
            })
            .collect();
        let null_columns =
            self.columns
                .iter()
                .flat_map(|(via, tables)| {
                    tables.iter().filter(|(_, cols)| !cols.null.is_empty()).map(
                        move |(table, cols)| {
                            format!(
                                "{via} leaves null (not carried): {table}.{}",
                                cols.null.join(", ")
                            )
                        },
                    )
                })
                .collect();
        SourcesReport {
            via: self.via.clone(),
            families: families.join("; "),
            switches,
            not_carried,
            null_columns,
        }
    }
}

/// [`Sources`] in words, one line each (not escaped: the HTML page escapes them).
#[derive(Debug, Clone, PartialEq)]
pub struct SourcesReport {
    /// `--via` as given.
    pub via: String,
    /// Pages per family and format: `following json 15; profile_stream json 24; ...`
    pub families: String,
    /// `family profile_stream: json → html: <why>`
    pub switches: Vec<String>,
    /// `following of 10 author(s): no format in use carries it (...)`
    pub not_carried: Vec<String>,
    /// `html leaves null (not carried): posts.image_count, link_count`
    pub null_columns: Vec<String>,
}

/// Reading a published manifest failed.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a manifest this version reads: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// The published manifest of `date` under the output root `out`: `Ok(None)` when the date has
/// none (not published, or still being built), an error naming the file when it cannot be read.
pub fn read_published(out: &Path, date: &str) -> Result<Option<Manifest>, ManifestError> {
    let path = manifest_path(out, date);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ManifestError::Io { path, source }),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| ManifestError::Parse { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_of_an_earlier_version_still_reads() {
        // as written before `sources` (session 2) and `stages` (session 1's progress) existed
        let dir = tempfile::tempdir().unwrap();
        let path = manifest_path(dir.path(), "2026-11-20");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let old = r#"{"tool": "medium-etl", "version": "0.1.0", "date": "2026-11-20",
            "complete": false, "requests_total": 40, "unknown_later_field": 1,
            "failures": [{"endpoint": "profile_stream", "user_id": "u1", "url": "x", "error": "HTTP 500"}],
            "authors": {"found": 10, "harvested": 10, "complete": 9}}"#;
        std::fs::write(&path, old).unwrap();
        let m = read_published(dir.path(), "2026-11-20").unwrap().unwrap();
        assert!(!m.complete);
        assert_eq!(m.failures.len(), 1);
        assert_eq!(m.failures[0].endpoint, Endpoint::ProfileStream);
        assert_eq!(m.authors.complete, 9);
        assert!(m.sources.switches.is_empty() && m.stages.is_empty());
        assert_eq!(read_published(dir.path(), "2026-11-21").unwrap(), None);
        std::fs::write(&path, b"{\"complete\": \"yes\"}").unwrap();
        let err = read_published(dir.path(), "2026-11-20").unwrap_err();
        assert!(err.to_string().contains("_manifest.json"), "{err}");
    }
}
