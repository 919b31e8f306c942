//! Per-author metrics (SPEC §4) and a per-publication summary, as polars lazy queries over the
//! date's Parquet tables. With `checks`, the only modules that speak polars' query language.
//!
//! Definitions, over an author's **stories** (`posts.is_story` and `creator_id` = the author;
//! one row per post id already):
//! - `story_count`: stories; 0 for an author without any (their means are null).
//! - `total_claps`, `mean_claps`, `median_claps`, `max_claps`: over `total_clap_count`,
//!   ignoring nulls; `total_claps` is null when no story has a clap count (nothing to add up).
//! - `mean_headline_words` / `_chars`, `mean_word_count`, `mean_reading_time_min`,
//!   `mean_tag_count`, `mean_link_count`: means of the `posts` columns, ignoring nulls.
//! - `publication_count`, `publications`, `publication_names`: the distinct non-null
//!   `home_collection_id`s of the stories, sorted by id; names from `publications` where known,
//!   else the id. Empty lists for an author without stories.
//! - `following_count`: distinct followees; null when the author's followings were not
//!   harvested (read via HTML or RSS, which do not carry them).
//! - `publication_count`: null for an author whose stories came from a format that does not say
//!   a story's publication (RSS, per `medium_api::via`); `publications` is then empty.
//! - `first_published_at`, `last_published_at`: min / max of the stories' `first_published_at`.
//! - `harvest_complete`: both of the author's streams were harvested to their end.
//! - `follower_count`: Medium's own count of the author's followers (`authors.follower_count`);
//!   null where the format of the author's profile stream does not carry it.

use std::path::Path;

use medium_api::via::Via;
use polars::prelude::*;

use crate::layout::parquet_file;
use crate::schema::{
    self, AUTHOR_CHANGES_COLUMNS, AUTHOR_METRICS_COLUMNS, PUBLICATION_SUMMARY_COLUMNS,
};

/// How many authors the publication summary's top lists hold.
pub const TOP_N: usize = 10;

fn scan(tables_dir: &Path, table: &str) -> PolarsResult<LazyFrame> {
    scan_file(&tables_dir.join(parquet_file(table)))
}

/// Scans one Parquet file as it is: no columns from `key=value` directories in its path
/// (the output root's `date=` partitions, a shard's `shard=K-of-N`: polars would add them,
/// and a path with two `date=` parts fails).
pub fn scan_file(path: &Path) -> PolarsResult<LazyFrame> {
    LazyFrame::scan_parquet(
        PlRefPath::new(path.to_string_lossy().as_ref()),
        ScanArgsParquet {
            hive_options: HiveOptions::new_disabled(),
            ..ScanArgsParquet::default()
        },
    )
}

/// Collects a query on polars' streaming engine, which runs it batch by batch instead of
/// materializing every table it reads (`collect` would).
pub fn collect_streaming(lf: LazyFrame) -> PolarsResult<DataFrame> {
    // one query has one sink: the result is always a single frame
    Ok(lf.collect_with_engine(Engine::Streaming)?.unwrap_single())
}

fn empty_string_list() -> Expr {
    lit(Series::new(
        PlSmallStr::EMPTY,
        [Series::new_empty(PlSmallStr::EMPTY, &DataType::String)],
    ))
    .first()
}

