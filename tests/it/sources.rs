//! The three doors: the JSON API, HTML pages and RSS feeds give the same tables on every column
//! they share, `--via auto` walks from one to the next when a door is closed (against a real
//! local server that answers 403 and challenge pages), and what cannot be read from a format
//! is said, not guessed.
//!
//! The site served here is the bundled sample (`data/sample/`, JSON + the HTML and RSS pages
//! `scripts/build_feeds.py` made from it), each file at the URL its metadata records.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::response::Response;
use medium_etl::pipeline::{self, RunOutcome};
use medium_etl::schema;
use medium_etl::sources::medium::via::Via;

use crate::metrics::{read_parquet, rows_by};
use crate::support::*;

type Rows = HashMap<String, HashMap<String, String>>;

/// What the site answers for a path instead of the stored page.
type Policy = fn(&str) -> Option<(u16, Vec<u8>)>;

struct Site {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
    _server: medium_synth::Server,
}

impl Site {
    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.requests().iter().filter(|r| pred(r)).count()
    }
}

/// Every stored page of `dir`, keyed by the path + query of its recorded URL.
fn pages_by_url(dir: &Path) -> HashMap<String, (PathBuf, &'static str)> {
    let mut out = HashMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".meta.json") else {
                continue;
            };
            if stem.ends_with(".graphql.json") {
                // GraphQL's replies are posted for, to one URL: this site has no GraphQL
                continue;
            }
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            let url = meta["url"].as_str().unwrap();
            let path_query = url.strip_prefix("https://medium.com").unwrap();
            let key = match path_query.split_once('?') {
                Some(_) => path_query.to_owned(),
                None => format!("{path_query}?"),
            };
            let (body, kind) = if stem.ends_with(".html") || stem.ends_with(".xml") {
                let kind = if stem.ends_with(".html") {
                    "text/html; charset=utf-8"
                } else {
                    "application/rss+xml; charset=utf-8"
                };
                (p.with_file_name(stem), kind)
            } else {
                (p.with_file_name(format!("{stem}.json")), "application/json")
            };
            out.insert(key, (body, kind));
        }
    }
    out
}

/// Serves the sample's JSON pages, HTML pages and feeds on 127.0.0.1 (not its GraphQL
/// replies: `POST /_/graphql` is a 404), answering `policy`'s answer where it has one.
async fn serve_sample(policy: Policy) -> Site {
    let pages = Arc::new(pages_by_url(&repo().join("data/sample")));
    let requests: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = requests.clone();
    let router = axum::Router::new().fallback(move |req: Request| {
        let (pages, log) = (pages.clone(), log.clone());
        async move {
            let path = req.uri().path().to_owned();
            let key = format!("{path}?{}", req.uri().query().unwrap_or(""));
            log.lock().unwrap().push(key.clone());
            let (status, body, kind) = match policy(&path) {
                Some((status, body)) => (status, body, "text/html; charset=utf-8"),
                None => match pages.get(&key) {
                    Some((file, kind)) => (200, std::fs::read(file).unwrap(), *kind),
                    None => (404, b"<html>Not found</html>".to_vec(), "text/html"),
                },
            };
            Response::builder()
                .status(status)
                .header("content-type", kind)
                .body(axum::body::Body::from(body))
                .unwrap()
        }
    });
    let server = medium_synth::serve_router(SocketAddr::from(([127, 0, 0, 1], 0)), router)
        .await
        .unwrap();
    Site {
        base: server.base_url(),
        requests,
        _server: server,
    }
}

/// Both API doors (JSON and GraphQL) answer Cloudflare's block page with status 200; pages and
/// feeds answer.
fn json_blocked(path: &str) -> Option<(u16, Vec<u8>)> {
    is_api(path).then(|| {
        let page = "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title>\
                    </head><body><h1>Sorry, you have been blocked</h1></body></html>";
        (200, page.as_bytes().to_vec())
    })
}

fn is_json_api(path: &str) -> bool {
    path.starts_with("/_/api/") || path.ends_with("/latest")
}

/// The JSON API or the GraphQL endpoint.
fn is_api(path: &str) -> bool {
    is_json_api(path) || path == "/_/graphql"
}

/// Both API doors refuse automated clients (403); pages and feeds answer.
fn json_closed(path: &str) -> Option<(u16, Vec<u8>)> {
    is_api(path).then(|| (403, b"<html><title>Forbidden</title></html>".to_vec()))
}

