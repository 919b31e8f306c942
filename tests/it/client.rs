//! The HTTP client against a real local server: retries, Retry-After, timeouts, bad bodies.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use medium_etl::error::{BodyError, FetchError};
use medium_etl::run::FetchStats;
use medium_etl::sources::medium::client::{ClientSettings, MediumClient};
use medium_etl::sources::medium::endpoints::{Endpoint, StreamId};
use medium_etl::sources::medium::models::StreamPayload;
use reqwest::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{closed_port, fixture, request_count};

const PROFILE: &str = "/_/api/users/e2f299e30cb9/profile/stream";

/// The settings of a quick client of `server`: no rate cap, short backoff and timeouts.
fn quick_settings(server: &MockServer, retries: u32) -> ClientSettings {
    let mut s = ClientSettings::new(Url::parse(&server.uri()).unwrap());
    s.max_rps = None;
    s.retries = retries;
    s.backoff_base = Duration::from_millis(10);
    s.backoff_max = Duration::from_secs(5);
    s.timeout = Duration::from_millis(500);
    s.connect_timeout = Duration::from_millis(500);
    s
}

fn client(server: &MockServer, retries: u32) -> (MediumClient, Arc<FetchStats>) {
    let stats = Arc::new(FetchStats::default());
    let c = MediumClient::new(quick_settings(server, retries), stats.clone()).unwrap();
    (c, stats)
}

/// The error of fetching the profile page through `c`.
async fn fetch_err(c: &MediumClient) -> FetchError {
    c.fetch_page::<StreamPayload>(&stream(), "")
        .await
        .unwrap_err()
}

fn stream() -> StreamId {
    StreamId::Profile("e2f299e30cb9".into())
}

async fn mount(server: &MockServer, template: ResponseTemplate, times: Option<u64>) {
    let mock = Mock::given(method("GET"))
        .and(path(PROFILE))
        .respond_with(template);
    match times {
        Some(n) => mock.up_to_n_times(n).mount(server).await,
        None => mock.mount(server).await,
    }
}

fn ok_fixture() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_bytes(fixture("user_profile_stream.json"))
}

#[tokio::test]
async fn fetches_a_real_fixture_with_a_user_agent() {
    let server = MockServer::start().await;
    mount(&server, ok_fixture(), None).await;
    let (c, stats) = client(&server, 0);
    let (fetched, page) = c.fetch_page::<StreamPayload>(&stream(), "").await.unwrap();
    assert_eq!(
        fetched.body,
        fixture("user_profile_stream.json"),
        "kept byte for byte"
    );
    assert_eq!(page.references.posts.unwrap().0.len(), 3);
    let reqs = server.received_requests().await.unwrap();
    let ua = reqs[0].headers.get("user-agent").unwrap().to_str().unwrap();
    assert!(ua.starts_with("medium-etl/"), "{ua}");
    assert_eq!(stats.counts(Endpoint::ProfileStream).pages_fetched, 1);
}

#[tokio::test]
async fn honours_retry_after_seconds_on_429() {
    let server = MockServer::start().await;
    mount(
        &server,
        ResponseTemplate::new(429).insert_header("Retry-After", "1"),
        Some(1),
    )
    .await;
    mount(&server, ok_fixture(), None).await;
    let (c, stats) = client(&server, 3);
    let started = Instant::now();
    c.fetch_page::<StreamPayload>(&stream(), "").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(request_count(&server).await, 2);
    // #14: being asked to wait is not a failed attempt
    assert_eq!(stats.counts(Endpoint::ProfileStream).retried, 0);
    assert_eq!(stats.throttled(), 1);
}

