//! Whole harvests against local servers: paging across pages, resume, refresh, failures that
//! do not stop the others, concurrency and rate bounds.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use medium_etl::pipeline;
use medium_etl::sources::medium::endpoints::Endpoint;
use medium_etl::sources::medium::paging::StreamEnd;
use medium_synth::SyntheticSpec;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

fn counts(o: &pipeline::RunOutcome, e: Endpoint) -> medium_etl::run::EndpointCounts {
    o.requests.iter().find(|(k, _)| *k == e).unwrap().1
}

#[tokio::test]
async fn pages_through_a_publication_and_every_author() {
    let server = MockServer::start().await;
    small_publication(&server).await;
    let out = tempfile::tempdir().unwrap();
    let s = settings(&server.uri(), out.path(), &["--collection-id", "c0ffee"]);
    let o = pipeline::run(&s).await.unwrap();
    assert!(o.is_complete(), "{:?}", o.failures);
    let p = &o.harvest.publications[0];
    assert_eq!(p.stream.pages.len(), 2);
    assert_eq!(p.stream.end.as_ref().unwrap(), &StreamEnd::NullCursor);
    assert_eq!(
        p.collection.as_ref().unwrap().name.as_deref(),
        Some("Coffee")
    );
    let ids: Vec<_> = o
        .harvest
        .authors
        .iter()
        .map(|a| a.user.user_id.as_str())
        .collect();
    assert_eq!(ids, ["a1", "a2", "a3"], "de-duplicated, first seen first");
    for a in &o.harvest.authors {
        assert_eq!(a.profile.pages.len(), 2);
        assert_eq!(a.profile.end.as_ref().unwrap(), &StreamEnd::NoNewItems);
        assert_eq!(a.following.end.as_ref().unwrap(), &StreamEnd::NoPosition);
    }
    assert_eq!(request_count(&server).await, 11);
    let raw = out.path().join("raw/date=2026-11-27");
    assert_eq!(stored_pages(&raw).len(), 11);
    let meta = stored_page(&raw, "collections/c0ffee/stream/page-0002.json").meta;
    assert_eq!(meta["query"], "page=2&to=1546");
    assert_eq!(
        meta["url"],
        format!(
            "{}/_/api/collections/c0ffee/stream?page=2&to=1546",
            server.uri()
        )
    );
    assert_eq!(meta["status"], 200);
}

#[tokio::test]
async fn a_second_run_of_the_same_date_sends_no_request() {
    let server = MockServer::start().await;
    small_publication(&server).await;
    let out = tempfile::tempdir().unwrap();
    let s = settings(&server.uri(), out.path(), &["--collection-id", "c0ffee"]);
    let first = pipeline::run(&s).await.unwrap();
    assert_eq!(request_count(&server).await, 11);
    let second = pipeline::run(&s).await.unwrap();
    assert_eq!(request_count(&server).await, 11, "resume: zero requests");
    assert!(second.is_complete());
    let stored: u64 = second
        .requests
        .iter()
        .map(|(_, c)| c.pages_from_store)
        .sum();
    assert_eq!(stored, 11);
    assert_eq!(first.harvest.authors.len(), second.harvest.authors.len());

    // --refresh ignores the store
    let s = settings(
        &server.uri(),
        out.path(),
        &["--collection-id", "c0ffee", "--refresh"],
    );
    pipeline::run(&s).await.unwrap();
    assert_eq!(request_count(&server).await, 22);
}

