//! The adversarial server, as one piece: what a hostile or broken host sends to chosen authors
//! of the synthetic publication, each attack in every format it can reach. Combined with
//! [`crate::Faults::rate_limit`] (a 50 requests/s host) and [`crate::Faults::rate`] (5xx,
//! truncated and unguarded bodies) it is the world #14's review found the client failing in.
//!
//! | attack | the author's... | what is sent |
//! |---|---|---|
//! | [`Attack::Oversized`] | JSON profile stream, HTML page, feed | a body of N bytes, streamed without a length |
//! | [`Attack::GzipBomb`] | JSON following | a small gzip body inflating to N bytes |
//! | [`Attack::Deep`] | JSON profile stream; feed item; HTML page | arrays or elements nested N deep |
//! | [`Attack::OutOfRange`] | JSON profile stream, first page | `firstPublishedAt` and claps of i64::MAX, `wordCount: 12.5`, a negative image count |

use std::io::Write;

use axum::body::Body;
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::Response;
use bytes::Bytes;
use medium_api::guard::XSSI_GUARD;
use serde_json::{json, Value};

use crate::SyntheticMedium;

/// One attack on one author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// A body of this many bytes, streamed in 64 KiB chunks with no `Content-Length`.
    Oversized(usize),
    /// A gzip body that inflates to this many bytes of zeros.
    GzipBomb(usize),
    /// Nesting this deep.
    Deep(usize),
    /// Values no column can hold, and one that is not a number.
    OutOfRange,
}

/// Which authors (by index) get which attack.
#[derive(Debug, Default)]
pub struct Hostile {
    pub attacks: Vec<(usize, Attack)>,
    /// The gzip bomb, compressed once when the server is made (not while it answers).
    bomb: Option<Bytes>,
}

impl Hostile {
    pub fn new(attacks: Vec<(usize, Attack)>) -> Hostile {
        let bomb = attacks.iter().find_map(|(_, a)| match a {
            Attack::GzipBomb(n) => Some(gzip_zeros(*n)),
            _ => None,
        });
        Hostile { attacks, bomb }
    }

    /// The review's world: author 1 oversized, 2 a gzip bomb, 3 nested 100,000 deep, 4 values
    /// out of range (`bytes` for the first two: make it a few times the client's
    /// `--max-body-mb`).
    pub fn standard(bytes: usize) -> Hostile {
        Hostile::new(vec![
            (1, Attack::Oversized(bytes)),
            (2, Attack::GzipBomb(bytes)),
            (3, Attack::Deep(100_000)),
            (4, Attack::OutOfRange),
        ])
    }

    /// The attack on author `a`, if any.
    pub fn attack_on(&self, a: usize) -> Option<Attack> {
        self.attacks.iter().find(|(i, _)| *i == a).map(|(_, k)| *k)
    }

    /// The hostile answer to `path?query`, or `None` to let the synthetic Medium answer.
    pub fn respond(&self, medium: &SyntheticMedium, path: &str, query: &str) -> Option<Response> {
        let (a, attack) = self
            .attacks
            .iter()
            .find(|(a, _)| targets(medium, *a, path))?;
        let profile = path == format!("/_/api/users/{}/profile/stream", medium.user_id(*a));
        let following = path == format!("/_/api/users/{}/following", medium.user_id(*a));
        let feed = path.starts_with("/feed/@");
        let html = path.starts_with("/@");
        match attack {
            Attack::Oversized(n) if profile || feed || html => Some(streamed(*n)),
            Attack::GzipBomb(_) if following => Some(self.bomb()),
            Attack::Deep(n) if profile => Some(json_reply(deep_json(*n))),
            Attack::Deep(n) if feed => {
                let body = medium.respond_page(path)?;
                Some(text_reply(deep_feed(&body, *n), "application/rss+xml"))
            }
            Attack::Deep(n) if html => Some(text_reply(deep_html(*n), "text/html")),
            Attack::OutOfRange if profile && query.is_empty() => {
                let page = medium.respond(path, query)?;
                Some(json_reply(out_of_range(&page)?))
            }
            _ => None,
        }
    }

    fn bomb(&self) -> Response {
        let body = self.bomb.clone().unwrap_or_default();
        let mut r = Response::new(Body::from(body));
        let h = r.headers_mut();
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        r
    }
}