#[tokio::test]
async fn honours_retry_after_as_an_http_date() {
    let server = MockServer::start().await;
    let when = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    mount(
        &server,
        ResponseTemplate::new(503).insert_header("Retry-After", when.as_str()),
        Some(1),
    )
    .await;
    mount(&server, ok_fixture(), None).await;
    let (c, _) = client(&server, 3);
    let started = Instant::now();
    c.fetch_page::<StreamPayload>(&stream(), "").await.unwrap();
    // an HTTP date has one-second resolution: at least one second of the two remains
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(request_count(&server).await, 2);
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let server = MockServer::start().await;
    mount(&server, ResponseTemplate::new(503), Some(2)).await;
    mount(&server, ok_fixture(), None).await;
    let (c, stats) = client(&server, 3);
    c.fetch_page::<StreamPayload>(&stream(), "").await.unwrap();
    assert_eq!(request_count(&server).await, 3);
    assert_eq!(stats.counts(Endpoint::ProfileStream).retried, 2);
}

#[tokio::test]
async fn gives_up_on_5xx_after_the_retries_naming_the_url() {
    let server = MockServer::start().await;
    mount(&server, ResponseTemplate::new(502), None).await;
    let (c, stats) = client(&server, 2);
    let err = fetch_err(&c).await;
    assert!(
        matches!(
            err,
            FetchError::Status {
                status: 502,
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(PROFILE), "{err}");
    assert_eq!(request_count(&server).await, 3);
    assert_eq!(stats.counts(Endpoint::ProfileStream).failed, 1);
}

#[tokio::test]
async fn does_not_retry_other_4xx() {
    let server = MockServer::start().await;
    mount(&server, ResponseTemplate::new(404), None).await;
    let (c, _) = client(&server, 4);
    let err = fetch_err(&c).await;
    assert!(
        matches!(
            err,
            FetchError::Status {
                status: 404,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(request_count(&server).await, 1);
}

#[tokio::test]
async fn accepts_a_body_without_the_guard() {
    let server = MockServer::start().await;
    let body = fixture("user_profile_stream.json");
    let unguarded = body.strip_prefix(b"])}while(1);</x>").unwrap().to_vec();
    mount(
        &server,
        ResponseTemplate::new(200).set_body_bytes(unguarded),
        None,
    )
    .await;
    let (c, _) = client(&server, 0);
    let (_, page) = c.fetch_page::<StreamPayload>(&stream(), "").await.unwrap();
    assert_eq!(page.user.unwrap().user_id, "e2f299e30cb9");
}

#[tokio::test]
async fn an_html_page_with_status_200_is_a_typed_error_naming_the_url() {
    let server = MockServer::start().await;
    let html = "<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>";
    mount(
        &server,
        ResponseTemplate::new(200).set_body_string(html),
        None,
    )
    .await;
    let (c, _) = client(&server, 1);
    let err = fetch_err(&c).await;
    // "Just a moment..." is Cloudflare's managed challenge: told apart from other HTML (#13)
    assert!(
        matches!(
            &err,
            FetchError::Body {
                kind: BodyError::Challenge,
                attempts: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("{}{PROFILE}", server.uri())),
        "{err}"
    );
    assert_eq!(
        request_count(&server).await,
        2,
        "retried once, as a challenge page may pass"
    );
}

#[tokio::test]
async fn a_truncated_body_is_retried_then_a_typed_error() {
    let server = MockServer::start().await;
    let body = fixture("user_profile_stream.json");
    mount(
        &server,
        ResponseTemplate::new(200).set_body_bytes(body[..body.len() / 2].to_vec()),
        Some(1),
    )
    .await;
    mount(&server, ok_fixture(), None).await;
    let (c, stats) = client(&server, 1);
    c.fetch_page::<StreamPayload>(&stream(), "").await.unwrap();
    assert_eq!(stats.counts(Endpoint::ProfileStream).retried, 1);

    let server = MockServer::start().await;
    mount(
        &server,
        ResponseTemplate::new(200).set_body_bytes(body[..100].to_vec()),
        None,
    )
    .await;
    let (c, _) = client(&server, 0);
    let err = fetch_err(&c).await;
    assert!(
        matches!(
            &err,
            FetchError::Body {
                kind: BodyError::Truncated(_),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn success_false_and_empty_bodies_are_typed_errors() {
    for (body, want) in [
        (
            &b"])}while(1);</x>{\"success\":false,\"error\":\"nope\"}"[..],
            "success: false (nope)",
        ),
        (&b""[..], "empty body"),
    ] {
        let server = MockServer::start().await;
        mount(
            &server,
            ResponseTemplate::new(200).set_body_bytes(body.to_vec()),
            None,
        )
        .await;
        let (c, _) = client(&server, 0);
        let err = fetch_err(&c).await;
        assert!(err.to_string().contains(want), "{err}");
    }
}

#[tokio::test]
async fn a_stalled_response_times_out_and_is_retried() {
    let server = MockServer::start().await;
    mount(
        &server,
        ok_fixture().set_delay(Duration::from_secs(3)),
        Some(1),
    )
    .await;
    mount(&server, ok_fixture(), None).await;
    let (c, stats) = client(&server, 1);
    let started = Instant::now();
    c.fetch_page::<StreamPayload>(&stream(), "").await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "did not wait for the stall"
    );
    assert_eq!(stats.counts(Endpoint::ProfileStream).retried, 1);

    let server = MockServer::start().await;
    mount(
        &server,
        ok_fixture().set_delay(Duration::from_secs(3)),
        None,
    )
    .await;
    let (c, _) = client(&server, 0);
    let err = fetch_err(&c).await;
    assert!(matches!(err, FetchError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn connection_refused_is_a_connect_error_naming_the_url() {
    let port = closed_port();
    let mut s = ClientSettings::new(Url::parse(&format!("http://127.0.0.1:{port}")).unwrap());
    s.retries = 1;
    s.backoff_base = Duration::from_millis(5);
    let c = MediumClient::new(s, Arc::default()).unwrap();
    let err = fetch_err(&c).await;
    assert!(
        matches!(err, FetchError::Connect { attempts: 2, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

const BLOCK_PAGE: &str = "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title>\
    </head><body><div id=\"cf-error-details\"><h1>Sorry, you have been blocked</h1></div></body></html>";

/// A block page stays blocked: it is final at once, with 200 or 403, and never retried.
#[tokio::test]
async fn a_block_page_is_final_and_not_retried() {
    for status in [200, 403] {
        let server = MockServer::start().await;
        mount(
            &server,
            ResponseTemplate::new(status).set_body_string(BLOCK_PAGE),
            None,
        )
        .await;
        let (c, stats) = client(&server, 3);
        let err = fetch_err(&c).await;
        assert!(
            matches!(
                &err,
                FetchError::Body {
                    kind: BodyError::Blocked,
                    attempts: 1,
                    ..
                }
            ),
            "status {status}: {err:?}"
        );
        assert!(
            err.closes_family(),
            "{err}: the family moves to the next door"
        );
        assert_eq!(request_count(&server).await, 1, "status {status}");
        let counts = stats.counts(Endpoint::ProfileStream);
        assert_eq!((counts.retried, counts.failed), (0, 1));
    }
}

/// A managed challenge often clears when asked again: with 403 it is retried like a 503, and
/// the page that follows it is read.
#[tokio::test]
async fn a_challenge_with_403_is_retried_and_the_page_after_it_is_read() {
    let server = MockServer::start().await;
    let challenge = String::from_utf8(fixture("challenge_page.html")).unwrap();
    mount(
        &server,
        ResponseTemplate::new(403).set_body_string(challenge),
        Some(2),
    )
    .await;
    mount(&server, ok_fixture(), None).await;
    let (c, stats) = client(&server, 3);
    let (_, page) = c.fetch_page::<StreamPayload>(&stream(), "").await.unwrap();
    assert!(page.references.posts.is_some());
    assert_eq!(request_count(&server).await, 3);
    assert_eq!(stats.counts(Endpoint::ProfileStream).retried, 2);
    // and one that never clears ends as a challenge, which closes the family under auto
    let server = MockServer::start().await;
    let challenge = String::from_utf8(fixture("challenge_page.html")).unwrap();
    mount(
        &server,
        ResponseTemplate::new(403).set_body_string(challenge),
        None,
    )
    .await;
    let (c, _) = client(&server, 1);
    let err = fetch_err(&c).await;
    assert!(
        matches!(
            &err,
            FetchError::Body {
                kind: BodyError::Challenge,
                attempts: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.closes_family());
}

/// An ordinary 403 (here with the script Cloudflare injects into every page of a zone) is
/// final at once, as before; `cf-mitigated: challenge` marks a challenge whatever the body.
#[tokio::test]
async fn a_plain_403_is_final_and_cf_mitigated_marks_a_challenge() {
    let server = MockServer::start().await;
    let page = "<html><head><title>Forbidden</title>\
        <script src=\"/cdn-cgi/challenge-platform/scripts/jsd/main.js\"></script></head></html>";
    mount(
        &server,
        ResponseTemplate::new(403).set_body_string(page),
        None,
    )
    .await;
    let (c, _) = client(&server, 3);
    let err = fetch_err(&c).await;
    assert!(
        matches!(
            &err,
            FetchError::Status {
                status: 403,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(request_count(&server).await, 1);

    let server = MockServer::start().await;
    mount(
        &server,
        ResponseTemplate::new(403)
            .insert_header("cf-mitigated", "challenge")
            .set_body_string("<html></html>"),
        Some(1),
    )
    .await;
    mount(&server, ok_fixture(), None).await;
    let (c, stats) = client(&server, 3);
    c.fetch_page::<StreamPayload>(&stream(), "").await.unwrap();
    assert_eq!(request_count(&server).await, 2);
    assert_eq!(stats.counts(Endpoint::ProfileStream).retried, 1);
}

fn capped_client(server: &MockServer, max_body: u64) -> MediumClient {
    let mut s = quick_settings(server, 3);
    s.max_body = max_body;
    MediumClient::new(s, Arc::default()).unwrap()
}

/// #14: a body over `--max-body-mb` is a final error naming the URL, whether the server
/// announces it, streams it, or inflates it from a small gzip body (a gzip bomb); the cap is on
/// the decoded bytes, and nothing past it is read.
#[tokio::test]
async fn a_body_over_the_cap_is_refused_whatever_its_encoding() {
    use std::io::Write;
    let server = MockServer::start().await;
    mount(
        &server,
        ResponseTemplate::new(200).set_body_bytes(vec![b' '; 3 << 20]),
        None,
    )
    .await;
    let c = capped_client(&server, 1 << 20);
    let err = fetch_err(&c).await;
    assert!(
        matches!(err, FetchError::TooLarge { limit, .. } if limit == 1 << 20),
        "{err}"
    );
    assert!(err.to_string().contains(PROFILE), "{err}");
    assert!(err.to_string().contains("larger than 1 MiB"), "{err}");
    assert_eq!(request_count(&server).await, 1, "not retried");

    // 64 MiB of zeros in a 64 KiB gzip body
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 64 << 20]).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 1 << 20);
    let server = MockServer::start().await;
    mount(
        &server,
        ResponseTemplate::new(200)
            .insert_header("content-encoding", "gzip")
            .set_body_bytes(gz),
        None,
    )
    .await;
    let err = fetch_err(&capped_client(&server, 1 << 20)).await;
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
    // a body under the cap still reads
    let server = MockServer::start().await;
    mount(&server, ok_fixture(), None).await;
    let c = capped_client(&server, 1 << 20);
    assert!(c.fetch_page::<StreamPayload>(&stream(), "").await.is_ok());
}