#[tokio::test]
async fn one_failing_author_does_not_stop_the_others_and_a_rerun_fetches_only_what_is_missing() {
    let server = MockServer::start().await;
    // a2's profile stream fails on every attempt (mounted first, so it wins)
    Mock::given(method("GET"))
        .and(path("/_/api/users/a2/profile/stream"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    small_publication(&server).await;
    let out = tempfile::tempdir().unwrap();
    let s = settings(&server.uri(), out.path(), &["--collection-id", "c0ffee"]);
    let o = pipeline::run(&s).await.unwrap();
    assert!(!o.is_complete());
    assert_eq!(o.failures.len(), 1, "{:?}", o.failures);
    let f = &o.failures[0];
    assert_eq!(f.endpoint, "profile_stream");
    assert_eq!(f.user_id.as_deref(), Some("a2"));
    assert_eq!(
        f.url,
        format!("{}/_/api/users/a2/profile/stream", server.uri())
    );
    let complete: Vec<_> = o
        .harvest
        .authors
        .iter()
        .filter(|a| a.is_complete())
        .map(|a| a.user.user_id.clone())
        .collect();
    assert_eq!(complete, ["a1", "a3"]);
    assert!(medium_etl::summary::summary(&o).contains("/_/api/users/a2/profile/stream"));
    // 2 publication pages + a1, a3 (3 each) + a2 following (1) + a2 profile (3 attempts)
    assert_eq!(request_count(&server).await, 2 + 6 + 1 + 3);

    // the server heals: only a2's two profile pages are requested again
    server.reset().await;
    small_publication(&server).await;
    let o = pipeline::run(&s).await.unwrap();
    assert!(o.is_complete(), "{:?}", o.failures);
    let reqs = server.received_requests().await.unwrap();
    let paths: Vec<_> = reqs.iter().map(|r| r.url.path().to_owned()).collect();
    assert_eq!(paths, ["/_/api/users/a2/profile/stream"; 2]);
}

#[tokio::test]
async fn a_cursor_pointing_back_and_the_page_cap_end_a_stream() {
    let server = MockServer::start().await;
    let pub_path = "/_/api/collections/c0ffee/stream";
    page(
        &server,
        pub_path,
        "",
        guarded(serde_json::json!({
            "references": {"User": {"a1": user("a1")}, "Post": {"p1": post("p1", "a1", 1)}},
            "paging": {"next": {"to": "x", "page": 2}}
        })),
    )
    .await;
    // page 2 points at itself
    page(
        &server,
        pub_path,
        "page=2&to=x",
        guarded(serde_json::json!({
            "references": {"User": {"a1": user("a1")}, "Post": {"p2": post("p2", "a1", 1)}},
            "paging": {"next": {"to": "x", "page": 2}}
        })),
    )
    .await;
    // a1's profile stream never ends: each page has a new post and a next page
    for n in 1..=5 {
        let q = if n == 1 {
            String::new()
        } else {
            format!("page={n}")
        };
        page(
            &server,
            "/_/api/users/a1/profile/stream",
            &q,
            guarded(serde_json::json!({
                "references": {"Post": {format!("q{n}"): post(&format!("q{n}"), "a1", 1)}},
                "paging": {"next": {"page": n + 1}}
            })),
        )
        .await;
    }
    page(
        &server,
        "/_/api/users/a1/following",
        "",
        guarded(serde_json::json!({"value": [], "paging": null})),
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let s = settings(
        &server.uri(),
        out.path(),
        &["--collection-id", "c0ffee", "--max-pages", "3"],
    );
    let o = pipeline::run(&s).await.unwrap();
    assert_eq!(
        o.harvest.publications[0].stream.end.as_ref().unwrap(),
        &StreamEnd::RepeatedQuery
    );
    assert_eq!(o.harvest.publications[0].stream.pages.len(), 2);
    let a1 = &o.harvest.authors[0];
    assert_eq!(a1.profile.end.as_ref().unwrap(), &StreamEnd::PageCap);
    assert_eq!(a1.profile.pages.len(), 3);
    // #14: a capped stream is not reported complete, in the tables or the manifest
    assert!(!a1.profile.is_complete());
    assert!(!o.manifest.complete);
    assert_eq!(o.manifest.capped_streams, ["profile stream of user a1"]);
    let authors = crate::metrics::rows_by(
        &crate::metrics::read_parquet(&out.path().join("tables/date=2026-11-27/authors.parquet")),
        "user_id",
    );
    assert_eq!(authors["a1"]["profile_complete"], "false");
    assert_eq!(a1.following.end.as_ref().unwrap(), &StreamEnd::NoNewItems);
    assert_eq!(request_count(&server).await, 2 + 3 + 1);
}

#[tokio::test]
async fn a_publication_by_slug_uses_the_human_url_with_format_json() {
    let server = MockServer::start().await;
    page(
        &server,
        "/coffee/latest",
        "format=json",
        guarded(serde_json::json!({
            "collection": {"id": "c0ffee", "name": "Coffee", "slug": "coffee"},
            "references": {"User": {"a1": user("a1")}, "Post": {"p1": post("p1", "a1", 5)}},
            "paging": {"next": {"to": "123", "page": 2}}
        })),
    )
    .await;
    page(
        &server,
        "/coffee/latest",
        "format=json&page=2&to=123",
        guarded(serde_json::json!({
            "references": {}, "paging": {"next": {"to": "124", "page": 3}}
        })),
    )
    .await;
    author(&server, "a1").await;
    let out = tempfile::tempdir().unwrap();
    let s = settings(&server.uri(), out.path(), &["--publication", "coffee"]);
    let o = pipeline::run(&s).await.unwrap();
    assert!(o.is_complete(), "{:?}", o.failures);
    assert_eq!(o.harvest.publications[0].stream.pages.len(), 2);
    assert_eq!(o.harvest.authors.len(), 1);
    stored_page(
        &out.path().join("raw/date=2026-11-27"),
        "publications/coffee/latest/page-0002.json",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_bounded_across_authors_and_covers_every_page() {
    let spec = SyntheticSpec {
        authors: 24,
        stories_per_author: 25,
        ..SyntheticSpec::default()
    };
    let site = SyntheticSite::start(spec, Duration::from_millis(30)).await;
    let (medium, server) = (&site.medium, &site.server);
    let o = site.run_complete(&["--concurrency", "3"]).await;
    let requests = server.stats.requests.load(Ordering::SeqCst) as usize;
    assert_eq!(requests, medium.expected_requests());
    let max = server.stats.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 3, "at most 3 in flight, saw {max}");
    assert!(max >= 2, "authors ran concurrently (saw {max})");
    assert_eq!(server.stats.without_user_agent.load(Ordering::SeqCst), 0);
    assert_eq!(counts(&o, Endpoint::ProfileStream).pages_fetched, 24 * 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requests_per_second_cap_spaces_requests() {
    let spec = SyntheticSpec {
        authors: 5,
        stories_per_author: 3,
        followings_per_author: 3,
        ..SyntheticSpec::default()
    };
    let site = SyntheticSite::start(spec, Duration::ZERO).await;
    let started = Instant::now();
    pipeline::run(&site.settings(&["--max-rps", "20", "--concurrency", "8"]))
        .await
        .unwrap();
    let n = site.medium.expected_requests();
    assert_eq!(site.requests() as usize, n);
    // n requests at 20/s cannot start within less than (n - 1) / 20 seconds
    let floor = Duration::from_secs_f64((n - 1) as f64 / 20.0);
    assert!(
        started.elapsed() >= floor,
        "{:?} < {floor:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn several_publications_share_authors_once_with_where_each_was_found() {
    let server = MockServer::start().await;
    small_publication(&server).await; // c0ffee: a1, a2, a3
    page(&server, "/_/api/collections/7ea/stream", "", guarded(serde_json::json!({
        "collection": {"id": "7ea", "name": "Tea", "slug": "tea"},
        "references": {"User": {"a3": user("a3"), "a4": user("a4")}, "Post": {"t1": post("t1", "a4", 2)}},
        "paging": {"next": {"to": "null"}}
    }))).await;
    author(&server, "a4").await;
    let out = tempfile::tempdir().unwrap();
    let s = settings(
        &server.uri(),
        out.path(),
        &["--collection-id", "c0ffee", "--collection-id", "7ea"],
    );
    let o = pipeline::run(&s).await.unwrap();
    assert!(o.is_complete(), "{:?}", o.failures);
    let found: Vec<(String, Vec<String>)> = o
        .harvest
        .authors
        .iter()
        .map(|a| {
            (
                a.user.user_id.to_string(),
                a.found_in.iter().map(|p| p.key().to_owned()).collect(),
            )
        })
        .collect();
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        found,
        vec![
            ("a1".to_owned(), v(&["c0ffee"])),
            ("a2".to_owned(), v(&["c0ffee"])),
            ("a3".to_owned(), v(&["c0ffee", "7ea"])),
            ("a4".to_owned(), v(&["7ea"])),
        ]
    );
    // a3's streams were fetched once
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(
        reqs.iter()
            .filter(|r| r.url.path() == "/_/api/users/a3/profile/stream")
            .count(),
        2
    );
    let summary = std::fs::read_to_string(
        out.path()
            .join("reports/date=2026-11-27/publication_summary.csv"),
    )
    .unwrap();
    assert_eq!(summary.lines().count(), 3, "{summary}");
}

#[tokio::test]
async fn a_page_without_paging_or_with_a_null_next_ends_its_stream() {
    let server = MockServer::start().await;
    page(&server, "/_/api/collections/c0ffee/stream", "", guarded(serde_json::json!({
        "references": {"User": {"a1": user("a1"), "a2": user("a2")}, "Post": {"p1": post("p1", "a1", 1)}}
    }))).await;
    for a in ["a1", "a2"] {
        page(
            &server,
            &format!("/_/api/users/{a}/following"),
            "",
            guarded(serde_json::json!({"value": [user("f1")], "paging": {"next": null}})),
        )
        .await;
    }
    page(
        &server,
        "/_/api/users/a1/profile/stream",
        "",
        guarded(serde_json::json!({
            "references": {"Post": {"q1": post("q1", "a1", 1)}}, "paging": {"path": "/x"}
        })),
    )
    .await;
    page(&server, "/_/api/users/a2/profile/stream", "", guarded(serde_json::json!({
        "references": {"Post": {"q2": post("q2", "a2", 1)}}, "paging": {"next": {"to": null, "page": 2}}
    }))).await;
    let out = tempfile::tempdir().unwrap();
    let o = pipeline::run(&settings(
        &server.uri(),
        out.path(),
        &["--collection-id", "c0ffee"],
    ))
    .await
    .unwrap();
    assert!(o.is_complete(), "{:?}", o.failures);
    assert_eq!(
        o.harvest.publications[0].stream.end.as_ref().unwrap(),
        &StreamEnd::NoPaging,
        "no paging at all"
    );
    assert_eq!(
        o.harvest.authors[0].profile.end.as_ref().unwrap(),
        &StreamEnd::NoPaging,
        "paging without next"
    );
    assert_eq!(
        o.harvest.authors[0].following.end.as_ref().unwrap(),
        &StreamEnd::NoPaging,
        "next: null"
    );
    assert_eq!(
        o.harvest.authors[1].profile.end.as_ref().unwrap(),
        &StreamEnd::NullCursor,
        "to: null (JSON)"
    );
    assert_eq!(request_count(&server).await, 5);
}

/// #16: the crawl hands each author to the normalizer once their streams are read, in
/// first-seen order, however out of order they finish: here every seventh author fails after
/// retries (so finishes late) while two authors are worked on at once, and the window of
/// authors started ahead of the oldest undelivered one is eight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authors_reach_the_normalizer_in_first_seen_order_whatever_order_they_finish_in() {
    use medium_etl::run::{AuthorHarvest, AuthorSink};
    use std::sync::{Arc, Mutex};

    struct Record(Arc<Mutex<Vec<(usize, String, usize)>>>);
    impl AuthorSink for Record {
        fn author(&mut self, index: usize, a: &AuthorHarvest) {
            let pages = a.profile.pages.len();
            self.0
                .lock()
                .unwrap()
                .push((index, a.user.user_id.to_string(), pages));
        }
    }
    let spec = SyntheticSpec {
        authors: 60,
        stories_per_author: 3,
        ..SyntheticSpec::default()
    };
    let medium = medium_synth::SyntheticMedium::new(spec);
    let failing: std::collections::HashSet<String> =
        (0..60).step_by(7).map(|a| medium.user_id(a)).collect();
    let faults = medium_synth::Faults {
        always_fail: failing.clone(),
        ..medium_synth::Faults::default()
    };
    let site = SyntheticSite::with_faults(spec, Duration::from_millis(2), faults).await;
    let s = site.settings(&["--retries", "1", "--concurrency", "2"]);
    let harvester = http_harvester(&s, 2);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let harvest = tokio::time::timeout(
        Duration::from_secs(120),
        harvester.harvest(&s.publications, Box::new(Record(seen.clone()))),
    )
    .await
    .expect("the harvest ends");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(harvest.authors.len(), 60);
    let indices: Vec<usize> = seen.iter().map(|(i, _, _)| *i).collect();
    assert_eq!(indices, (0..60).collect::<Vec<_>>(), "in first-seen order");
    let ids: Vec<&str> = seen.iter().map(|(_, id, _)| id.as_str()).collect();
    let kept: Vec<&str> = harvest
        .authors
        .iter()
        .map(|a| a.user.user_id.as_str())
        .collect();
    assert_eq!(ids, kept, "the harvest keeps them in the same order");
    for ((_, id, pages), a) in seen.iter().zip(&harvest.authors) {
        // the sink saw the pages; the harvest keeps only how many there were
        assert_eq!(*pages, a.profile.pages.len(), "{id}");
        assert_eq!(a.is_complete(), !failing.contains(id), "{id}");
    }
}

/// #16: a sink that panics on one author (a bug) loses that author, not the harvest: the
/// others are delivered and the crawl ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_panics_loses_one_author_and_the_harvest_ends() {
    use medium_etl::run::{AuthorHarvest, AuthorSink};

    struct Panics;
    impl AuthorSink for Panics {
        fn author(&mut self, index: usize, _: &AuthorHarvest) {
            assert_ne!(index, 3, "a bug in the sink");
        }
    }
    let spec = SyntheticSpec {
        authors: 12,
        stories_per_author: 2,
        ..SyntheticSpec::default()
    };
    let site = SyntheticSite::start(spec, Duration::from_millis(1)).await;
    let s = site.settings(&[]);
    let harvester = http_harvester(&s, 2);
    let harvest = tokio::time::timeout(
        Duration::from_secs(60),
        harvester.harvest(&s.publications, Box::new(Panics)),
    )
    .await
    .expect("the harvest ends");
    assert_eq!(
        harvest.authors.len(),
        11,
        "the author the sink panicked on is lost"
    );
}
