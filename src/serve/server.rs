//! The HTTP side of `etl serve`: an axum router behind an accept loop that bounds what clients
//! can hold, GET and HEAD only, each request answered off the async workers (the pages read
//! files).
//!
//! The loop is ours, not `axum::serve`, because axum's has no knobs for what a hostile or
//! careless client does (#14: 246 idle connections under a 128-fd limit starved real requests
//! and spun the accept loop at 67 % CPU). Here:
//! - at most [`Limits::max_connections`] connections are open (never more than the fd limit
//!   allows, less a reserve for the files being served); more wait in the kernel's backlog;
//! - a request's headers must arrive within [`Limits::header_read`] (hyper's timer, slowloris);
//! - a connection with no bytes in or out for [`Limits::idle`] is closed, between requests or in
//!   the middle of a stalled download;
//! - a handler has [`Limits::request`] to answer (503 after);
//! - an accept error (out of fds) backs off from 10 ms to 1 s instead of spinning.
//!
//! [`Server::shutdown`] (SIGTERM in `etl serve`) stops accepting, lets every request in flight
//! finish (a download included), closes the idle connections, and waits for the rest up to a
//! grace period.
//!
//! tower-http's `TimeoutLayer` and `ConcurrencyLimit` bound requests, not connections, and
//! enabling its features would rebuild polars (reqwest 0.12 under polars' object_store shares
//! it), so the bounds are the few lines here, on hyper's own connection builder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use super::files::{download, resolve, Resolved};
use super::pages::{author_page, date_page, forbidden, index, not_found, status};

/// What one client may hold of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections at most (lowered to what the fd limit allows).
    pub max_connections: usize,
    /// Time to send a request's headers.
    pub header_read: Duration,
    /// Time without a byte in either direction before a connection is closed.
    pub idle: Duration,
    /// Time a handler has to answer.
    pub request: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            request: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// `max_connections`, lowered to what the process's soft open-file limit allows: two
    /// descriptors a connection (its socket and the file it may be sending), 32 kept for the
    /// listener, logs and the pages' reads.
    pub fn effective_max_connections(&self) -> usize {
        let fds = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        let allowed = usize::try_from(fds.saturating_sub(32) / 2).unwrap_or(usize::MAX);
        self.max_connections.min(allowed).max(1)
    }
}

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    /// Connections open right now.
    open: Arc<AtomicUsize>,
    capacity: usize,
    task: tokio::task::JoinHandle<()>,
    /// Set to true to make every connection finish its request in flight and close.
    draining: tokio::sync::watch::Sender<bool>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Waits until the server stops (it stops only when its task is aborted or fails); the
    /// server is kept, to [`Server::shutdown`] it after.
    pub async fn wait(&mut self) {
        let _ = (&mut self.task).await;
    }

    /// How many connections are open now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The most connections it keeps open at once.
    pub fn max_connections(&self) -> usize {
        self.capacity
    }

    /// Stops gracefully: no new connection is accepted (the listener closes), idle connections
    /// close, requests in flight finish, and their connections close after them. Waits for that
    /// up to `grace`; returns how many connections were still open then (they are cut when the
    /// server is dropped).
    pub async fn shutdown(self, grace: Duration) -> usize {
        self.task.abort();
        self.draining.send_replace(true);
        let deadline = Instant::now() + grace;
        while self.open_connections() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.open_connections()
    }
}

/// Binds `addr` and serves `root` (an output root such as `data/`) within `limits`.
pub async fn start(addr: SocketAddr, root: PathBuf, limits: Limits) -> std::io::Result<Server> {
    let root = Arc::new(std::fs::canonicalize(&root)?);
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .fallback(handle)
        .with_state(Handler { root, limits });
    let capacity = limits.effective_max_connections();
    let open = Arc::new(AtomicUsize::new(0));
    let slots = Arc::new(Semaphore::new(capacity));
    let (draining, drain) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(accept_loop(
        listener,
        app,
        slots,
        open.clone(),
        limits,
        drain,
    ));
    Ok(Server {
        addr,
        open,
        capacity,
        task,
        draining,
    })
}

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    slots: Arc<Semaphore>,
    open: Arc<AtomicUsize>,
    limits: Limits,
    drain: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(10);
    loop {
        // a free slot first, then accept: at the cap, new connections wait in the backlog
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return; // closed: the server is stopping
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // out of fds, or the peer gave up before accept: wait, then try again
                tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "AcceptFailed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(10);
        let app = app.clone();
        let open = Counted::new(open.clone());
        let drain = drain.clone();
        tokio::spawn(async move {
            serve_connection(stream, app, limits, drain).await;
            drop((open, permit));
        });
    }
}

/// One open connection in the server's count, for as long as it lives (a panic included).
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(open: Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Counted(open)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One connection, until the client closes it, stalls past the limits, breaks the protocol, or
/// the server drains (then after the request in flight, if any).
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: Limits,
    mut drain: tokio::sync::watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    // while a handler works, the connection is not idle (its own timeout bounds it)
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let (app, activity) = (app.clone(), activity.clone());
            async move {
                let _busy = activity.busy();
                app.oneshot(req).await
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let check = (limits.idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut draining = *drain.borrow();
    if draining {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            // a closed channel (the server dropped) drains too
            _ = drain.wait_for(|d| *d), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep(check) => {
                if activity.idle_for() >= limits.idle {
                    tracing::debug!("IdleConnectionClosed");
                    return; // dropping the connection closes the socket
                }
            }
        }
    }
}

/// When a connection last moved a byte, and whether a handler is working for it.
#[derive(Debug)]
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    handling: AtomicUsize,
}

/// A handler at work on a connection; the connection's clock restarts when it is done.
struct Busy<'a>(&'a Activity);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.touch();
        self.0.handling.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            handling: AtomicUsize::new(0),
        }
    }

    fn busy(&self) -> Busy<'_> {
        self.handling.fetch_add(1, Ordering::Relaxed);
        Busy(self)
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        if self.handling.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// A socket that records when bytes move through it.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[derive(Debug, Clone)]
struct Handler {
    root: Arc<PathBuf>,
    limits: Limits,
}

/// A response with a content type, never sniffed.
pub(super) fn response(status: StatusCode, content_type: &str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    let headers = r.headers_mut();
    if let Ok(v) = content_type.parse() {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn handle(State(handler): State<Handler>, method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut r = response(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "GET only\n",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = uri.path().to_owned();
    let root = handler.root.clone();
    // file system work off the async workers, within the request's time
    let work = tokio::task::spawn_blocking(move || route(&path, &root));
    match tokio::time::timeout(handler.limits.request, work).await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => response(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "error\n"),
        Err(_) => response(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "the server took too long to answer\n",
        ),
    }
}

fn route(path: &str, root: &Path) -> Response {
    if path == "/" {
        return index(root);
    }
    if path == "/status" {
        return status(root);
    }
    if let Some(date) = path.strip_prefix("/date/") {
        return match crate::config::RunDate::parse_iso(date) {
            Ok(_) => date_page(root, date),
            Err(_) => not_found(),
        };
    }
    if let Some(user_id) = path.strip_prefix("/author/") {
        return author_page(root, user_id);
    }
    if let Some(rel) = path.strip_prefix("/files/") {
        return match resolve(root, rel) {
            Resolved::File(p) => download(&p),
            Resolved::Missing => not_found(),
            Resolved::Refused => forbidden(),
        };
    }
    not_found()
}
