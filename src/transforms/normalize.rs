//! Serde models → typed Arrow `RecordBatch`es, one builder per table (schemas in
//! [`crate::schema`]; each column is handed over by name and matched to its schema by name,
//! [`schema::batch`]).
//!
//! Invariants:
//! - One row per id: a post seen on several pages (or in several streams) is one row, an author
//!   listed on several publication pages is one row, a follow pair is one row.
//! - When a post appears both in its creator's own profile stream and elsewhere (the
//!   publication stream, another author's profile), the creator's profile copy wins: it is the
//!   one SPEC §4 measures. Otherwise the first copy seen wins.
//! - A count Medium did not send is null; missing tags / links are empty; `""` ids and `0`
//!   timestamps are null. A column the source format does not carry (claps from RSS, link
//!   counts from HTML, ...) is null too; `posts.source` and `authors.profile_source` /
//!   `following_source` say which format each row came from.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder,
    ListBuilder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::record_batch::RecordBatch;

use medium_api::endpoints::PublicationRef;
use medium_api::models::{Collection, Post, SocialStats};

use crate::error::TransformError;
use crate::run::{AuthorHarvest, Harvest, RejectedValue};
use crate::schema;
use medium_api::models::MALFORMED;

/// The four tables of one run, and the values from the network they could not hold.
#[derive(Debug, Clone)]
pub struct Tables {
    pub authors: RecordBatch,
    pub posts: RecordBatch,
    pub followings: RecordBatch,
    pub publications: RecordBatch,
    /// Values out of range or malformed, left null in the tables.
    pub rejected: Vec<RejectedValue>,
}

impl Tables {
    /// `(table name, batch)` in a fixed order.
    pub fn named(&self) -> [(&'static str, &RecordBatch); 4] {
        [
            (schema::AUTHORS, &self.authors),
            (schema::POSTS, &self.posts),
            (schema::FOLLOWINGS, &self.followings),
            (schema::PUBLICATIONS, &self.publications),
        ]
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// The latest time a table holds: 9999-12-31T23:59:59.999Z (chrono, and the CSV writer behind
/// the reports, go no further).
pub const MAX_MS: i64 = 253_402_300_799_999;

/// The largest count a table holds (claps, words, images, responses): no real post comes near,
/// and an author's sums stay far from i64's end (10^12 × 25,000 pages of 25 posts < 2^63).
pub const MAX_COUNT: i64 = 1_000_000_000_000;

/// Checks values from the network against their columns' ranges, keeping what it rejects.
#[derive(Default)]
struct Checked {
    rejected: Vec<RejectedValue>,
}

impl Checked {
    fn reject(&mut self, table: &str, id: &str, column: &str, value: String) {
        self.rejected.push(RejectedValue {
            table: table.to_owned(),
            id: id.to_owned(),
            column: column.to_owned(),
            value,
        });
    }

    fn shown(v: i64) -> String {
        match v {
            MALFORMED => "malformed".to_owned(),
            v => v.to_string(),
        }
    }

    /// A time: null when missing or 0 (Medium's "none"), rejected beyond year 9999 or below 0.
    fn time(&mut self, table: &str, id: &str, column: &str, ms: Option<i64>) -> Option<i64> {
        match ms {
            Some(t) if (1..=MAX_MS).contains(&t) => Some(t),
            Some(0) | None => None,
            Some(t) => {
                self.reject(table, id, column, Self::shown(t));
                None
            }
        }
    }

    /// A count: rejected when negative or beyond [`MAX_COUNT`].
    fn count(&mut self, id: &str, column: &str, n: Option<i64>) -> Option<i64> {
        match n {
            Some(c) if (0..=MAX_COUNT).contains(&c) => Some(c),
            None => None,
            Some(c) => {
                self.reject(schema::POSTS, id, column, Self::shown(c));
                None
            }
        }
    }

    /// Minutes: rejected when not a finite number from 0 to a million.
    fn minutes(&mut self, id: &str, column: &str, m: Option<f64>) -> Option<f64> {
        match m {
            Some(x) if x.is_finite() && (0.0..=1e6).contains(&x) => Some(x),
            None => None,
            Some(x) => {
                let shown = if x.is_nan() {
                    "malformed".to_owned()
                } else {
                    x.to_string()
                };
                self.reject(schema::POSTS, id, column, shown);
                None
            }
        }
    }
}

fn timestamps() -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::new().with_timezone("UTC")
}

/// A `YYYY-MM-DD` date as days since 1970-01-01 (Arrow's `Date32`).
fn date32(date: &str) -> Option<i32> {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    i32::try_from(
        d.signed_duration_since(chrono::NaiveDate::default())
            .num_days(),
    )
    .ok()
}

/// A stream's pages with the date each was read on: the run's, then the carried ones'.
fn dated<'a, P>(
    date: &'a str,
    s: &'a crate::run::StreamHarvest<P>,
) -> impl Iterator<Item = (&'a P, &'a str)> + 'a {
    s.pages
        .iter()
        .map(move |p| (p, date))
        .chain(s.carried.iter().map(|(d, p)| (p, d.as_str())))
}

