//! A deterministic synthetic Medium: N authors, M stories each, K followings, paged like the
//! real API. It can answer a request (path + query → the exact body Medium would send), list
//! every page of a full harvest ([`SyntheticMedium::pages`], for a caller to store for offline
//! replay), and serve itself over HTTP on 127.0.0.1 with a chosen latency per response
//! ([`serve`]). Tests and benchmarks share it; the bundled sample uses the real fixtures
//! instead. It depends on `medium-api` (the formats) and not on the pipeline.
//!
//! The crate root owns the generator and its JSON answers: the same spec and seed always give
//! the same bytes. Its HTML pages and RSS feeds ([`SyntheticMedium::respond_page`]) carry the
//! same authors and stories; injected faults ([`Faults`]) are deterministic by seed, and a
//! server can close the JSON API ([`Faults::json_closed`]: 403 on every API path) to exercise
//! `--via auto`.
//!
//! Paging follows real Medium: the publication stream pages with `to`/`page` and ends with
//! `to: "null"`; profile streams page with `page` and the last page has no `next`; following
//! pages use `to` and the last page's `next` has only `limit`.

use std::collections::HashMap;

use bytes::Bytes;
use medium_api::endpoints::{PublicationRef, StreamId};
use medium_api::guard::{parse_payload, XSSI_GUARD};
use medium_api::models::{FollowingPayload, PageItems, StreamPayload};
use medium_api::paging::StreamPager;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

mod faults;
pub mod graphql;
pub mod hostile;
mod pages;
mod server;

pub use faults::{respond_with, Answer, AnswerFn, Fault, Faults};
pub use hostile::{Attack, Hostile};
pub use pages::synthetic_slug;
pub use server::{
    serve, serve_listener, serve_on, serve_router, serve_with_faults, Server, ServerStats,
    SyntheticServer,
};

/// The shape of a synthetic publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticSpec {
    pub authors: usize,
    pub stories_per_author: usize,
    pub followings_per_author: usize,
    /// Authors (users) per publication-stream page.
    pub publication_page_size: usize,
    /// Posts per profile-stream page (Medium: 10).
    pub profile_page_size: usize,
    /// Users per following page (Medium: 8).
    pub following_page_size: usize,
    pub seed: u64,
    /// Every k-th author's profile stream ends with a cursor pointing back to an earlier page
    /// (page 2, or page 1 for a one-page stream) instead of no cursor; 0 = never.
    pub loop_back_every: usize,
    /// A world that changes from day to day (for incremental runs), listed newest first as
    /// Medium lists it; `None`: the fixed world, each author's stories listed oldest first.
    pub evolution: Option<Evolution>,
}

/// How the synthetic world changes from one day to the next. Day 0 is the base world; on each
/// day `k` (1..=`day`), author `a` publishes a story when `(a + k) % new_story_every == 0` and
/// follows one more user when `(a + k) % new_follow_every == 0`. A story's claps grow by 7 a
/// day while it is younger than 30 days, then stay; stories of the base world never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evolution {
    /// Which day the world is on.
    pub day: u32,
    /// When day 0 starts (epoch ms, 00:00 UTC).
    pub day0_ms: i64,
    pub new_story_every: usize,
    pub new_follow_every: usize,
}

impl Evolution {
    /// 2026-11-27 (the tests' first date) as day 0: an author in twenty publishes each day, one
    /// in ten follows someone new.
    pub fn from_2026_11_27(day: u32) -> Evolution {
        Evolution {
            day,
            day0_ms: 1_795_737_600_000,
            new_story_every: 20,
            new_follow_every: 10,
        }
    }
}

const DAY_MS: i64 = 86_400_000;

impl Default for SyntheticSpec {
    fn default() -> Self {
        SyntheticSpec {
            authors: 20,
            stories_per_author: 10,
            followings_per_author: 8,
            publication_page_size: 10,
            profile_page_size: 10,
            following_page_size: 8,
            seed: 42,
            loop_back_every: 0,
            evolution: None,
        }
    }
}

/// The collection id of the synthetic publication.
pub const SYNTHETIC_COLLECTION: &str = "5a17e71c0de5";

/// The synthetic Medium.
#[derive(Debug, Clone)]
pub struct SyntheticMedium {
    pub spec: SyntheticSpec,
    /// Authors by user id, built on first use, with the seed and author count it was built
    /// for: a linear search per request made the 50,000-author bench tables take 8 minutes.
    by_id: std::sync::OnceLock<(u64, usize, HashMap<String, usize>)>,
}