/// The JSON API answers 403 and every profile page is a challenge (with status 200).
fn json_closed_profiles_challenged(path: &str) -> Option<(u16, Vec<u8>)> {
    if path.starts_with("/@") {
        return Some((200, fixture("challenge_page.html")));
    }
    json_closed(path)
}

fn table(out: &Path, name: &str) -> arrow::record_batch::RecordBatch {
    read_parquet(&out.join(format!("tables/date=2026-11-27/{name}.parquet")))
}

async fn replay(out: &Path, extra: &[&str]) -> RunOutcome {
    let sample = repo().join("data/sample");
    let mut args = vec!["--source", sample.to_str().unwrap()];
    args.extend_from_slice(extra);
    pipeline::run(&settings("http://127.0.0.1:9", out, &args))
        .await
        .unwrap()
}

/// Every row of `other` (read via `via`) agrees with the JSON row of the same id on each column
/// `via` carries, and is null on each it does not.
fn assert_posts_agree(json: &Rows, other: &Rows, via: Via) {
    let not_carried = schema::columns_not_carried(via, schema::POSTS);
    assert!(!other.is_empty());
    for (id, row) in other {
        let j = json
            .get(id)
            .unwrap_or_else(|| panic!("{via} post {id} is not in the JSON tables"));
        assert_eq!(row["source"], via.name());
        for (col, value) in row {
            if col == "source" {
                continue;
            }
            if not_carried.contains(&col.as_str()) {
                assert_eq!(
                    value, "null",
                    "{via} post {id}: {col} is not carried by {via}"
                );
            } else if j[col] == "null" {
                // Medium's JSON left it out (the sample has such a story): nothing to agree with;
                // RSS still counts the words of the story's body.
                continue;
            } else if false {
                assert_eq!(
                    value, "null",
                    "{via} post {id}: {col} is not carried by {via}"
                );
            } else if via == Via::Rss && col == "first_published_at" {
                let ms: i64 = j[col].parse().unwrap();
                assert_eq!(
                    value,
                    &(ms - ms % 1000).to_string(),
                    "{id}: pubDate has whole seconds"
                );
            } else {
                assert_eq!(value, &j[col], "{via} post {id}: {col}");
            }
        }
    }
}

const AUTHOR_IDENTITY: &[&str] = &[
    "user_id",
    "username",
    "name",
    "bio",
    "twitter_screen_name",
    "created_at",
    "medium_member_at",
    "first_seen_rank",
    "found_in",
];

fn assert_authors_agree(json: &Rows, other: &Rows) {
    assert_eq!(json.len(), other.len());
    for (id, row) in other {
        for col in AUTHOR_IDENTITY {
            assert_eq!(row[*col], json[id][*col], "author {id}: {col}");
        }
    }
}