fn count_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Builds the four tables from a harvest.
pub fn normalize(h: &Harvest) -> Result<Tables, TransformError> {
    let mut checked = Checked::default();
    Ok(Tables {
        authors: authors(h, &mut checked)?,
        posts: posts(h, &mut checked)?,
        followings: followings(h)?,
        publications: publications(h)?,
        rejected: checked.rejected,
    })
}

fn authors(h: &Harvest, checked: &mut Checked) -> Result<RecordBatch, TransformError> {
    // found_in holds collection ids; a publication named by slug whose id never became known
    // keeps its slug.
    let publication_ids: HashMap<&PublicationRef, &str> = h
        .publications
        .iter()
        .map(|p| {
            let id = p
                .collection
                .as_ref()
                .map_or(p.publication.key(), |c| c.id.as_str());
            (&p.publication, id)
        })
        .collect();
    let n = h.authors.len();
    let mut user_id = StringBuilder::with_capacity(n, n * 12);
    let mut username = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut bio = StringBuilder::new();
    let mut twitter = StringBuilder::new();
    let mut created = timestamps();
    let mut member = timestamps();
    let mut rank = Int32Builder::with_capacity(n);
    let mut found_in = ListBuilder::new(StringBuilder::new());
    let mut profile_pages = Int32Builder::with_capacity(n);
    let mut following_pages = Int32Builder::with_capacity(n);
    let mut profile_complete = BooleanBuilder::with_capacity(n);
    let mut following_complete = BooleanBuilder::with_capacity(n);
    let mut profile_source = StringBuilder::new();
    let mut following_source = StringBuilder::new();
    let mut follower_count = Int64Builder::with_capacity(n);
    let mut following_reported = Int64Builder::with_capacity(n);
    let mut profile_carried = Date32Builder::with_capacity(n);
    let mut following_carried = Date32Builder::with_capacity(n);
    for (i, a) in h.authors.iter().enumerate() {
        profile_carried.append_option(a.profile.carried_from().and_then(date32));
        following_carried.append_option(a.following.carried_from().and_then(date32));
        let u = &a.user;
        user_id.append_value(&u.user_id);
        username.append_option(non_empty(u.username.as_deref()));
        name.append_option(non_empty(u.name.as_deref()));
        bio.append_option(non_empty(u.bio.as_deref()));
        twitter.append_option(non_empty(u.twitter_screen_name.as_deref()));
        let uid = u.user_id.as_str();
        created.append_option(checked.time(schema::AUTHORS, uid, "created_at", u.created_at));
        member.append_option(checked.time(
            schema::AUTHORS,
            uid,
            "medium_member_at",
            u.medium_member_at,
        ));
        rank.append_value(count_i32(i + 1));
        for p in &a.found_in {
            found_in
                .values()
                .append_value(publication_ids.get(p).copied().unwrap_or(p.key()));
        }
        found_in.append(true);
        profile_pages.append_value(count_i32(a.profile.pages.len()));
        following_pages.append_value(count_i32(a.following.pages.len()));
        profile_complete.append_value(a.profile.is_complete());
        following_complete.append_value(a.following.is_complete());
        profile_source.append_option(a.profile.via.map(|v| v.name()));
        following_source.append_option(a.following.via.map(|v| v.name()));
        let stats = social_stats(a);
        follower_count.append_option(stats.and_then(|s| s.users_followed_by_count));
        following_reported.append_option(stats.and_then(|s| s.users_followed_count));
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("user_id", Arc::new(user_id.finish())),
        ("username", Arc::new(username.finish())),
        ("name", Arc::new(name.finish())),
        ("bio", Arc::new(bio.finish())),
        ("twitter_screen_name", Arc::new(twitter.finish())),
        ("created_at", Arc::new(created.finish())),
        ("medium_member_at", Arc::new(member.finish())),
        ("first_seen_rank", Arc::new(rank.finish())),
        ("found_in", Arc::new(found_in.finish())),
        ("profile_pages", Arc::new(profile_pages.finish())),
        ("following_pages", Arc::new(following_pages.finish())),
        ("profile_complete", Arc::new(profile_complete.finish())),
        ("following_complete", Arc::new(following_complete.finish())),
        ("profile_source", Arc::new(profile_source.finish())),
        ("following_source", Arc::new(following_source.finish())),
        ("profile_carried_from", Arc::new(profile_carried.finish())),
        (
            "following_carried_from",
            Arc::new(following_carried.finish()),
        ),
        ("follower_count", Arc::new(follower_count.finish())),
        (
            "following_count_reported",
            Arc::new(following_reported.finish()),
        ),
    ];
    schema::batch(schema::AUTHORS, schema::authors(), columns)
}

