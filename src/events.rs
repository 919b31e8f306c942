//! The run's internal events, after Vector's: one struct per event, named `NounVerbed`, whose
//! `emit` writes the log line (where the event has one) and bumps the counters of
//! [`FetchStats`] that progress, the summary and the manifest read. The counters are private
//! to `run` and this module, so none is bumped anywhere else and the log and the numbers
//! cannot disagree.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use medium_api::endpoints::Endpoint;
use medium_api::via::Via;

use crate::run::FetchStats;

/// An HTTP request was sent (every attempt counts).
pub struct RequestSent {
    pub endpoint: Endpoint,
}

impl RequestSent {
    pub fn emit(&self, stats: &FetchStats) {
        stats
            .endpoint(self.endpoint)
            .requests
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// A response body arrived whole.
pub struct BodyReceived {
    pub bytes: usize,
}

impl BodyReceived {
    pub fn emit(&self, stats: &FetchStats) {
        stats.bytes.fetch_add(self.bytes as u64, Ordering::Relaxed);
    }
}

/// An attempt failed in a way worth another (timeout, 429, 5xx, a malformed body).
pub struct RequestRetried<'a> {
    pub endpoint: Endpoint,
    pub url: &'a str,
    pub attempt: u32,
    pub delay: Duration,
    pub error: &'a dyn std::fmt::Display,
}

impl RequestRetried<'_> {
    pub fn emit(&self, stats: &FetchStats) {
        tracing::debug!(
            url = %self.url,
            attempt = self.attempt,
            delay_ms = self.delay.as_millis() as u64,
            error = %self.error,
            "RequestRetried"
        );
        stats
            .endpoint(self.endpoint)
            .retried
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// The host asked to wait (429, or 503 with `Retry-After`): every request to it pauses, and
/// the pace comes down.
pub struct Throttled<'a> {
    pub endpoint: Endpoint,
    pub url: &'a str,
    pub pause: Duration,
    /// The pace after it, in requests per second.
    pub rate: Option<f64>,
}

impl Throttled<'_> {
    pub fn emit(&self, stats: &FetchStats) {
        tracing::debug!(
            url = %self.url,
            pause_ms = self.pause.as_millis() as u64,
            rate = self.rate.unwrap_or(0.0),
            "Throttled"
        );
        stats.throttled.fetch_add(1, Ordering::Relaxed);
        stats.set_pace(self.rate);
        let _ = self.endpoint;
    }
}

/// A request failed for good (after its retries, or a 4xx that is not retried). The stream's
/// failure is logged once, as `StreamFailed`, by the crawl.
pub struct RequestFailed {
    pub endpoint: Endpoint,
}

impl RequestFailed {
    pub fn emit(&self, stats: &FetchStats) {
        stats
            .endpoint(self.endpoint)
            .failed
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// A page came over HTTP and its format accepted it.
pub struct PageFetched {
    pub endpoint: Endpoint,
}

impl PageFetched {
    pub fn emit(&self, stats: &FetchStats) {
        stats
            .endpoint(self.endpoint)
            .pages_fetched
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// A fetched page was stored in the run's raw store, in a format.
pub struct PageStored {
    pub endpoint: Endpoint,
    pub via: Via,
}

impl PageStored {
    pub fn emit(&self, stats: &FetchStats) {
        stats
            .endpoint(self.endpoint)
            .pages_via
            .get(self.via)
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// A page was answered by a raw store (resume, or a `--source` replay) without a request.
pub struct PageFromStore {
    pub endpoint: Endpoint,
    pub via: Via,
}

impl PageFromStore {
    pub fn emit(&self, stats: &FetchStats) {
        let s = stats.endpoint(self.endpoint);
        s.pages_from_store.fetch_add(1, Ordering::Relaxed);
        s.pages_via.get(self.via).fetch_add(1, Ordering::Relaxed);
    }
}

/// A page in the run's raw store could not be read back; it is fetched again.
pub struct StoredPageUnreadable<'a> {
    pub file: &'a Path,
    pub error: &'a dyn std::fmt::Display,
}

impl StoredPageUnreadable<'_> {
    pub fn emit(&self) {
        tracing::warn!(file = %self.file.display(), error = %self.error, "StoredPageUnreadable");
    }
}

/// An author's streams were started (a new author, within the cap).
pub struct AuthorFound;

impl AuthorFound {
    pub fn emit(&self, stats: &FetchStats) {
        stats.authors_found.fetch_add(1, Ordering::Relaxed);
    }
}

/// Both of an author's streams are done (whatever they ended with).
pub struct AuthorHarvested<'a> {
    pub user_id: &'a str,
}

impl AuthorHarvested<'_> {
    pub fn emit(&self, stats: &FetchStats) {
        let done = stats.authors_done.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(user_id = %self.user_id, done, "AuthorHarvested");
    }
}
