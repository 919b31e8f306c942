//! Small helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use clap::Parser;
use medium_etl::cli::{Cli, Command};
use medium_etl::Settings;
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub const GUARD: &str = "])}while(1);</x>";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> Vec<u8> {
    let p = repo().join("tests/fixtures/medium").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A guarded Medium body with `payload`. (`json!` sorts object keys, so the paging queries
/// these bodies lead to are in key order; document order is tested in `paging`.)
pub fn guarded(payload: Value) -> Vec<u8> {
    format!(
        "{GUARD}{}",
        serde_json::json!({"success": true, "payload": payload})
    )
    .into_bytes()
}

/// Settings for a run against `base_url`, with quick timeouts and backoff; `extra` flags win.
pub fn settings(base_url: &str, out: &Path, extra: &[&str]) -> Settings {
    let out = out.to_string_lossy().into_owned();
    let mut args = vec![
        "etl",
        "run",
        "--date",
        "2026-11-27",
        "--base-url",
        base_url,
        "--out",
        &out,
        "--max-rps",
        "0",
        "--timeout",
        "2",
        "--connect-timeout",
        "1",
        "--retries",
        "2",
        "--backoff",
        "0.01",
        "--max-backoff",
        "3",
    ];
    args.extend_from_slice(extra);
    let Command::Run(run) = Cli::try_parse_from(args).expect("valid test flags").command else {
        panic!("expected run")
    };
    Settings::from_args(&run).expect("valid test settings")
}

/// Matches a request whose whole query string is `0` (`""` = no query).
pub struct QueryIs(pub String);

impl wiremock::Match for QueryIs {
    fn matches(&self, request: &Request) -> bool {
        request.url.query().unwrap_or("") == self.0
    }
}

/// Serves `body` for GET `path_` with exactly `query`.
pub async fn page(server: &MockServer, path_: &str, query: &str, body: Vec<u8>) {
    Mock::given(method("GET"))
        .and(path(path_))
        .and(QueryIs(query.to_owned()))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(body))
        .mount(server)
        .await;
}

pub fn user(id: &str) -> Value {
    serde_json::json!({"userId": id, "username": format!("user_{id}"), "name": format!("User {id}"), "type": "User"})
}

pub fn post(id: &str, creator: &str, claps: i64) -> Value {
    serde_json::json!({
        "id": id, "creatorId": creator, "title": format!("Story {id}"), "homeCollectionId": "c0ffee",
        "inResponseToPostId": "", "firstPublishedAt": 1546300377981i64,
        "virtuals": {"wordCount": 100, "totalClapCount": claps, "readingTime": 0.5, "tags": [], "links": {"entries": []}}
    })
}

/// A small publication on a mock server: collection `c0ffee`, two publication pages (authors
/// a1, a2 then a2, a3), each author with a two-page profile stream (the second empty) and one
/// following page. 2 + 3 × 2 + 3 = 11 requests.
pub async fn small_publication(server: &MockServer) {
    let pub_path = "/_/api/collections/c0ffee/stream";
    page(
        server,
        pub_path,
        "",
        guarded(serde_json::json!({
            "collection": {"id": "c0ffee", "name": "Coffee", "slug": "coffee"},
            "references": {"User": {"a1": user("a1"), "a2": user("a2")}, "Post": {"p1": post("p1", "a1", 5)}},
            "paging": {"next": {"to": "1546", "ignoredIds": ["x"], "page": 2}}
        })),
    )
    .await;
    page(
        server,
        pub_path,
        "page=2&to=1546",
        guarded(serde_json::json!({
            "references": {"User": {"a2": user("a2"), "a3": user("a3")}, "Post": {"p2": post("p2", "a3", 7)}},
            "paging": {"next": {"to": "null", "page": 3}}
        })),
    )
    .await;
    for a in ["a1", "a2", "a3"] {
        author(server, a).await;
    }
}

/// A healthy author: one story, then an empty profile page; one following page.
pub async fn author(server: &MockServer, a: &str) {
    let profile = format!("/_/api/users/{a}/profile/stream");
    page(
        server,
        &profile,
        "",
        guarded(serde_json::json!({
            "references": {"Post": {format!("s_{a}"): post(&format!("s_{a}"), a, 3)}},
            "paging": {"next": {"limit": 10, "source": "overview", "page": 2}}
        })),
    )
    .await;
    page(
        server,
        &profile,
        "limit=10&page=2&source=overview",
        guarded(
            serde_json::json!({"references": {}, "paging": {"next": {"limit": 10, "page": 3}}}),
        ),
    )
    .await;
    page(
        server,
        &format!("/_/api/users/{a}/following"),
        "",
        guarded(serde_json::json!({"value": [user("f1")], "paging": {"next": {"limit": 8}}})),
    )
    .await;
}

pub async fn request_count(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address").port()
}

/// Runs the real `etl` binary in `cwd`, without the caller's `RUST_LOG`.
pub fn etl(args: &[&str], cwd: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_etl"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .expect("the etl binary runs")
}

/// Runs `etl run --date 2026-11-27 --source data/sample --out OUT` plus `extra` from the
/// repository root.
pub fn etl_on_sample(out: &Path, extra: &[&str]) -> std::process::Output {
    let out = out.to_str().expect("a UTF-8 path");
    let mut args = vec![
        "run",
        "--date",
        "2026-11-27",
        "--source",
        "data/sample",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    etl(&args, &repo())
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One stored page, as the tests read it: its place in the older layout's terms
/// (`users/u1/profile_stream/page-0001.json`), its metadata and its body.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub name: String,
    pub meta: Value,
    pub body: Vec<u8>,
}

/// Every page stored in the raw store at `root`, by name: the whole records of its page log
/// (`pages.log`, the last record of each position), read here by hand rather than by the
/// product's reader, and the files of the older layout (`page-NNNN.json` beside its
/// `.meta.json`).
pub fn stored_pages(root: &Path) -> Vec<StoredRecord> {
    let mut pages = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if let Some(body_name) = name.strip_suffix(".meta.json") {
                if body_name.starts_with('.') {
                    continue;
                }
                let body_path = p.with_file_name(body_name);
                let rel = body_path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let meta = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                pages.insert(rel, (meta, std::fs::read(&body_path).unwrap()));
            }
        }
    }
    for (name, meta, body) in log_records(root) {
        pages.insert(name, (meta, body));
    }
    pages
        .into_iter()
        .map(|(name, (meta, body))| StoredRecord { name, meta, body })
        .collect()
}

