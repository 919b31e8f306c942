//! A deterministic synthetic Medium: N authors, M stories each, K followings, paged like the
//! real API. It can answer a request (path + query → the exact body Medium would send), write a
//! whole raw store for offline replay, and serve itself over HTTP on 127.0.0.1 with a chosen
//! latency per response. Tests and benchmarks share it; the bundled sample uses the real
//! fixtures instead.
//!
//! Its HTML pages and RSS feeds ([`pages`]) carry the same authors and stories, and a server
//! can close the JSON API ([`Faults::json_closed`]: 403 on every API path) to exercise
//! `--via auto`.
//!
//! Paging follows real Medium: the publication stream pages with `to`/`page` and ends with
//! `to: "null"`; profile streams page with `page` and the last page has no `next`; following
//! pages use `to` and the last page's `next` has only `limit`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::error::StoreError;
use crate::raw_store::{PageMeta, RawStore};
use crate::sources::medium::endpoints::{PublicationRef, StreamId};
use crate::sources::medium::guard::{parse_payload, XSSI_GUARD};
use crate::sources::medium::models::{FollowingPayload, PageItems, StreamPayload};
use crate::sources::medium::paging::StreamPager;
use crate::sources::medium::via::Via;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

pub mod pages;

pub use pages::synthetic_slug;

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
}

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
        }
    }
}

/// The collection id of the synthetic publication.
pub const SYNTHETIC_COLLECTION: &str = "5a17e71c0de5";

