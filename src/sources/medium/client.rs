//! The HTTP client, and nothing but HTTP: one connection pool, bounded concurrency, a requests-per-second cap,
//! timeouts, and retries with exponential backoff and jitter (SPEC §2 "Politeness").
//!
//! Retried: timeouts, connection and transfer errors, 429, 5xx, and bodies the requested format
//! does not accept (for JSON an HTML challenge page with status 200 or a truncated body; for an
//! HTML page a challenge or a page without its state; for a feed, anything but RSS), since all
//! of these are what a busy or rate-limiting server sends and a later attempt usually gets the
//! real answer. (Whether to try another format after that is [`super::fallback`]'s call.)
//! `Retry-After` (seconds or an HTTP date) is honoured, up to the configured maximum backoff.
//! Never retried: other 4xx (a 404 will not become a 200), and a block page, with any status
//! ([`medium_api::interstitial`]: it stays blocked). A challenge is retried whether it comes
//! with 200 or 403. Every request carries a descriptive `User-Agent`, since Medium refuses
//! requests without one, and speaks HTTP/1.1 unless `--http2` is given (Cloudflare refuses
//! HTTP/2 from clients that are not browsers).

use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, CONTENT_ENCODING, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use medium_api::endpoints::{Endpoint, StreamId};
use medium_api::guard::parse_payload;
use medium_api::interstitial::{classify, Interstitial, SCAN};
use medium_api::BodyError;

pub use crate::config::ClientSettings;
use crate::error::{error_chain, FetchError, RunError};
use crate::events::{
    BodyReceived, PageFetched, RequestFailed, RequestRetried, RequestSent, Throttled,
};
use crate::run::FetchStats;

/// A page received over HTTP: the exact body and what the raw store records beside it.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub url: String,
    pub status: u16,
    pub body: Vec<u8>,
    pub fetched_at: chrono::DateTime<chrono::Utc>,
    pub attempts: u32,
}

/// Paces the requests to the host, for limits the client is not told (Scrapy's AutoThrottle,
/// TCP's AIMD): request starts are spaced `1 / rate` apart (no bursts); a 429, or a 503 with
/// `Retry-After`, pauses **every** request to the host for that long and sets the rate to
/// 0.9 × the answers the host gave in the second before (over its limit, that is the limit);
/// each success raises it again, by 1 request/s per second below 95 % of that rate and by
/// 0.25 above it (by half per second while less than a second was measured), never beyond
/// `--max-rps`. Without a cap and before any throttle, the rate is not limited.
#[derive(Debug)]
struct Pace {
    cap: Option<f64>,
    state: std::sync::Mutex<PaceState>,
}

#[derive(Debug)]
struct PaceState {
    /// The earliest start of the next request.
    next: Instant,
    /// Requests per second now; `None`: unlimited.
    rate: Option<f64>,
    /// No request starts before this (the host asked to wait).
    paused_until: Instant,
    /// The rate that was being achieved when the host last throttled.
    ceiling: Option<f64>,
    /// When the latest answers came (at most [`ANSWERS_KEPT`], the last second's).
    answers: std::collections::VecDeque<Instant>,
    /// When the last pause ended.
    resumed_at: Instant,
}

/// Answers remembered to measure the host's rate.
const ANSWERS_KEPT: usize = 4096;

/// The slowest the pace goes: one request every 10 s.
const MIN_RPS: f64 = 0.1;

