//! The run manifest, `reports/date=YYYY-MM-DD/_manifest.json`: what ran, with which arguments,
//! what it fetched and retried, what failed (with URLs), and every file it published with its
//! size. Written last into the staging area, so a published manifest means a finished date.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::sources::medium::client::EndpointCounts;
use crate::sources::medium::harvest::{Failure, SourceSwitch};
use crate::sources::medium::via::Via;

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub tool: &'static str,
    pub version: &'static str,
    pub date: String,
    /// The command line, as given.
    pub arguments: Vec<String>,
    pub settings: ManifestSettings,
    pub started_at: String,
    pub finished_at: String,
    pub duration_secs: f64,
    /// Every author and publication stream was harvested to its end.
    pub complete: bool,
    pub requests: BTreeMap<&'static str, EndpointCounts>,
    pub requests_total: u64,
    pub retried_total: u64,
    pub failed_total: u64,
    pub bytes_fetched: u64,
    pub authors: AuthorCounts,
    pub failures: Vec<Failure>,
    /// Which formats were read, what moved on to another format, and what each leaves null.
    pub sources: Sources,
    /// Rows per table and report.
    pub rows: BTreeMap<&'static str, usize>,
    /// Published files, relative to the output root.
    pub files: Vec<FileEntry>,
    /// Seconds per stage: `harvest` (fetching), `publish` (normalize, aggregate, write).
    pub stages: BTreeMap<&'static str, f64>,
}

#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct Sources {
    /// `--via` as given: `json`, `html`, `rss` or `auto`.
    pub via: String,
    /// Pages read per request family and format.
    pub pages: BTreeMap<&'static str, BTreeMap<Via, u64>>,
    /// Streams (and families) that moved on to another format under `auto`, with the answer
    /// that made them.
    pub switches: Vec<SourceSwitch>,
    /// Streams not harvested because no format in use carries them (followings outside
    /// JSON), per request family.
    pub not_carried: BTreeMap<&'static str, usize>,
    /// Per format used: per table, the columns it filled and the ones it leaves null.
    pub columns: BTreeMap<Via, BTreeMap<&'static str, TableColumns>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableColumns {
    pub filled: Vec<String>,
    pub null: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub rows: Option<usize>,
}

/// The published manifest of `date` under the output root `out`, if there is a readable one.
pub fn read_published(out: &Path, date: &str) -> Option<serde_json::Value> {
    let path =
        crate::sinks::partition::partition_dir(out, "reports", date).join(crate::schema::MANIFEST);
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}
