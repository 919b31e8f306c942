//! The GraphQL door (#13) against a real local HTTP server: the synthetic Medium's GraphQL
//! endpoint (async-graphql over the SDL of MEDIUM-GRAPHQL.md, so a misspelled field fails), with
//! a test's own answers where Medium would answer differently.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use medium_etl::pipeline;
use medium_etl::sources::medium::via::Via;
use medium_synth::{Answer, Faults, SyntheticSpec};
use serde_json::{json, Value};

use crate::metrics::{read_parquet, rows_by};
use crate::support::*;

type Rows = HashMap<String, HashMap<String, String>>;

/// A world with multi-page profiles (23 stories, 10 a page, pins and responses) and
/// multi-page following lists (19 followings, 8 a page), over three publication pages.
fn spec() -> SyntheticSpec {
    SyntheticSpec {
        authors: 24,
        stories_per_author: 23,
        followings_per_author: 19,
        ..SyntheticSpec::default()
    }
}

fn closed() -> Faults {
    Faults {
        json_closed: true,
        ..Faults::default()
    }
}

fn table(out: &Path, name: &str, key: &str) -> Rows {
    rows_by(
        &read_parquet(&out.join(format!("tables/date=2026-11-27/{name}.parquet"))),
        key,
    )
}

/// The report's rows by author (the CSV is the same table).
fn report(out: &Path) -> Rows {
    rows_by(
        &read_parquet(&out.join("reports/date=2026-11-27/author_metrics.parquet")),
        "user_id",
    )
}

/// The parsed GraphQL request of a server key (`/_/graphql?<body>`), if it is one.
fn posted(key: &str) -> Option<Value> {
    serde_json::from_str(key.strip_prefix("/_/graphql?")?).ok()
}

/// The operation names in a posted request (one, or each of a batch).
fn operations(body: &Value) -> Vec<String> {
    let ops = match body {
        Value::Array(ops) => ops.clone(),
        one => vec![one.clone()],
    };
    ops.iter()
        .filter_map(|op| op["operationName"].as_str().map(str::to_owned))
        .collect()
}

fn graphql_error(message: &str) -> Option<(u16, Bytes)> {
    let body = json!({"errors": [{"message": message, "locations": [{"line": 1, "column": 9}], "path": ["userResult"]}], "data": null});
    Some((200, Bytes::from(body.to_string())))
}

/// Whether two cells are the same value: equal text, or for fractional means equal to the
/// last few bits (a sum of fractions depends on the order it is added up in, and JSON lists an
/// author's stories oldest first, GraphQL newest first).
fn same(a: &str, b: &str) -> bool {
    a == b
        || match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) if a.contains('.') => (x - y).abs() <= 1e-12 * x.abs().max(1.0),
            _ => false,
        }
}

/// Every column of the JSON rows equals the GraphQL rows', but those GraphQL leaves null.
fn assert_same(json: &Rows, graphql: &Rows, skip: &[&str]) {
    assert_eq!(json.len(), graphql.len());
    for (id, j) in json {
        let g = graphql
            .get(id)
            .unwrap_or_else(|| panic!("{id} is missing from the GraphQL run"));
        for (col, value) in j {
            if skip.contains(&col.as_str()) {
                continue;
            }
            assert!(
                same(&g[col], value),
                "{id}: {col}: {} against JSON {value}",
                g[col]
            );
        }
    }
}