impl Pace {
    fn new(max_rps: Option<f64>) -> Self {
        let cap = max_rps.filter(|r| *r > 0.0 && r.is_finite());
        let now = Instant::now();
        Pace {
            cap,
            state: std::sync::Mutex::new(PaceState {
                next: now,
                rate: cap,
                paused_until: now,
                ceiling: None,
                answers: std::collections::VecDeque::new(),
                resumed_at: now,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PaceState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for this request's turn. A turn that has come already is not waited for: a
    /// timer, even one due now, fires on the runtime's next millisecond tick (tokio rounds
    /// deadlines up), and every request of an unlimited crawl paid that, holding its permit
    /// (#18: 1-2 ms a request, 5-10 % of a 20 ms exchange).
    async fn wait(&self) {
        let now = Instant::now();
        let start = {
            let mut s = self.lock();
            let start = s.next.max(now).max(s.paused_until);
            s.next = match s.rate {
                Some(r) => start + Duration::from_secs_f64(1.0 / r),
                None => start,
            };
            start
        };
        if start > now {
            tokio::time::sleep_until(start).await;
        }
    }

    /// The host asked to wait (`pause`): nothing starts before then, and the rate comes down
    /// (once per pause, however many requests in flight hear it).
    fn throttled(&self, pause: Duration) {
        let mut s = self.lock();
        let now = Instant::now();
        let already_paused = s.paused_until > now;
        s.paused_until = s.paused_until.max(now + pause);
        if already_paused {
            return;
        }
        // the answers of the last second since the previous pause ended: what the host lets
        // through (a pause is no measure of it)
        let second_ago = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
        let from = second_ago.max(s.resumed_at);
        while s.answers.front().is_some_and(|t| *t < from) {
            s.answers.pop_front();
        }
        let span = now.duration_since(from).as_secs_f64();
        let measured = (s.answers.len() as f64 / span.max(0.25)).max(MIN_RPS);
        let current = s.rate.map_or(measured, |r| r.min(measured));
        // a whole second of answers measures the host's limit; less (a first burst) does not,
        // and the rate then grows fast again until it is throttled over a whole second
        s.ceiling = (span >= 1.0).then_some(current);
        s.rate = Some((current * 0.9).max(MIN_RPS));
        s.resumed_at = now + pause;
    }

    /// A request was answered: the rate creeps back up. Returns the new rate once the host
    /// has throttled (for the manifest), else `None`.
    fn succeeded(&self) -> Option<f64> {
        let mut s = self.lock();
        if s.answers.len() >= ANSWERS_KEPT {
            s.answers.pop_front();
        }
        s.answers.push_back(Instant::now());
        let rate = s.rate?;
        // per success: about +1 request/s per second below 95 % of the measured limit, +0.25
        // above it, and half again per second while the limit is not measured yet
        let raised = match s.ceiling {
            Some(c) if rate >= 0.95 * c => rate + 0.25 / rate,
            Some(_) => rate + 1.0 / rate,
            None => rate + 0.5,
        };
        s.rate = Some(match self.cap {
            Some(cap) => raised.min(cap),
            None => raised,
        });
        s.ceiling.and(s.rate)
    }

    /// The rate the pace is at (`None`: unlimited).
    fn rate(&self) -> Option<f64> {
        self.lock().rate
    }
}

/// Whether `url` is plain HTTP to this machine (`localhost`, `127.0.0.0/8`, `::1`).
fn is_plain_loopback(url: &Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
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
    pace: Pace,
    stats: Arc<FetchStats>,
}

/// What one attempt ended with.
enum Attempt {
    Done(Fetched),
    Retry {
        error: FetchError,
        retry_after: Option<Duration>,
    },
    /// The host asked to wait (429, or 503 with `Retry-After`): not a failed attempt.
    Throttled {
        error: FetchError,
        retry_after: Option<Duration>,
    },
    Fatal(FetchError),
}

/// Times one request may be asked to wait before that counts as a failure (a host that
/// throttles for ever).
const MAX_THROTTLES: u32 = 20;

impl MediumClient {
    pub fn new(settings: ClientSettings, stats: Arc<FetchStats>) -> Result<Self, RunError> {
        install_crypto_provider();
        let mut builder = reqwest::Client::builder();
        if !settings.http2 {
            // Cloudflare refuses HTTP/2 from clients that are not browsers and serves the same
            // request over HTTP/1.1 (MEDIUM-GRAPHQL.md, "Transport"); --http2 opts back in.
            builder = builder.http1_only();
        }
        if is_plain_loopback(&settings.base_url) {
            // Plain HTTP on this machine (a local mirror, the tests' servers) needs no
            // certificate roots, and loading the system's took 7 ms of every run's start
            // (#18). Only on loopback: `http://medium.com` is redirected to https, which needs
            // them.
            builder = builder.tls_certs_only([]);
        }
        let http = builder
            .user_agent(settings.user_agent.clone())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .pool_max_idle_per_host(settings.concurrency.max(1))
            .build()
            .map_err(|e| RunError::Client(e.to_string()))?;
        Ok(MediumClient {
            http,
            permits: Semaphore::new(settings.concurrency.max(1)),
            pace: Pace::new(settings.max_rps),
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
        self.fetch_with(endpoint, url, None, decode).await
    }

    /// As [`MediumClient::fetch_decoded`], posting `json` (a GraphQL request) when given
    /// instead of a GET. A POST is retried as a GET is: every operation sent reads only.
    pub async fn fetch_with<P>(
        &self,
        endpoint: Endpoint,
        url: &Url,
        json: Option<&bytes::Bytes>,
        decode: impl Fn(&[u8]) -> Result<P, BodyError>,
    ) -> Result<(Fetched, P), FetchError> {
        let (mut attempt, mut throttles): (u32, u32) = (0, 0);
        loop {
            attempt += 1;
            let outcome = self.attempt(url, json, attempt, endpoint).await;
            if let Attempt::Throttled { error, retry_after } = outcome {
                throttles += 1;
                // being asked to wait is not a failed attempt: it does not use up a retry
                attempt -= 1;
                if throttles > MAX_THROTTLES {
                    RequestFailed { endpoint }.emit(&self.stats);
                    return Err(error);
                }
                let pause = retry_after
                    .unwrap_or_else(|| self.backoff(throttles, None))
                    .min(self.settings.backoff_max);
                self.pace.throttled(pause);
                Throttled {
                    endpoint,
                    url: url.as_str(),
                    pause,
                    rate: self.pace.rate(),
                }
                .emit(&self.stats);
                // the pace holds this request (and every other) until the pause is over
                continue;
            }
            let (error, retry_after) = match outcome {
                Attempt::Throttled { .. } => unreachable!("handled above"),
                Attempt::Done(fetched) => match decode(&fetched.body) {
                    Ok(payload) => {
                        if let Some(rate) = self.pace.succeeded() {
                            self.stats.set_pace(Some(rate));
                        }
                        PageFetched { endpoint }.emit(&self.stats);
                        return Ok((fetched, payload));
                    }
                    Err(kind) => {
                        let error = FetchError::Body {
                            url: url.to_string(),
                            kind,
                            attempts: attempt,
                        };
                        if error.is_final() {
                            RequestFailed { endpoint }.emit(&self.stats);
                            return Err(error);
                        }
                        (error, None)
                    }
                },
                Attempt::Retry { error, retry_after } => (error, retry_after),
                Attempt::Fatal(error) => {
                    RequestFailed { endpoint }.emit(&self.stats);
                    return Err(error);
                }
            };
            if attempt > self.settings.retries {
                RequestFailed { endpoint }.emit(&self.stats);
                return Err(error);
            }
            let delay = self.backoff(attempt, retry_after);
            RequestRetried {
                endpoint,
                url: url.as_str(),
                attempt,
                delay,
                error: &error,
            }
            .emit(&self.stats);
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

    async fn attempt(
        &self,
        url: &Url,
        json: Option<&bytes::Bytes>,
        attempt: u32,
        endpoint: Endpoint,
    ) -> Attempt {
        let url_text = url.to_string();
        // No retry while waiting holds a permit: permits bound requests in flight only.
        let Ok(_permit) = self.permits.acquire().await else {
            return Attempt::Fatal(FetchError::Transfer {
                url: url_text,
                message: "client shut down".into(),
                attempts: attempt,
            });
        };
        self.pace.wait().await;
        RequestSent { endpoint }.emit(&self.stats);
        let request = match json {
            None => self.http.get(url.clone()),
            Some(body) => self
                .http
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone()),
        };
        let request = match &self.settings.basic_auth {
            Some((user, password)) => request.basic_auth(user, password.as_ref()),
            None => request,
        };
        let response = match request.send().await {
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
        let asked_to_wait = status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::SERVICE_UNAVAILABLE && retry_after.is_some());
        if asked_to_wait {
            return Attempt::Throttled {
                error: FetchError::Status {
                    url: url_text,
                    status: status.as_u16(),
                    attempts: attempt,
                },
                retry_after,
            };
        }
        if status.is_server_error() {
            return Attempt::Retry {
                error: FetchError::Status {
                    url: url_text,
                    status: status.as_u16(),
                    attempts: attempt,
                },
                retry_after,
            };
        }
        if status == StatusCode::FORBIDDEN {
            return self
                .forbidden(response, url_text, attempt, retry_after)
                .await;
        }
        if !status.is_success() {
            return Attempt::Fatal(FetchError::Status {
                url: url_text,
                status: status.as_u16(),
                attempts: attempt,
            });
        }
        match self.read_body(response, &url_text, attempt).await {
            Ok(body) => {
                BodyReceived { bytes: body.len() }.emit(&self.stats);
                Attempt::Done(Fetched {
                    url: url_text,
                    status: status.as_u16(),
                    body,
                    fetched_at: chrono::Utc::now(),
                    attempts: attempt,
                })
            }
            Err(outcome) => outcome,
        }
    }

    /// The body, read chunk by chunk into one buffer (each byte copied once), at most
    /// `max_body` decoded bytes: a longer body (announced, streamed or inflated from gzip) is
    /// a final error naming the URL, and is dropped unread past the cap.
    async fn read_body(
        &self,
        mut response: reqwest::Response,
        url: &str,
        attempt: u32,
    ) -> Result<Vec<u8>, Attempt> {
        let cap = self.settings.max_body;
        let too_large = || {
            Attempt::Fatal(FetchError::TooLarge {
                url: url.to_owned(),
                limit: cap,
            })
        };
        // announced length of what is sent (compressed, if it is): a start for the buffer
        let announced = response.content_length().unwrap_or(0);
        if announced > cap && response.headers().get(CONTENT_ENCODING).is_none() {
            return Err(too_large());
        }
        let mut body = Vec::with_capacity(announced.min(cap) as usize);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > cap {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(e) => {
                    return Err(Attempt::Retry {
                        error: transport_error(url, &e, attempt),
                        retry_after: None,
                    })
                }
            }
        }
    }
}

impl MediumClient {
    /// A 403: a managed challenge (Cloudflare's `cf-mitigated: challenge` header, or a
    /// challenge page) often clears when asked again, so it is retried; a block page is final,
    /// and so is a plain 403. At most the first [`SCAN`] bytes of the body are read.
    async fn forbidden(
        &self,
        mut response: reqwest::Response,
        url: String,
        attempt: u32,
        retry_after: Option<Duration>,
    ) -> Attempt {
        let mitigated = response
            .headers()
            .get("cf-mitigated")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"challenge"));
        let mut head = Vec::new();
        while head.len() < SCAN {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    head.extend_from_slice(&chunk[..chunk.len().min(SCAN - head.len())])
                }
                Ok(None) => break,
                Err(e) => {
                    return Attempt::Retry {
                        error: transport_error(&url, &e, attempt),
                        retry_after,
                    }
                }
            }
        }
        BodyReceived { bytes: head.len() }.emit(&self.stats);
        let body_error = |kind| FetchError::Body {
            url: url.clone(),
            kind,
            attempts: attempt,
        };
        match (mitigated, classify(&head)) {
            (true, _) | (false, Some(Interstitial::Challenge)) => Attempt::Retry {
                error: body_error(BodyError::Challenge),
                retry_after,
            },
            (false, Some(Interstitial::Block)) => Attempt::Fatal(body_error(BodyError::Blocked)),
            (false, None) => Attempt::Fatal(FetchError::Status {
                url,
                status: 403,
                attempts: attempt,
            }),
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

    /// Only plain HTTP to this machine skips the certificate roots: elsewhere an http URL may
    /// be redirected to https (Medium's is).
    #[test]
    fn only_plain_http_to_this_machine_goes_without_roots() {
        for (url, plain) in [
            ("http://127.0.0.1:8080/", true),
            ("http://127.9.9.9/", true),
            ("http://[::1]:80/", true),
            ("http://LOCALHOST:1/", true),
            ("https://127.0.0.1/", false),
            ("http://medium.com/", false),
            ("http://10.0.0.1/", false),
            ("http://localhost.example.com/", false),
            ("https://medium.com/", false),
        ] {
            assert_eq!(is_plain_loopback(&Url::parse(url).unwrap()), plain, "{url}");
        }
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
