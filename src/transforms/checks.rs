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

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::Path;

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::datatypes::{Float64Type, Int64Type};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use super::normalize::Tables;
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

/// The checks of `tables`, against the previous published date's tables in `before` (if any).
pub fn run(tables: &Tables, before: Option<(&str, &Path)>, max_drift_pct: f64) -> Vec<Check> {
    let previous = before.map(|(date, dir)| (date, Previous::read(dir)));
    let mut checks = vec![unique_ids(tables), non_negative(tables)];
    if let Some((date, Some(prev))) = &previous {
        checks.push(story_counts(tables, date, prev));
        checks.push(drift(tables, date, prev, max_drift_pct));
    }
    checks
}

fn strings<'a>(batch: &'a RecordBatch, column: &str) -> Vec<Option<&'a str>> {
    match batch.column_by_name(column) {
        Some(c) => match (c.as_string_opt::<i32>(), c.as_string_opt::<i64>()) {
            (Some(s), _) => s.iter().collect(),
            (None, Some(s)) => s.iter().collect(),
            _ => c
                .as_string_view_opt()
                .map(|s| s.iter().collect())
                .unwrap_or_default(),
        },
        None => Vec::new(),
    }
}

/// The authors whose stories stream was read to its end (`authors.profile_complete`).
fn complete_authors(authors: &RecordBatch) -> HashSet<String> {
    let ids = strings(authors, "user_id");
    let Some(done) = authors
        .column_by_name("profile_complete")
        .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
    else {
        return HashSet::new();
    };
    (0..authors.num_rows())
        .filter(|&i| done.is_valid(i) && done.value(i))
        .filter_map(|i| ids.get(i).copied().flatten().map(str::to_owned))
        .collect()
}

fn duplicates(keys: impl Iterator<Item = Option<String>>, table: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for k in keys {
        match k {
            None => out.push(format!("{table}: a null id")),
            Some(k) if !seen.insert(k.clone()) => out.push(format!("{table}: {k} twice")),
            _ => {}
        }
    }
    out
}

fn unique_ids(t: &Tables) -> Check {
    let one = |b: &RecordBatch, col: &str, table: &str| {
        duplicates(
            strings(b, col).into_iter().map(|s| s.map(str::to_owned)),
            table,
        )
    };
    let mut failing = one(&t.authors, "user_id", schema::AUTHORS);
    failing.extend(one(&t.posts, "post_id", schema::POSTS));
    failing.extend(one(&t.publications, "collection_id", schema::PUBLICATIONS));
    let pairs = strings(&t.followings, "follower_id")
        .into_iter()
        .zip(strings(&t.followings, "followee_id"))
        .map(|(a, b)| Some(format!("{}→{}", a?, b?)));
    failing.extend(duplicates(pairs, schema::FOLLOWINGS));
    Check::new(
        "unique_ids",
        failing,
        "every id is non-null and appears once".into(),
        "ids that are null or repeated".into(),
    )
}

fn non_negative(t: &Tables) -> Check {
    let mut failing = Vec::new();
    let mut ints = |b: &RecordBatch, table: &str, key: &str, cols: &[&str]| {
        let ids = strings(b, key);
        for col in cols {
            let Some(c) = b.column_by_name(col) else {
                continue;
            };
            let Some(values) = c.as_primitive_opt::<Int64Type>() else {
                continue;
            };
            for (i, v) in values.iter().enumerate() {
                if v.is_some_and(|v| v < 0) {
                    let id = ids.get(i).copied().flatten().unwrap_or("?");
                    failing.push(format!("{table}.{col} of {id}: {}", v.unwrap_or(0)));
                }
            }
        }
    };
    ints(
        &t.posts,
        schema::POSTS,
        "post_id",
        &[
            "word_count",
            "total_clap_count",
            "image_count",
            "responses_created_count",
        ],
    );
    ints(
        &t.authors,
        schema::AUTHORS,
        "user_id",
        &["follower_count", "following_count_reported"],
    );
    if let Some(minutes) = t
        .posts
        .column_by_name("reading_time_min")
        .and_then(|c| c.as_primitive_opt::<Float64Type>())
    {
        let ids = strings(&t.posts, "post_id");
        for (i, v) in minutes.iter().enumerate() {
            if v.is_some_and(|v| v < 0.0) {
                let id = ids.get(i).copied().flatten().unwrap_or("?");
                failing.push(format!("posts.reading_time_min of {id}"));
            }
        }
    }
    Check::new(
        "non_negative_counts",
        failing,
        "no count below 0".into(),
        "counts below 0".into(),
    )
}

