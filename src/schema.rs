//! The Arrow schemas of the four tables and the column names of the report, documented once.
//!
//! `docs/schema.md` is the user-facing version of this file; the two are kept in step (a test
//! checks that every column named here appears there). Conventions: ids are `Utf8`; times are
//! `Timestamp(ms, "UTC")`; tags and other lists are `List<Utf8>`; a count Medium did not send
//! is null, never 0. No `Dictionary` columns (polars would read them as Categorical).

use std::sync::{Arc, OnceLock};

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::error::TransformError;

use medium_api::via::Via;

/// Table names, as file stems under `tables/date=YYYY-MM-DD/` (defined beside the table of
/// what each format carries, which names their columns).
pub use medium_api::via::tables::{AUTHORS, FOLLOWINGS, POSTS, PUBLICATIONS};

/// Report names, as file stems under `reports/date=YYYY-MM-DD/`.
pub const AUTHOR_METRICS: &str = "author_metrics";
pub const PUBLICATION_SUMMARY: &str = "publication_summary";
pub const AUTHOR_CHANGES: &str = "author_changes";

pub fn timestamp_ms_utc() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

pub fn list_of_utf8() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

/// `authors`: one row per author (user id) of the harvested publications.
///
/// | column | meaning |
/// |---|---|
/// | `user_id` | Medium user id |
/// | `username`, `name`, `bio`, `twitter_screen_name` | profile fields (null when missing) |
/// | `created_at` | account creation |
/// | `medium_member_at` | membership start; null when not a member (Medium sends 0) |
/// | `first_seen_rank` | 1-based position in first-seen order across the publication pages |
/// | `found_in` | the publications (as named on the command line) whose stream listed the author |
/// | `profile_pages`, `following_pages` | pages harvested for the author |
/// | `profile_complete`, `following_complete` | whether each stream was harvested to its end (false when not harvested at all) |
/// | `profile_source`, `following_source` | the format each stream was read in (`json`, `graphql`, `html`, `rss`); null when it was not harvested |
/// | `follower_count` | Medium's count of the author's followers (JSON `SocialStats.usersFollowedByCount`, GraphQL `socialStats.followerCount`); null where not carried |
/// | `following_count_reported` | Medium's own count of whom the author follows (`usersFollowedCount`, `socialStats.followingCount`), which can exceed the list it returns; `author_metrics.following_count` counts the list |
/// | `profile_carried_from`, `following_carried_from` | for an incremental run, the earlier date the rest of the stream was carried from (null: read to its end this date) |
pub fn authors() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(Schema::new(vec![
            utf8("user_id", false),
            utf8("username", true),
            utf8("name", true),
            utf8("bio", true),
            utf8("twitter_screen_name", true),
            Field::new("created_at", timestamp_ms_utc(), true),
            Field::new("medium_member_at", timestamp_ms_utc(), true),
            Field::new("first_seen_rank", DataType::Int32, false),
            Field::new("found_in", list_of_utf8(), false),
            Field::new("profile_pages", DataType::Int32, false),
            Field::new("following_pages", DataType::Int32, false),
            Field::new("profile_complete", DataType::Boolean, false),
            Field::new("following_complete", DataType::Boolean, false),
            utf8("profile_source", true),
            utf8("following_source", true),
            Field::new("follower_count", DataType::Int64, true),
            Field::new("following_count_reported", DataType::Int64, true),
            Field::new("profile_carried_from", DataType::Date32, true),
            Field::new("following_carried_from", DataType::Date32, true),
        ]))
    })
    .clone()
}

