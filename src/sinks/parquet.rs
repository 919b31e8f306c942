//! Arrow `RecordBatch` → Parquet file (zstd, page statistics), with arrow-rs' writer.

use std::fs::File;
use std::path::Path;

use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::error::SinkError;

/// Writer settings shared by every table: zstd level 3, statistics per page, and
/// dictionary-encoded pages (the Parquet encoding; columns stay plain strings).
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(concat!("medium-etl ", env!("CARGO_PKG_VERSION")).to_owned())
        .build()
}

/// Writes `batch` to `path` (a file in a staging directory) and returns its size in bytes.
pub fn write_batch(path: &Path, batch: &RecordBatch) -> Result<u64, SinkError> {
    let parquet_err = |source| SinkError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(|e| SinkError::io(path, e))?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(writer_properties()))
        .map_err(parquet_err)?;
    writer.write(batch).map_err(parquet_err)?;
    let file = writer.into_inner().map_err(parquet_err)?;
    file.sync_all().map_err(|e| SinkError::io(path, e))?;
    let len = file.metadata().map_err(|e| SinkError::io(path, e))?.len();
    Ok(len)
}
