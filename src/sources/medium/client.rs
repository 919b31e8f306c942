//! The HTTP client: one connection pool, bounded concurrency, a requests-per-second cap,
//! timeouts, and retries with exponential backoff and jitter (SPEC §2 "Politeness").
//!
//! Retried: timeouts, connection and transfer errors, 429, 5xx, and bodies the requested format
//! does not accept (for JSON an HTML challenge page with status 200 or a truncated body; for an
//! HTML page a challenge or a page without its state; for a feed, anything but RSS), since all
//! of these are what a busy or rate-limiting server sends and a later attempt usually gets the
//! real answer. (Whether to try another format after that is the harvest's call, `--via auto`.)
//! `Retry-After` (seconds or an HTTP date) is honoured, up to the configured maximum backoff.
//! Never retried: other 4xx (a 404 will not become a 200). Every request carries a descriptive
//! `User-Agent`, since Medium refuses requests without one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use super::endpoints::{Endpoint, StreamId};
use super::guard::parse_payload;
use super::via::Via;
use super::BodyError;
use crate::error::{error_chain, FetchError, RunError};

/// The default User-Agent: names the tool and where it comes from.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "medium-etl/",
    env!("CARGO_PKG_VERSION"),
    " (analytics harvester; +https://github.com/medium-etl/medium-etl)"
);

