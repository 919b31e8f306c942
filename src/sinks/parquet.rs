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
use crate::schema;

/// Writer settings for `table`: zstd level 1, statistics per page, and dictionary-encoded
/// pages (the Parquet encoding; columns stay plain strings), except for the columns of
/// [`UNIQUE_COLUMNS`], where a dictionary only costs. #18 measured level 3 and those
/// dictionaries at 3.6 % of a 1,000-author crawl's instructions; without them the synthetic
/// posts file is 10 % smaller, and level 1 left every table within 2 KB of its size.
/// With a run id, it is recorded in the file's key-value metadata ([`RUN_ID_KEY`]).
pub fn writer_properties(run_id: Option<&RunId>, table: &str) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_key_value_metadata(
            run_id.map(|id| vec![KeyValue::new(RUN_ID_KEY.to_owned(), id.to_string())]),
        )
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(concat!("medium-etl ", env!("CARGO_PKG_VERSION")).to_owned())
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    for (t, column) in UNIQUE_COLUMNS {
        if t == table {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(column), false);
        }
    }
    builder.build()
}

/// The tables' columns in which (almost) every value is new: a post's id, title and slug.
pub const UNIQUE_COLUMNS: [(&str, &str); 3] = [
    (schema::POSTS, "post_id"),
    (schema::POSTS, "title"),
    (schema::POSTS, "unique_slug"),
];

/// Writes `batch` to `path` (a file in a staging directory, named as its table:
/// `posts.parquet`) and returns its size in bytes.
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
    let table = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let props = writer_properties(run_id, table);
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(parquet_err)?;
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
                let props = writer_properties(self.run_id.as_ref(), name);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::StringArray;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// Whether each column chunk of the file at `path` has a dictionary page, by column name.
    fn dictionaries(path: &Path) -> Vec<(String, bool)> {
        let reader = SerializedFileReader::new(File::open(path).unwrap()).unwrap();
        let group = reader.metadata().row_group(0).clone();
        group
            .columns()
            .iter()
            .map(|c| {
                (
                    c.column_path().string(),
                    c.dictionary_page_offset().is_some(),
                )
            })
            .collect()
    }

    /// #18: the posts' unique columns are written without a dictionary, the posts' other
    /// columns and another table's column of the same name with one.
    #[test]
    fn only_the_posts_unique_columns_go_without_a_dictionary() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("post_id", DataType::Utf8, false),
            Field::new("creator_id", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["p1", "p2", "p3"])),
                Arc::new(StringArray::from(vec!["a", "a", "b"])),
            ],
        )
        .unwrap();
        let posts = dir.path().join(crate::layout::parquet_file(schema::POSTS));
        write_batch(&posts, &batch, None).unwrap();
        let other = dir
            .path()
            .join(crate::layout::parquet_file(schema::AUTHORS));
        write_batch(&other, &batch, None).unwrap();
        let no = |n: &str| (n.to_owned(), false);
        let yes = |n: &str| (n.to_owned(), true);
        assert_eq!(dictionaries(&posts), vec![no("post_id"), yes("creator_id")]);
        assert_eq!(
            dictionaries(&other),
            vec![yes("post_id"), yes("creator_id")]
        );
    }
}
