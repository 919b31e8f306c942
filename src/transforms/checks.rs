//! Quality checks at publish, over the date's tables and the previous published date's:
//! recorded in the manifest (`checks`), printed in the summary, shown on `/status`; with
//! `--strict` a failed check makes the run exit [`crate::error::exit::CHECKS_FAILED`].
//!
//! - `unique_ids`: every table's id (authors' user id, posts' post id, publications' collection
//!   id, followings' pair) is non-null and appears once;
//! - `non_negative_counts`: no count below 0 (claps, words, images, responses, reading time,
//!   followers, followings);
//! - `story_counts_not_lower`: no author has lost a story since the previous date (by post id,
//!   over the authors whose stories were read to their end on both dates); the stories gone
//!   are listed (Medium authors do delete stories: a failure here is a question to look at,
//!   not necessarily an error);
//! - `row_drift`: each table's row count is within `--max-drift` percent of the previous
//!   date's (a sudden drop is more often a broken harvest than a real change).

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::layout::parquet_file;
use crate::schema;

/// At most this many failing items are listed per check.
pub const MAX_ITEMS: usize = 50;

/// One check's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    /// What was checked, and what failed.
    pub detail: String,
    /// The rows at fault (ids), the first [`MAX_ITEMS`].
    pub items: Vec<String>,
}

impl Check {
    fn new(name: &str, failing: Vec<String>, ok: String, failed: String) -> Check {
        let passed = failing.is_empty();
        Check {
            name: name.to_owned(),
            passed,
            detail: if passed { ok } else { failed },
            items: failing.into_iter().take(MAX_ITEMS).collect(),
        }
    }
}

/// The checks of the tables in `tables_dir` (`rows`: their row counts), against the previous
/// published date's tables in `before` (if any). Each check is a polars query over the
/// Parquet files, run on the streaming engine: nothing here holds a table in memory.
pub fn run(
    tables_dir: &Path,
    rows: &BTreeMap<&'static str, usize>,
    before: Option<(&str, &Path)>,
    max_drift_pct: f64,
) -> PolarsResult<Vec<Check>> {
    let mut checks = vec![unique_ids(tables_dir)?, non_negative(tables_dir)?];
    if let Some((date, dir)) = before {
        // a previous date without its posts table (removed by hand) is no evidence either
        // way; one that cannot be read is skipped with a warning
        if dir.join(parquet_file(schema::POSTS)).is_file() {
            match story_counts(tables_dir, date, dir) {
                Ok(check) => checks.push(check),
                Err(e) => {
                    tracing::warn!(previous = %dir.display(), error = %e, "PreviousDateUnreadable")
                }
            }
            checks.push(drift(rows, date, dir, max_drift_pct));
        }
    }
    Ok(checks)
}

fn scan(dir: &Path, table: &str) -> PolarsResult<LazyFrame> {
    crate::transforms::aggregate::scan_file(&dir.join(parquet_file(table)))
}

/// Runs a query on polars' streaming engine.
fn collect(lf: LazyFrame) -> PolarsResult<DataFrame> {
    crate::transforms::aggregate::collect_streaming(lf)
}

/// A column's values as text (numbers shown as numbers; null as `?`).
fn texts(df: &DataFrame, column: &str) -> PolarsResult<Vec<String>> {
    let c = df.column(column)?.cast(&DataType::String)?;
    Ok(c.str()?
        .iter()
        .map(|v| v.unwrap_or("?").to_owned())
        .collect())
}

fn counts(df: &DataFrame, column: &str) -> PolarsResult<Vec<u64>> {
    let c = df.column(column)?.cast(&DataType::UInt64)?;
    Ok(c.u64()?.iter().map(|v| v.unwrap_or(0)).collect())
}