const WORDS: &[&str] = &[
    "data",
    "science",
    "learning",
    "deep",
    "python",
    "neural",
    "networks",
    "a",
    "guide",
    "to",
    "the",
    "statistics",
    "of",
    "everything",
    "why",
    "how",
    "regression",
    "bayesian",
    "pandas",
    "rust",
    "fast",
    "model",
    "é",
    "naïve",
    "日本語",
    "\u{200a}—\u{200a}",
];
const TAGS: &[&str] = &[
    "data-science",
    "machine-learning",
    "python",
    "statistics",
    "ai",
    "deep-learning",
    "programming",
    "towards-data-science",
    "visualization",
    "sql",
];

impl SyntheticMedium {
    pub fn new(spec: SyntheticSpec) -> Self {
        SyntheticMedium {
            spec,
            by_id: std::sync::OnceLock::new(),
        }
    }

    /// The user id of author `i` (also used for followed users beyond the authors).
    pub fn user_id(&self, i: usize) -> String {
        format!("{:012x}", mix(self.spec.seed, i as u64) & 0xffff_ffff_ffff)
    }

    pub(crate) fn post_id(&self, author: usize, story: usize) -> String {
        format!(
            "{:012x}",
            mix(
                self.spec.seed ^ 0x5107,
                (author as u64) << 20 | story as u64
            ) & 0xffff_ffff_ffff
        )
    }

    pub(crate) fn user(&self, i: usize) -> Value {
        json!({
            "userId": self.user_id(i),
            "name": format!("Author {i}"),
            "username": format!("author{i}"),
            "createdAt": 1_420_000_000_000i64 + i as i64 * 86_400_000,
            "imageId": "",
            "backgroundImageId": "",
            "bio": "Writes about data.",
            "twitterScreenName": "",
            "facebookAccountId": "",
            "allowNotes": 1,
            "mediumMemberAt": 0,
            "isNsfw": false,
            "type": "User"
        })
    }

    /// How many stories author `a` has on the world's day.
    pub fn stories_of(&self, a: usize) -> usize {
        self.spec.stories_per_author + self.new_story_days(a).len()
    }

