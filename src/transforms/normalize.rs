//! Serde models → typed Arrow `RecordBatch`es, one builder per table (schemas in
//! [`crate::schema`]; each column is handed over by name and matched to its schema by name,
//! [`schema::batch`]).
//!
//! [`Normalizer`] builds the rows as the harvest runs: a run's crawl hands it each author once
//! the author's streams are read (in first-seen order), it returns the `posts` and
//! `followings` rows in batches of at most [`BATCH_ROWS`] for the sink to write, and the
//! author's decoded pages can then be dropped. What it keeps between authors is small and does
//! not hold pages: the ids of the posts written, the copies of posts seen outside their
//! creator's stream (which may still be replaced), each author's follower counts, and the
//! publications referenced. [`Normalizer::finish`] builds the rest from the spent harvest:
//! `authors`, `publications`, and the posts seen only outside their creators' streams.
//! [`normalize`] is the same code over a harvest held in memory (tests, benches).
//!
//! Invariants:
//! - One row per id: a post seen on several pages (or in several streams) is one row, an author
//!   listed on several publication pages is one row, a follow pair is one row.
//! - When a post appears both in its creator's own profile stream and elsewhere (the
//!   publication stream, another author's profile), the creator's profile copy wins: it is the
//!   one SPEC §4 measures. Otherwise the first copy seen wins (publication streams first, then
//!   authors in first-seen order).
//! - Row order: `authors` in first-seen order (`first_seen_rank`); `followings` by follower in
//!   that order, then page order; `posts` in the order their kept copies were read: first the
//!   posts of creators' own streams (authors in first-seen order, then page order), then the
//!   posts seen only elsewhere, publication streams first. The order depends on the harvest,
//!   never on which author's requests finished first.
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
use medium_api::models::{Collection, CompactString, Post, SocialStats};
use medium_api::{FastHashMap, FastHashSet};

use crate::error::TransformError;
use crate::run::{AuthorHarvest, Harvest, RejectedValue, StreamHarvest};
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

/// A batch of rows of the table it names.
pub type TableBatch = (&'static str, RecordBatch);

/// Rows the normalizer hands on at once: the `posts` and `followings` builders are cut into
/// batches of this size as the harvest runs, so their memory does not grow with it.
pub const BATCH_ROWS: usize = 16 * 1024;

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
    s: &'a StreamHarvest<P>,
) -> impl Iterator<Item = (&'a P, &'a str)> + 'a {
    s.pages
        .iter()
        .map(move |p| (p, date))
        .chain(s.carried.iter().map(|(d, p)| (p, d.as_str())))
}

fn count_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Builds the four tables from a harvest held in memory: [`Normalizer`] over its authors in
/// order, every batch gathered.
pub fn normalize(h: &Harvest) -> Result<Tables, TransformError> {
    normalize_in_batches(h, BATCH_ROWS)
}

/// [`normalize`], the normalizer handing on batches of `batch_rows` rows.
pub fn normalize_in_batches(h: &Harvest, batch_rows: usize) -> Result<Tables, TransformError> {
    let mut batches: HashMap<&'static str, Vec<RecordBatch>> = HashMap::new();
    let mut keep = |out: Vec<TableBatch>| {
        for (table, batch) in out {
            batches.entry(table).or_default().push(batch);
        }
    };
    let mut n = Normalizer::with_batch_rows(&h.date, batch_rows);
    for a in &h.authors {
        keep(n.author(a)?);
    }
    let (out, normalized) = n.finish(h)?;
    keep(out);
    let mut table = |name: &'static str, schema| -> Result<RecordBatch, TransformError> {
        let parts = batches.remove(name).unwrap_or_default();
        arrow::compute::concat_batches(&schema, &parts).map_err(|source| TransformError::Arrow {
            table: name,
            source,
        })
    };
    Ok(Tables {
        authors: table(schema::AUTHORS, schema::authors())?,
        posts: table(schema::POSTS, schema::posts())?,
        followings: table(schema::FOLLOWINGS, schema::followings())?,
        publications: table(schema::PUBLICATIONS, schema::publications())?,
        rejected: normalized.rejected,
    })
}

/// What [`Normalizer::finish`] reports besides the last batches.
#[derive(Debug, Default)]
pub struct Normalized {
    /// Values out of range or malformed, left null in the tables.
    pub rejected: Vec<RejectedValue>,
    /// `posts` rows read on the run's date, and carried from earlier dates.
    pub posts_fetched: usize,
    pub posts_carried: usize,
    /// `followings` rows read on the run's date, and carried from earlier dates.
    pub followings_fetched: usize,
    pub followings_carried: usize,
}

/// A copy of a post seen outside its creator's own stream, kept until the creator's copy
/// arrives (then it is dropped) or the harvest ends (then it is the post's row).
struct Pending {
    /// Its place among such copies: authors' copies in the order they were read.
    seq: u64,
    post: Post,
    observed: Option<i32>,
}