/// Exactness: with the JSON API closed, `auto` reads every family through GraphQL, and every
/// SPEC §4 metric of every author (link counts included) equals the JSON source's for the same
/// world; so do the posts and followings, but the columns GraphQL does not carry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_api_closed_graphql_gives_the_json_numbers() {
    let json = SyntheticSite::start(spec(), Duration::ZERO).await;
    let j = json.run_complete(&["--via", "json"]).await;
    let gq = SyntheticSite::with_faults(spec(), Duration::ZERO, closed()).await;
    let g = gq.run_complete(&[]).await;
    assert!(g
        .harvest
        .authors
        .iter()
        .all(|a| { a.profile.via == Some(Via::Graphql) && a.following.via == Some(Via::Graphql) }));
    let families: Vec<(&str, Via, Option<Via>)> = g
        .manifest
        .sources
        .switches
        .iter()
        .map(|w| (w.endpoint.name(), w.from, w.to))
        .collect();
    for family in ["publication_stream", "profile_stream", "following"] {
        assert!(
            families.contains(&(family, Via::Json, Some(Via::Graphql))),
            "{families:?}"
        );
    }
    assert_eq!(j.harvest.authors.len(), 24);
    assert_same(&report(json.out.path()), &report(gq.out.path()), &[]);
    let (jp, gp) = (
        table(json.out.path(), "posts", "post_id"),
        table(gq.out.path(), "posts", "post_id"),
    );
    assert_same(&jp, &gp, &["source", "image_count"]);
    assert!(gp
        .values()
        .all(|p| p["source"] == "graphql" && p["image_count"] == "null"));
    // each story once, though pinned ones are listed twice
    assert_eq!(gp.len(), 24 * 23);
    let (ja, ga) = (
        table(json.out.path(), "authors", "user_id"),
        table(gq.out.path(), "authors", "user_id"),
    );
    // the publication pins a later author's story: GraphQL finds that author first
    assert_same(
        &ja,
        &ga,
        &[
            "profile_source",
            "following_source",
            "first_seen_rank",
            "profile_pages",
            "following_pages",
        ],
    );
    let pinned = gq.medium.user_id(16);
    assert_eq!(ga[&pinned]["first_seen_rank"], "1");
    assert_eq!(ga[&pinned]["follower_count"], ja[&pinned]["follower_count"]);
    assert_ne!(ga[&pinned]["follower_count"], "null");
    let rows = |out: &Path| {
        read_parquet(&out.join("tables/date=2026-11-27/followings.parquet")).num_rows()
    };
    assert_eq!(rows(json.out.path()), rows(gq.out.path()));
}

/// The same, under faults: 5xx, 429 with Retry-After, truncated bodies and challenge pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graphql_stays_exact_under_faults() {
    let spec = SyntheticSpec {
        authors: 12,
        ..spec()
    };
    let json = SyntheticSite::start(spec, Duration::ZERO).await;
    json.run_complete(&["--via", "json"]).await;
    let faults = Faults {
        seed: 11,
        rate: 0.2,
        ..closed()
    };
    let gq = SyntheticSite::with_faults(spec, Duration::ZERO, faults).await;
    let g = gq
        .run_complete(&["--retries", "8", "--max-backoff", "0.05", "--timeout", "5"])
        .await;
    assert!(g.manifest.retried_total > 0, "faults were injected");
    assert_same(&report(json.out.path()), &report(gq.out.path()), &[]);
}

/// The pipeline's GraphQL requests, as the synthetic server receives them: a user's posts and
/// followings paged with `limit` 25 and no nulls, bodies batched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_page_with_limit_25_and_batch_the_bodies() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let log = seen.clone();
    let faults = Faults {
        answer: Answer::new(move |key, _| {
            if let Some(body) = posted(key) {
                log.lock().unwrap().push(body);
            }
            None
        }),
        ..closed()
    };
    let site = SyntheticSite::with_faults(spec(), Duration::ZERO, faults).await;
    let o = site.run_complete(&["--via", "graphql"]).await;
    let seen = seen.lock().unwrap();
    let mut batches = 0;
    for body in seen.iter() {
        match body {
            Value::Array(ops) => {
                batches += 1;
                assert!(ops.len() <= 25 && !ops.is_empty());
                assert!(ops.iter().all(|op| op["operationName"] == "PostLinks"));
            }
            op => {
                let paging = &op["variables"]["paging"];
                assert_eq!(paging["limit"], 25, "{op}");
                let fields = paging.as_object().unwrap();
                assert!(fields.values().all(|v| !v.is_null() && *v != ""), "{op}");
            }
        }
    }
    // one batch per author: 23 stories fit in one
    assert_eq!(batches, 24);
    // the User-Agent goes through every door
    let no_agent = &site.server.stats.without_user_agent;
    assert_eq!(no_agent.load(std::sync::atomic::Ordering::SeqCst), 0);
    // the raw store keeps what was posted beside each reply
    let raw = site.out.path().join("raw/date=2026-11-27");
    let meta = stored_page(
        &raw,
        &format!(
            "users/{}/profile_stream/page-0002.graphql.json",
            site.medium.user_id(3)
        ),
    )
    .meta;
    assert_eq!(meta["request"]["operationName"], "UserPosts");
    assert!(meta["request"]["query"]
        .as_str()
        .unwrap()
        .contains("homepagePostsConnection"));
    assert!(meta["query"]
        .as_str()
        .unwrap()
        .starts_with("limit=25&from=L"));
    let bodies = stored_page(
        &raw,
        &format!(
            "users/{}/post_bodies/page-0001.graphql.json",
            site.medium.user_id(3)
        ),
    )
    .meta;
    assert_eq!(bodies["request"].as_array().unwrap().len(), 23);
    assert_eq!(o.manifest.requests["post_bodies"].requests, 24);
}