/// `table`'s rows whose key (`keys`, joined by `→`) is null or repeated: one item a null key,
/// and one for each copy after the first, keys in order.
fn repeated(dir: &Path, table: &str, keys: &[&str]) -> PolarsResult<Vec<String>> {
    let key_cols: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    let any_null = keys
        .iter()
        .fold(lit(false), |any, k| any.or(col(*k).is_null()));
    let nulls = collect(
        scan(dir, table)?
            .filter(any_null.clone())
            .select([len().alias("n")]),
    )?;
    let mut out = Vec::new();
    let null_rows = counts(&nulls, "n")?.first().copied().unwrap_or(0);
    for _ in 0..null_rows.min(MAX_ITEMS as u64) {
        out.push(format!("{table}: a null id"));
    }
    let twice = collect(
        scan(dir, table)?
            .filter(any_null.not())
            .group_by(key_cols)
            .agg([len().alias("n")])
            .filter(col("n").gt(lit(1)))
            .sort(keys.to_vec(), SortMultipleOptions::default())
            .limit(MAX_ITEMS as IdxSize),
    )?;
    let parts: Vec<Vec<String>> = keys
        .iter()
        .map(|k| texts(&twice, k))
        .collect::<PolarsResult<_>>()?;
    for (i, n) in counts(&twice, "n")?.into_iter().enumerate() {
        let key: Vec<&str> = parts.iter().map(|p| p[i].as_str()).collect();
        for _ in 1..n.min(MAX_ITEMS as u64 + 1) {
            out.push(format!("{table}: {} twice", key.join("→")));
        }
    }
    Ok(out)
}

fn unique_ids(dir: &Path) -> PolarsResult<Check> {
    let mut failing = repeated(dir, schema::AUTHORS, &["user_id"])?;
    failing.extend(repeated(dir, schema::POSTS, &["post_id"])?);
    failing.extend(repeated(dir, schema::PUBLICATIONS, &["collection_id"])?);
    failing.extend(repeated(
        dir,
        schema::FOLLOWINGS,
        &["follower_id", "followee_id"],
    )?);
    Ok(Check::new(
        "unique_ids",
        failing,
        "every id is non-null and appears once".into(),
        "ids that are null or repeated".into(),
    ))
}

fn non_negative(dir: &Path) -> PolarsResult<Check> {
    let mut failing = Vec::new();
    let columns: [(&str, &str, &[&str]); 2] = [
        (
            schema::POSTS,
            "post_id",
            &[
                "word_count",
                "total_clap_count",
                "image_count",
                "responses_created_count",
                "reading_time_min",
            ],
        ),
        (
            schema::AUTHORS,
            "user_id",
            &["follower_count", "following_count_reported"],
        ),
    ];
    for (table, key, cols) in columns {
        for c in cols {
            let below = collect(
                scan(dir, table)?
                    .filter(col(*c).lt(lit(0)))
                    .select([col(key), col(*c)])
                    .limit(MAX_ITEMS as IdxSize),
            )?;
            let ids = texts(&below, key)?;
            let values = texts(&below, c)?;
            for (id, v) in ids.iter().zip(values) {
                failing.push(match *c {
                    "reading_time_min" => format!("{table}.{c} of {id}"),
                    _ => format!("{table}.{c} of {id}: {v}"),
                });
            }
        }
    }
    Ok(Check::new(
        "non_negative_counts",
        failing,
        "no count below 0".into(),
        "counts below 0".into(),
    ))
}

/// The authors whose stories stream was read to its end (`authors.profile_complete`), as
/// `creator_id`.
fn complete_authors(dir: &Path) -> PolarsResult<LazyFrame> {
    Ok(scan(dir, schema::AUTHORS)?
        .filter(col("profile_complete").fill_null(lit(false)))
        .select([col("user_id").alias("creator_id")])
        .unique(None, UniqueKeepStrategy::Any))
}