/// Builds the tables' rows as authors arrive (see the module docs).
pub struct Normalizer {
    date: String,
    batch_rows: usize,
    today: Option<i32>,
    checked: Checked,
    posts: PostRows,
    followings: FollowingRows,
    /// Ids of the posts whose rows are built.
    written: FastHashSet<CompactString>,
    pending: FastHashMap<CompactString, Pending>,
    seq: u64,
    /// Publications referenced by authors' stream pages, first copy of each, in order.
    referenced: Vec<Collection>,
    referenced_ids: FastHashSet<CompactString>,
    /// Each author's `SocialStats` counts (followers, followed), by user id (an author lost to
    /// a panic leaves the first-seen indexes and the spent harvest's positions apart).
    social: FastHashMap<CompactString, (Option<i64>, Option<i64>)>,
    counts: Normalized,
}

impl Normalizer {
    /// A normalizer for a run of `date` (`YYYY-MM-DD`).
    pub fn new(date: &str) -> Normalizer {
        Normalizer::with_batch_rows(date, BATCH_ROWS)
    }

    /// A normalizer that hands on batches of `batch_rows` rows (at least 1).
    pub fn with_batch_rows(date: &str, batch_rows: usize) -> Normalizer {
        Normalizer {
            batch_rows: batch_rows.max(1),
            date: date.to_owned(),
            today: date32(date),
            checked: Checked::default(),
            posts: PostRows::new(),
            followings: FollowingRows::default(),
            written: FastHashSet::default(),
            pending: FastHashMap::default(),
            seq: 0,
            referenced: Vec::new(),
            referenced_ids: FastHashSet::default(),
            social: FastHashMap::default(),
            counts: Normalized::default(),
        }
    }

    /// Takes the rows of the next author in first-seen order (authors must arrive in that
    /// order); returns the batches that are full.
    pub fn author(&mut self, a: &AuthorHarvest) -> Result<Vec<TableBatch>, TransformError> {
        if let Some(s) = social_stats(a) {
            self.social.insert(
                a.user.user_id.clone(),
                (s.users_followed_by_count, s.users_followed_count),
            );
        }
        let uid = a.user.user_id.as_str();
        let date = self.date.clone();
        self.author_rows(uid, &date, a)?;
        self.full_batches()
    }

    fn author_rows(
        &mut self,
        uid: &str,
        date: &str,
        a: &AuthorHarvest,
    ) -> Result<(), TransformError> {
        for (page, d) in dated(date, &a.profile) {
            let observed = date32(d);
            for c in &page.references.collections.0 {
                if !c.id.is_empty() && self.referenced_ids.insert(c.id.clone()) {
                    self.referenced.push(c.clone());
                }
            }
            let Some(posts) = page.references.posts.as_ref() else {
                continue;
            };
            for post in &posts.0 {
                if self.written.contains(post.id.as_str()) {
                    continue;
                }
                if post.creator_id == uid {
                    self.pending.remove(post.id.as_str());
                    self.write_post(post, true, observed);
                } else if !self.pending.contains_key(post.id.as_str()) {
                    self.seq += 1;
                    let pending = Pending {
                        seq: self.seq,
                        post: post.clone(),
                        observed,
                    };
                    self.pending.insert(post.id.clone(), pending);
                }
            }
        }
        let mut seen: FastHashSet<&str> = FastHashSet::default();
        for (page, d) in dated(date, &a.following) {
            let observed = date32(d);
            for u in &page.value {
                if seen.insert(u.user_id.as_str()) {
                    self.followings.push(uid, u, observed);
                    self.count_following(observed);
                }
            }
        }
        Ok(())
    }

    /// The rest of the tables, once every author has arrived: `h` is the harvest (its authors
    /// spent or not) in first-seen order. Returns the last batches of every table.
    pub fn finish<S, F>(
        mut self,
        h: &Harvest<S, F>,
    ) -> Result<(Vec<TableBatch>, Normalized), TransformError> {
        // posts seen only outside their creators' streams: the publication streams' copies
        // first (in the old single pass they were read first), then the authors', in order
        let mut from_publications: HashSet<&str> = HashSet::new();
        let mut rows: Vec<(Post, Option<i32>)> = Vec::new();
        for p in &h.publications {
            for (page, d) in dated(&h.date, &p.stream) {
                let Some(posts) = page.references.posts.as_ref() else {
                    continue;
                };
                for post in &posts.0 {
                    if self.written.contains(post.id.as_str())
                        || !from_publications.insert(post.id.as_str())
                    {
                        continue;
                    }
                    self.pending.remove(post.id.as_str());
                    rows.push((post.clone(), date32(d)));
                }
            }
        }
        let mut rest: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        rest.sort_by_key(|p| p.seq);
        rows.extend(rest.into_iter().map(|p| (p.post, p.observed)));
        let mut out = Vec::new();
        for (post, observed) in rows {
            self.write_post(&post, false, observed);
            out.extend(self.full_batches()?);
        }
        out.push((schema::POSTS, self.posts.finish()?));
        out.push((schema::FOLLOWINGS, self.followings.finish()?));
        out.push((
            schema::AUTHORS,
            authors(h, &self.social, &mut self.checked)?,
        ));
        out.push((schema::PUBLICATIONS, publications(h, &self.referenced)?));
        self.counts.rejected = std::mem::take(&mut self.checked.rejected);
        Ok((out, self.counts))
    }

