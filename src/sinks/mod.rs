//! Where data goes: the dated, Hive-style partitions under the output root.
//!
//! ```text
//! <out>/tables/date=YYYY-MM-DD/{authors,posts,followings,publications}.parquet
//! <out>/reports/date=YYYY-MM-DD/author_metrics.{parquet,csv}
//! <out>/reports/date=YYYY-MM-DD/publication_summary.{parquet,csv}
//! <out>/reports/date=YYYY-MM-DD/_manifest.json
//! ```
//!
//! A date's partitions are built whole in `<out>/.staging/` and renamed into place
//! ([`partition::Staging`]): a reader never sees half a partition, a re-run replaces the date
//! whole and touches no other date, and a killed run leaves only `.staging/` leftovers (swept by
//! the next run), never something under `tables/` or `reports/` that looks finished.
//! Tables are written with arrow-rs' Parquet writer ([`parquet`]); reports, which are polars
//! frames, with polars' writers ([`report`]).

pub mod manifest;
pub mod parquet;
pub mod partition;
pub mod report;