/// Each story's `(creator_id, post_id)`.
fn stories(dir: &Path) -> PolarsResult<LazyFrame> {
    Ok(scan(dir, schema::POSTS)?
        .filter(
            col("is_story")
                .fill_null(lit(false))
                .and(col("creator_id").is_not_null())
                .and(col("post_id").is_not_null()),
        )
        .select([col("creator_id"), col("post_id")])
        .unique(None, UniqueKeepStrategy::Any))
}

fn story_counts(dir: &Path, date: &str, before: &Path) -> PolarsResult<Check> {
    let creator = || [col("creator_id")];
    let pair = || [col("creator_id"), col("post_id")];
    // authors whose stories were read to their end on both dates (a failed or capped stream
    // is no evidence of a deletion)
    // a previous date without its authors table: no author was read completely then
    let then_complete = match before.join(parquet_file(schema::AUTHORS)).is_file() {
        true => complete_authors(before)?,
        false => complete_authors(dir)?.filter(lit(false)),
    };
    let both = complete_authors(dir)?.join(
        then_complete,
        creator(),
        creator(),
        JoinArgs::new(JoinType::Inner),
    );
    let then = stories(before)?.join(both, creator(), creator(), JoinArgs::new(JoinType::Inner));
    let now = stories(dir)?;
    // by id: one story deleted and one published is still a story gone
    let gone = then
        .clone()
        .join(
            now.clone().with_column(lit(true).alias("_present")),
            pair(),
            pair(),
            JoinArgs::new(JoinType::Left),
        )
        .filter(col("_present").is_null())
        .select(pair());
    let then_n = then.group_by(creator()).agg([len().alias("then_n")]);
    let now_n = now.group_by(creator()).agg([len().alias("now_n")]);
    let rows = collect(
        gone.join(then_n, creator(), creator(), JoinArgs::new(JoinType::Inner))
            .join(now_n, creator(), creator(), JoinArgs::new(JoinType::Left))
            .sort(["creator_id", "post_id"], SortMultipleOptions::default()),
    )?;
    let (authors, posts) = (texts(&rows, "creator_id")?, texts(&rows, "post_id")?);
    let (then_n, now_n) = (counts(&rows, "then_n")?, counts(&rows, "now_n")?);
    let mut failing: Vec<String> = Vec::new();
    let mut i = 0;
    while i < authors.len() {
        let author = &authors[i];
        let mut gone = Vec::new();
        let first = i;
        while i < authors.len() && &authors[i] == author {
            gone.push(posts[i].as_str());
            i += 1;
        }
        failing.push(format!(
            "{author}: {} stories on {date}, {} now; gone: {}",
            then_n[first],
            now_n[first],
            gone.join(", ")
        ));
    }
    Ok(Check::new(
        "story_counts_not_lower",
        failing,
        format!("no author has fewer stories than on {date}"),
        format!("authors with fewer stories than on {date} (deleted, or a broken harvest)"),
    ))
}

/// A Parquet file's row count, from its footer; 0 when it cannot be read.
fn rows_of(path: &Path) -> usize {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    std::fs::File::open(path)
        .ok()
        .and_then(|f| SerializedFileReader::new(f).ok())
        .map_or(0, |r| {
            usize::try_from(r.metadata().file_metadata().num_rows()).unwrap_or(0)
        })
}

fn drift(rows: &BTreeMap<&'static str, usize>, date: &str, before: &Path, max_pct: f64) -> Check {
    let mut failing = Vec::new();
    for table in schema::TABLES {
        let now = rows.get(table).copied().unwrap_or(0);
        let then = rows_of(&before.join(parquet_file(table)));
        if then == 0 {
            continue;
        }
        let pct = (now as f64 - then as f64) / then as f64 * 100.0;
        if pct.abs() > max_pct {
            failing.push(format!(
                "{table}: {then} rows on {date}, {now} now ({pct:+.1} %)"
            ));
        }
    }
    Check::new(
        "row_drift",
        failing,
        format!("every table within {max_pct} % of its rows on {date}"),
        format!("tables whose row count moved more than {max_pct} % since {date}"),
    )
}