    /// The days (ascending) on which author `a` published a story after the base world.
    fn new_story_days(&self, a: usize) -> Vec<u32> {
        match self.spec.evolution {
            Some(e) if e.new_story_every > 0 => (1..=e.day)
                .filter(|k| (a + *k as usize) % e.new_story_every == 0)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The days (ascending) on which author `a` followed someone new.
    fn new_follow_days(&self, a: usize) -> Vec<u32> {
        match self.spec.evolution {
            Some(e) if e.new_follow_every > 0 => (1..=e.day)
                .filter(|k| (a + *k as usize) % e.new_follow_every == 0)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Author `a`'s story numbers in the order the profile stream lists them: oldest first in
    /// the fixed world, newest first in an evolving one.
    fn listed_stories(&self, a: usize) -> Vec<usize> {
        let n = self.stories_of(a);
        match self.spec.evolution {
            None => (0..n).collect(),
            Some(_) => (0..n).rev().collect(),
        }
    }

    /// Story `s` of author `a` (every 7th post is a response, every 11th lacks counts).
    pub fn post(&self, a: usize, s: usize) -> Value {
        let mut rng = fastrand::Rng::with_seed(mix(self.spec.seed, (a as u64) << 24 | s as u64));
        let n_words = rng.usize(0..9);
        let title: Vec<&str> = (0..n_words)
            .map(|_| WORDS[rng.usize(..WORDS.len())])
            .collect();
        let word_count = rng.i64(50..4000);
        let n_tags = rng.usize(0..6);
        let tags: Vec<Value> = (0..n_tags)
            .map(|t| json!({"slug": TAGS[(t + a + s) % TAGS.len()], "name": "", "postCount": 1}))
            .collect();
        let links: Vec<Value> = (0..rng.usize(0..12))
            .map(|l| json!({"url": format!("https://example.com/{l}"), "alts": [], "httpStatus": 200}))
            .collect();
        let published = self.published_at(a, s);
        let response = Self::is_response(s);
        let claps = rng.i64(0..5000) + self.claps_gained(a, s);
        let mut virtuals = json!({
            "wordCount": word_count,
            "totalClapCount": claps,
            "readingTime": word_count as f64 / 265.0,
            "imageCount": rng.i64(0..20),
            "responsesCreatedCount": rng.i64(0..9),
            "tags": tags,
            "links": {"entries": links, "version": "0.3", "generatedAt": published},
            "subtitle": "",
            "recommends": 0
        });
        if s % 11 == 10 {
            let v = virtuals.as_object_mut().expect("virtuals is an object");
            v.remove("wordCount");
            v.remove("totalClapCount");
            v.remove("links");
        }
        let home = match s % 3 {
            0 => SYNTHETIC_COLLECTION.to_owned(),
            1 => String::new(),
            _ => format!("c01{:09x}", a % 5),
        };
        json!({
            "id": self.post_id(a, s),
            "creatorId": self.user_id(a),
            "title": title.join(" "),
            "uniqueSlug": format!("story-{}", self.post_id(a, s)),
            "homeCollectionId": if response { String::new() } else { home },
            "firstPublishedAt": published,
            "latestPublishedAt": published + 60_000,
            "inResponseToPostId": if response { self.post_id((a + 1) % self.spec.authors.max(1), 0) } else { String::new() },
            "virtuals": virtuals,
            "type": "Post"
        })
    }

    /// When story `s` of author `a` was first published (epoch ms): later stories are newer.
    /// A story published after the base world is published on its day.
    pub fn published_at(&self, a: usize, s: usize) -> i64 {
        match (
            self.spec.evolution,
            s.checked_sub(self.spec.stories_per_author),
        ) {
            (Some(e), Some(j)) => {
                let day = self.new_story_days(a).get(j).copied().unwrap_or(0);
                e.day0_ms + i64::from(day) * DAY_MS + 3_600_000 + a as i64 * 1_000
            }
            // the base world of an evolving one: ten minutes an author, a second a story, so
            // that even 100,000 authors' stories lie in the past (before 2020)
            (Some(_), None) => 1_500_000_000_000i64 + a as i64 * 600_000 + s as i64 * 1_000,
            _ => 1_500_000_000_000i64 + (a as i64 * 1_000 + s as i64) * 3_600_000,
        }
    }

    /// Claps a story gained since it was published: 7 a day for its first 30 days, on the
    /// world's day (none in the fixed world, none for the base world's stories).
    fn claps_gained(&self, a: usize, s: usize) -> i64 {
        let Some(e) = self.spec.evolution else {
            return 0;
        };
        let Some(j) = s.checked_sub(self.spec.stories_per_author) else {
            return 0;
        };
        let published_day = self.new_story_days(a).get(j).copied().unwrap_or(0);
        i64::from(e.day.saturating_sub(published_day).min(30)) * 7
    }

    /// Whether story number `s` of every author is a response.
    pub fn is_response(s: usize) -> bool {
        s % 7 == 6
    }

    /// The posts author `a` pinned, latest pin first: every third author pins their first
    /// story, every sixth their second too.
    pub fn pinned(&self, a: usize) -> Vec<(usize, usize)> {
        let n = self.spec.stories_per_author;
        let mut pins = Vec::new();
        if a % 6 == 0 && n >= 2 {
            pins.push((a, 1));
        }
        if a % 3 == 0 && n >= 1 {
            pins.push((a, 0));
        }
        pins
    }

    /// The posts the publication pinned: the first story of the author two thirds down its
    /// list (so that it comes first, and again at its place).
    pub fn collection_pins(&self) -> Vec<(usize, usize)> {
        match (self.spec.authors, self.spec.stories_per_author) {
            (n, s) if n >= 3 && s >= 1 => vec![(n * 2 / 3, 0)],
            _ => Vec::new(),
        }
    }

    /// When a post was pinned (epoch ms), if it is: ten days after it was published.
    pub fn pinned_at(&self, a: usize, s: usize) -> Option<i64> {
        (self.pinned(a).contains(&(a, s)) || self.collection_pins().contains(&(a, s)))
            .then(|| self.published_at(a, s) + 10 * 86_400_000)
    }

    /// Medium's own figures for user `i`: followers, and how many users they follow (which
    /// can exceed the users its following list returns, as on Medium).
    pub fn social_stats(&self, i: usize) -> (u64, u64) {
        let listed = if i < self.spec.authors {
            self.followed(i).len()
        } else {
            0
        };
        ((i as u64 * 37 + 11) % 5_000, (listed + i % 4) as u64)
    }

    fn collection(&self, id: &str) -> Value {
        json!({"id": id, "name": format!("Publication {id}"), "slug": format!("pub-{id}"), "type": "Collection"})
    }

    fn envelope(payload: Value) -> Vec<u8> {
        let mut out = XSSI_GUARD.to_vec();
        // serde_json::to_writer into a Vec cannot fail
        let _ = serde_json::to_writer(
            &mut out,
            &json!({"success": true, "payload": payload, "v": 3, "b": "synthetic"}),
        );
        out
    }

    fn query_value<'a>(query: &'a str, key: &str) -> Option<std::borrow::Cow<'a, str>> {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    fn page_number(query: &str) -> usize {
        Self::query_value(query, "page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
    }

    /// The body for `path?query`, or `None` (404) for anything it does not know.
    pub fn respond(&self, path: &str, query: &str) -> Option<Vec<u8>> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["_", "api", "collections", id, "stream"] if *id == SYNTHETIC_COLLECTION => {
                Some(self.publication_page(Self::page_number(query)))
            }
            ["_", "api", "users", uid, "profile", "stream"] => {
                let a = self.author_index(uid)?;
                Some(self.profile_page(a, Self::page_number(query)))
            }
            ["_", "api", "users", uid, "following"] => {
                let a = self.author_index(uid)?;
                let page = match Self::query_value(query, "to") {
                    None => 1,
                    Some(to) => self.following_page_after(a, &to)?,
                };
                Some(self.following_page(a, page))
            }
            _ => None,
        }
    }

    fn author_index(&self, uid: &str) -> Option<usize> {
        let (seed, authors) = (self.spec.seed, self.spec.authors);
        let (built_seed, built_authors, by_id) = self.by_id.get_or_init(|| {
            let mut by_id = HashMap::with_capacity(authors);
            for i in 0..authors {
                // the first author of an id, as the search found (ids are 48 bits of a hash)
                by_id.entry(self.user_id(i)).or_insert(i);
            }
            (seed, authors, by_id)
        });
        match (*built_seed, *built_authors) == (seed, authors) {
            true => by_id.get(uid).copied(),
            // the spec was changed after the index was built
            false => (0..authors).find(|i| self.user_id(*i) == uid),
        }
    }

    fn page_count(total: usize, size: usize) -> usize {
        total.div_ceil(size.max(1)).max(1)
    }

    fn publication_page(&self, page: usize) -> Vec<u8> {
        let size = self.spec.publication_page_size.max(1);
        let last = Self::page_count(self.spec.authors, size);
        let authors: Vec<usize> =
            ((page - 1) * size..(page * size).min(self.spec.authors)).collect();
        let mut users = serde_json::Map::new();
        let mut posts = serde_json::Map::new();
        for a in &authors {
            users.insert(self.user_id(*a), self.user(*a));
            if self.spec.stories_per_author > 0 {
                let p = self.post(*a, 0);
                posts.insert(p["id"].as_str().unwrap_or_default().to_owned(), p);
            }
        }
        let to = if page >= last {
            "null".to_owned()
        } else {
            format!("{}", 1_546_000_000_000i64 - page as i64)
        };
        let mut references = json!({"User": users, "Collection": {SYNTHETIC_COLLECTION: self.collection(SYNTHETIC_COLLECTION)}});
        if !posts.is_empty() {
            references["Post"] = Value::Object(posts);
        }
        Self::envelope(json!({
            "collection": self.collection(SYNTHETIC_COLLECTION),
            "references": references,
            "paging": {"path": format!("/_/api/collections/{SYNTHETIC_COLLECTION}/stream"),
                       "next": {"to": to, "ignoredIds": [], "page": page + 1}}
        }))
    }

    fn profile_page(&self, a: usize, page: usize) -> Vec<u8> {
        let size = self.spec.profile_page_size.max(1);
        let listed = self.listed_stories(a);
        let last = Self::page_count(listed.len(), size);
        let mut posts = serde_json::Map::new();
        let mut cols = serde_json::Map::new();
        for &s in listed.iter().skip((page - 1) * size).take(size) {
            let p = self.post(a, s);
            if let Some(home) = p["homeCollectionId"].as_str().filter(|h| !h.is_empty()) {
                cols.insert(home.to_owned(), self.collection(home));
            }
            posts.insert(p["id"].as_str().unwrap_or_default().to_owned(), p);
        }
        let mut references = json!({"User": {self.user_id(a): self.user(a)}, "Collection": cols});
        if page == 1 {
            let (followers, following) = self.social_stats(a);
            references["SocialStats"] = json!({self.user_id(a): {
                "userId": self.user_id(a),
                "usersFollowedCount": following,
                "usersFollowedByCount": followers,
                "type": "SocialStats"
            }});
        }
        if !posts.is_empty() {
            references["Post"] = Value::Object(posts);
        }
        let mut paging = json!({"path": format!("https://medium.com/_/api/users/{}/profile/stream", self.user_id(a))});
        let loops_back = self.spec.loop_back_every > 0 && a % self.spec.loop_back_every == 0;
        if page < last {
            paging["next"] =
                json!({"limit": size, "source": "overview", "ignoredIds": [], "page": page + 1});
        } else if loops_back {
            let back = if last >= 2 { 2 } else { 1 };
            paging["next"] =
                json!({"limit": size, "source": "overview", "ignoredIds": [], "page": back});
        }
        Self::envelope(json!({"user": self.user(a), "references": references, "paging": paging}))
    }

    /// Followed users of author `a`: other authors first, then users beyond the authors.
    /// In an evolving world the users followed since day 0 come first, newest first (users
    /// beyond the base world's).
    pub(crate) fn followed(&self, a: usize) -> Vec<usize> {
        let beyond = self.spec.authors + self.spec.followings_per_author;
        let new = self
            .new_follow_days(a)
            .into_iter()
            .rev()
            .map(|k| beyond + (k as usize) * 1_000 + a);
        let base = (1..=self.spec.followings_per_author)
            .map(|k| (a + k * 7) % beyond.max(1))
            .filter(|u| *u != a);
        new.chain(base).collect()
    }

    fn following_page_after(&self, a: usize, to: &str) -> Option<usize> {
        let size = self.spec.following_page_size.max(1);
        let followed = self.followed(a);
        let pos = followed.iter().position(|u| self.user_id(*u) == to)?;
        Some(pos / size + 2)
    }

    fn following_page(&self, a: usize, page: usize) -> Vec<u8> {
        let size = self.spec.following_page_size.max(1);
        let followed = self.followed(a);
        let slice: Vec<usize> = followed
            .iter()
            .copied()
            .skip((page - 1) * size)
            .take(size)
            .collect();
        let value: Vec<Value> = slice.iter().map(|u| self.user(*u)).collect();
        let more = page * size < followed.len();
        let next = match (more, slice.last()) {
            (true, Some(u)) => json!({"limit": size, "to": self.user_id(*u)}),
            _ => json!({"limit": size}),
        };
        Self::envelope(json!({
            "value": value,
            "paging": {"path": format!("/_/api/users/{}/following", self.user_id(a)), "next": next}
        }))
    }

    /// Every page of a full harvest, stream by stream, found by paging each stream with the
    /// pipeline's own [`StreamPager`] (so the queries are exactly the ones a harvest sends).
    pub fn pages(&self) -> Vec<SyntheticPage> {
        let mut out = Vec::new();
        let publication = StreamId::Publication(PublicationRef::Id(SYNTHETIC_COLLECTION.into()));
        self.walk::<StreamPayload>(publication, &mut out);
        for a in 0..self.spec.authors {
            self.walk::<StreamPayload>(StreamId::Profile(self.user_id(a)), &mut out);
            self.walk::<FollowingPayload>(StreamId::Following(self.user_id(a)), &mut out);
        }
        out
    }

    fn walk<P: DeserializeOwned + PageItems>(
        &self,
        stream: StreamId,
        out: &mut Vec<SyntheticPage>,
    ) {
        let mut pager = StreamPager::new(stream.base_query(), usize::MAX);
        let mut query = pager.first_query();
        for index in 1.. {
            let Some(body) = self.respond(&stream.http_path(), &query) else {
                return;
            };
            let Ok(page) = parse_payload::<P>(&body) else {
                return;
            };
            let next = pager.after_page(page.item_ids(), page.paging());
            out.push(SyntheticPage {
                stream: stream.clone(),
                index,
                query: std::mem::take(&mut query),
                body: Bytes::from(body),
            });
            match next {
                Ok(q) => query = q,
                Err(_) => return,
            }
        }
    }

    /// Requests a full harvest through GraphQL sends: the publication's pages (pins first, then
    /// an empty last page), each author's pages of stories (pins and responses included) and of
    /// followings, and one batch of bodies per 25 posts.
    pub fn expected_graphql_requests(&self) -> usize {
        let s = &self.spec;
        let limit = medium_api::graphql::LIMIT as usize;
        let pages = |items: usize, size: usize| items.div_ceil(size.min(limit).max(1)).max(1);
        let publication = match s.stories_per_author {
            0 => 1,
            _ => {
                let items = s.authors + self.collection_pins().len();
                items.div_ceil(s.publication_page_size.min(limit).max(1)) + 1
            }
        };
        let authors: usize = (0..s.authors)
            .map(|a| {
                let stories = pages(
                    s.stories_per_author + self.pinned(a).len(),
                    s.profile_page_size,
                );
                let following = pages(self.followed(a).len(), s.following_page_size);
                let bodies = s
                    .stories_per_author
                    .div_ceil(medium_api::graphql::BODY_BATCH);
                stories + following + bodies
            })
            .sum();
        publication + authors
    }

    /// Requests a full harvest sends: publication pages + profile pages + following pages.
    pub fn expected_requests(&self) -> usize {
        let s = &self.spec;
        if s.loop_back_every > 0 {
            return self.pages().len();
        }
        let pubs = Self::page_count(s.authors, s.publication_page_size);
        let profile: usize = (0..s.authors)
            .map(|a| Self::page_count(self.stories_of(a), s.profile_page_size))
            .sum();
        let following: usize = (0..s.authors)
            .map(|a| Self::page_count(self.followed(a).len(), s.following_page_size))
            .sum();
        pubs + profile + following
    }
}

/// One page of a synthetic harvest.
#[derive(Debug, Clone)]
pub struct SyntheticPage {
    pub stream: StreamId,
    /// 1-based position in the stream.
    pub index: usize,
    /// The page's query string, without `?` (empty for a stream's first page).
    pub query: String,
    pub body: Bytes,
}

impl SyntheticPage {
    /// The page's URL on medium.com, as a harvest records it.
    pub fn url(&self) -> String {
        if self.query.is_empty() {
            format!("https://medium.com{}", self.stream.http_path())
        } else {
            format!(
                "https://medium.com{}?{}",
                self.stream.http_path(),
                self.query
            )
        }
    }
}

/// SplitMix64: a well-spread hash of (seed, n).
fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed
        .wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use medium_api::guard::parse_payload;
    use medium_api::models::{FollowingPayload, PageItems, StreamPayload};