/// What the checks need of the previous date: row counts, and each author's story ids.
struct Previous {
    rows: HashMap<&'static str, usize>,
    stories: HashMap<String, HashSet<String>>,
    /// Authors whose stories were read completely then.
    complete: HashSet<String>,
}

impl Previous {
    fn read(dir: &Path) -> Option<Previous> {
        let read = |table: &str| -> Option<RecordBatch> {
            let file = File::open(dir.join(parquet_file(table))).ok()?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .ok()?
                .build()
                .ok()?;
            let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().ok()?;
            let schema = batches.first().map(|b| b.schema())?;
            arrow::compute::concat_batches(&schema, &batches).ok()
        };
        let mut rows = HashMap::new();
        for table in [
            schema::AUTHORS,
            schema::POSTS,
            schema::FOLLOWINGS,
            schema::PUBLICATIONS,
        ] {
            rows.insert(table, read(table).map_or(0, |b| b.num_rows()));
        }
        let posts = read(schema::POSTS)?;
        let complete = read(schema::AUTHORS)
            .map(|a| complete_authors(&a))
            .unwrap_or_default();
        Some(Previous {
            rows,
            stories: stories_by_author(&posts),
            complete,
        })
    }
}

fn stories_by_author(posts: &RecordBatch) -> HashMap<String, HashSet<String>> {
    let mut out: HashMap<String, HashSet<String>> = HashMap::new();
    let (ids, creators) = (strings(posts, "post_id"), strings(posts, "creator_id"));
    let Some(is_story) = posts
        .column_by_name("is_story")
        .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
    else {
        return out;
    };
    for i in 0..posts.num_rows() {
        if is_story.is_valid(i) && is_story.value(i) {
            if let (Some(Some(id)), Some(Some(creator))) = (ids.get(i), creators.get(i)) {
                out.entry((*creator).to_owned())
                    .or_default()
                    .insert((*id).to_owned());
            }
        }
    }
    out
}

fn story_counts(t: &Tables, date: &str, prev: &Previous) -> Check {
    let now = stories_by_author(&t.posts);
    let complete_now = complete_authors(&t.authors);
    let empty = HashSet::new();
    let mut failing = Vec::new();
    // authors whose stories were read to their end on both dates (a failed or capped stream
    // is no evidence of a deletion)
    let mut authors: Vec<&String> = prev
        .stories
        .keys()
        .filter(|a| complete_now.contains(*a) && prev.complete.contains(*a))
        .collect();
    authors.sort();
    for author in authors {
        let then = &prev.stories[author];
        let current = now.get(author).unwrap_or(&empty);
        // by id: one story deleted and one published is still a story gone
        let mut gone: Vec<&String> = then.difference(current).collect();
        if !gone.is_empty() {
            gone.sort();
            failing.push(format!(
                "{author}: {} stories on {date}, {} now; gone: {}",
                then.len(),
                current.len(),
                gone.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Check::new(
        "story_counts_not_lower",
        failing,
        format!("no author has fewer stories than on {date}"),
        format!("authors with fewer stories than on {date} (deleted, or a broken harvest)"),
    )
}

fn drift(t: &Tables, date: &str, prev: &Previous, max_pct: f64) -> Check {
    let mut failing = Vec::new();
    for (table, now) in t.named().iter().map(|(n, b)| (*n, b.num_rows())) {
        let then = prev.rows.get(table).copied().unwrap_or(0);
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