/// The `author_metrics` query over the tables in `tables_dir`, one row per author in
/// first-seen order, columns as [`AUTHOR_METRICS_COLUMNS`].
pub fn author_metrics_lazy(tables_dir: &Path) -> PolarsResult<LazyFrame> {
    let posts = scan(tables_dir, schema::POSTS)?;
    let authors = scan(tables_dir, schema::AUTHORS)?;
    let followings = scan(tables_dir, schema::FOLLOWINGS)?;
    let publications = scan(tables_dir, schema::PUBLICATIONS)?;

    // One pass over the stories: the publications of an author are a list aggregate of the
    // same group-by (a second group-by of the (author, publication) pairs cost a second pass
    // and its own hash table: benchmarks.md, session 12).
    let per_author = posts
        .filter(col("is_story"))
        .group_by([col("creator_id")])
        .agg([
            len().cast(DataType::Int64).alias("story_count"),
            col("total_clap_count").count().alias("_clap_n"),
            col("total_clap_count").sum().alias("_clap_sum"),
            col("total_clap_count").mean().alias("mean_claps"),
            col("total_clap_count").median().alias("median_claps"),
            col("total_clap_count").max().alias("max_claps"),
            col("headline_words").mean().alias("mean_headline_words"),
            col("headline_chars").mean().alias("mean_headline_chars"),
            col("word_count").mean().alias("mean_word_count"),
            col("reading_time_min")
                .mean()
                .alias("mean_reading_time_min"),
            col("tag_count").mean().alias("mean_tag_count"),
            col("link_count").mean().alias("mean_link_count"),
            col("first_published_at").min().alias("first_published_at"),
            col("first_published_at").max().alias("last_published_at"),
            col("home_collection_id")
                .drop_nulls()
                .unique()
                .sort(SortOptions::default())
                .alias("publications"),
        ]);
    // Names for those ids, over the (author, publication) pairs: a few per author, not a row
    // per story. The query reads `per_author` twice; polars computes it once (its common
    // subplan elimination).
    let publication_names = per_author
        .clone()
        .select([col("creator_id"), col("publications")])
        .explode(
            cols(["publications"]),
            ExplodeOptions {
                empty_as_null: false,
                keep_nulls: false,
            },
        )
        .left_join(
            // one name an id (normalize writes one row a collection id; a table that did not
            // would otherwise lengthen the names past the ids)
            publications
                .select([col("collection_id"), col("name").alias("_pub_name")])
                .unique_stable(Some(cols(["collection_id"])), UniqueKeepStrategy::First),
            col("publications"),
            col("collection_id"),
        )
        .group_by([col("creator_id")])
        .agg([
            // sorted within the group: the streaming engine does not keep the rows' order
            coalesce(&[col("_pub_name"), col("publications")])
                .sort_by([col("publications")], SortMultipleOptions::default())
                .alias("publication_names"),
        ]);
    let following = followings
        .group_by([col("follower_id")])
        .agg([col("followee_id")
            .n_unique()
            .cast(DataType::Int64)
            .alias("following_count")]);

    let columns: Vec<Expr> = AUTHOR_METRICS_COLUMNS.iter().map(|c| col(*c)).collect();
    Ok(authors
        .select([
            col("user_id"),
            col("username"),
            col("name"),
            col("first_seen_rank"),
            col("profile_source"),
            col("following_source"),
            col("follower_count"),
            (col("profile_complete").and(col("following_complete"))).alias("harvest_complete"),
        ])
        .left_join(per_author, col("user_id"), col("creator_id"))
        .left_join(publication_names, col("user_id"), col("creator_id"))
        .left_join(following, col("user_id"), col("follower_id"))
        .with_columns([
            col("story_count").fill_null(lit(0i64)),
            when(col("_clap_n").gt(lit(0)))
                .then(col("_clap_sum"))
                .otherwise(lit(Null {}).cast(DataType::Int64))
                .alias("total_claps"),
            // A format that does not carry a story's publication (RSS): unknown, not "none".
            when(read_from_formats_without(
                schema::POSTS,
                "home_collection_id",
            ))
            .then(lit(Null {}).cast(DataType::Int64))
            .otherwise(
                col("publications")
                    .list()
                    .len()
                    .cast(DataType::Int64)
                    .fill_null(lit(0i64)),
            )
            .alias("publication_count"),
            col("publications").fill_null(empty_string_list()),
            col("publication_names").fill_null(empty_string_list()),
            // Followings not harvested (a format without them): unknown, not 0.
            when(col("following_source").is_null())
                .then(lit(Null {}).cast(DataType::Int64))
                .otherwise(col("following_count").fill_null(lit(0i64)))
                .alias("following_count"),
        ])
        .sort(["first_seen_rank"], SortMultipleOptions::default())
        .select(columns))
}

/// Whether an author's stories were read (`authors.profile_source`) from a format that leaves
/// `table.column` null, as the table of what each format carries says.
fn read_from_formats_without(table: &str, column: &str) -> Expr {
    Via::ALL
        .iter()
        .filter(|v| !v.format().fills(table, column))
        .fold(lit(false), |any, v| {
            any.or(col("profile_source").eq(lit(v.name())))
        })
}