/// `posts`: one row per post id, stories and responses both, from every harvested page.
///
/// | column | meaning |
/// |---|---|
/// | `post_id`, `creator_id` | ids |
/// | `title` | as sent (null when missing) |
/// | `unique_slug` | the post's slug |
/// | `home_collection_id` | its publication; null when it has none (Medium sends "") |
/// | `first_published_at`, `latest_published_at` | times; null when missing or 0 |
/// | `in_response_to_post_id` | the post it answers; null for a story |
/// | `is_response` | `in_response_to_post_id` is non-empty, or GraphQL says the post answers one that is gone |
/// | `in_creator_profile` | the post was in its creator's own profile stream |
/// | `is_story` | `in_creator_profile` and not `is_response`: a story of SPEC §4 |
/// | `word_count`, `total_clap_count`, `image_count`, `responses_created_count` | `virtuals.*`; null when missing |
/// | `reading_time_min` | `virtuals.readingTime`, minutes; null when missing |
/// | `tags` | `virtuals.tags[].slug` (empty when missing) |
/// | `tag_count` | number of tags |
/// | `link_count` | number of `virtuals.links.entries` (0 when missing); GraphQL: markups of type `A` with an `href` in the post's body (null for member-only posts); RSS: links in the story HTML; null from HTML pages |
/// | `headline_words` | maximal runs of non-White_Space characters in `title` (0 when empty) |
/// | `headline_chars` | Unicode scalar values in `title` |
/// | `source` | the format the row was read from: `json`, `graphql`, `html` or `rss` |
/// | `observed_on` | the date whose harvest read these values: the run's date, or for a row an incremental run carried, the earlier date it was read on |
pub fn posts() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(Schema::new(vec![
            utf8("post_id", false),
            utf8("creator_id", false),
            utf8("title", true),
            utf8("unique_slug", true),
            utf8("home_collection_id", true),
            Field::new("first_published_at", timestamp_ms_utc(), true),
            Field::new("latest_published_at", timestamp_ms_utc(), true),
            utf8("in_response_to_post_id", true),
            Field::new("is_response", DataType::Boolean, false),
            Field::new("in_creator_profile", DataType::Boolean, false),
            Field::new("is_story", DataType::Boolean, false),
            Field::new("word_count", DataType::Int64, true),
            Field::new("total_clap_count", DataType::Int64, true),
            Field::new("reading_time_min", DataType::Float64, true),
            Field::new("image_count", DataType::Int64, true),
            Field::new("responses_created_count", DataType::Int64, true),
            Field::new("tags", list_of_utf8(), false),
            Field::new("tag_count", DataType::Int32, false),
            Field::new("link_count", DataType::Int32, true),
            Field::new("headline_words", DataType::Int32, false),
            Field::new("headline_chars", DataType::Int32, false),
            utf8("source", false),
            Field::new("observed_on", DataType::Date32, false),
        ]))
    })
    .clone()
}

/// `followings`: one row per (follower, followee) pair; followers are the authors.
/// `observed_on` is the date whose harvest read the pair (as in `posts`).
pub fn followings() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(Schema::new(vec![
            utf8("follower_id", false),
            utf8("followee_id", false),
            utf8("followee_username", true),
            utf8("followee_name", true),
            Field::new("observed_on", DataType::Date32, false),
        ]))
    })
    .clone()
}

/// `publications`: one row per collection id seen (harvested or referenced by a post).
///
/// `harvested` is true for the publications the run was asked for.
pub fn publications() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(Schema::new(vec![
            utf8("collection_id", false),
            utf8("name", true),
            utf8("slug", true),
            utf8("description", true),
            utf8("creator_id", true),
            utf8("domain", true),
            Field::new("harvested", DataType::Boolean, false),
        ]))
    })
    .clone()
}

/// The tables whose columns a source format may leave null, with their schemas. An author's
/// row is the format of their profile stream (`profile_source`), a post's its `source`.
pub fn tables_by_source() -> [(&'static str, SchemaRef); 3] {
    [
        (AUTHORS, authors()),
        (POSTS, posts()),
        (PUBLICATIONS, publications()),
    ]
}

/// The columns of a table that a source format does not carry: always null in the rows read
/// from it (never guessed). One definition, the table of `medium_api::via`; the manifest lists
/// them per format used (`sources.columns`), and a test checks them against the fixtures.
pub fn columns_not_carried(via: Via, table: &str) -> &'static [&'static str] {
    via.format().null_columns(table)
}

/// The columns of `author_metrics`, in order (SPEC §4 names, plus identity and completeness).
pub const AUTHOR_METRICS_COLUMNS: &[&str] = &[
    "user_id",
    "username",
    "name",
    "story_count",
    "total_claps",
    "mean_claps",
    "median_claps",
    "max_claps",
    "mean_headline_words",
    "mean_headline_chars",
    "mean_word_count",
    "mean_reading_time_min",
    "mean_tag_count",
    "mean_link_count",
    "publication_count",
    "publications",
    "publication_names",
    "following_count",
    "first_published_at",
    "last_published_at",
    "follower_count",
    "harvest_complete",
];

/// The columns of `author_changes`, in order: per author, against the previous published date.
pub const AUTHOR_CHANGES_COLUMNS: &[&str] = &[
    "user_id",
    "username",
    "previous_date",
    "in_previous",
    "stories_added",
    "claps_gained",
    "claps_gained_recent",
    "follower_change",
    "following_change",
];

/// The columns of `publication_summary`, in order.
pub const PUBLICATION_SUMMARY_COLUMNS: &[&str] = &[
    "collection_id",
    "name",
    "slug",
    "authors",
    "stories",
    "total_claps",
    "top_authors_by_total_claps",
    "top_authors_by_mean_claps",
];

/// The four tables, in the order they are listed (manifest files, the row-drift check).
pub const TABLES: [&str; 4] = [AUTHORS, POSTS, FOLLOWINGS, PUBLICATIONS];