/// How the client behaves; validated by [`crate::config`].
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub base_url: Url,
    pub user_agent: String,
    /// Requests in flight at once, across all authors.
    pub concurrency: usize,
    /// Requests started per second at most; `None` = no cap.
    pub max_rps: Option<f64>,
    pub connect_timeout: Duration,
    /// Whole-request timeout, body included.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl ClientSettings {
    /// Defaults suited to medium.com; tests shorten the timeouts and backoff.
    pub fn new(base_url: Url) -> Self {
        ClientSettings {
            base_url,
            user_agent: DEFAULT_USER_AGENT.into(),
            concurrency: 8,
            max_rps: Some(10.0),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            retries: 4,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// Request counters, shared by every task of a run (for the summary and the manifest).
#[derive(Debug, Default)]
pub struct FetchStats {
    attempts: [AtomicU64; 3],
    pages: [AtomicU64; 3],
    stored: [AtomicU64; 3],
    retries: [AtomicU64; 3],
    failed: [AtomicU64; 3],
    /// Pages obtained per endpoint and format ([`Via`] index).
    via_pages: [[AtomicU64; 3]; 3],
    bytes: AtomicU64,
    /// Distinct authors found so far (after the cap), and authors whose streams are done.
    pub authors_found: AtomicU64,
    pub authors_done: AtomicU64,
}

/// A snapshot of [`FetchStats`] for one endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
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

fn slot(e: Endpoint) -> usize {
    e as usize
}

impl FetchStats {
    pub fn page_from_store(&self, e: Endpoint) {
        self.stored[slot(e)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a page of an endpoint obtained in a format (fetched or from a store).
    pub fn page_via(&self, e: Endpoint, via: Via) {
        self.via_pages[slot(e)][via as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Pages of an endpoint per format, the formats that gave none left out.
    pub fn pages_by_via(&self, e: Endpoint) -> std::collections::BTreeMap<Via, u64> {
        Via::ALL
            .iter()
            .map(|v| {
                (
                    *v,
                    self.via_pages[slot(e)][*v as usize].load(Ordering::Relaxed),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub fn counts(&self, e: Endpoint) -> EndpointCounts {
        let i = slot(e);
        EndpointCounts {
            requests: self.attempts[i].load(Ordering::Relaxed),
            pages_fetched: self.pages[i].load(Ordering::Relaxed),
            pages_from_store: self.stored[i].load(Ordering::Relaxed),
            retried: self.retries[i].load(Ordering::Relaxed),
            failed: self.failed[i].load(Ordering::Relaxed),
        }
    }

    /// The counts of every endpoint added up.
    pub fn totals(&self) -> EndpointCounts {
        Endpoint::ALL
            .iter()
            .map(|e| self.counts(*e))
            .fold(EndpointCounts::default(), |t, c| EndpointCounts {
                requests: t.requests + c.requests,
                pages_fetched: t.pages_fetched + c.pages_fetched,
                pages_from_store: t.pages_from_store + c.pages_from_store,
                retried: t.retried + c.retried,
                failed: t.failed + c.failed,
            })
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Pages obtained so far for an endpoint, over HTTP or from a store.
    pub fn pages_done(&self, e: Endpoint) -> u64 {
        let c = self.counts(e);
        c.pages_fetched + c.pages_from_store
    }
}

/// A page received over HTTP: the exact body and what the raw store records beside it.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub url: String,
    pub status: u16,
    pub body: Vec<u8>,
    pub fetched_at: chrono::DateTime<chrono::Utc>,
    pub attempts: u32,
}

/// Spaces request starts at least `1 / rps` apart (no bursts).
#[derive(Debug)]
struct RateLimiter {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl RateLimiter {
    fn new(max_rps: Option<f64>) -> Self {
        let interval = max_rps
            .filter(|r| *r > 0.0 && r.is_finite())
            .map(|r| Duration::from_secs_f64(1.0 / r));
        RateLimiter {
            interval,
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let start = {
            let mut next = self.next.lock().await;
            let start = (*next).max(Instant::now());
            *next = start + interval;
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

static CRYPTO: Once = Once::new();

/// Installs the `ring` TLS provider once per process. reqwest is built without a provider of
/// its own (so aws-lc-sys is not compiled) and panics if a client is built before this runs.
pub fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        // Err means another provider is installed already, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The Medium client. Cheap to share behind an `Arc`; one connection pool for the whole run.
#[derive(Debug)]
pub struct MediumClient {
    http: reqwest::Client,
    settings: ClientSettings,
    permits: Semaphore,
    limiter: RateLimiter,
    stats: Arc<FetchStats>,
}

/// What one attempt ended with.
enum Attempt {
    Done(Fetched),
    Retry {
        error: FetchError,
        retry_after: Option<Duration>,
    },
    Fatal(FetchError),
}

impl MediumClient {
    pub fn new(settings: ClientSettings, stats: Arc<FetchStats>) -> Result<Self, RunError> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(settings.user_agent.clone())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .pool_max_idle_per_host(settings.concurrency.max(1))
            .build()
            .map_err(|e| RunError::Client(e.to_string()))?;
        Ok(MediumClient {
            http,
            permits: Semaphore::new(settings.concurrency.max(1)),
            limiter: RateLimiter::new(settings.max_rps),
            settings,
            stats,
        })
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// The URL of a stream's JSON page with the given query.
    pub fn url_for(&self, stream: &StreamId, query: &str) -> Url {
        self.url_for_path(&stream.http_path(), query)
    }

    /// The URL of a path (as [`StreamId::http_path_via`] gives it) under the base URL.
    pub fn url_for_path(&self, path: &str, query: &str) -> Url {
        let mut url = self.settings.base_url.clone();
        let base_path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base_path}{path}"));
        url.set_query((!query.is_empty()).then_some(query));
        url
    }

    /// Fetches one JSON page and parses it, retrying as the module docs say.
    pub async fn fetch_page<P: DeserializeOwned>(
        &self,
        stream: &StreamId,
        query: &str,
    ) -> Result<(Fetched, P), FetchError> {
        self.fetch_decoded(
            stream.endpoint(),
            &self.url_for(stream, query),
            parse_payload::<P>,
        )
        .await
    }

    /// Fetches one page of any format and reads it with `decode`, retrying as the module docs
    /// say (a body `decode` refuses counts as malformed, and is retried).
    pub async fn fetch_decoded<P>(
        &self,
        endpoint: Endpoint,
        url: &Url,
        decode: impl Fn(&[u8]) -> Result<P, BodyError>,
    ) -> Result<(Fetched, P), FetchError> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let outcome = self.attempt(url, attempt, endpoint).await;
            let (error, retry_after) = match outcome {
                Attempt::Done(fetched) => match decode(&fetched.body) {
                    Ok(payload) => {
                        self.stats.pages[slot(endpoint)].fetch_add(1, Ordering::Relaxed);
                        return Ok((fetched, payload));
                    }
                    Err(kind) => (
                        FetchError::Body {
                            url: url.to_string(),
                            kind,
                            attempts: attempt,
                        },
                        None,
                    ),
                },
                Attempt::Retry { error, retry_after } => (error, retry_after),
                Attempt::Fatal(error) => {
                    self.stats.failed[slot(endpoint)].fetch_add(1, Ordering::Relaxed);
                    return Err(error);
                }
            };
            if attempt > self.settings.retries {
                self.stats.failed[slot(endpoint)].fetch_add(1, Ordering::Relaxed);
                return Err(error);
            }
            let delay = self.backoff(attempt, retry_after);
            tracing::debug!(url = %url, attempt, delay_ms = delay.as_millis() as u64, error = %error, "RequestRetried");
            self.stats.retries[slot(endpoint)].fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
        }
    }

    /// The wait before retry number `attempt` (1-based): `Retry-After` when the server gave
    /// one, else `base × 2^(attempt-1)` with "equal jitter" (a random point in its upper half);
    /// both capped at `backoff_max`.
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let max = self.settings.backoff_max;
        if let Some(wait) = retry_after {
            return wait.min(max);
        }
        let exp = self
            .settings
            .backoff_base
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(max);
        let half = exp / 2;
        half + half.mul_f64(fastrand::f64())
    }

    async fn attempt(&self, url: &Url, attempt: u32, endpoint: Endpoint) -> Attempt {
        let url_text = url.to_string();
        // No retry while waiting holds a permit: permits bound requests in flight only.
        let Ok(_permit) = self.permits.acquire().await else {
            return Attempt::Fatal(FetchError::Transfer {
                url: url_text,
                message: "client shut down".into(),
                attempts: attempt,
            });
        };
        self.limiter.wait().await;
        self.stats.attempts[slot(endpoint)].fetch_add(1, Ordering::Relaxed);
        let response = match self.http.get(url.clone()).send().await {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    error: transport_error(&url_text, &e, attempt),
                    retry_after: None,
                }
            }
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Attempt::Retry {
                error: FetchError::Status {
                    url: url_text,
                    status: status.as_u16(),
                    attempts: attempt,
                },
                retry_after,
            };
        }
        if !status.is_success() {
            return Attempt::Fatal(FetchError::Status {
                url: url_text,
                status: status.as_u16(),
                attempts: attempt,
            });
        }
        match response.bytes().await {
            Ok(body) => {
                self.stats
                    .bytes
                    .fetch_add(body.len() as u64, Ordering::Relaxed);
                Attempt::Done(Fetched {
                    url: url_text,
                    status: status.as_u16(),
                    body: body.to_vec(),
                    fetched_at: chrono::Utc::now(),
                    attempts: attempt,
                })
            }
            Err(e) => Attempt::Retry {
                error: transport_error(&url_text, &e, attempt),
                retry_after: None,
            },
        }
    }
}

fn transport_error(url: &str, e: &reqwest::Error, attempts: u32) -> FetchError {
    let url = url.to_owned();
    if e.is_timeout() {
        FetchError::Timeout { url, attempts }
    } else if e.is_connect() {
        FetchError::Connect {
            url,
            message: error_chain(e),
            attempts,
        }
    } else {
        FetchError::Transfer {
            url,
            message: error_chain(e),
            attempts,
        }
    }
}

/// `Retry-After` as a duration: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn reads_retry_after_in_seconds_and_as_a_date() {
        assert_eq!(retry_after(&headers("3")), Some(Duration::from_secs(3)));
        let future = SystemTime::now() + Duration::from_secs(30);
        let d = retry_after(&headers(&httpdate::fmt_http_date(future))).unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let mut s = ClientSettings::new(Url::parse("http://127.0.0.1:1").unwrap());
        s.backoff_base = Duration::from_millis(100);
        s.backoff_max = Duration::from_millis(1000);
        let c = MediumClient::new(s, Arc::default()).unwrap();
        for _ in 0..50 {
            let d1 = c.backoff(1, None);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = c.backoff(3, None);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            assert!(c.backoff(30, None) <= Duration::from_millis(1000));
        }
        assert_eq!(
            c.backoff(1, Some(Duration::from_secs(2))),
            Duration::from_millis(1000)
        );
        assert_eq!(
            c.backoff(1, Some(Duration::from_millis(300))),
            Duration::from_millis(300)
        );
    }

    #[test]
    fn builds_urls_under_the_base_path() {
        let s = ClientSettings::new(Url::parse("http://127.0.0.1:9/mirror/").unwrap());
        let c = MediumClient::new(s, Arc::default()).unwrap();
        let url = c.url_for(&StreamId::Following("u1".into()), "limit=8&to=x");
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/mirror/_/api/users/u1/following?limit=8&to=x"
        );
        let url = c.url_for(&StreamId::Profile("u1".into()), "");
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/mirror/_/api/users/u1/profile/stream"
        );
    }
}