/// The synthetic Medium.
#[derive(Debug, Clone)]
pub struct SyntheticMedium {
    pub spec: SyntheticSpec,
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
        SyntheticMedium { spec }
    }

    /// The user id of author `i` (also used for followed users beyond the authors).
    pub fn user_id(&self, i: usize) -> String {
        format!("{:012x}", mix(self.spec.seed, i as u64) & 0xffff_ffff_ffff)
    }

    fn post_id(&self, author: usize, story: usize) -> String {
        format!(
            "{:012x}",
            mix(
                self.spec.seed ^ 0x5107,
                (author as u64) << 20 | story as u64
            ) & 0xffff_ffff_ffff
        )
    }

    fn user(&self, i: usize) -> Value {
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
        let published = 1_500_000_000_000i64 + (a as i64 * 1_000 + s as i64) * 3_600_000;
        let response = s % 7 == 6;
        let mut virtuals = json!({
            "wordCount": word_count,
            "totalClapCount": rng.i64(0..5000),
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
        (0..self.spec.authors).find(|i| self.user_id(*i) == uid)
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
        let last = Self::page_count(self.spec.stories_per_author, size);
        let mut posts = serde_json::Map::new();
        let mut cols = serde_json::Map::new();
        for s in (page - 1) * size..(page * size).min(self.spec.stories_per_author) {
            let p = self.post(a, s);
            if let Some(home) = p["homeCollectionId"].as_str().filter(|h| !h.is_empty()) {
                cols.insert(home.to_owned(), self.collection(home));
            }
            posts.insert(p["id"].as_str().unwrap_or_default().to_owned(), p);
        }
        let mut references = json!({"User": {self.user_id(a): self.user(a)}, "Collection": cols});
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
    fn followed(&self, a: usize) -> Vec<usize> {
        (1..=self.spec.followings_per_author)
            .map(|k| (a + k * 7) % (self.spec.authors + self.spec.followings_per_author).max(1))
            .filter(|u| *u != a)
            .collect()
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

    /// Writes a full harvest into `store`, as `etl run` against medium.com would have.
    pub fn write_raw_store(&self, store: &RawStore) -> Result<usize, StoreError> {
        let pages = self.pages();
        for p in &pages {
            let url = if p.query.is_empty() {
                format!("https://medium.com{}", p.stream.http_path())
            } else {
                format!("https://medium.com{}?{}", p.stream.http_path(), p.query)
            };
            let meta = PageMeta {
                url,
                query: p.query.clone(),
                status: 200,
                fetched_at: "2026-01-01T00:00:00.000Z".into(),
                bytes: p.body.len() as u64,
                attempts: 1,
            };
            store.save(&p.stream, Via::Json, p.index, &p.body, &meta)?;
        }
        Ok(pages.len())
    }

    /// Requests a full harvest sends: publication pages + profile pages + following pages.
    pub fn expected_requests(&self) -> usize {
        let s = &self.spec;
        if s.loop_back_every > 0 {
            return self.pages().len();
        }
        let pubs = Self::page_count(s.authors, s.publication_page_size);
        let profile = s.authors * Self::page_count(s.stories_per_author, s.profile_page_size);
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
    pub query: String,
    pub body: Bytes,
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

/// Faults a served synthetic Medium injects, deterministic by seed: whether the `n`-th request
/// for a URL is answered with a fault depends only on the seed, the URL and `n`, so a retried
/// request can succeed and two runs see the same faults.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub seed: u64,
    /// Share of requests (0 to 1) answered with a fault instead of the page.
    pub rate: f64,
    /// How long a stalled response waits before its headers (make it longer than the client's
    /// timeout).
    pub stall: Duration,
    /// The JSON API answers 403 (as Medium does to automated clients); pages and feeds answer.
    pub json_closed: bool,
    /// Users (ids) whose profile and following requests always fail with 500.
    pub always_fail: std::collections::HashSet<String>,
}

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Status(u16),
    /// 429 with `Retry-After: <seconds>`.
    TooManyRequests(u64),
    /// The first half of the body, status 200.
    Truncated,
    /// The body without the XSSI guard (valid: Medium has served both).
    Unguarded,
    /// An HTML challenge page with status 200.
    Html,
    /// No answer until the stall is over.
    Stall,
    /// The connection is closed without an answer.
    Reset,
}

impl Faults {
    /// The fault for the `attempt`-th (1-based) request of `url_key`, if any.
    pub fn fault_for(&self, url_key: &str, attempt: u64) -> Option<Fault> {
        if self
            .always_fail
            .iter()
            .any(|u| url_key.starts_with(&format!("/_/api/users/{u}/")))
        {
            return Some(Fault::Status(500));
        }
        if self.rate <= 0.0 {
            return None;
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in url_key.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let roll = mix(self.seed ^ h, attempt);
        if (roll % 1_000_000) as f64 >= self.rate * 1_000_000.0 {
            return None;
        }
        Some(match (roll >> 32) % 9 {
            0 => Fault::Status(500),
            1 => Fault::Status(502),
            2 => Fault::Status(503),
            3 => Fault::TooManyRequests((roll >> 40) % 2),
            4 => Fault::Truncated,
            5 => Fault::Unguarded,
            6 => Fault::Html,
            7 => Fault::Stall,
            _ => Fault::Reset,
        })
    }
}

/// The response for a request: the page (or 404), or the injected fault.
fn respond_with(
    body: Option<Bytes>,
    fault: Option<Fault>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let reply = |status: u16, body: Bytes| {
        let content_type = if body.starts_with(b"<?xml") {
            "application/rss+xml; charset=utf-8"
        } else if body.starts_with(b"<") {
            "text/html; charset=utf-8"
        } else {
            "application/json; charset=utf-8"
        };
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(body))
            .map_err(std::io::Error::other)
    };
    let Some(body) = body else {
        return reply(404, Bytes::from_static(b"not found"));
    };
    match fault {
        None | Some(Fault::Stall) => reply(200, body),
        Some(Fault::Status(code)) => reply(code, Bytes::from_static(b"<html>error</html>")),
        Some(Fault::TooManyRequests(secs)) => Response::builder()
            .status(429)
            .header("retry-after", secs.to_string())
            .body(Full::new(Bytes::from_static(b"slow down")))
            .map_err(std::io::Error::other),
        Some(Fault::Truncated) => reply(200, body.slice(..body.len() / 2)),
        Some(Fault::Unguarded) => {
            let rest = body.strip_prefix(XSSI_GUARD).map(Bytes::copy_from_slice);
            reply(200, rest.unwrap_or(body))
        }
        Some(Fault::Html) => reply(
            200,
            Bytes::from_static(b"<!DOCTYPE html><html><title>Just a moment...</title></html>"),
        ),
        Some(Fault::Reset) => Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected reset",
        )),
    }
}

/// Counters of a running server.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub requests: AtomicU64,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// Requests that came without a User-Agent header.
    pub without_user_agent: AtomicU64,
    /// Requests answered with an injected fault.
    pub faults: AtomicU64,
}