/// The reports, in the order a date writes them.
pub const REPORTS: [&str; 3] = [AUTHOR_METRICS, PUBLICATION_SUMMARY, AUTHOR_CHANGES];

/// `table`'s batch from named columns, matched to `schema` by name, not by position: the
/// batch has the schema's column order whatever order the columns come in. A column missing,
/// unknown or named twice is a [`TransformError::SchemaMismatch`] naming both sides; a column
/// of the wrong type is the Arrow error naming it.
pub fn batch(
    table: &'static str,
    schema: SchemaRef,
    mut columns: Vec<(&str, ArrayRef)>,
) -> Result<RecordBatch, TransformError> {
    let actual: Vec<String> = columns.iter().map(|(n, _)| (*n).to_owned()).collect();
    let mismatch = || TransformError::SchemaMismatch {
        table,
        expected: schema.fields().iter().map(|f| f.name().clone()).collect(),
        actual: actual.clone(),
    };
    if columns.len() != schema.fields().len() {
        return Err(mismatch());
    }
    let mut ordered = Vec::with_capacity(columns.len());
    for field in schema.fields() {
        let Some(i) = columns.iter().position(|(n, _)| n == field.name()) else {
            return Err(mismatch());
        };
        ordered.push(columns.swap_remove(i).1);
    }
    RecordBatch::try_new(schema, ordered).map_err(|source| TransformError::Arrow { table, source })
}

/// Headline length in words: maximal runs of characters that are not Unicode White_Space
/// (so U+200A HAIR SPACE separates words); an empty title has 0.
pub fn headline_words(title: &str) -> usize {
    title.split_whitespace().count()
}

/// Headline length in Unicode scalar values.
pub fn headline_chars(title: &str) -> usize {
    title.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headline_words_split_on_unicode_white_space() {
        assert_eq!(
            headline_words("Infection Modeling\u{200a}—\u{200a}Part 1"),
            5
        );
        assert_eq!(headline_words(""), 0);
        assert_eq!(headline_words(" \t\u{3000}\u{a0} "), 0);
        assert_eq!(headline_words("a\u{2028}b\u{85}c"), 3);
        assert_eq!(headline_words("Load that &%$*# Checkpoint!"), 4);
        assert_eq!(
            headline_chars("Infection Modeling\u{200a}—\u{200a}Part 1"),
            27
        );
        assert_eq!(headline_chars("日本語"), 3);
    }

    #[test]
    fn batches_are_matched_to_their_schema_by_name() {
        use arrow::array::{BooleanArray, StringArray};
        let col = |v: &str| Arc::new(StringArray::from(vec![Some(v)])) as ArrayRef;
        let columns = vec![
            (
                "harvested",
                Arc::new(BooleanArray::from(vec![true])) as ArrayRef,
            ),
            ("domain", col("d")),
            ("creator_id", col("c")),
            ("description", col("x")),
            ("slug", col("s")),
            ("name", col("n")),
            ("collection_id", col("id")),
        ];
        let b = batch(PUBLICATIONS, publications(), columns.clone()).unwrap();
        assert_eq!(b.schema(), publications());
        let names = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(names.value(0), "id");
        let mut short = columns;
        short.pop();
        let err = batch(PUBLICATIONS, publications(), short)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("publications") && err.contains("collection_id"),
            "{err}"
        );
    }

    #[test]
    fn every_column_the_formats_leave_null_is_a_column() {
        for via in Via::ALL {
            for (table, columns) in via.format().null_columns {
                let (_, schema) = tables_by_source()
                    .into_iter()
                    .find(|(t, _)| t == table)
                    .unwrap_or_else(|| panic!("{via} names table {table}"));
                for c in *columns {
                    let field = schema.field_with_name(c).unwrap();
                    assert!(field.is_nullable(), "{table}.{c} is left null by {via}");
                }
            }
        }
    }

    #[test]
    fn every_column_is_documented_in_docs_schema_md() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schema.md"))
            .expect("docs/schema.md");
        let tables = [authors(), posts(), followings(), publications()];
        let names = tables
            .iter()
            .flat_map(|s| {
                s.fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect::<Vec<_>>()
            })
            .chain(AUTHOR_METRICS_COLUMNS.iter().map(|s| s.to_string()))
            .chain(PUBLICATION_SUMMARY_COLUMNS.iter().map(|s| s.to_string()))
            .chain(AUTHOR_CHANGES_COLUMNS.iter().map(|s| s.to_string()));
        for name in names {
            assert!(
                doc.contains(&format!("`{name}`")),
                "docs/schema.md lacks `{name}`"
            );
        }
    }
}