    fn write_post(&mut self, post: &Post, own_profile: bool, observed: Option<i32>) {
        self.written.insert(post.id.clone());
        self.posts
            .push(post, own_profile, observed, &mut self.checked);
        match observed == self.today {
            true => self.counts.posts_fetched += 1,
            false => self.counts.posts_carried += 1,
        }
    }

    fn count_following(&mut self, observed: Option<i32>) {
        match observed == self.today {
            true => self.counts.followings_fetched += 1,
            false => self.counts.followings_carried += 1,
        }
    }

    fn full_batches(&mut self) -> Result<Vec<TableBatch>, TransformError> {
        let mut out = Vec::new();
        if self.posts.len >= self.batch_rows {
            out.push((schema::POSTS, self.posts.finish()?));
        }
        if self.followings.len >= self.batch_rows {
            out.push((schema::FOLLOWINGS, self.followings.finish()?));
        }
        Ok(out)
    }
}

fn authors<S, F>(
    h: &Harvest<S, F>,
    social: &FastHashMap<CompactString, (Option<i64>, Option<i64>)>,
    checked: &mut Checked,
) -> Result<RecordBatch, TransformError> {
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
        let (followers, followed) = social.get(&u.user_id).copied().unwrap_or_default();
        follower_count.append_option(followers);
        following_reported.append_option(followed);
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

/// The `posts` builders, cut into a batch at a time.
struct PostRows {
    len: usize,
    post_id: StringBuilder,
    creator_id: StringBuilder,
    title: StringBuilder,
    slug: StringBuilder,
    home: StringBuilder,
    first: TimestampMillisecondBuilder,
    latest: TimestampMillisecondBuilder,
    in_response: StringBuilder,
    is_response: BooleanBuilder,
    in_profile: BooleanBuilder,
    is_story: BooleanBuilder,
    words: Int64Builder,
    claps: Int64Builder,
    reading: Float64Builder,
    images: Int64Builder,
    responses: Int64Builder,
    tags: ListBuilder<StringBuilder>,
    tag_count: Int32Builder,
    link_count: Int32Builder,
    headline_words: Int32Builder,
    headline_chars: Int32Builder,
    source: StringBuilder,
    observed: Date32Builder,
}

impl PostRows {
    fn new() -> PostRows {
        PostRows {
            len: 0,
            post_id: StringBuilder::new(),
            creator_id: StringBuilder::new(),
            title: StringBuilder::new(),
            slug: StringBuilder::new(),
            home: StringBuilder::new(),
            first: timestamps(),
            latest: timestamps(),
            in_response: StringBuilder::new(),
            is_response: BooleanBuilder::new(),
            in_profile: BooleanBuilder::new(),
            is_story: BooleanBuilder::new(),
            words: Int64Builder::new(),
            claps: Int64Builder::new(),
            reading: Float64Builder::new(),
            images: Int64Builder::new(),
            responses: Int64Builder::new(),
            tags: ListBuilder::new(StringBuilder::new()),
            tag_count: Int32Builder::new(),
            link_count: Int32Builder::new(),
            headline_words: Int32Builder::new(),
            headline_chars: Int32Builder::new(),
            source: StringBuilder::new(),
            observed: Date32Builder::new(),
        }
    }

    fn push(&mut self, p: &Post, own_profile: bool, observed: Option<i32>, checked: &mut Checked) {
        self.len += 1;
        self.observed.append_option(observed);
        let v = &p.virtuals;
        let response = p.is_response();
        let t = p.title.as_deref().unwrap_or("");
        self.post_id.append_value(&p.id);
        self.creator_id.append_value(&p.creator_id);
        self.title.append_option(p.title.as_deref());
        self.slug.append_option(non_empty(p.unique_slug.as_deref()));
        self.home
            .append_option(non_empty(p.home_collection_id.as_deref()));
        self.in_response
            .append_option(non_empty(p.in_response_to_post_id.as_deref()));
        self.is_response.append_value(response);
        self.in_profile.append_value(own_profile);
        self.is_story.append_value(own_profile && !response);
        for tag in &v.tags {
            self.tags.values().append_value(&tag.slug);
        }
        self.tags.append(true);
        self.tag_count.append_value(count_i32(v.tags.len()));
        self.link_count.append_option(p.link_count().map(count_i32));
        self.source.append_value(p.source.name());
        self.headline_words
            .append_value(count_i32(schema::headline_words(t)));
        self.headline_chars
            .append_value(count_i32(schema::headline_chars(t)));
        let id = p.id.as_str();
        let c = checked;
        self.first.append_option(c.time(
            schema::POSTS,
            id,
            "first_published_at",
            p.first_published_at,
        ));
        self.latest.append_option(c.time(
            schema::POSTS,
            id,
            "latest_published_at",
            p.latest_published_at,
        ));
        self.words
            .append_option(c.count(id, "word_count", v.word_count));
        self.claps
            .append_option(c.count(id, "total_clap_count", v.total_clap_count));
        self.reading
            .append_option(c.minutes(id, "reading_time_min", v.reading_time));
        self.images
            .append_option(c.count(id, "image_count", v.image_count));
        self.responses.append_option(c.count(
            id,
            "responses_created_count",
            v.responses_created_count,
        ));
    }

    /// The rows so far as a batch; the builders start again empty.
    fn finish(&mut self) -> Result<RecordBatch, TransformError> {
        self.len = 0;
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("post_id", Arc::new(self.post_id.finish())),
            ("creator_id", Arc::new(self.creator_id.finish())),
            ("title", Arc::new(self.title.finish())),
            ("unique_slug", Arc::new(self.slug.finish())),
            ("home_collection_id", Arc::new(self.home.finish())),
            ("first_published_at", Arc::new(self.first.finish())),
            ("latest_published_at", Arc::new(self.latest.finish())),
            (
                "in_response_to_post_id",
                Arc::new(self.in_response.finish()),
            ),
            ("is_response", Arc::new(self.is_response.finish())),
            ("in_creator_profile", Arc::new(self.in_profile.finish())),
            ("is_story", Arc::new(self.is_story.finish())),
            ("word_count", Arc::new(self.words.finish())),
            ("total_clap_count", Arc::new(self.claps.finish())),
            ("reading_time_min", Arc::new(self.reading.finish())),
            ("image_count", Arc::new(self.images.finish())),
            ("responses_created_count", Arc::new(self.responses.finish())),
            ("tags", Arc::new(self.tags.finish())),
            ("tag_count", Arc::new(self.tag_count.finish())),
            ("link_count", Arc::new(self.link_count.finish())),
            ("headline_words", Arc::new(self.headline_words.finish())),
            ("headline_chars", Arc::new(self.headline_chars.finish())),
            ("source", Arc::new(self.source.finish())),
            ("observed_on", Arc::new(self.observed.finish())),
        ];
        schema::batch(schema::POSTS, schema::posts(), columns)
    }
}

