//! The values a run produces, shared by every stage after the sources: what was harvested
//! ([`Harvest`] and its streams), how each stream ended ([`Unfinished`] when it did not reach
//! its end), what failed ([`Failure`]), which formats were switched ([`SourceSwitch`]), the
//! request counters ([`FetchStats`]) and the flag that stops a run ([`CancelFlag`]).
//!
//! Nothing here does I/O. Sinks, progress, schedule and the summary read these values; only
//! `sources` produce them, so nothing downstream depends on the network code.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use medium_api::endpoints::{Endpoint, PublicationRef, StreamId};
use medium_api::models::{Collection, FollowingPayload, StreamPayload, User};
use medium_api::paging::StreamEnd;
use medium_api::via::Via;
use serde::{Deserialize, Serialize};

use crate::error::FetchError;

/// A flag that stops a run from starting new requests (SIGINT / SIGTERM under `etl schedule`).
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Why a stream did not reach its end. Only [`Unfinished::Failed`] is a failure.
#[derive(Debug, thiserror::Error)]
pub enum Unfinished {
    /// A request failed after its retries (or could not be made); the pages so far are kept.
    #[error(transparent)]
    Failed(#[from] FetchError),
    /// No format in use carries the stream (followings outside the JSON API): not harvested,
    /// and not a failure; the manifest counts them.
    #[error("{stream}: not harvested: {reason}")]
    NotCarried { stream: String, reason: String },
    /// The run was stopped before the stream's end.
    #[error("{url}: not requested: the run was stopped")]
    Stopped { url: String },
}

impl Unfinished {
    /// The failure, if this is one.
    pub fn failure(&self) -> Option<&FetchError> {
        match self {
            Unfinished::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// One stream's pages and how it ended.
#[derive(Debug)]
pub struct StreamHarvest<P> {
    pub stream: StreamId,
    pub pages: Vec<P>,
    /// How the stream ended, or why it did not (its pages so far are kept).
    pub end: Result<StreamEnd, Unfinished>,
    /// The format its pages were read in; `None` when no format answered.
    pub via: Option<Via>,
    /// Pages of earlier dates that continue the stream (an incremental run stopped where
    /// they begin: `end` is [`StreamEnd::Carried`]), with the date each was read on, after
    /// `pages` in stream order.
    pub carried: Vec<(String, P)>,
}

impl<P> StreamHarvest<P> {
    /// The stream without its pages' contents: how many were read and carried (and from
    /// which dates) stays, the decoded payloads are dropped. What a run keeps of a stream once
    /// its rows are normalized, so a harvest's memory does not grow with its pages.
    pub fn spend(self) -> StreamHarvest<()> {
        StreamHarvest {
            stream: self.stream,
            pages: vec![(); self.pages.len()],
            end: self.end,
            via: self.via,
            carried: self.carried.into_iter().map(|(d, _)| (d, ())).collect(),
        }
    }

    /// The date the carried pages were first taken from (the latest earlier date).
    pub fn carried_from(&self) -> Option<&str> {
        self.carried.first().map(|(d, _)| d.as_str())
    }

    /// Whether the stream was read to its end: a stream cut by `--max-pages` is not (it may
    /// have more pages).
    pub fn is_complete(&self) -> bool {
        matches!(&self.end, Ok(end) if *end != StreamEnd::PageCap)
    }

    /// Whether `--max-pages` cut the stream.
    pub fn is_capped(&self) -> bool {
        matches!(self.end, Ok(StreamEnd::PageCap))
    }

    /// Whether the stream was not harvested because no format in use carries it.
    pub fn is_not_carried(&self) -> bool {
        matches!(self.end, Err(Unfinished::NotCarried { .. }))
    }

    /// The failure that stopped the stream, if one did.
    pub fn failure(&self) -> Option<&FetchError> {
        self.end.as_ref().err().and_then(Unfinished::failure)
    }
}

/// A stream that moved on to another format under `--via auto`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSwitch {
    /// The request family.
    pub endpoint: Endpoint,
    /// The stream, as named in messages.
    pub stream: String,
    pub from: Via,
    /// The next format tried; `None` when no other format carries the stream.
    pub to: Option<Via>,
    /// The request that was refused.
    pub url: String,
    /// What the server answered.
    pub reason: String,
    /// Whether the rest of the family skips `from` as well (403, a challenge page).
    pub family: bool,
}

/// A publication's stream.
#[derive(Debug)]
pub struct PublicationHarvest {
    pub publication: PublicationRef,
    /// `payload.collection` of the first page that had one.
    pub collection: Option<Collection>,
    pub stream: StreamHarvest<StreamPayload>,
}

/// An author, where they were found, and their two streams. The page types are the decoded
/// payloads while the author's rows are built; a run keeps the author afterwards as a
/// [`SpentAuthor`] (the streams' shape without their pages).
#[derive(Debug)]
pub struct AuthorHarvest<S = StreamPayload, F = FollowingPayload> {
    pub user: User,
    /// The publications (as named by the user) whose stream listed this author.
    pub found_in: Vec<PublicationRef>,
    pub profile: StreamHarvest<S>,
    pub following: StreamHarvest<F>,
}

/// An author whose pages have been normalized and dropped ([`AuthorHarvest::spend`]).
pub type SpentAuthor = AuthorHarvest<(), ()>;

/// Where a crawl hands each author once their streams are read, in first-seen order (the
/// pipeline's normalizer): the crawl then keeps the author spent.
pub trait AuthorSink: Send {
    /// The author first seen `index`-th; called for 0, 1, 2, ... in order.
    fn author(&mut self, index: usize, author: &AuthorHarvest);
}

/// A sink that keeps nothing (the crawl's authors are then spent unseen).
impl AuthorSink for () {
    fn author(&mut self, _: usize, _: &AuthorHarvest) {}
}

/// A harvest whose authors' pages have been normalized and dropped: what a run holds after
/// its crawl (publication streams keep their pages; they are few).
pub type SpentHarvest = Harvest<(), ()>;

impl AuthorHarvest {
    /// The author without their pages' contents (see [`StreamHarvest::spend`]).
    pub fn spend(self) -> SpentAuthor {
        AuthorHarvest {
            user: self.user,
            found_in: self.found_in,
            profile: self.profile.spend(),
            following: self.following.spend(),
        }
    }
}

impl<S, F> AuthorHarvest<S, F> {
    /// Whether everything the formats in use carry was harvested: no stream failed (streams
    /// that no format in use carries are not a failure; `following_complete` is still false).
    pub fn is_complete(&self) -> bool {
        (self.profile.is_complete() || self.profile.is_not_carried())
            && (self.following.is_complete() || self.following.is_not_carried())
    }
}

impl<S, F> Harvest<S, F> {
    /// The streams `--max-pages` cut (they may have more pages), as named in messages.
    pub fn capped(&self) -> Vec<String> {
        let publications = self.publications.iter().map(|p| &p.stream);
        let mut out: Vec<String> = publications
            .filter(|s| s.is_capped())
            .map(|s| s.stream.to_string())
            .collect();
        for a in &self.authors {
            if a.profile.is_capped() {
                out.push(a.profile.stream.to_string());
            }
            if a.following.is_capped() {
                out.push(a.following.stream.to_string());
            }
        }
        out
    }
}

/// A value from the network that did not fit its column (out of range, or not a number where
/// one belongs): the cell is null, and the manifest lists the value here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedValue {
    pub table: String,
    /// The row's id (post id, user id).
    pub id: String,
    pub column: String,
    /// The value as received (`malformed` when it was not a number at all).
    pub value: String,
}

/// A failed stream, for the summary and the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The request family of the stream that failed.
    pub endpoint: Endpoint,
    /// The author's user id, for author streams.
    pub user_id: Option<String>,
    pub url: String,
    pub error: String,
}

/// Everything a harvest produced. While its authors hold their decoded pages this is the
/// in-memory harvest (tests, benches); a run's crawl hands each author's pages to the
/// normalizer as the author finishes and keeps a [`SpentHarvest`].
#[derive(Debug)]
pub struct Harvest<S = StreamPayload, F = FollowingPayload> {
    /// The run's date (`YYYY-MM-DD`): when the pages it fetched were read.
    pub date: String,
    pub publications: Vec<PublicationHarvest>,
    pub authors: Vec<AuthorHarvest<S, F>>,
    /// Distinct authors found before the cap.
    pub authors_found: usize,
    /// The cap, when it cut the list.
    pub authors_capped_at: Option<usize>,
    /// Streams whose ids could not be used (not a safe path segment), skipped.
    pub skipped_ids: Vec<String>,
    /// Format switches under `--via auto`, in the order they happened.
    pub switches: Vec<SourceSwitch>,
}

impl<S, F> Harvest<S, F> {
    /// Every failed stream, publication streams first, then authors in order.
    pub fn failures(&self) -> Vec<Failure> {
        let publications = self
            .publications
            .iter()
            .map(|p| (&p.stream.stream, p.stream.failure(), None));
        let authors = self.authors.iter().flat_map(|a| {
            let user = Some(&a.user.user_id);
            [
                (&a.profile.stream, a.profile.failure(), user),
                (&a.following.stream, a.following.failure(), user),
            ]
        });
        publications
            .chain(authors)
            .filter_map(|(stream, failure, user)| {
                failure.map(|e| Failure {
                    endpoint: stream.endpoint(),
                    user_id: user.map(|u| u.to_string()),
                    url: e.url(),
                    error: e.to_string(),
                })
            })
            .collect()
    }

