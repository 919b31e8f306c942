//! `etl serve`: the published partitions over HTTP, in place of the nginx container the old
//! pipeline needed.
//!
//! - `/`: every date with its files, their sizes and download links;
//! - `/date/YYYY-MM-DD`: that date's top authors (table) and claps by author (an SVG chart);
//! - `/status`: the current run (`_status.json`, while a run is going) or the last one (its
//!   manifest): progress, requests, failures;
//! - `/files/<path>`: downloads of files under `tables/` and `reports/`.
//!
//! Invariants: only files under the data root's `tables/` and `reports/` are ever read —
//! requests with `..` (raw or percent-encoded), absolute paths, backslashes or NUL are refused,
//! and the resolved path must stay inside the root after symlinks are followed. Every response
//! names its content type. Data from the files is HTML-escaped.

use std::fmt::Write;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::DataType;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tokio::net::TcpListener;

use crate::progress::STATUS_FILE;
use crate::schema;
use crate::sinks::partition::partition_dir;

/// The kinds of partition the server exposes.
const KINDS: [&str; 2] = ["tables", "reports"];

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
    let root = Arc::new(fs::canonicalize(&root)?);
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let root = root.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let root = root.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(&req, &root).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(Server { addr, task })
}

fn response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let headers = r.headers_mut();
    if let Ok(v) = content_type.parse() {
        headers.insert(hyper::header::CONTENT_TYPE, v);
    }
    headers.insert(
        hyper::header::X_CONTENT_TYPE_OPTIONS,
        hyper::header::HeaderValue::from_static("nosniff"),
    );
    r
}

fn html_page(status: StatusCode, title: &str, body: &str) -> Response<Full<Bytes>> {
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}\
         table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left}}\
         td.n{{text-align:right}}</style></head><body><p><a href=\"/\">dates</a> · \
         <a href=\"/status\">status</a></p><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    response(status, "text/html; charset=utf-8", page)
}

fn not_found() -> Response<Full<Bytes>> {
    html_page(StatusCode::NOT_FOUND, "Not found", "<p>Nothing here.</p>")
}

fn forbidden() -> Response<Full<Bytes>> {
    html_page(
        StatusCode::FORBIDDEN,
        "Forbidden",
        "<p>That path is outside the data.</p>",
    )
}

/// HTML-escapes text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

async fn handle(req: &Request<hyper::body::Incoming>, root: &Path) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = response(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "GET only\n",
        );
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
        return r;
    }
    let path = req.uri().path().to_owned();
    let root = root.to_path_buf();
    // file system work off the async workers
    tokio::task::spawn_blocking(move || route(&path, &root))
        .await
        .unwrap_or_else(|_| response(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "error\n"))
}

