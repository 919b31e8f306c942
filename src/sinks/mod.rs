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
//! frames, with polars' writers ([`report`]). A date under construction is a [`DateSink`]
//! (after delta-rs' writers): the tables are written into its staged directory a batch at a
//! time as the harvest runs ([`parquet::TableFiles`]), then the pipeline hands it the reports
//! and commits it with the manifest; [`partition::Staging`] is the local Hive-style one. Names on disk are
//! [`crate::layout`]'s.

pub mod manifest;
pub mod parquet;
pub mod partition;
pub mod report;

use std::path::PathBuf;

use polars::prelude::DataFrame;

use crate::error::SinkError;
use manifest::{FileEntry, Manifest};

/// One date's tables and reports, written whole and then published at once.
pub trait DateSink {
    /// Where the tables are written (a batch at a time, [`parquet::TableFiles`]) and read back
    /// before the date is published (the aggregation reads them there).
    fn staged_tables(&self) -> PathBuf;

    /// Writes a report as Parquet and CSV; returns their entries for the manifest.
    fn write_report(&mut self, name: &str, df: &mut DataFrame)
        -> Result<Vec<FileEntry>, SinkError>;

    /// Writes the manifest last and publishes the date whole, replacing its previous version.
    fn commit(self, manifest: &Manifest) -> Result<(), SinkError>;
}