    /// How many authors' streams of each family were not harvested because no format in use
    /// carries them.
    pub fn not_carried(&self) -> BTreeMap<Endpoint, usize> {
        let mut out = BTreeMap::new();
        for a in &self.authors {
            for (family, uncarried) in [
                (Endpoint::ProfileStream, a.profile.is_not_carried()),
                (Endpoint::Following, a.following.is_not_carried()),
            ] {
                if uncarried {
                    *out.entry(family).or_insert(0) += 1;
                }
            }
        }
        out
    }
}

/// One value per request family, addressed by [`Endpoint`] (its place in `Endpoint::ALL`): a
/// new family needs no change here.
#[derive(Debug, Default)]
pub struct ByEndpoint<T>([T; Endpoint::ALL.len()]);

impl<T> ByEndpoint<T> {
    pub fn get(&self, e: Endpoint) -> &T {
        &self.0[e.position()]
    }
}

/// One value per format, addressed by [`Via`] (its place in `Via::ALL`): a new format needs no
/// change here.
#[derive(Debug, Default)]
pub struct ByVia<T>([T; Via::ALL.len()]);

impl<T> ByVia<T> {
    pub fn get(&self, via: Via) -> &T {
        &self.0[via.position()]
    }
}

/// The live counters of one request family.
#[derive(Debug, Default)]
pub struct EndpointStats {
    pub(crate) requests: AtomicU64,
    pub(crate) pages_fetched: AtomicU64,
    pub(crate) pages_from_store: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) failed: AtomicU64,
    /// Pages obtained per format (fetched or from a store).
    pub(crate) pages_via: ByVia<AtomicU64>,
}