/// Collects [`author_metrics_lazy`].
pub fn author_metrics(tables_dir: &Path) -> PolarsResult<DataFrame> {
    collect_streaming(author_metrics_lazy(tables_dir)?)
}

/// One row per harvested publication: its authors, their stories published in it and the
/// claps of those, and the top [`TOP_N`] authors by total and by mean claps (usernames, or
/// ids when unknown; ties broken by user id). `metrics` is the `author_metrics` frame.
pub fn publication_summary(tables_dir: &Path, metrics: &DataFrame) -> PolarsResult<DataFrame> {
    let authors = scan(tables_dir, schema::AUTHORS)?;
    let posts = scan(tables_dir, schema::POSTS)?;
    let publications = scan(tables_dir, schema::PUBLICATIONS)?
        .filter(col("harvested"))
        .select([col("collection_id"), col("name"), col("slug")]);

    let membership = authors
        .select([col("user_id"), col("found_in")])
        .explode(
            cols(["found_in"]),
            ExplodeOptions {
                empty_as_null: false,
                keep_nulls: false,
            },
        )
        .rename(["found_in"], ["collection_id"], true);
    let metrics = metrics.clone().lazy().select([
        col("user_id"),
        coalesce(&[col("username"), col("user_id")]).alias("_label"),
        col("total_claps"),
        col("mean_claps"),
    ]);
    let descending = |by: &str| {
        col("_label")
            .sort_by(
                [col(by), col("user_id")],
                SortMultipleOptions::default()
                    .with_order_descending_multi([true, false])
                    .with_nulls_last(true),
            )
            .head(Some(TOP_N))
    };
    let per_publication = membership
        .clone()
        .left_join(metrics, col("user_id"), col("user_id"))
        .group_by([col("collection_id")])
        .agg([
            len().cast(DataType::Int64).alias("authors"),
            descending("total_claps").alias("top_authors_by_total_claps"),
            descending("mean_claps").alias("top_authors_by_mean_claps"),
        ]);
    let stories_in_publication = posts
        .filter(col("is_story"))
        .select([
            col("creator_id"),
            col("home_collection_id"),
            col("total_clap_count"),
        ])
        .join(
            membership,
            [col("creator_id"), col("home_collection_id")],
            [col("user_id"), col("collection_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by([col("home_collection_id")])
        .agg([
            len().cast(DataType::Int64).alias("stories"),
            col("total_clap_count").sum().alias("total_claps"),
        ]);
    let columns: Vec<Expr> = PUBLICATION_SUMMARY_COLUMNS
        .iter()
        .map(|c| col(*c))
        .collect();
    let publications = publications
        .left_join(per_publication, col("collection_id"), col("collection_id"))
        .left_join(
            stories_in_publication,
            col("collection_id"),
            col("home_collection_id"),
        )
        .with_columns([
            col("authors").fill_null(lit(0i64)),
            col("stories").fill_null(lit(0i64)),
            col("total_claps").fill_null(lit(0i64)),
            col("top_authors_by_total_claps").fill_null(empty_string_list()),
            col("top_authors_by_mean_claps").fill_null(empty_string_list()),
        ]);
    collect_streaming(
        publications
            .sort(["collection_id"], SortMultipleOptions::default())
            .select(columns),
    )
}

/// The published date an `author_changes` report compares against.
#[derive(Debug, Clone)]
pub struct Before {
    pub date: String,
    pub tables_dir: std::path::PathBuf,
    pub reports_dir: std::path::PathBuf,
}

/// `author_changes`: per author of `metrics` (this date's `author_metrics`), against the
/// previous published date `before` (all change columns null when there is none, or when the
/// author's harvest was not complete on both dates: `in_previous` says whether it was then):
/// - `stories_added`: stories (`is_story`) whose post id the previous date did not have;
/// - `claps_gained`: `total_claps` now minus then;
/// - `claps_gained_recent`: the same over stories first published in the 30 days before this
///   date (a story new since then counts from 0);
/// - `follower_change`, `following_change`: `follower_count` and `following_count` now minus then.
pub fn author_changes(
    tables_dir: &Path,
    metrics: &DataFrame,
    date_start_ms: i64,
    before: Option<Before>,
) -> PolarsResult<DataFrame> {
    // `_order` keeps the metrics' order (first-seen) through the joins, which the streaming
    // engine does not
    let now = metrics
        .clone()
        .lazy()
        .with_row_index("_order", None)
        .select([
            col("_order"),
            col("user_id"),
            col("username"),
            col("harvest_complete"),
            col("total_claps"),
            col("follower_count"),
            col("following_count"),
        ]);
    let Some(before) = before else {
        let null_i64 = || lit(NULL).cast(DataType::Int64);
        return now
            .select([
                col("user_id"),
                col("username"),
                lit(NULL).cast(DataType::Date).alias("previous_date"),
                lit(false).alias("in_previous"),
                null_i64().alias("stories_added"),
                null_i64().alias("claps_gained"),
                null_i64().alias("claps_gained_recent"),
                null_i64().alias("follower_change"),
                null_i64().alias("following_change"),
            ])
            .collect();
    };
    let then = scan_file(
        &before
            .reports_dir
            .join(parquet_file(schema::AUTHOR_METRICS)),
    )?
    // an author whose harvest was incomplete then is no base to count gains from
    .filter(col("harvest_complete"))
    .select([
        col("user_id"),
        lit(true).alias("in_previous"),
        col("total_claps").alias("_claps_then"),
        col("follower_count").alias("_followers_then"),
        col("following_count").alias("_following_then"),
    ]);
    let stories_now = scan(tables_dir, schema::POSTS)?
        .filter(col("is_story"))
        .select([
            col("creator_id"),
            col("post_id"),
            col("total_clap_count"),
            col("first_published_at")
                .cast(DataType::Int64)
                .alias("_published_ms"),
        ]);
    let posts_then = scan(&before.tables_dir, schema::POSTS)?.select([
        col("post_id"),
        lit(true).alias("_known"),
        col("total_clap_count").alias("_post_claps_then"),
    ]);
    let recent_from = date_start_ms - 30 * 86_400_000;
    let per_author = stories_now
        .join(
            posts_then,
            [col("post_id")],
            [col("post_id")],
            JoinArgs::new(JoinType::Left),
        )
        .group_by([col("creator_id")])
        .agg([
            col("_known")
                .is_null()
                .cast(DataType::Int64)
                .sum()
                .alias("_added"),
            (col("total_clap_count").fill_null(lit(0i64))
                - col("_post_claps_then").fill_null(lit(0i64)))
            .filter(col("_published_ms").gt_eq(lit(recent_from)))
            .sum()
            .alias("_recent"),
        ]);
    let previous_date = lit(before.date.clone())
        .str()
        .to_date(StrptimeOptions {
            format: Some("%Y-%m-%d".into()),
            ..StrptimeOptions::default()
        })
        .alias("previous_date");
    let known = || {
        col("in_previous")
            .eq(lit(true))
            .and(col("harvest_complete"))
    };
    let when_known = |e: Expr, name: &str| {
        when(known())
            .then(e)
            .otherwise(lit(NULL).cast(DataType::Int64))
            .alias(name)
    };
    let changes = now
        .join(
            then,
            [col("user_id")],
            [col("user_id")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            per_author,
            [col("user_id")],
            [col("creator_id")],
            JoinArgs::new(JoinType::Left),
        )
        .select([
            col("_order"),
            col("user_id"),
            col("username"),
            previous_date,
            col("in_previous").fill_null(lit(false)),
            when_known(col("_added").fill_null(lit(0i64)), "stories_added"),
            when_known(col("total_claps") - col("_claps_then"), "claps_gained"),
            when_known(col("_recent").fill_null(lit(0i64)), "claps_gained_recent"),
            when_known(
                col("follower_count") - col("_followers_then"),
                "follower_change",
            ),
            when_known(
                col("following_count").cast(DataType::Int64)
                    - col("_following_then").cast(DataType::Int64),
                "following_change",
            ),
        ]);
    collect_streaming(changes.sort(["_order"], SortMultipleOptions::default()))
        .and_then(|df| df.select(AUTHOR_CHANGES_COLUMNS.iter().copied()))
}