/// The whole records of `root/pages.log`, in order: `@page <header JSON>\n<bytes>\n` each.
fn log_records(root: &Path) -> Vec<(String, Value, Vec<u8>)> {
    let Ok(bytes) = std::fs::read(root.join("pages.log")) else {
        return vec![];
    };
    let mut out = vec![];
    let mut at = 0;
    while let Some(nl) = bytes[at..].iter().position(|b| *b == b'\n') {
        let Some(json) = bytes[at..at + nl].strip_prefix(b"@page ") else {
            break;
        };
        let Ok(header) = serde_json::from_slice::<Value>(json) else {
            break;
        };
        let n = header["bytes"].as_u64().unwrap() as usize;
        let body_at = at + nl + 1;
        if body_at + n >= bytes.len() || bytes[body_at + n] != b'\n' {
            break;
        }
        let ext = match header["via"].as_str().unwrap() {
            "json" => "json",
            "graphql" => "graphql.json",
            "html" => "html",
            "rss" => "xml",
            other => panic!("a record of format {other}"),
        };
        let name = format!(
            "{}/page-{:04}.{ext}",
            header["stream"].as_str().unwrap(),
            header["index"].as_u64().unwrap()
        );
        out.push((name, header, bytes[body_at..body_at + n].to_vec()));
        at = body_at + n + 1;
    }
    out
}

/// The stored page `name` of the raw store at `root`.
pub fn stored_page(root: &Path, name: &str) -> StoredRecord {
    stored_pages(root)
        .into_iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("{name} is not stored in {}", root.display()))
}