fn route(path: &str, root: &Path) -> Response<Full<Bytes>> {
    if path == "/" {
        return index(root);
    }
    if path == "/status" {
        return status(root);
    }
    if let Some(date) = path.strip_prefix("/date/") {
        return match valid_date(date) {
            Some(d) => date_page(root, d),
            None => not_found(),
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

fn valid_date(d: &str) -> Option<&str> {
    crate::config::RunDate::parse_iso(d).ok().map(|_| d)
}

enum Resolved {
    File(PathBuf),
    Missing,
    Refused,
}

/// Maps a URL path under `/files/` to a file under `root/{tables,reports}`, refusing anything
/// that could lead elsewhere.
fn resolve(root: &Path, rel: &str) -> Resolved {
    let Ok(decoded) = percent_encoding::percent_decode_str(rel).decode_utf8() else {
        return Resolved::Refused;
    };
    let segments: Vec<&str> = decoded.split('/').collect();
    let bad =
        |s: &&str| s.is_empty() || *s == "." || *s == ".." || s.contains('\\') || s.contains('\0');
    if segments.iter().any(bad) || !KINDS.contains(&segments[0]) || segments.len() < 2 {
        return Resolved::Refused;
    }
    let mut path = root.to_path_buf();
    path.extend(&segments);
    match fs::canonicalize(&path) {
        Ok(real) if real.starts_with(root) && real.is_file() => Resolved::File(real),
        Ok(real) if !real.starts_with(root) => Resolved::Refused,
        _ => Resolved::Missing,
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => "application/vnd.apache.parquet",
        Some("csv") => "text/csv; charset=utf-8",
        Some("json") => "application/json",
        Some("html") => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn download(path: &Path) -> Response<Full<Bytes>> {
    match fs::read(path) {
        Ok(bytes) => {
            let mut r = response(StatusCode::OK, content_type(path), bytes);
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                if let Ok(v) = format!("inline; filename=\"{name}\"").parse() {
                    r.headers_mut()
                        .insert(hyper::header::CONTENT_DISPOSITION, v);
                }
            }
            r
        }
        Err(_) => not_found(),
    }
}

/// The dates that have a partition of any kind, newest first.
fn dates(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = KINDS
        .iter()
        .filter_map(|k| fs::read_dir(root.join(k)).ok())
        .flat_map(|d| d.flatten())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("date=")
                .map(str::to_owned)
        })
        .collect();
    out.sort();
    out.dedup();
    out.reverse();
    out
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

fn index(root: &Path) -> Response<Full<Bytes>> {
    let mut body = String::new();
    let all = dates(root);
    if all.is_empty() {
        body.push_str("<p>No partitions yet: run <code>etl run</code>.</p>");
    }
    for date in &all {
        let manifest = crate::sinks::manifest::read_published(root, date);
        let state = match &manifest {
            Some(m) if m["complete"] == true => "complete".to_owned(),
            Some(m) => format!(
                "{} failure(s)",
                m["failures"].as_array().map_or(0, Vec::len)
            ),
            None => "no manifest".to_owned(),
        };
        let _ = write!(
            body,
            "<h2 id=\"d{d}\"><a href=\"/date/{d}\">{d}</a> <small>({s})</small></h2><table><tr><th>file</th><th>size</th></tr>",
            d = escape(date),
            s = escape(&state)
        );
        for kind in KINDS {
            let dir = partition_dir(root, kind, date);
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<(String, u64)> = entries
                .flatten()
                .filter_map(|e| {
                    Some((e.file_name().to_str()?.to_owned(), e.metadata().ok()?.len()))
                })
                .filter(|(n, _)| !n.starts_with('.'))
                .collect();
            files.sort();
            for (name, size) in files {
                let href = format!("/files/{kind}/date={date}/{name}");
                let _ = write!(
                    body,
                    "<tr><td><a href=\"{h}\">{kind}/date={d}/{n}</a></td><td class=\"n\">{s}</td></tr>",
                    h = escape(&href),
                    d = escape(date),
                    n = escape(&name),
                    s = human_size(size)
                );
            }
        }
        body.push_str("</table>");
    }
    html_page(StatusCode::OK, "medium-etl: dated partitions", &body)
}

/// A column as display strings (numbers as written, lists joined with ", ", nulls empty).
fn strings(column: &ArrayRef) -> Vec<String> {
    let text = match column.data_type() {
        DataType::List(_) | DataType::LargeList(_) => {
            return (0..column.len())
                .map(|i| {
                    if column.is_null(i) {
                        return String::new();
                    }
                    let item = match column.data_type() {
                        DataType::List(_) => column.as_list::<i32>().value(i),
                        _ => column.as_list::<i64>().value(i),
                    };
                    strings(&item).join(", ")
                })
                .collect();
        }
        DataType::Timestamp(..) => return vec![String::new(); column.len()],
        _ => arrow::compute::cast(column, &DataType::Utf8),
    };
    match text {
        Ok(a) => a
            .as_string::<i32>()
            .iter()
            .map(|v| v.unwrap_or_default().to_owned())
            .collect(),
        Err(_) => vec![String::new(); column.len()],
    }
}

fn read_columns(path: &Path, wanted: &[&str]) -> Option<Vec<Vec<String>>> {
    let file = fs::File::open(path).ok()?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .ok()?
        .build()
        .ok()?;
    let mut columns: Vec<Vec<String>> = vec![Vec::new(); wanted.len()];
    for batch in reader {
        let batch = batch.ok()?;
        for (i, name) in wanted.iter().enumerate() {
            columns[i].extend(strings(batch.column_by_name(name)?));
        }
    }
    Some(columns)
}

fn date_page(root: &Path, date: &str) -> Response<Full<Bytes>> {
    let path =
        partition_dir(root, "reports", date).join(format!("{}.parquet", schema::AUTHOR_METRICS));
    let shown = [
        "username",
        "name",
        "story_count",
        "total_claps",
        "mean_claps",
        "median_claps",
        "max_claps",
        "mean_word_count",
        "following_count",
        "publication_names",
    ];
    let Some(cols) = read_columns(&path, &shown) else {
        return not_found();
    };
    let n = cols[0].len();
    let claps: Vec<i64> = cols[3].iter().map(|c| c.parse().unwrap_or(-1)).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| {
        claps[*b]
            .cmp(&claps[*a])
            .then(cols[0][*a].cmp(&cols[0][*b]))
    });

    let mut body = String::new();
    let top: Vec<usize> = order.iter().copied().take(20).collect();
    let max = top.iter().map(|i| claps[*i]).max().unwrap_or(0).max(1);
    let (bar_h, label_w, chart_w) = (18, 160, 480);
    let _ = write!(
        body,
        "<h2>Claps by author</h2><svg id=\"claps-chart\" role=\"img\" aria-label=\"total claps by author\" \
         width=\"{w}\" height=\"{h}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"12\">",
        w = label_w + chart_w + 60,
        h = top.len() * (bar_h + 4) + 4
    );
    for (row, i) in top.iter().enumerate() {
        let y = row * (bar_h + 4) + 2;
        let width = (claps[*i].max(0) as f64 / max as f64 * chart_w as f64).round() as i64;
        let _ = write!(
            body,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{name}</text>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{width}\" height=\"{bar_h}\" fill=\"#4a7fb5\"><title>{c}</title></rect>\
             <text x=\"{vx}\" y=\"{ty}\">{c}</text>",
            lx = label_w - 6,
            ty = y + 13,
            vx = label_w as i64 + width + 4,
            name = escape(&cols[0][*i]),
            c = escape(&cols[3][*i]),
        );
    }
    body.push_str("</svg>");
    let _ = write!(body, "<h2>Top authors</h2><table id=\"top-authors\"><tr>");
    for h in shown {
        let _ = write!(body, "<th>{}</th>", escape(h));
    }
    body.push_str("</tr>");
    for i in order {
        body.push_str("<tr>");
        for (c, col) in cols.iter().enumerate() {
            let class = if (2..9).contains(&c) {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(body, "<td{class}>{}</td>", escape(&col[i]));
        }
        body.push_str("</tr>");
    }
    body.push_str("</table>");
    if let Some(m) = crate::sinks::manifest::read_published(root, date) {
        sources_section(&mut body, &m["sources"]);
    }
    let _ = write!(
        body,
        "<p>Files: <a href=\"/#d{d}\">all files of {d}</a> · <a href=\"/files/reports/date={d}/author_metrics.csv\">author_metrics.csv</a></p>",
        d = escape(date)
    );
    html_page(StatusCode::OK, &format!("Top authors on {date}"), &body)
}

/// Where the date's data came from (`--via`): pages per family and format, format switches, and
/// the columns each format leaves null, so an empty claps column explains itself.
fn sources_section(body: &mut String, sources: &serde_json::Value) {
    let Some(pages) = sources["pages"].as_object() else {
        return;
    };
    let _ = write!(
        body,
        "<h2>Sources</h2><p id=\"sources\">--via {}: ",
        escape(sources["via"].as_str().unwrap_or("?"))
    );
    let families: Vec<String> = pages
        .iter()
        .map(|(family, by_via)| {
            let formats: Vec<String> = by_via
                .as_object()
                .into_iter()
                .flatten()
                .map(|(via, n)| format!("{} {n}", escape(via)))
                .collect();
            format!("{} {}", escape(family), formats.join(", "))
        })
        .collect();
    body.push_str(&families.join("; "));
    body.push_str("</p><ul>");
    for sw in sources["switches"].as_array().into_iter().flatten() {
        let _ = write!(
            body,
            "<li>{} {}: {} → {}: {}</li>",
            if sw["family"] == true {
                "family"
            } else {
                "stream"
            },
            escape(sw["endpoint"].as_str().unwrap_or("?")),
            escape(sw["from"].as_str().unwrap_or("?")),
            escape(sw["to"].as_str().unwrap_or("none")),
            escape(sw["reason"].as_str().unwrap_or(""))
        );
    }
    for (via, tables) in sources["columns"].as_object().into_iter().flatten() {
        for (table, cols) in tables.as_object().into_iter().flatten() {
            let null: Vec<&str> = cols["null"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str())
                .collect();
            if !null.is_empty() {
                let _ = write!(
                    body,
                    "<li>{} leaves null (not carried): {}.{}</li>",
                    escape(via),
                    escape(table),
                    escape(&null.join(", "))
                );
            }
        }
    }
    body.push_str("</ul>");
}

fn status(root: &Path) -> Response<Full<Bytes>> {
    let live: Option<serde_json::Value> = fs::read(root.join(STATUS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut body = String::new();
    if let Some(s) = live.as_ref().filter(|s| s["state"] == "running") {
        let _ = write!(
            body,
            "<h2>Current run: {d} ({stage})</h2><table>",
            d = escape(s["date"].as_str().unwrap_or("?")),
            stage = escape(s["stage"].as_str().unwrap_or("?"))
        );
        for key in [
            "started_at",
            "updated_at",
            "authors_done",
            "authors_found",
            "publication_pages",
            "profile_pages",
            "following_pages",
            "requests",
            "retried",
            "failed",
            "rows_written",
        ] {
            let _ = write!(
                body,
                "<tr><th>{key}</th><td class=\"n\">{}</td></tr>",
                escape(&s[key].to_string())
            );
        }
        body.push_str("</table>");
    }
    match dates(root)
        .iter()
        .find_map(|d| crate::sinks::manifest::read_published(root, d).map(|m| (d.clone(), m)))
    {
        Some((date, m)) => {
            let _ = write!(
                body,
                "<h2>Last finished run: {d}</h2><table>",
                d = escape(&date)
            );
            for key in [
                "complete",
                "started_at",
                "finished_at",
                "duration_secs",
                "requests_total",
                "retried_total",
                "failed_total",
            ] {
                let _ = write!(
                    body,
                    "<tr><th>{key}</th><td class=\"n\">{}</td></tr>",
                    escape(&m[key].to_string())
                );
            }
            let _ = write!(
                body,
                "<tr><th>authors</th><td class=\"n\">{} harvested of {} found, {} complete</td></tr></table>",
                m["authors"]["harvested"], m["authors"]["found"], m["authors"]["complete"]
            );
            let failures = m["failures"].as_array().cloned().unwrap_or_default();
            let _ = write!(body, "<h3>{} failure(s)</h3><ul>", failures.len());
            for f in failures {
                let _ = write!(
                    body,
                    "<li>{} {}: <code>{}</code></li>",
                    escape(f["endpoint"].as_str().unwrap_or("")),
                    escape(f["user_id"].as_str().unwrap_or("")),
                    escape(f["error"].as_str().unwrap_or(""))
                );
            }
            body.push_str("</ul>");
        }
        None if live.is_none() => body.push_str("<p>No run yet.</p>"),
        None => {}
    }
    html_page(StatusCode::OK, "Run status", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape("<script>\"a\"&'b'"),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;"
        );
    }

    #[test]
    fn resolves_only_inside_tables_and_reports() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        fs::create_dir_all(root.join("reports/date=2026-11-27")).unwrap();
        fs::write(root.join("reports/date=2026-11-27/a.csv"), b"x").unwrap();
        fs::create_dir_all(root.join("raw")).unwrap();
        fs::write(root.join("raw/secret.json"), b"x").unwrap();
        assert!(matches!(
            resolve(&root, "reports/date=2026-11-27/a.csv"),
            Resolved::File(_)
        ));
        assert!(matches!(
            resolve(&root, "reports/date=2026-11-27/b.csv"),
            Resolved::Missing
        ));
        for bad in [
            "raw/secret.json",
            "reports/../raw/secret.json",
            "reports/%2e%2e/raw/secret.json",
            "reports/%2E%2E/%2E%2E/etc/passwd",
            "reports/date=2026-11-27/..%2f..%2fraw%2fsecret.json",
            "/etc/passwd",
            "reports\\..\\raw",
            "reports/date=2026-11-27/%00",
            "%ff",
        ] {
            assert!(matches!(resolve(&root, bad), Resolved::Refused), "{bad}");
        }
        std::os::unix::fs::symlink("/etc", root.join("reports/escape")).unwrap();
        assert!(matches!(
            resolve(&root, "reports/escape/passwd"),
            Resolved::Refused
        ));
    }
}