/// The author's own `SocialStats`, from the first profile page that has them.
fn social_stats(a: &AuthorHarvest) -> Option<&SocialStats> {
    a.profile.pages.iter().find_map(|page| {
        page.references
            .social_stats
            .0
            .iter()
            .find(|s| s.user_id == a.user.user_id)
    })
}

/// The distinct posts of a harvest in first-seen order, each with whether the kept copy came
/// from its creator's own profile stream, and the date it was read on.
pub fn distinct_posts(h: &Harvest) -> Vec<(&Post, bool, &str)> {
    let mut rows: Vec<(&Post, bool, &str)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let pub_posts = h
        .publications
        .iter()
        .flat_map(|p| dated(&h.date, &p.stream))
        .filter_map(|(page, d)| Some((page.references.posts.as_ref()?, d)))
        .flat_map(|(posts, d)| posts.0.iter().map(move |post| (post, false, d)));
    let profile_posts = h.authors.iter().flat_map(|a| {
        dated(&h.date, &a.profile)
            .filter_map(|(page, d)| Some((page.references.posts.as_ref()?, d)))
            .flat_map(move |(posts, d)| {
                posts
                    .0
                    .iter()
                    .map(move |post| (post, post.creator_id == a.user.user_id, d))
            })
    });
    for (post, own_profile, d) in pub_posts.chain(profile_posts) {
        match index.get(post.id.as_str()) {
            Some(&i) => {
                if own_profile && !rows[i].1 {
                    rows[i] = (post, true, d);
                }
            }
            None => {
                index.insert(post.id.as_str(), rows.len());
                rows.push((post, own_profile, d));
            }
        }
    }
    rows
}

fn posts(h: &Harvest, checked: &mut Checked) -> Result<RecordBatch, TransformError> {
    let rows = distinct_posts(h);
    let n = rows.len();
    let mut post_id = StringBuilder::with_capacity(n, n * 12);
    let mut creator_id = StringBuilder::with_capacity(n, n * 12);
    let mut title = StringBuilder::new();
    let mut slug = StringBuilder::new();
    let mut home = StringBuilder::new();
    let mut first = timestamps();
    let mut latest = timestamps();
    let mut in_response = StringBuilder::new();
    let mut is_response = BooleanBuilder::with_capacity(n);
    let mut in_profile = BooleanBuilder::with_capacity(n);
    let mut is_story = BooleanBuilder::with_capacity(n);
    let mut words = Int64Builder::with_capacity(n);
    let mut claps = Int64Builder::with_capacity(n);
    let mut reading = Float64Builder::with_capacity(n);
    let mut images = Int64Builder::with_capacity(n);
    let mut responses = Int64Builder::with_capacity(n);
    let mut tags = ListBuilder::new(StringBuilder::new());
    let mut tag_count = Int32Builder::with_capacity(n);
    let mut link_count = Int32Builder::with_capacity(n);
    let mut headline_words = Int32Builder::with_capacity(n);
    let mut headline_chars = Int32Builder::with_capacity(n);
    let mut source = StringBuilder::with_capacity(n, n * 4);
    let mut observed = Date32Builder::with_capacity(n);
    for (p, own_profile, observed_on) in rows {
        observed.append_option(date32(observed_on));
        let v = &p.virtuals;
        let response = p.is_response();
        let t = p.title.as_deref().unwrap_or("");
        post_id.append_value(&p.id);
        creator_id.append_value(&p.creator_id);
        title.append_option(p.title.as_deref());
        slug.append_option(non_empty(p.unique_slug.as_deref()));
        home.append_option(non_empty(p.home_collection_id.as_deref()));
        let id = p.id.as_str();
        first.append_option(checked.time(
            schema::POSTS,
            id,
            "first_published_at",
            p.first_published_at,
        ));
        latest.append_option(checked.time(
            schema::POSTS,
            id,
            "latest_published_at",
            p.latest_published_at,
        ));
        in_response.append_option(non_empty(p.in_response_to_post_id.as_deref()));
        is_response.append_value(response);
        in_profile.append_value(own_profile);
        is_story.append_value(own_profile && !response);
        words.append_option(checked.count(id, "word_count", v.word_count));
        claps.append_option(checked.count(id, "total_clap_count", v.total_clap_count));
        reading.append_option(checked.minutes(id, "reading_time_min", v.reading_time));
        images.append_option(checked.count(id, "image_count", v.image_count));
        responses.append_option(checked.count(
            id,
            "responses_created_count",
            v.responses_created_count,
        ));
        for tag in &v.tags {
            tags.values().append_value(&tag.slug);
        }
        tags.append(true);
        tag_count.append_value(count_i32(v.tags.len()));
        link_count.append_option(p.link_count().map(count_i32));
        source.append_value(p.source.name());
        headline_words.append_value(count_i32(schema::headline_words(t)));
        headline_chars.append_value(count_i32(schema::headline_chars(t)));
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("post_id", Arc::new(post_id.finish())),
        ("creator_id", Arc::new(creator_id.finish())),
        ("title", Arc::new(title.finish())),
        ("unique_slug", Arc::new(slug.finish())),
        ("home_collection_id", Arc::new(home.finish())),
        ("first_published_at", Arc::new(first.finish())),
        ("latest_published_at", Arc::new(latest.finish())),
        ("in_response_to_post_id", Arc::new(in_response.finish())),
        ("is_response", Arc::new(is_response.finish())),
        ("in_creator_profile", Arc::new(in_profile.finish())),
        ("is_story", Arc::new(is_story.finish())),
        ("word_count", Arc::new(words.finish())),
        ("total_clap_count", Arc::new(claps.finish())),
        ("reading_time_min", Arc::new(reading.finish())),
        ("image_count", Arc::new(images.finish())),
        ("responses_created_count", Arc::new(responses.finish())),
        ("tags", Arc::new(tags.finish())),
        ("tag_count", Arc::new(tag_count.finish())),
        ("link_count", Arc::new(link_count.finish())),
        ("headline_words", Arc::new(headline_words.finish())),
        ("headline_chars", Arc::new(headline_chars.finish())),
        ("source", Arc::new(source.finish())),
        ("observed_on", Arc::new(observed.finish())),
    ];
    schema::batch(schema::POSTS, schema::posts(), columns)
}

