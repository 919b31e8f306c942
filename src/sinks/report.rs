//! polars `DataFrame` → Parquet and CSV report files.
//!
//! CSV cannot hold lists, so list columns are written as their items joined by `;` (an empty
//! list is an empty field); times are ISO 8601 with the UTC offset. A text cell that a
//! spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage
//! return: OWASP's CSV injection) is written with a `'` in front; the Parquet files keep the
//! text as it is.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use polars::prelude::*;

use crate::error::SinkError;
use crate::lock::{RunId, RUN_ID_KEY};

/// Writes `df` as Parquet (zstd, statistics) to `path`, with the run id in its key-value
/// metadata; returns the size in bytes.
pub fn write_parquet(
    df: &mut DataFrame,
    path: &Path,
    run_id: Option<&RunId>,
) -> Result<u64, SinkError> {
    let mut file = buffered(path)?;
    let metadata = run_id
        .map(|id| KeyValueMetadata::from_static(vec![(RUN_ID_KEY.to_owned(), id.to_string())]));
    ParquetWriter::new(&mut file)
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::full())
        .with_key_value_metadata(metadata)
        .finish(df)
        .map_err(|e| SinkError::polars(format!("{}: writing Parquet", path.display()), e))?;
    size_after_sync(path, file)
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
    neutralize_formulas(&mut flat)
        .map_err(|e| SinkError::polars(format!("{}: preparing CSV", path.display()), e))?;
    let mut file = buffered(path)?;
    CsvWriter::new(&mut file)
        .include_header(true)
        .finish(&mut flat)
        .map_err(|e| SinkError::polars(format!("{}: writing CSV", path.display()), e))?;
    size_after_sync(path, file)
}

/// Whether a spreadsheet would read `cell` as a formula.
pub fn is_formula(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// Puts `'` before every text cell [`is_formula`] finds, in every text column.
fn neutralize_formulas(df: &mut DataFrame) -> PolarsResult<()> {
    let names: Vec<PlSmallStr> = df
        .columns()
        .iter()
        .filter(|c| c.dtype() == &DataType::String)
        .map(|c| c.name().clone())
        .collect();
    for name in names {
        let column = df.column(&name)?.str()?.clone();
        if !column.iter().flatten().any(is_formula) {
            continue;
        }
        let fixed: StringChunked = column
            .iter()
            .map(|cell| {
                cell.map(|v| match is_formula(v) {
                    true => format!("'{v}"),
                    false => v.to_owned(),
                })
            })
            .collect();
        df.with_column(fixed.with_name(name).into_column())?;
    }
    Ok(())
}

/// A new file at `path`, written through a buffer: polars' Parquet writer makes a write call
/// for every few bytes of a file's metadata (#18: 6,100 `write`s of 1 to 4 bytes for a
/// 1,000-author run's reports).
fn buffered(path: &Path) -> Result<BufWriter<File>, SinkError> {
    let file = File::create(path).map_err(|e| SinkError::io(path, e))?;
    Ok(BufWriter::with_capacity(256 * 1024, file))
}

/// Flushes `file` (written at `path`) and syncs it; returns its size in bytes.
fn size_after_sync(path: &Path, mut file: BufWriter<File>) -> Result<u64, SinkError> {
    let flushed = file.flush();
    // taken apart, not dropped: a failed flush is not tried again by the buffer's drop
    let (file, _) = file.into_parts();
    flushed.map_err(|e| SinkError::io(path, e))?;
    file.sync_all().map_err(|e| SinkError::io(path, e))?;
    Ok(file.metadata().map_err(|e| SinkError::io(path, e))?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// #14: OWASP's CSV injection: a cell a spreadsheet would run is written inert in the CSV;
    /// numbers, and text that only contains such characters later, are left alone.
    #[test]
    fn formulas_are_neutralized_in_csv_only() {
        let mut df = df!(
            "name" => ["=HYPERLINK(\"http://x\")", "+1", "-a", "@sum", "plain", "a=b"],
            "n" => [-1i64, 2, 3, 4, 5, 6],
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_csv(&df, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        for cell in [
            "\"'=HYPERLINK(\"\"http://x\"\")\"",
            "'+1",
            "'-a",
            "'@sum",
            "plain",
            "a=b",
            "-1",
        ] {
            assert!(text.contains(cell), "{cell} not in {text}");
        }
        let parquet = dir.path().join("r.parquet");
        write_parquet(&mut df, &parquet, None).unwrap();
        assert!(is_formula("=1") && !is_formula("1="));
    }
}
