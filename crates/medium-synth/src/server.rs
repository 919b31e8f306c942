//! The synthetic Medium over HTTP/1 (on 127.0.0.1 in tests and benches, on any address given), on axum: one server loop ([`serve_router`],
//! [`serve_listener`]) that any router can use, and the synthetic Medium's own router
//! ([`serve_with_faults`]), which counts every request in [`ServerStats`], delays it by the
//! chosen latency, and answers from bodies computed before the first request (so the server's
//! own work stays out of what a crawl measures), with the injected [`Faults`]. Servers stop
//! when their handle is dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::http::header::USER_AGENT;
use axum::http::Method;
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::faults::{respond_with, Fault, Faults};
use crate::SyntheticMedium;

/// A router served on a local address; stops when dropped.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on `addr` (port 0: an ephemeral port; see [`Server::addr`]).
pub async fn serve_router(addr: SocketAddr, router: Router) -> std::io::Result<Server> {
    let listener = TcpListener::bind(addr).await?;
    serve_listener(listener, router).await
}

/// Serves `router` on a bound `listener` (in a task of the current Tokio runtime).
pub async fn serve_listener(listener: TcpListener, router: Router) -> std::io::Result<Server> {
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        // axum's loop retries failed accepts itself, so this only ends when aborted
        let _ = axum::serve(listener, router).await;
    });
    Ok(Server { addr, task })
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
    server: Server,
}

impl SyntheticServer {
    pub fn base_url(&self) -> String {
        self.server.base_url()
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
    let stats = Arc::new(ServerStats::default());
    let shared = Arc::new(Shared {
        schema: crate::graphql::schema(medium.clone()),
        replies: Mutex::default(),
        bucket: Mutex::new((f64::MAX, tokio::time::Instant::now())),
        medium,
        latency,
        faults,
        cache,
        attempts: Mutex::default(),
        stats: stats.clone(),
    });
    let router: Router = Router::new().fallback(move |req: Request| {
        let shared = shared.clone();
        async move { shared.answer(req).await }
    });
    let server = serve_listener(listener, router).await?;
    Ok(SyntheticServer {
        addr: server.addr,
        stats,
        server,
    })
}

/// What the synthetic Medium's handler shares between requests.
struct Shared {
    medium: Arc<SyntheticMedium>,
    /// The GraphQL door over the same world.
    schema: crate::graphql::MediumSchema,
    /// The token bucket of [`Faults::rate_limit`]: tokens, and when it was last filled.
    bucket: Mutex<(f64, tokio::time::Instant)>,
    /// GraphQL replies by posted body, once computed (the world does not change), so that a
    /// repeated crawl measures the client rather than the resolvers.
    replies: Mutex<HashMap<Bytes, Bytes>>,
    latency: Duration,
    faults: Faults,
    /// Bodies of a full harvest by `path?query`.
    cache: HashMap<String, Bytes>,
    /// Requests so far by `path?query`.
    attempts: Mutex<HashMap<String, u64>>,
    stats: Arc<ServerStats>,
}

/// Waits `latency`, to within a fraction of a millisecond. A tokio timer fires on the first
/// millisecond tick after its deadline (and the driver may see that tick late), so a 20 ms
/// `sleep` held a response 21-22 ms and the benches charged the client for the server's
/// clock (#18); the last 2 ms are slept by a blocking-pool thread instead, whose sleep ends
/// within tens of microseconds.
async fn delay(latency: Duration) {
    if latency.is_zero() {
        return;
    }
    let deadline = tokio::time::Instant::now() + latency;
    if let Some(early) = deadline.checked_sub(Duration::from_millis(2)) {
        tokio::time::sleep_until(early).await;
    }
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    if !left.is_zero() {
        // (fails only when the runtime is shutting down: the response then goes up to 2 ms
        // early; a full pool queues the sleep, and the response goes late instead)
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(left)).await;
    }
}

