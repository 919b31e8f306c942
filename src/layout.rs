//! Names on disk, defined once: the partition kinds under an output root, their Hive-style
//! date directories, the files a date holds, and the run's status and manifest files.
//!
//! ```text
//! <out>/raw/date=YYYY-MM-DD/...                         exact response bodies (raw_store)
//! <out>/tables/date=YYYY-MM-DD/<table>.parquet          authors, posts, followings, publications
//! <out>/reports/date=YYYY-MM-DD/<report>.{parquet,csv}  author_metrics, publication_summary
//! <out>/reports/date=YYYY-MM-DD/_manifest.json          written last: the date is finished
//! <out>/.staging/                                       dates being built (never read)
//! <out>/.locks/date=YYYY-MM-DD.lock                     held by the run writing that date
//! <out>/_status.json                                    the live status of the current run
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

/// A kind of dated partition under the output root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Exact response bodies, for resume and replay.
    Raw,
    /// The typed tables.
    Tables,
    /// The reports and the manifest.
    Reports,
}

impl Kind {
    /// The kinds a run publishes, in publish order: tables first, then reports (whose
    /// manifest says the date is finished). These are also the only kinds `etl serve` shows.
    pub const PUBLISHED: [Kind; 2] = [Kind::Tables, Kind::Reports];

    /// The directory name under the output root.
    pub fn dir_name(self) -> &'static str {
        match self {
            Kind::Raw => "raw",
            Kind::Tables => "tables",
            Kind::Reports => "reports",
        }
    }

    /// The published kind with this directory name.
    pub fn published(name: &str) -> Option<Kind> {
        Kind::PUBLISHED.into_iter().find(|k| k.dir_name() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir_name())
    }
}

/// The directory name of a date's partition: `date=YYYY-MM-DD`.
pub fn date_dir_name(date: &str) -> String {
    format!("date={date}")
}

/// Where shard `index` of `count` keeps its whole output, every date's (raw stores, its part
/// of the tables, its manifests): `<out>/shards/shard=K-of-N`, an output root of its own, so a
/// shard's incremental run finds the shard's earlier dates there.
pub fn shard_root(out: &Path, index: u32, count: u32) -> PathBuf {
    out.join(SHARDS_DIR).join(shard_dir_name(index, count))
}

/// The directory name of shard `index` of `count`: `shard=K-of-N`.
pub fn shard_dir_name(index: u32, count: u32) -> String {
    format!("shard={index}-of-{count}")
}

/// A local Delta output's work directory, under its root (`--table-format delta`): the local
/// layout the run works in before it commits to the Delta tables beside it.
pub const WORK_DIR: &str = ".work";

/// The directory under the output root that holds sharded harvests (`etl run --shard`).
pub const SHARDS_DIR: &str = "shards";

/// The date of a partition directory name (`date=YYYY-MM-DD` → `YYYY-MM-DD`).
pub fn date_of_dir_name(name: &str) -> Option<&str> {
    name.strip_prefix("date=")
}

/// `<out>/<kind>/date=<date>`.
pub fn partition_dir(out: &Path, kind: Kind, date: &str) -> PathBuf {
    out.join(kind.dir_name()).join(date_dir_name(date))
}

/// Where dates are built before they are published.
pub fn staging_dir(out: &Path) -> PathBuf {
    out.join(".staging")
}

/// Where the per-date locks are (see [`crate::lock`]).
pub fn locks_dir(out: &Path) -> PathBuf {
    out.join(".locks")
}

/// The lock file of `date` under the output root.
pub fn lock_path(out: &Path, date: &str) -> PathBuf {
    locks_dir(out).join(format!("{}.lock", date_dir_name(date)))
}

/// The live status file of the current run, under the output root.
pub const STATUS_FILE: &str = "_status.json";

/// The manifest of a date, in its reports partition; written last.
pub const MANIFEST_FILE: &str = "_manifest.json";

/// The Parquet file of a table or report.
pub fn parquet_file(name: &str) -> String {
    format!("{name}.parquet")
}

/// The CSV file of a report.
pub fn csv_file(name: &str) -> String {
    format!("{name}.csv")
}

/// The manifest of `date` under the output root.
pub fn manifest_path(out: &Path, date: &str) -> PathBuf {
    partition_dir(out, Kind::Reports, date).join(MANIFEST_FILE)
}

/// A path relative to the output root, as the manifest and `etl serve` name files.
pub fn relative(out: &Path, path: &Path) -> String {
    path.strip_prefix(out)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_hive_style_date_directories() {
        let out = Path::new("data");
        assert_eq!(
            partition_dir(out, Kind::Reports, "2026-11-27"),
            Path::new("data/reports/date=2026-11-27")
        );
        assert_eq!(
            manifest_path(out, "2026-11-27"),
            Path::new("data/reports/date=2026-11-27/_manifest.json")
        );
        assert_eq!(date_of_dir_name("date=2026-11-27"), Some("2026-11-27"));
        assert_eq!(Kind::published("raw"), None);
        assert_eq!(Kind::published("tables"), Some(Kind::Tables));
    }
}