/// Resume: a second run of the date sends no request at all, GraphQL pages and bodies alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_sends_no_request() {
    let site = SyntheticSite::with_faults(spec(), Duration::ZERO, closed()).await;
    site.run_complete(&[]).await;
    let before = site.requests();
    // one 403 per family from the JSON API, then GraphQL's pages and batches, none twice
    assert_eq!(before as usize, 3 + site.medium.expected_graphql_requests());
    let again = site.run_complete(&[]).await;
    assert_eq!(site.requests(), before);
    assert_eq!(again.manifest.requests_total, 0);
    assert!(again
        .harvest
        .authors
        .iter()
        .all(|a| a.profile.via == Some(Via::Graphql)));
}

/// The synthetic server speaks the SDL: a limit over 25 on a following list, a null in
/// `PagingOptions` and a misspelled field are refused with HTTP 200 and `errors`; a batch is
/// answered in order; an unknown user is `NotFound`.
#[tokio::test]
async fn the_server_refuses_what_medium_refuses() {
    let site = SyntheticSite::start(spec(), Duration::ZERO).await;
    // reqwest is built without a TLS provider of its own (see the client)
    medium_etl::sources::medium::client::install_crypto_provider();
    let client = reqwest::Client::new();
    let url = format!("{}/_/graphql", site.server.base_url());
    let uid = site.medium.user_id(2);
    let ask = |body: Value| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let r = client.post(&url).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let q = "query F($id: ID, $paging: PagingOptions) { userResult(id: $id) { __typename ... on User { followingUserConnection(paging: $paging) { users { id } pagingInfo { next { from } } } } } }";
    let over = ask(json!({"query": q, "variables": {"id": uid, "paging": {"limit": 26}}})).await;
    assert!(
        over["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 25"),
        "{over}"
    );
    let null =
        ask(json!({"query": q, "variables": {"id": uid, "paging": {"limit": 5, "from": null}}}))
            .await;
    assert!(
        null["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("must not be null"),
        "{null}"
    );
    let typo = ask(json!({"query": "{ post(id: \"x\") { clapCount wordCont } }"})).await;
    let message = typo["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("wordCont") && message.contains("wordCount"),
        "{typo}"
    );
    let nobody = ask(json!({"query": "{ userResult(id: \"nobody\") { __typename ... on NotFound { message } } }"})).await;
    assert_eq!(nobody["data"]["userResult"]["__typename"], "NotFound");
    let post = |i: usize| json!({"operationName": "L", "query": "query L($id: ID!) { post(id: $id) { id } }", "variables": {"id": format!("p{i}")}});
    let batch = ask(json!([post(1), post(2)])).await;
    assert_eq!(batch.as_array().unwrap().len(), 2);
    // the pins come first, and again in the latest listing
    let first = ask(json!({"query": "query P($id: ID) { userResult(id: $id) { ... on User { homepagePostsConnection(paging: {limit: 25}) { posts { id pinnedAt } pagingInfo { next { from source } } } } } }", "variables": {"id": site.medium.user_id(6)}})).await;
    let conn = &first["data"]["userResult"]["homepagePostsConnection"];
    let posts = conn["posts"].as_array().unwrap();
    assert!(posts[0]["pinnedAt"].as_f64().unwrap() > 0.0);
    assert!(posts[1]["pinnedAt"].as_f64().unwrap() > 0.0);
    let ids: Vec<&str> = posts.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids.iter().filter(|id| **id == ids[0]).count(), 1);
    assert_eq!(conn["pagingInfo"]["next"]["source"], "");
}