/// Whether `path` is one of author `a`'s: their JSON streams, HTML page or feed.
fn targets(medium: &SyntheticMedium, a: usize, path: &str) -> bool {
    let id = medium.user_id(a);
    path.starts_with(&format!("/_/api/users/{id}/"))
        || path.trim_end_matches('/') == format!("/@author{a}")
        || path.trim_end_matches('/') == format!("/feed/@author{a}")
}

fn streamed(n: usize) -> Response {
    const CHUNK: usize = 1 << 16;
    let chunk = Bytes::from(vec![b' '; CHUNK]);
    let head = Bytes::from(guarded("{\"success\":true,\"payload\":\""));
    let chunks = std::iter::once(head).chain((0..n / CHUNK).map(move |_| chunk.clone()));
    let stream = futures_util::stream::iter(chunks.map(Ok::<Bytes, std::io::Error>));
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// The XSSI guard, then `rest`.
fn guarded(rest: &str) -> Vec<u8> {
    let mut body = XSSI_GUARD.to_vec();
    body.extend_from_slice(rest.as_bytes());
    body
}

fn gzip_zeros(n: usize) -> Bytes {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    let mut left = n;
    while left > 0 {
        let take = left.min(zeros.len());
        // writing into a Vec cannot fail
        let _ = gz.write_all(&zeros[..take]);
        left -= take;
    }
    Bytes::from(gz.finish().unwrap_or_default())
}

fn json_reply(body: Vec<u8>) -> Response {
    text_reply(body, "application/json")
}

fn text_reply(body: Vec<u8>, content_type: &'static str) -> Response {
    let mut r = Response::new(Body::from(body));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A profile stream page whose payload is arrays nested `n` deep.
fn deep_json(n: usize) -> Vec<u8> {
    let mut body = guarded("{\"success\":true,\"payload\":{\"value\":");
    body.extend(std::iter::repeat_n(b'[', n));
    body.extend(std::iter::repeat_n(b']', n));
    body.extend_from_slice(b"}}");
    body
}

/// The author's feed with its first item's story nested `n` deep.
fn deep_feed(feed: &[u8], n: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(feed);
    let deep = format!("{}x{}", "<div>".repeat(n), "</div>".repeat(n));
    match text.find("<content:encoded><![CDATA[") {
        Some(at) => {
            let at = at + "<content:encoded><![CDATA[".len();
            format!("{}{deep}{}", &text[..at], &text[at..]).into_bytes()
        }
        None => text.into_owned().into_bytes(),
    }
}

fn deep_html(n: usize) -> Vec<u8> {
    format!(
        "<!DOCTYPE html><html><body>{}x{}</body></html>",
        "<div>".repeat(n),
        "</div>".repeat(n)
    )
    .into_bytes()
}

/// The page with its posts' values out of range: the first post's `firstPublishedAt` and claps
/// i64::MAX, the second's claps i64::MAX, the third's `wordCount` 12.5, the fourth's image
/// count -3 (in the order of the page's `Post` references).
fn out_of_range(page: &[u8]) -> Option<Vec<u8>> {
    let mut json: Value = serde_json::from_slice(page.strip_prefix(XSSI_GUARD)?).ok()?;
    let posts = json["payload"]["references"]["Post"].as_object_mut()?;
    let ids: Vec<String> = posts.keys().cloned().collect();
    let mut set = |i: usize, field: &str, v: Value| {
        if let Some(id) = ids.get(i) {
            posts[id]["virtuals"][field] = v;
        }
    };
    set(0, "totalClapCount", json!(i64::MAX));
    set(1, "totalClapCount", json!(i64::MAX));
    set(2, "wordCount", json!(12.5));
    set(3, "imageCount", json!(-3));
    if let Some(first) = ids.first() {
        posts[first]["firstPublishedAt"] = json!(i64::MAX);
    }
    Some(guarded(&json.to_string()))
}

/// The posts [`Attack::OutOfRange`] spoils on a page, in order (the first four `Post`
/// references), for a test to look for.
pub fn spoiled_posts(page: &[u8]) -> Vec<String> {
    page.strip_prefix(XSSI_GUARD)
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .and_then(|json| {
            json["payload"]["references"]["Post"]
                .as_object()
                .map(|posts| posts.keys().take(4).cloned().collect())
        })
        .unwrap_or_default()
}