fn followings(h: &Harvest) -> Result<RecordBatch, TransformError> {
    let mut follower = StringBuilder::new();
    let mut followee = StringBuilder::new();
    let mut username = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let mut observed = Date32Builder::new();
    for a in &h.authors {
        for (page, d) in dated(&h.date, &a.following) {
            for u in &page.value {
                if !seen.insert((a.user.user_id.as_str(), u.user_id.as_str())) {
                    continue;
                }
                observed.append_option(date32(d));
                follower.append_value(&a.user.user_id);
                followee.append_value(&u.user_id);
                username.append_option(non_empty(u.username.as_deref()));
                name.append_option(non_empty(u.name.as_deref()));
            }
        }
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("follower_id", Arc::new(follower.finish())),
        ("followee_id", Arc::new(followee.finish())),
        ("followee_username", Arc::new(username.finish())),
        ("followee_name", Arc::new(name.finish())),
        ("observed_on", Arc::new(observed.finish())),
    ];
    schema::batch(schema::FOLLOWINGS, schema::followings(), columns)
}

fn publications(h: &Harvest) -> Result<RecordBatch, TransformError> {
    let mut rows: Vec<(&Collection, bool)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let harvested = h
        .publications
        .iter()
        .filter_map(|p| p.collection.as_ref())
        .map(|c| (c, true));
    let referenced = h
        .publications
        .iter()
        .flat_map(|p| dated(&h.date, &p.stream))
        .flat_map(|(page, _)| page.references.collections.0.iter())
        .chain(
            h.authors
                .iter()
                .flat_map(|a| dated(&h.date, &a.profile))
                .flat_map(|(page, _)| page.references.collections.0.iter()),
        )
        .map(|c| (c, false));
    for (c, is_harvested) in harvested.chain(referenced) {
        if c.id.is_empty() {
            continue;
        }
        match index.get(c.id.as_str()) {
            Some(&i) => rows[i].1 |= is_harvested,
            None => {
                index.insert(c.id.as_str(), rows.len());
                rows.push((c, is_harvested));
            }
        }
    }
    let mut id = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut slug = StringBuilder::new();
    let mut description = StringBuilder::new();
    let mut creator = StringBuilder::new();
    let mut domain = StringBuilder::new();
    let mut harvested_col = BooleanBuilder::new();
    for (c, is_harvested) in rows {
        id.append_value(&c.id);
        name.append_option(non_empty(c.name.as_deref()));
        slug.append_option(non_empty(c.slug.as_deref()));
        description.append_option(non_empty(c.description.as_deref()));
        creator.append_option(non_empty(c.creator_id.as_deref()));
        domain.append_option(non_empty(c.domain.as_deref()));
        harvested_col.append_value(is_harvested);
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("collection_id", Arc::new(id.finish())),
        ("name", Arc::new(name.finish())),
        ("slug", Arc::new(slug.finish())),
        ("description", Arc::new(description.finish())),
        ("creator_id", Arc::new(creator.finish())),
        ("domain", Arc::new(domain.finish())),
        ("harvested", Arc::new(harvested_col.finish())),
    ];
    schema::batch(schema::PUBLICATIONS, schema::publications(), columns)
}
