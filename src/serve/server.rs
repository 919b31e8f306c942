//! The HTTP side of `etl serve`: an axum server on one address, GET and HEAD only, each
//! request answered off the async workers (the pages read files).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;

use super::files::{download, resolve, Resolved};
use super::pages::{date_page, forbidden, index, not_found, status};

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Waits until the server stops (it stops only when its task is aborted or fails).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

/// Binds `addr` and serves `root` (an output root such as `data/`).
pub async fn start(addr: SocketAddr, root: PathBuf) -> std::io::Result<Server> {
    let root = Arc::new(std::fs::canonicalize(&root)?);
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = Router::new().fallback(handle).with_state(root);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Server { addr, task })
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

async fn handle(State(root): State<Arc<PathBuf>>, method: Method, uri: Uri) -> Response {
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
    // file system work off the async workers
    tokio::task::spawn_blocking(move || route(&path, &root))
        .await
        .unwrap_or_else(|_| response(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "error\n"))
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
    if let Some(rel) = path.strip_prefix("/files/") {
        return match resolve(root, rel) {
            Resolved::File(p) => download(&p),
            Resolved::Missing => not_found(),
            Resolved::Refused => forbidden(),
        };
    }
    not_found()
}