    #[test]
    fn is_deterministic_and_pages_like_medium() {
        let m = SyntheticMedium::new(SyntheticSpec {
            authors: 25,
            ..Default::default()
        });
        let again = SyntheticMedium::new(m.spec);
        let path = format!("/_/api/collections/{SYNTHETIC_COLLECTION}/stream");
        assert_eq!(m.respond(&path, ""), again.respond(&path, ""));
        let p1: StreamPayload = parse_payload(&m.respond(&path, "").unwrap()).unwrap();
        assert_eq!(p1.references.users.0.len(), 10);
        let p3: StreamPayload = parse_payload(&m.respond(&path, "to=1&page=3").unwrap()).unwrap();
        assert_eq!(p3.references.users.0.len(), 5);
        let uid = m.user_id(3);
        let f: FollowingPayload = parse_payload(
            &m.respond(&format!("/_/api/users/{uid}/following"), "")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(f.item_ids().len(), 8);
        assert!(m.respond("/_/api/users/nobody/following", "").is_none());
        assert_eq!(m.expected_requests(), 3 + 25 + 25);
        assert_eq!(m.pages().len(), m.expected_requests());
    }

    /// The index by id finds each author, the first of an id, and nothing else; a spec changed
    /// after the index was built is searched instead.
    #[test]
    fn finds_authors_by_id() {
        let mut medium = SyntheticMedium::new(SyntheticSpec {
            authors: 300,
            ..SyntheticSpec::default()
        });
        for i in [0, 1, 150, 299] {
            assert_eq!(medium.author_index(&medium.user_id(i)), Some(i));
        }
        assert_eq!(medium.author_index(&medium.user_id(300)), None);
        assert_eq!(medium.author_index("nobody"), None);
        medium.spec.authors = 301;
        assert_eq!(medium.author_index(&medium.user_id(300)), Some(300));
    }

    #[test]
    fn page_urls_are_medium_urls() {
        let m = SyntheticMedium::new(SyntheticSpec::default());
        let pages = m.pages();
        let first = &pages[0];
        assert_eq!(first.index, 1);
        assert!(first.query.is_empty());
        assert_eq!(
            first.url(),
            format!("https://medium.com/_/api/collections/{SYNTHETIC_COLLECTION}/stream")
        );
        let second = &pages[1];
        assert_eq!(second.index, 2);
        assert_eq!(
            second.url(),
            format!(
                "https://medium.com/_/api/collections/{SYNTHETIC_COLLECTION}/stream?{}",
                second.query
            )
        );
    }
}
