//! Injected faults: which request gets which fault ([`Faults::fault_for`], a pure function of
//! the seed, the URL and the attempt number), and the response a fault turns into
//! ([`respond_with`]). Nothing here does I/O, so a router of a test's own can answer with the
//! same faults as the synthetic server.

use std::collections::HashSet;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use medium_api::guard::XSSI_GUARD;

use crate::mix;

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
    /// The GraphQL endpoint answers 403 too.
    pub graphql_closed: bool,
    /// Requests per second the server allows (a token bucket holding a tenth of a second's
    /// worth, at least one): beyond it, 429 with `Retry-After: 1`, as a rate-limited host.
    pub rate_limit: Option<f64>,
    /// Users (ids) whose profile and following requests always fail with 500.
    pub always_fail: HashSet<String>,
    /// Answers of a test's own, tried before the synthetic Medium's: a request Medium would
    /// answer differently (a `NotFound`, a GraphQL error, a block page for one door).
    pub answer: Answer,
    /// The adversarial server's attacks on chosen authors (oversized bodies, a gzip bomb, deep
    /// nesting, out-of-range values): [`crate::hostile`].
    pub hostile: Option<std::sync::Arc<crate::hostile::Hostile>>,
}

/// A test's own answer to a request: given the request's key (`path?query`, or for GraphQL
/// `/_/graphql?<the posted body>`) and which attempt at it this is (1-based), a status and a
/// body, or `None` to let the synthetic Medium answer.
pub type AnswerFn = dyn Fn(&str, u64) -> Option<(u16, Bytes)> + Send + Sync;

/// An optional [`AnswerFn`].
#[derive(Clone, Default)]
pub struct Answer(pub Option<std::sync::Arc<AnswerFn>>);

impl Answer {
    pub fn new(f: impl Fn(&str, u64) -> Option<(u16, Bytes)> + Send + Sync + 'static) -> Self {
        Answer(Some(std::sync::Arc::new(f)))
    }

    /// The answer to the `attempt`-th request for `key`, if the test gives one.
    pub fn to(&self, key: &str, attempt: u64) -> Option<Response> {
        let (status, body) = self.0.as_ref()?(key, attempt)?;
        Some(reply(status, body))
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Answer(set)"
        } else {
            "Answer(none)"
        })
    }
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

/// A response with `status` and `body`, its content type guessed from the body (RSS, HTML or
/// JSON).
fn reply(status: u16, body: Bytes) -> Response {
    let content_type = if body.starts_with(b"<?xml") {
        "application/rss+xml; charset=utf-8"
    } else if body.starts_with(b"<") {
        "text/html; charset=utf-8"
    } else {
        "application/json; charset=utf-8"
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A response whose body fails before its first byte. The server (hyper, under axum) then
/// drops the connection: the head it had only buffered is never sent, so the client sees the
/// connection closed without an answer. Should a head ever get out first, its
/// `content-length` promises bytes that never come, and the client still sees a transfer
/// error rather than a complete answer.
fn reset() -> Response {
    let failing = futures_util::stream::once(std::future::ready(Err::<Bytes, std::io::Error>(
        std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected reset"),
    )));
    let mut response = Response::new(Body::from_stream(failing));
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("1024"));
    response
}

/// The response for a request: the page (or 404 when `body` is `None`), or the injected
/// fault. [`Fault::Stall`] answers the page: the wait is the server's part.
pub fn respond_with(body: Option<Bytes>, fault: Option<Fault>) -> Response {
    let Some(body) = body else {
        return reply(404, Bytes::from_static(b"not found"));
    };
    match fault {
        None | Some(Fault::Stall) => reply(200, body),
        Some(Fault::Status(code)) => reply(code, Bytes::from_static(b"<html>error</html>")),
        Some(Fault::TooManyRequests(secs)) => {
            let mut response = Response::new(Body::from(Bytes::from_static(b"slow down")));
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
            response
        }
        Some(Fault::Truncated) => reply(200, body.slice(..body.len() / 2)),
        Some(Fault::Unguarded) => {
            let rest = body.strip_prefix(XSSI_GUARD).map(Bytes::copy_from_slice);
            reply(200, rest.unwrap_or(body))
        }
        Some(Fault::Html) => reply(
            200,
            Bytes::from_static(b"<!DOCTYPE html><html><title>Just a moment...</title></html>"),
        ),
        Some(Fault::Reset) => reset(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_deterministic_and_retries_can_succeed() {
        let faults = Faults {
            seed: 7,
            rate: 0.5,
            ..Default::default()
        };
        let key = "/_/api/users/abc/following?";
        let first: Vec<Option<Fault>> = (1..=40).map(|n| faults.fault_for(key, n)).collect();
        let again: Vec<Option<Fault>> = (1..=40).map(|n| faults.fault_for(key, n)).collect();
        assert_eq!(first, again);
        assert!(first.iter().any(Option::is_none));
        assert!(first.iter().any(Option::is_some));
        assert_eq!(Faults::default().fault_for(key, 1), None);
        let failing = Faults {
            always_fail: HashSet::from(["abc".to_owned()]),
            ..Default::default()
        };
        assert_eq!(failing.fault_for(key, 9), Some(Fault::Status(500)));
    }

    #[test]
    fn faults_become_responses() {
        let page = Bytes::from_static(b"])}while(1);</x>{\"success\":true}");
        assert_eq!(respond_with(None, None).status(), StatusCode::NOT_FOUND);
        let ok = respond_with(Some(page.clone()), None);
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(
            ok.headers()[CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
        let slow = respond_with(Some(page.clone()), Some(Fault::TooManyRequests(1)));
        assert_eq!(slow.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(slow.headers()[RETRY_AFTER], "1");
        let error = respond_with(Some(page.clone()), Some(Fault::Status(503)));
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    }
}