#[tokio::test]
async fn json_html_and_rss_agree_on_every_column_they_share() {
    let dir = tempfile::tempdir().unwrap();
    let (j, h, r) = (
        dir.path().join("j"),
        dir.path().join("h"),
        dir.path().join("r"),
    );
    let json = replay(&j, &["--via", "json"]).await;
    assert!(json.is_complete(), "{:?}", json.failures);
    let html = replay(
        &h,
        &["--via", "html", "--publication", "towards-data-science"],
    )
    .await;
    assert!(html.is_complete(), "{:?}", html.failures);
    // RSS cannot list a publication's authors, so the feeds are reached the way `auto` reaches
    // them: the publication from its page, the authors' stories from their feeds.
    let site = serve_sample(json_closed_profiles_challenged).await;
    let rss = pipeline::run(&settings(
        &site.base,
        &r,
        &["--via", "auto", "--publication", "towards-data-science"],
    ))
    .await
    .unwrap();
    assert!(rss.is_complete(), "{:?}", rss.failures);
    assert!(rss
        .harvest
        .authors
        .iter()
        .all(|a| a.profile.via == Some(Via::Rss)));

    let jp = rows_by(&table(&j, "posts"), "post_id");
    let hp = rows_by(&table(&h, "posts"), "post_id");
    let rp = rows_by(&table(&r, "posts"), "post_id");
    assert_posts_agree(&jp, &hp, Via::Html);
    let rss_rows: Rows = rp
        .into_iter()
        .filter(|(_, row)| row["source"] == "rss")
        .collect();
    assert_eq!(
        rss_rows.len(),
        14,
        "every author's stories (the sample's 14)"
    );
    assert_posts_agree(&jp, &rss_rows, Via::Rss);

    let ja = rows_by(&table(&j, "authors"), "user_id");
    assert_authors_agree(&ja, &rows_by(&table(&h, "authors"), "user_id"));
    assert_authors_agree(&ja, &rows_by(&table(&r, "authors"), "user_id"));

    let jc = rows_by(&table(&j, "publications"), "collection_id");
    let hc = rows_by(&table(&h, "publications"), "collection_id");
    assert_eq!(
        hc["7f60cf5620c9"], jc["7f60cf5620c9"],
        "the publication row"
    );

    // The manifest says which columns each format filled
    let cols = &rss.manifest.sources.columns[&Via::Rss]["posts"];
    assert_eq!(cols.null, schema::columns_not_carried(Via::Rss, "posts"));
    assert!(cols.filled.iter().any(|c| c == "word_count"));
    assert!(!cols.filled.iter().any(|c| c == "total_clap_count"));
    let metrics = rows_by(
        &read_parquet(&r.join("reports/date=2026-11-27/author_metrics.parquet")),
        "user_id",
    );
    for (id, m) in &metrics {
        assert_eq!(m["total_claps"], "null", "{id}: feeds carry no claps");
        assert_eq!(
            m["publication_count"], "null",
            "{id}: feeds name no publication"
        );
        assert_eq!(
            m["following_count"], "null",
            "{id}: followings not harvested"
        );
        assert_ne!(m["mean_word_count"], "null", "{id}");
    }
}

#[tokio::test]
async fn auto_falls_back_to_html_when_the_json_api_answers_403() {
    let site = serve_sample(json_closed).await;
    let out = tempfile::tempdir().unwrap();
    let o = pipeline::run(&settings(
        &site.base,
        out.path(),
        &["--publication", "towards-data-science"],
    ))
    .await
    .unwrap();
    assert!(o.is_complete(), "{:?}", o.failures);
    assert_eq!(o.harvest.authors.len(), 10);
    for a in &o.harvest.authors {
        assert_eq!(a.profile.via, Some(Via::Html));
        assert!(
            a.following.is_not_carried(),
            "followings exist only in JSON"
        );
    }
    // Each closed door is knocked on once per family, however many authors wait behind it.
    let api = site.count(|r| is_api(r.split('?').next().unwrap()));
    assert_eq!(
        api,
        6,
        "publication, profile and following: one 403 each from JSON and GraphQL: {:?}",
        site.requests()
    );
    assert_eq!(site.count(|r| r.starts_with("/@")), 10);
    assert_eq!(site.count(|r| r.starts_with("/towards-data-science?")), 1);
    assert_eq!(site.requests().len(), 17);

    let s = &o.manifest.sources;
    assert_eq!(s.via, "auto");
    let families: Vec<(&str, Via, Option<Via>, bool)> = s
        .switches
        .iter()
        .map(|w| (w.endpoint.name(), w.from, w.to, w.family))
        .collect();
    for family in ["publication_stream", "profile_stream", "following"] {
        assert!(families.contains(&(family, Via::Json, Some(Via::Graphql), true)));
    }
    assert!(families.contains(&("publication_stream", Via::Graphql, Some(Via::Html), true)));
    assert!(families.contains(&("profile_stream", Via::Graphql, Some(Via::Html), true)));
    assert!(families.contains(&("following", Via::Graphql, None, true)));
    assert!(s
        .switches
        .iter()
        .all(|w| w.reason.contains("HTTP 403") && w.url.starts_with(&site.base)));
    assert_eq!(s.not_carried.get("following"), Some(&10));
    assert_eq!(s.pages["profile_stream"][&Via::Html], 10);
    let summary = medium_etl::summary::summary(&o);
    assert!(
        summary.contains("switched family profile_stream: graphql → html: http://"),
        "{summary}"
    );
    assert!(
        summary.contains("authors: 10 found, 10 harvested, 0 incomplete"),
        "{summary}"
    );
    assert!(
        summary.contains("not harvested: following of 10 author(s)"),
        "{summary}"
    );

    // Resume: the pages are stored in the format that answered; a re-run asks only the closed
    // doors of the family it has nothing stored for (followings: JSON, then GraphQL), once.
    let before = site.requests().len();
    let again = pipeline::run(&settings(
        &site.base,
        out.path(),
        &["--publication", "towards-data-science"],
    ))
    .await
    .unwrap();
    assert!(again.is_complete());
    let asked = &site.requests()[before..];
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[0].contains("/following"), "{asked:?}");
    assert_eq!(asked[1], "/_/graphql?", "{asked:?}");
}