impl Shared {
    async fn answer(&self, req: Request) -> Response {
        // owned, so that nothing borrowed from the request (whose body is not `Sync`) lives
        // across an await
        let has_user_agent = req.headers().contains_key(USER_AGENT);
        let path = req.uri().path().to_owned();
        let graphql = req.method() == Method::POST && path == crate::graphql::PATH;
        // A GraphQL request is named by what it posts: faults and retries count per body.
        let (query, posted) = match graphql {
            true => match axum::body::to_bytes(req.into_body(), MAX_POST).await {
                Ok(body) => (String::from_utf8_lossy(&body).into_owned(), Some(body)),
                Err(_) => {
                    return respond_with(
                        Some(Bytes::from_static(b"too large")),
                        Some(Fault::Status(413)),
                    )
                }
            },
            false => {
                let query = req.uri().query().unwrap_or("").to_owned();
                drop(req);
                (query, None)
            }
        };
        let (path, query) = (path.as_str(), query.as_str());
        let stats = &self.stats;
        stats.requests.fetch_add(1, Ordering::Relaxed);
        if !has_user_agent {
            stats.without_user_agent.fetch_add(1, Ordering::Relaxed);
        }
        let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
        delay(self.latency).await;
        let key = format!("{path}?{query}");
        let attempt = {
            let mut map = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
            let n = map.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        if !self.admit() {
            stats.faults.fetch_add(1, Ordering::Relaxed);
            stats.in_flight.fetch_sub(1, Ordering::SeqCst);
            return respond_with(Some(Bytes::new()), Some(Fault::TooManyRequests(1)));
        }
        if let Some(response) = self.faults.answer.to(&key, attempt) {
            stats.in_flight.fetch_sub(1, Ordering::SeqCst);
            return response;
        }
        if let Some(hostile) = &self.faults.hostile {
            if let Some(response) = hostile.respond(&self.medium, path, query) {
                stats.in_flight.fetch_sub(1, Ordering::SeqCst);
                return response;
            }
        }
        let fault = self.faults.fault_for(&key, attempt);
        if fault.is_some() {
            stats.faults.fetch_add(1, Ordering::Relaxed);
        }
        if fault == Some(Fault::Stall) {
            tokio::time::sleep(self.faults.stall).await;
        }
        let is_api = path.starts_with("/_/api/") || path.ends_with("/latest");
        if (self.faults.json_closed && is_api) || (self.faults.graphql_closed && graphql) {
            stats.in_flight.fetch_sub(1, Ordering::SeqCst);
            return respond_with(
                Some(Bytes::from_static(b"<html><title>Forbidden</title></html>")),
                Some(Fault::Status(403)),
            );
        }
        if let Some(posted) = posted {
            let body = self.execute(&posted).await;
            stats.in_flight.fetch_sub(1, Ordering::SeqCst);
            return match body {
                Some(body) => respond_with(Some(body), fault),
                None => respond_with(
                    Some(Bytes::from_static(b"not a GraphQL request")),
                    Some(Fault::Status(400)),
                ),
            };
        }
        let body = match self.cache.get(&key) {
            Some(b) => Some(b.clone()),
            None => self
                .medium
                .respond(path, query)
                .or_else(|| self.medium.respond_page(path))
                .map(Bytes::from),
        };
        stats.in_flight.fetch_sub(1, Ordering::SeqCst);
        respond_with(body, fault)
    }
}

/// The largest GraphQL request body the server reads.
const MAX_POST: usize = 1 << 20;

/// GraphQL replies kept at most (then the cache is cleared and refilled).
const MAX_REPLIES: usize = 100_000;

impl Shared {
    /// Whether the rate limit lets this request through (always, without one).
    fn admit(&self) -> bool {
        let Some(rate) = self.faults.rate_limit.filter(|r| *r > 0.0) else {
            return true;
        };
        let burst = (rate / 10.0).max(1.0);
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = tokio::time::Instant::now();
        let (tokens, last) = *bucket;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * rate).min(burst);
        let admitted = tokens >= 1.0;
        *bucket = (if admitted { tokens - 1.0 } else { tokens }, now);
        admitted
    }