/// Takes every record of page `name` out of `root`'s page log (as if it had never been
/// stored).
pub fn remove_stored_page(root: &Path, name: &str) {
    let mut kept = Vec::new();
    for (n, header, body) in log_records(root) {
        if n != name {
            kept.extend_from_slice(b"@page ");
            kept.extend_from_slice(header.to_string().as_bytes());
            kept.push(b'\n');
            kept.extend_from_slice(&body);
            kept.push(b'\n');
        }
    }
    std::fs::write(root.join("pages.log"), kept).unwrap();
}

/// A synthetic Medium served on 127.0.0.1 (with faults, if any) and an output root for runs
/// of its publication: the one setup of every test that runs against the synthetic Medium.
pub struct SyntheticSite {
    pub medium: std::sync::Arc<medium_synth::SyntheticMedium>,
    pub server: medium_synth::SyntheticServer,
    pub out: tempfile::TempDir,
}

impl SyntheticSite {
    pub async fn start(spec: medium_synth::SyntheticSpec, latency: std::time::Duration) -> Self {
        Self::with_faults(spec, latency, medium_synth::Faults::default()).await
    }

    pub async fn with_faults(
        spec: medium_synth::SyntheticSpec,
        latency: std::time::Duration,
        faults: medium_synth::Faults,
    ) -> Self {
        let medium = std::sync::Arc::new(medium_synth::SyntheticMedium::new(spec));
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let server = medium_synth::serve_with_faults(addr, medium.clone(), latency, faults)
            .await
            .expect("serves the synthetic Medium");
        SyntheticSite {
            medium,
            server,
            out: tempfile::tempdir().expect("a temp dir"),
        }
    }

    /// Requests the server has answered so far.
    pub fn requests(&self) -> u64 {
        self.server
            .stats
            .requests
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Settings of a run of the synthetic publication into the site's output root (the quick
    /// defaults of [`settings`]); `extra` flags win.
    pub fn settings(&self, extra: &[&str]) -> Settings {
        self.settings_into(self.out.path(), extra)
    }

    /// As [`SyntheticSite::settings`], into another output root.
    pub fn settings_into(&self, out: &Path, extra: &[&str]) -> Settings {
        let mut flags = vec!["--collection-id", medium_synth::SYNTHETIC_COLLECTION];
        flags.extend_from_slice(extra);
        settings(&self.server.base_url(), out, &flags)
    }

    /// The flags of `etl run` / `etl schedule` for the binary: the site, its publication, no
    /// rate cap, the site's output root.
    pub fn flags(&self) -> Vec<String> {
        [
            "--base-url",
            &self.server.base_url(),
            "--collection-id",
            medium_synth::SYNTHETIC_COLLECTION,
            "--max-rps",
            "0",
            "--out",
            self.out.path().to_str().expect("a UTF-8 path"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// A run into the site's output root that must complete.
    pub async fn run_complete(&self, extra: &[&str]) -> medium_etl::RunOutcome {
        let o = medium_etl::pipeline::run(&self.settings(extra))
            .await
            .expect("the run finishes");
        assert!(o.is_complete(), "{:?}", o.failures);
        o
    }
}

/// The crawl of a run of `s` alone, over HTTP into the date's raw store, `tasks` authors at
/// once (the tests that hand the crawl a sink of their own).
pub fn http_harvester(
    s: &Settings,
    tasks: usize,
) -> std::sync::Arc<medium_etl::sources::medium::crawl::Harvester> {
    use medium_etl::sources::medium::crawl::{HarvestSettings, Harvester};
    let stats = std::sync::Arc::new(medium_etl::run::FetchStats::default());
    let client =
        medium_etl::sources::medium::client::MediumClient::new(s.client.clone(), stats.clone())
            .expect("a client");
    std::sync::Arc::new(Harvester::new(
        medium_etl::sources::medium::origin::Origin::Http(Box::new(client)),
        medium_etl::raw_store::RawStore::for_date(&s.out, &s.date.to_string()),
        HarvestSettings {
            refresh: false,
            max_pages: s.max_pages,
            max_authors: None,
            tasks,
            cancel: medium_etl::run::CancelFlag::default(),
            via: s.via,
            date: s.date.to_string(),
            previous: None,
            shard: None,
        },
        stats,
    ))
}