#[tokio::test]
async fn a_door_closed_in_every_format_fails_the_stream_naming_the_first_refusal() {
    fn all_closed(path: &str) -> Option<(u16, Vec<u8>)> {
        (path.contains("eyalzakkay") || path.contains("bb3521dac22f"))
            .then(|| (404, b"gone".to_vec()))
    }
    let site = serve_sample(all_closed).await;
    let out = tempfile::tempdir().unwrap();
    let o = pipeline::run(&settings(&site.base, out.path(), &[]))
        .await
        .unwrap();
    assert_eq!(o.failures.len(), 2, "{:?}", o.failures);
    let profile = o
        .failures
        .iter()
        .find(|f| f.endpoint == "profile_stream")
        .unwrap();
    assert!(
        profile
            .url
            .ends_with("/_/api/users/bb3521dac22f/profile/stream"),
        "{profile:?}"
    );
    assert!(profile.error.contains("HTTP 404"));
    // 404 is that author's, not the family's: the others stayed on JSON, and the one author was
    // tried in HTML and RSS too
    for a in &o.harvest.authors {
        if a.user.user_id != "bb3521dac22f" {
            assert_eq!(a.profile.via, Some(Via::Json));
            assert_eq!(a.following.via, Some(Via::Json));
        }
    }
    assert_eq!(site.count(|r| r.starts_with("/@eyalzakkay?")), 1);
    assert_eq!(site.count(|r| r.starts_with("/feed/@eyalzakkay?")), 1);
}