/// A GraphQL error (HTTP 200) is a typed failure naming the operation, its variables and the
/// message, never an empty stream; errors beside partial data are not used either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graphql_error_names_the_operation_and_variables() {
    let spec = SyntheticSpec {
        authors: 6,
        ..spec()
    };
    let victim = medium_synth::SyntheticMedium::new(spec).user_id(4);
    let target = victim.clone();
    let faults = Faults {
        answer: Answer::new(move |key, _| {
            let body = posted(key)?;
            if operations(&body) == ["UserPosts"] && body["variables"]["id"] == target.as_str() {
                // partial data beside the error
                let reply = json!({"errors": [{"message": "Internal server error", "path": ["userResult", "homepagePostsConnection"]}],
                                   "data": {"userResult": {"__typename": "User", "id": target, "homepagePostsConnection": null}}});
                return Some((200, Bytes::from(reply.to_string())));
            }
            None
        }),
        ..closed()
    };
    let site = SyntheticSite::with_faults(spec, Duration::ZERO, faults).await;
    let o = pipeline::run(&site.settings(&["--via", "graphql"]))
        .await
        .unwrap();
    assert_eq!(o.failures.len(), 1, "{:?}", o.failures);
    let f = &o.failures[0];
    assert_eq!(f.user_id.as_deref(), Some(victim.as_str()));
    for part in [
        "GraphQL UserPosts",
        &victim,
        "\"limit\":25",
        "Internal server error",
        "userResult.homepagePostsConnection",
    ] {
        assert!(f.error.contains(part), "{part} not in {}", f.error);
    }
    let a = o
        .harvest
        .authors
        .iter()
        .find(|a| a.user.user_id == victim)
        .unwrap();
    assert!(a.profile.pages.is_empty());
    // retried like a malformed body (an internal error may clear), then a failure
    assert_eq!(o.manifest.retried_total, 2);
    let m = report(site.out.path());
    assert_eq!(m[&victim]["harvest_complete"], "false");
}

/// `NotFound` is that one author's (as a 404 is): under `--via graphql` a failure naming it;
/// under `auto` that stream alone goes on to the next format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_is_one_streams_not_the_familys() {
    let spec = SyntheticSpec {
        authors: 6,
        stories_per_author: 4,
        ..spec()
    };
    let gone = medium_synth::SyntheticMedium::new(spec).user_id(2);
    let target = gone.clone();
    let faults = Faults {
        answer: Answer::new(move |key, _| {
            let body = posted(key)?;
            (operations(&body) == ["UserPosts"] && body["variables"]["id"] == target.as_str()).then(|| {
                let reply = json!({"data": {"userResult": {"__typename": "NotFound", "message": "User not found"}}});
                (200, Bytes::from(reply.to_string()))
            })
        }),
        ..closed()
    };
    let site = SyntheticSite::with_faults(spec, Duration::ZERO, faults).await;
    let o = pipeline::run(&site.settings(&["--via", "graphql"]))
        .await
        .unwrap();
    assert_eq!(o.failures.len(), 1);
    assert!(
        o.failures[0].error.contains("not found (User not found)"),
        "{:?}",
        o.failures
    );
    let out = tempfile::tempdir().unwrap();
    let auto = pipeline::run(&site.settings_into(
        out.path(),
        &["--publication", &medium_synth::synthetic_slug()],
    ))
    .await
    .unwrap();
    assert!(auto.is_complete(), "{:?}", auto.failures);
    for a in &auto.harvest.authors {
        let want = if a.user.user_id == gone {
            Via::Html
        } else {
            Via::Graphql
        };
        assert_eq!(a.profile.via, Some(want), "{}", a.user.user_id);
    }
}

/// A GraphQL error saying the field is unavailable closes the door: under `auto` the family
/// moves on (profiles to HTML pages), after one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_field_moves_the_family_on() {
    let spec = SyntheticSpec {
        authors: 8,
        stories_per_author: 4,
        ..spec()
    };
    let faults = Faults {
        answer: Answer::new(|key, _| {
            let body = posted(key)?;
            (operations(&body) == ["UserPosts"]).then_some(())?;
            graphql_error("Cannot query field \"homepagePostsConnection\" on type \"User\".")
        }),
        ..closed()
    };
    let site = SyntheticSite::with_faults(spec, Duration::ZERO, faults).await;
    let o = site
        .run_complete(&["--publication", &medium_synth::synthetic_slug()])
        .await;
    assert!(o
        .harvest
        .authors
        .iter()
        .all(|a| a.profile.via == Some(Via::Html) && a.following.via == Some(Via::Graphql)));
    let profile_switches: Vec<_> = o
        .manifest
        .sources
        .switches
        .iter()
        .filter(|w| w.endpoint.name() == "profile_stream" && w.from == Via::Graphql)
        .collect();
    assert_eq!(
        profile_switches.len(),
        1,
        "{:?}",
        o.manifest.sources.switches
    );
    assert!(profile_switches[0].family);
    assert!(profile_switches[0].reason.contains("Cannot query field"));
}

