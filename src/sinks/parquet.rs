//! Arrow `RecordBatch` → Parquet file (zstd, page statistics), with arrow-rs' writer.

use std::fs::File;
use std::path::Path;

use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::schema::types::ColumnPath;

use crate::error::SinkError;
use crate::lock::{RunId, RUN_ID_KEY};

/// Writer settings shared by every table: zstd level 1, statistics per page, and
/// dictionary-encoded pages (the Parquet encoding; columns stay plain strings), except for the
/// columns whose every value is new (a post's id, title and slug), where a dictionary only
/// costs: #18 measured level 3 and those dictionaries at 3.5 % of a 1,000-author crawl's
/// instructions, for a posts file 10 % larger.
/// With a run id, it is recorded in the file's key-value metadata ([`RUN_ID_KEY`]).
pub fn writer_properties(run_id: Option<&RunId>) -> WriterProperties {
    WriterProperties::builder()
        .set_key_value_metadata(
            run_id.map(|id| vec![KeyValue::new(RUN_ID_KEY.to_owned(), id.to_string())]),
        )
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(concat!("medium-etl ", env!("CARGO_PKG_VERSION")).to_owned())
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_column_dictionary_enabled(ColumnPath::from("post_id"), false)
        .set_column_dictionary_enabled(ColumnPath::from("title"), false)
        .set_column_dictionary_enabled(ColumnPath::from("unique_slug"), false)
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

/// Rows a row group of a table holds at most: a table written a batch at a time is buffered
/// (encoded) up to this many rows before its row group is flushed, so a large table's writer
/// holds a bounded part of it. Tables smaller than this are one row group, as before.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// A table's file once written.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenTable {
    pub name: &'static str,
    pub path: std::path::PathBuf,
    pub bytes: u64,
    pub rows: usize,
}

/// Tables written a batch at a time into one directory (`<name>.parquet` each), as the
/// normalizer hands them on.
pub struct TableFiles {
    dir: std::path::PathBuf,
    run_id: Option<RunId>,
    open: Vec<(WrittenTable, ArrowWriter<File>)>,
}

impl TableFiles {
    pub fn new(dir: &Path, run_id: Option<&RunId>) -> TableFiles {
        TableFiles {
            dir: dir.to_path_buf(),
            run_id: run_id.cloned(),
            open: Vec::new(),
        }
    }

    /// Appends `batch` to table `name`'s file (created by its first batch).
    pub fn write(&mut self, name: &'static str, batch: &RecordBatch) -> Result<(), SinkError> {
        let i = match self.open.iter().position(|(t, _)| t.name == name) {
            Some(i) => i,
            None => {
                let path = self.dir.join(crate::layout::parquet_file(name));
                let file = File::create(&path).map_err(|e| SinkError::io(&path, e))?;
                let props = writer_properties(self.run_id.as_ref());
                let writer =
                    ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(|source| {
                        SinkError::Parquet {
                            path: path.clone(),
                            source,
                        }
                    })?;
                let table = WrittenTable {
                    name,
                    path,
                    bytes: 0,
                    rows: 0,
                };
                self.open.push((table, writer));
                self.open.len() - 1
            }
        };
        let (table, writer) = &mut self.open[i];
        writer.write(batch).map_err(|source| SinkError::Parquet {
            path: table.path.clone(),
            source,
        })?;
        table.rows += batch.num_rows();
        Ok(())
    }

    /// Closes every file (footer written, fsynced); returns them in the order they were
    /// created.
    pub fn close(self) -> Result<Vec<WrittenTable>, SinkError> {
        let mut out = Vec::with_capacity(self.open.len());
        for (mut table, writer) in self.open {
            let path = table.path.clone();
            let file = writer.into_inner().map_err(|source| SinkError::Parquet {
                path: path.clone(),
                source,
            })?;
            file.sync_all().map_err(|e| SinkError::io(&path, e))?;
            table.bytes = file.metadata().map_err(|e| SinkError::io(&path, e))?.len();
            out.push(table);
        }
        Ok(out)
    }
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