#[test]
fn rss_alone_names_the_authors_it_cannot_reach_and_other_formats_need_a_slug() {
    let dir = tempfile::tempdir().unwrap();
    let o = etl_on_sample(
        dir.path(),
        &[
            "--via",
            "rss",
            "--publication",
            "towards-data-science",
            "--quiet",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("only by display name (Carolina Bento"),
        "{err}"
    );
    assert!(err.contains("use --via html or auto"), "{err}");
    let pubs = rows_by(&table(dir.path(), "publications"), "collection_id");
    assert_eq!(pubs["7f60cf5620c9"]["name"], "Towards Data Science");
    assert_eq!(pubs["7f60cf5620c9"]["domain"], "null", "not in a feed");

    // HTML and feeds address a publication by slug: by id it is a usage error
    let o = etl_on_sample(dir.path(), &["--via", "html"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("give --publication SLUG"),
        "{}",
        text(&o.stderr)
    );

    // refused by the command line (clap), naming the flag, the value and the choices
    let o = etl_on_sample(dir.path(), &["--via", "xml"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("--via")
            && err.contains("'xml'")
            && err.contains("json, graphql, html, rss, auto"),
        "{err}"
    );
}

#[tokio::test]
async fn refused_followings_fail_under_json_and_are_not_carried_under_auto() {
    fn followings_forbidden(path: &str) -> Option<(u16, Vec<u8>)> {
        path.ends_with("/following")
            .then(|| (403, b"forbidden".to_vec()))
    }
    let site = serve_sample(followings_forbidden).await;
    let out = tempfile::tempdir().unwrap();
    let json = pipeline::run(&settings(&site.base, out.path(), &["--via", "json"]))
        .await
        .unwrap();
    assert_eq!(
        json.failures.len(),
        10,
        "a refusal under --via json is a failure"
    );
    assert!(json
        .failures
        .iter()
        .all(|f| f.endpoint == "following" && f.error.contains("403")));

    let out = tempfile::tempdir().unwrap();
    let auto = pipeline::run(&settings(&site.base, out.path(), &[]))
        .await
        .unwrap();
    assert!(auto.is_complete(), "{:?}", auto.failures);
    assert_eq!(
        auto.manifest.sources.not_carried.get("following"),
        Some(&10)
    );
    assert!(auto
        .harvest
        .authors
        .iter()
        .all(|a| a.profile.via == Some(Via::Json)));
}

#[tokio::test]
async fn a_challenge_or_a_page_without_state_is_an_error_naming_the_page() {
    fn broken_pages(path: &str) -> Option<(u16, Vec<u8>)> {
        match path {
            "/@eyalzakkay" => Some((200, fixture("challenge_page.html"))),
            "/@mwditsworth" => Some((
                200,
                b"<!doctype html><html><body><p>Hi</p></body></html>".to_vec(),
            )),
            _ => None,
        }
    }
    let site = serve_sample(broken_pages).await;
    let out = tempfile::tempdir().unwrap();
    let o = pipeline::run(&settings(
        &site.base,
        out.path(),
        &["--via", "html", "--publication", "towards-data-science"],
    ))
    .await
    .unwrap();
    let errors: HashMap<&str, &str> = o
        .failures
        .iter()
        .map(|f| (f.url.as_str(), f.error.as_str()))
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    let challenge = &format!("{}/@eyalzakkay", site.base);
    assert!(
        errors[challenge.as_str()].contains("a challenge page"),
        "{errors:?}"
    );
    assert!(
        errors[challenge.as_str()].starts_with(challenge.as_str()),
        "names the page"
    );
    let plain = &format!("{}/@mwditsworth", site.base);
    assert!(
        errors[plain.as_str()].contains("without the embedded state (window.__APOLLO_STATE__)"),
        "{errors:?}"
    );
    // the other 8 authors were read from their pages
    let read = o
        .harvest
        .authors
        .iter()
        .filter(|a| a.profile.is_complete())
        .count();
    assert_eq!(read, 8);
}

/// A block page is final (#13): one request per family finds the JSON door closed, with no
/// retries, and every author is read from its page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_moves_on_at_once_from_a_block_page() {
    let site = serve_sample(json_blocked).await;
    let out = tempfile::tempdir().unwrap();
    let o = pipeline::run(&settings(
        &site.base,
        out.path(),
        &["--publication", "towards-data-science", "--retries", "4"],
    ))
    .await
    .unwrap();
    assert!(o.is_complete(), "{:?}", o.failures);
    assert_eq!(o.harvest.authors.len(), 10);
    assert!(o
        .harvest
        .authors
        .iter()
        .all(|a| a.profile.via == Some(Via::Html)));
    let api = site.count(|r| is_api(r.split('?').next().unwrap()));
    assert_eq!(
        api,
        6,
        "one request per family and door, none retried: {:?}",
        site.requests()
    );
    assert_eq!(o.manifest.retried_total, 0);
    assert!(o
        .manifest
        .sources
        .switches
        .iter()
        .all(|w| w.family && w.reason.contains("block page")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auto_reads_a_60_author_publication_from_its_pages_when_the_api_and_graphql_are_closed() {
    use medium_synth::{serve_with_faults, synthetic_slug, Faults, SyntheticMedium, SyntheticSpec};
    let medium = Arc::new(SyntheticMedium::new(SyntheticSpec {
        authors: 60,
        stories_per_author: 25,
        ..SyntheticSpec::default()
    }));
    let faults = Faults {
        json_closed: true,
        graphql_closed: true,
        ..Faults::default()
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = serve_with_faults(addr, medium, std::time::Duration::from_millis(5), faults)
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = pipeline::run(&settings(
        &server.base_url(),
        out.path(),
        &["--publication", &synthetic_slug(), "--concurrency", "16"],
    ))
    .await
    .unwrap();
    assert!(o.is_complete(), "{:?}", o.failures);
    assert_eq!(o.harvest.authors.len(), 60);
    assert!(o
        .harvest
        .authors
        .iter()
        .all(|a| a.profile.via == Some(Via::Html)));
    // 60 authors start at once behind the closed doors: still one 403 per family and door
    let requests = server
        .stats
        .requests
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        requests,
        3 + 3 + 1 + 60,
        "three JSON 403s, three GraphQL 403s, the publication's page, 60 author pages"
    );
    let posts = rows_by(&table(out.path(), "posts"), "post_id");
    assert_eq!(posts.len(), 60 * 10, "each author's first page of stories");
    assert!(posts
        .values()
        .all(|p| p["source"] == "html" && p["link_count"] == "null"));
}