/// A managed challenge ("Just a moment...", 403) is retried and clears; a block page is not
/// retried and moves the family on at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_clears_and_a_block_page_switches() {
    let spec = SyntheticSpec {
        authors: 5,
        stories_per_author: 4,
        ..spec()
    };
    let challenge = fixture("challenge_page.html");
    let faults = Faults {
        answer: Answer::new(move |key, attempt| {
            (posted(key).is_some() && attempt == 1).then(|| (403, Bytes::from(challenge.clone())))
        }),
        ..closed()
    };
    let site = SyntheticSite::with_faults(spec, Duration::ZERO, faults).await;
    let o = site.run_complete(&["--via", "graphql"]).await;
    assert!(o.manifest.retried_total > 0);
    assert!(o
        .harvest
        .authors
        .iter()
        .all(|a| a.profile.via == Some(Via::Graphql)));

    let block = "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head><body><h1>Sorry, you have been blocked</h1></body></html>";
    let faults = Faults {
        answer: Answer::new(move |key, _| {
            posted(key).map(|_| (403, Bytes::from_static(block.as_bytes())))
        }),
        ..closed()
    };
    let site = SyntheticSite::with_faults(spec, Duration::ZERO, faults).await;
    // by slug only: HTML pages cannot address a publication by id
    let slug = medium_synth::synthetic_slug();
    let flags = ["--publication", slug.as_str(), "--retries", "4"];
    let o = pipeline::run(&settings(&site.server.base_url(), site.out.path(), &flags))
        .await
        .unwrap();
    assert!(o.is_complete(), "{:?}", o.failures);
    assert!(o
        .harvest
        .authors
        .iter()
        .all(|a| a.profile.via == Some(Via::Html)));
    assert_eq!(o.manifest.retried_total, 0, "a block page is not retried");
    let from_graphql: Vec<_> = o
        .manifest
        .sources
        .switches
        .iter()
        .filter(|w| w.from == Via::Graphql)
        .collect();
    // publication, profiles, followings: one refused request each
    assert_eq!(from_graphql.len(), 3, "{from_graphql:?}");
    assert!(from_graphql
        .iter()
        .all(|w| w.family && w.reason.contains("block page")));
}

/// The bundled sample replays offline through GraphQL, and gives the JSON numbers but for the
/// link counts of member-only stories (their bodies are cut short for anonymous readers).
#[tokio::test]
async fn the_sample_replays_through_graphql() {
    let dir = tempfile::tempdir().unwrap();
    let (j, g) = (dir.path().join("j"), dir.path().join("g"));
    let sample = repo().join("data/sample");
    let run = |out: std::path::PathBuf, via: &'static str| {
        let sample = sample.clone();
        async move {
            pipeline::run(&settings(
                "http://127.0.0.1:9",
                &out,
                &["--source", sample.to_str().unwrap(), "--via", via],
            ))
            .await
            .unwrap()
        }
    };
    let json = run(j.clone(), "json").await;
    let graphql = run(g.clone(), "graphql").await;
    assert!(graphql.is_complete(), "{:?}", graphql.failures);
    assert_eq!(graphql.manifest.requests_total, 0);
    assert_eq!(graphql.harvest.authors.len(), json.harvest.authors.len());
    let (jm, gm) = (report(&j), report(&g));
    assert_same(&jm, &gm, &["mean_link_count"]);
    let locked = ["c6af1eb2c940", "e960c0367546"];
    for (id, row) in &gm {
        if locked.contains(&id.as_str()) {
            assert_eq!(
                row["mean_link_count"], "null",
                "{id}: its only story is member-only"
            );
        } else {
            assert_eq!(row["mean_link_count"], jm[id]["mean_link_count"], "{id}");
        }
    }
    assert_same(
        &table(&j, "authors", "user_id"),
        &table(&g, "authors", "user_id"),
        &["profile_source", "following_source", "first_seen_rank"],
    );
}