/// The `followings` builders, cut into a batch at a time.
#[derive(Default)]
struct FollowingRows {
    len: usize,
    follower: StringBuilder,
    followee: StringBuilder,
    username: StringBuilder,
    name: StringBuilder,
    observed: Date32Builder,
}

impl FollowingRows {
    fn push(&mut self, follower: &str, u: &medium_api::models::User, observed: Option<i32>) {
        self.len += 1;
        self.observed.append_option(observed);
        self.follower.append_value(follower);
        self.followee.append_value(&u.user_id);
        self.username
            .append_option(non_empty(u.username.as_deref()));
        self.name.append_option(non_empty(u.name.as_deref()));
    }

    fn finish(&mut self) -> Result<RecordBatch, TransformError> {
        self.len = 0;
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("follower_id", Arc::new(self.follower.finish())),
            ("followee_id", Arc::new(self.followee.finish())),
            ("followee_username", Arc::new(self.username.finish())),
            ("followee_name", Arc::new(self.name.finish())),
            ("observed_on", Arc::new(self.observed.finish())),
        ];
        schema::batch(schema::FOLLOWINGS, schema::followings(), columns)
    }
}

/// The publications: the harvested ones, then those their streams reference, then those the
/// authors' streams reference (`referenced`, first copies in order).
fn publications<S, F>(
    h: &Harvest<S, F>,
    referenced: &[Collection],
) -> Result<RecordBatch, TransformError> {
    let mut rows: Vec<(&Collection, bool)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let harvested = h
        .publications
        .iter()
        .filter_map(|p| p.collection.as_ref())
        .map(|c| (c, true));
    let from_publications = h
        .publications
        .iter()
        .flat_map(|p| dated(&h.date, &p.stream))
        .flat_map(|(page, _)| page.references.collections.0.iter());
    let referenced = from_publications
        .chain(referenced.iter())
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
