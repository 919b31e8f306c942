//! Arrow `RecordBatch` → Parquet file (zstd, page statistics), with arrow-rs' writer.

use std::fs::File;
use std::path::Path;

use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::error::SinkError;
use crate::lock::{RunId, RUN_ID_KEY};

/// Writer settings shared by every table: zstd level 3, statistics per page, and
/// dictionary-encoded pages (the Parquet encoding; columns stay plain strings).
/// With a run id, it is recorded in the file's key-value metadata ([`RUN_ID_KEY`]).
pub fn writer_properties(run_id: Option<&RunId>) -> WriterProperties {
    WriterProperties::builder()
        .set_key_value_metadata(
            run_id.map(|id| vec![KeyValue::new(RUN_ID_KEY.to_owned(), id.to_string())]),
        )
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(concat!("medium-etl ", env!("CARGO_PKG_VERSION")).to_owned())
        .build()
}

/// Writes `batch` to `path` (a file in a staging directory) and returns its size in bytes.
pub fn write_batch(
    path: &Path,
    batch: &RecordBatch,
    run_id: Option<&RunId>,
) -> Result<u64, SinkError> {
    let parquet_err = |source| SinkError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(|e| SinkError::io(path, e))?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(writer_properties(run_id)))
        .map_err(parquet_err)?;
    writer.write(batch).map_err(parquet_err)?;
    let file = writer.into_inner().map_err(parquet_err)?;
    file.sync_all().map_err(|e| SinkError::io(path, e))?;
    let len = file.metadata().map_err(|e| SinkError::io(path, e))?.len();
    Ok(len)
}

/// The run id in a Parquet file's key-value metadata, if it has one.
pub fn run_id_of(path: &Path) -> Option<String> {
    let reader = SerializedFileReader::new(File::open(path).ok()?).ok()?;
    reader
        .metadata()
        .file_metadata()
        .key_value_metadata()?
        .iter()
        .find(|kv| kv.key == RUN_ID_KEY)
        .and_then(|kv| kv.value.clone())
}