    /// Runs a posted GraphQL request (one operation or a batch); `None` when it is not one.
    async fn execute(&self, posted: &Bytes) -> Option<Bytes> {
        let cached = self
            .replies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(posted)
            .cloned();
        if let Some(reply) = cached {
            return Some(reply);
        }
        let request: async_graphql::BatchRequest = serde_json::from_slice(posted).ok()?;
        let response = self.schema.execute_batch(request).await;
        let reply = Bytes::from(serde_json::to_vec(&response).ok()?);
        let mut replies = self.replies.lock().unwrap_or_else(|e| e.into_inner());
        if replies.len() >= MAX_REPLIES {
            replies.clear();
        }
        replies.insert(posted.clone(), reply.clone());
        Some(reply)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::SyntheticSpec;

    /// Sends `GET target` over a fresh connection and returns what came back before the
    /// connection closed (or `None` if it was reset).
    async fn get(addr: SocketAddr, target: String) -> Option<Vec<u8>> {
        tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).ok()?;
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .ok()?;
            let request = format!(
                "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: test\r\n\
                 Connection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).ok()?;
            let mut out = Vec::new();
            stream.read_to_end(&mut out).ok()?;
            Some(out)
        })
        .await
        .unwrap()
    }

    /// Whether `raw` is a whole HTTP answer: a head and as many body bytes as it announced.
    fn is_complete(raw: &[u8]) -> bool {
        let text = String::from_utf8_lossy(raw);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        let length = head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())
                .flatten()
        });
        length.is_some_and(|n| body.len() >= n)
    }

    fn target(key: &str) -> String {
        key.strip_suffix('?').unwrap_or(key).to_owned()
    }

    #[tokio::test]
    async fn serves_pages_and_counts_requests() {
        let medium = Arc::new(SyntheticMedium::new(SyntheticSpec::default()));
        let server = serve(medium.clone(), Duration::ZERO).await.unwrap();
        let page = &medium.pages()[0];
        let key = format!("{}?{}", page.stream.http_path(), page.query);
        let raw = get(server.addr, target(&key)).await.unwrap();
        assert!(raw.starts_with(b"HTTP/1.1 200"));
        assert!(is_complete(&raw));
        assert!(raw.ends_with(&page.body));
        let raw = get(server.addr, "/nowhere".into()).await.unwrap();
        assert!(raw.starts_with(b"HTTP/1.1 404"));
        assert_eq!(server.stats.requests.load(Ordering::SeqCst), 2);
        assert_eq!(server.stats.without_user_agent.load(Ordering::SeqCst), 0);
        assert_eq!(server.stats.in_flight.load(Ordering::SeqCst), 0);
        assert_eq!(server.stats.faults.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_reset_is_no_complete_answer() {
        let medium = Arc::new(SyntheticMedium::new(SyntheticSpec::default()));
        let keys: Vec<String> = medium
            .pages()
            .iter()
            .map(|p| format!("{}?{}", p.stream.http_path(), p.query))
            .collect();
        // a seed under which some page's first request is reset
        let (seed, key) = (0..1000u64)
            .find_map(|seed| {
                let faults = Faults {
                    seed,
                    rate: 1.0,
                    ..Default::default()
                };
                keys.iter()
                    .find(|k| faults.fault_for(k, 1) == Some(Fault::Reset))
                    .map(|k| (seed, k.clone()))
            })
            .unwrap();
        let faults = Faults {
            seed,
            rate: 1.0,
            ..Default::default()
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let server = serve_with_faults(addr, medium, Duration::ZERO, faults)
            .await
            .unwrap();
        let raw = get(server.addr, target(&key)).await;
        assert!(!raw.is_some_and(|raw| is_complete(&raw)));
        assert_eq!(server.stats.faults.load(Ordering::SeqCst), 1);
        assert_eq!(server.stats.in_flight.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_closed_json_api_answers_403_and_pages_still_answer() {
        let medium = Arc::new(SyntheticMedium::new(SyntheticSpec::default()));
        let faults = Faults {
            json_closed: true,
            ..Default::default()
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let server = serve_with_faults(addr, medium.clone(), Duration::ZERO, faults)
            .await
            .unwrap();
        let api = format!("/_/api/users/{}/following", medium.user_id(0));
        let raw = get(server.addr, api).await.unwrap();
        assert!(raw.starts_with(b"HTTP/1.1 403"));
        let raw = get(server.addr, "/@author0".into()).await.unwrap();
        assert!(raw.starts_with(b"HTTP/1.1 200"));
        assert!(is_complete(&raw));
    }

    #[tokio::test]
    async fn serves_any_router() {
        let router: Router = Router::new().fallback(|| async { "hello" });
        let server = serve_router(SocketAddr::from(([127, 0, 0, 1], 0)), router)
            .await
            .unwrap();
        assert!(server.base_url().starts_with("http://127.0.0.1:"));
        let raw = get(server.addr, "/anything".into()).await.unwrap();
        assert!(raw.starts_with(b"HTTP/1.1 200"));
        assert!(raw.ends_with(b"hello"));
    }
}