/// A synthetic Medium served on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct SyntheticServer {
    pub addr: SocketAddr,
    pub stats: Arc<ServerStats>,
    task: tokio::task::JoinHandle<()>,
}

impl SyntheticServer {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SyntheticServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `medium` on an ephemeral port of 127.0.0.1, each response delayed by `latency`.
pub async fn serve(
    medium: Arc<SyntheticMedium>,
    latency: Duration,
) -> std::io::Result<SyntheticServer> {
    serve_on(SocketAddr::from(([127, 0, 0, 1], 0)), medium, latency).await
}

/// Serves `medium` on `addr`, each response delayed by `latency`.
pub async fn serve_on(
    addr: SocketAddr,
    medium: Arc<SyntheticMedium>,
    latency: Duration,
) -> std::io::Result<SyntheticServer> {
    serve_with_faults(addr, medium, latency, Faults::default()).await
}

/// Serves `medium` on `addr` with injected `faults`.
pub async fn serve_with_faults(
    addr: SocketAddr,
    medium: Arc<SyntheticMedium>,
    latency: Duration,
    faults: Faults,
) -> std::io::Result<SyntheticServer> {
    let faults = Arc::new(faults);
    let attempts: Arc<std::sync::Mutex<HashMap<String, u64>>> = Arc::default();
    let listener = TcpListener::bind(addr).await?;
    // Bodies are computed before the first request, so the server's own work stays out of
    // what a crawl measures.
    let m = medium.clone();
    let cache: HashMap<String, Bytes> = tokio::task::spawn_blocking(move || {
        m.pages()
            .into_iter()
            .map(|p| (format!("{}?{}", p.stream.http_path(), p.query), p.body))
            .collect()
    })
    .await
    .map_err(std::io::Error::other)?;
    let cache = Arc::new(cache);
    let addr = listener.local_addr()?;
    let stats = Arc::new(ServerStats::default());
    let task_stats = stats.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let medium = medium.clone();
            let cache = cache.clone();
            let stats = task_stats.clone();
            let faults = faults.clone();
            let attempts = attempts.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let medium = medium.clone();
                    let cache = cache.clone();
                    let stats = stats.clone();
                    let faults = faults.clone();
                    let attempts = attempts.clone();
                    async move {
                        stats.requests.fetch_add(1, Ordering::Relaxed);
                        if !req.headers().contains_key(hyper::header::USER_AGENT) {
                            stats.without_user_agent.fetch_add(1, Ordering::Relaxed);
                        }
                        let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(latency).await;
                        let (path, query) = (req.uri().path(), req.uri().query().unwrap_or(""));
                        let key = format!("{path}?{query}");
                        let attempt = {
                            let mut map = attempts.lock().unwrap_or_else(|e| e.into_inner());
                            let n = map.entry(key.clone()).or_insert(0);
                            *n += 1;
                            *n
                        };
                        let fault = faults.fault_for(&key, attempt);
                        if fault.is_some() {
                            stats.faults.fetch_add(1, Ordering::Relaxed);
                        }
                        if fault == Some(Fault::Stall) {
                            tokio::time::sleep(faults.stall).await;
                        }
                        let is_api = path.starts_with("/_/api/") || path.ends_with("/latest");
                        if faults.json_closed && is_api {
                            stats.in_flight.fetch_sub(1, Ordering::SeqCst);
                            return respond_with(
                                Some(Bytes::from_static(b"<html><title>Forbidden</title></html>")),
                                Some(Fault::Status(403)),
                            );
                        }
                        let body = match cache.get(&key) {
                            Some(b) => Some(b.clone()),
                            None => medium
                                .respond(path, query)
                                .or_else(|| medium.respond_page(path))
                                .map(Bytes::from),
                        };
                        stats.in_flight.fetch_sub(1, Ordering::SeqCst);
                        respond_with(body, fault)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(SyntheticServer { addr, stats, task })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::medium::guard::parse_payload;
    use crate::sources::medium::models::{FollowingPayload, PageItems, StreamPayload};

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
        let dir = tempfile::tempdir().unwrap();
        let n = m.write_raw_store(&RawStore::new(dir.path())).unwrap();
        assert_eq!(n, 53);
    }
}