/// Request counters, shared by every task of a run (for progress, the summary and the
/// manifest). Bumped by the events of [`crate::events`], read as [`EndpointCounts`].
#[derive(Debug, Default)]
pub struct FetchStats {
    pub(crate) endpoints: ByEndpoint<EndpointStats>,
    pub(crate) bytes: AtomicU64,
    /// Distinct authors found so far (after the cap), and authors whose streams are done.
    pub(crate) authors_found: AtomicU64,
    pub(crate) authors_done: AtomicU64,
    /// Times the host asked to wait (429, 503 with `Retry-After`).
    pub(crate) throttled: AtomicU64,
    /// The pace after the last throttle, in thousandths of a request per second (0: never
    /// throttled).
    pub(crate) pace_millis: AtomicU64,
}

/// A snapshot of [`FetchStats`] for one request family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointCounts {
    /// HTTP requests sent (every attempt).
    pub requests: u64,
    /// Pages obtained over HTTP.
    pub pages_fetched: u64,
    /// Pages answered by a raw store (resume or `--source`) without a request.
    pub pages_from_store: u64,
    /// Attempts that were retried.
    pub retried: u64,
    /// Requests that failed after every attempt.
    pub failed: u64,
}

impl std::ops::Add for EndpointCounts {
    type Output = EndpointCounts;
    fn add(self, c: EndpointCounts) -> EndpointCounts {
        EndpointCounts {
            requests: self.requests + c.requests,
            pages_fetched: self.pages_fetched + c.pages_fetched,
            pages_from_store: self.pages_from_store + c.pages_from_store,
            retried: self.retried + c.retried,
            failed: self.failed + c.failed,
        }
    }
}

impl FetchStats {
    pub fn endpoint(&self, e: Endpoint) -> &EndpointStats {
        self.endpoints.get(e)
    }

    pub fn counts(&self, e: Endpoint) -> EndpointCounts {
        let s = self.endpoint(e);
        EndpointCounts {
            requests: s.requests.load(Ordering::Relaxed),
            pages_fetched: s.pages_fetched.load(Ordering::Relaxed),
            pages_from_store: s.pages_from_store.load(Ordering::Relaxed),
            retried: s.retried.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
        }
    }

    /// The counts of every request family added up.
    pub fn totals(&self) -> EndpointCounts {
        Endpoint::ALL
            .iter()
            .map(|e| self.counts(*e))
            .fold(EndpointCounts::default(), |t, c| t + c)
    }

    /// Pages of a request family per format, the formats that gave none left out.
    pub fn pages_by_via(&self, e: Endpoint) -> BTreeMap<Via, u64> {
        let by_via = &self.endpoint(e).pages_via;
        Via::ALL
            .iter()
            .map(|v| (*v, by_via.get(*v).load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Times the host asked to wait.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    pub(crate) fn set_pace(&self, rate: Option<f64>) {
        let millis = rate.map_or(0, |r| (r * 1000.0).round() as u64);
        self.pace_millis.store(millis, Ordering::Relaxed);
    }

    /// The pace the client settled at after the host throttled it, in requests per second.
    pub fn settled_rps(&self) -> Option<f64> {
        match self.pace_millis.load(Ordering::Relaxed) {
            0 => None,
            m => Some(m as f64 / 1000.0),
        }
    }

    /// Distinct authors found so far (after the cap).
    pub fn authors_found(&self) -> u64 {
        self.authors_found.load(Ordering::Relaxed)
    }

    /// Authors whose streams are done.
    pub fn authors_done(&self) -> u64 {
        self.authors_done.load(Ordering::Relaxed)
    }

    /// Pages obtained so far for a request family, over HTTP or from a store.
    pub fn pages_done(&self, e: Endpoint) -> u64 {
        let c = self.counts(e);
        c.pages_fetched + c.pages_from_store
    }
}
