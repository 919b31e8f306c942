//! polars `DataFrame` → Parquet and CSV report files.
//!
//! CSV cannot hold lists, so list columns are written as their items joined by `;` (an empty
//! list is an empty field); times are ISO 8601 with the UTC offset.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use crate::error::SinkError;

/// Writes `df` as Parquet (zstd, statistics) to `path`; returns the size in bytes.
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<u64, SinkError> {
    let file = File::create(path).map_err(|e| SinkError::io(path, e))?;
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::full())
        .finish(df)
        .map_err(|e| SinkError::polars(format!("{}: writing Parquet", path.display()), e))?;
    size_after_sync(path)
}

/// Writes `df` as CSV with a header to `path`; returns the size in bytes.
pub fn write_csv(df: &DataFrame, path: &Path) -> Result<u64, SinkError> {
    let list_columns: Vec<Expr> = df
        .columns()
        .iter()
        .filter(|c| matches!(c.dtype(), DataType::List(_)))
        .map(|c| {
            col(c.name().clone())
                .list()
                .join(lit(";"), true)
                .alias(c.name().clone())
        })
        .collect();
    let mut flat = df
        .clone()
        .lazy()
        .with_columns(list_columns)
        .collect()
        .map_err(|e| SinkError::polars(format!("{}: preparing CSV", path.display()), e))?;
    let file = File::create(path).map_err(|e| SinkError::io(path, e))?;
    CsvWriter::new(file)
        .include_header(true)
        .finish(&mut flat)
        .map_err(|e| SinkError::polars(format!("{}: writing CSV", path.display()), e))?;
    size_after_sync(path)
}

fn size_after_sync(path: &Path) -> Result<u64, SinkError> {
    let file = File::open(path).map_err(|e| SinkError::io(path, e))?;
    file.sync_all().map_err(|e| SinkError::io(path, e))?;
    Ok(file.metadata().map_err(|e| SinkError::io(path, e))?.len())
}
