//! What the HTTP exchange alone costs one machine, as the floor under `benches/cost.sh`'s CPU
//! per request (#18): a synthetic Medium (`etl synth`, its own process, so its CPU is not
//! counted; 20 ms a response) serves every page of a harvest, and this process asks for them
//! all at once, `CONCURRENCY` in flight, with no page waiting for another (a crawl's chains
//! removed). Three clients, one after another, each measured by the process's user + sys
//! CPU over the requests it made:
//!
//! 1. **reqwest**, built as the product's client is (HTTP/1.1, one pool), reading each body
//!    into one buffer: the HTTP stack's own cost, the floor of any client on it;
//! 2. the same, each body then stripped of its guard and parsed into the models
//!    (`medium_api::guard::parse_payload`);
//! 3. the product's [`MediumClient::fetch_page`]: its permits, pace, retries, counters and
//!    capped body read, with the same parse.
//!
//! A crawl's `etl run` costs these, plus storing each page, the crawl's bookkeeping,
//! normalizing and publishing (`benches/cost.sh` measures the whole).
//!
//! The clients run on the runtime `etl run` uses: one thread (`TOKIO_WORKER_THREADS=N` for
//! tokio's multi-threaded one, with N workers).
//!
//! `cargo bench --bench http_floor` (1,000 authors: 5,100 requests, three rounds);
//! `cargo test --bench http_floor` runs it once on 20 authors.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use medium_api::endpoints::StreamId;
use medium_api::guard::parse_payload;
use medium_api::models::{FollowingPayload, StreamPayload};
use medium_etl::memory::cpu_secs;
use medium_etl::run::FetchStats;
use medium_etl::sources::medium::client::{install_crypto_provider, ClientSettings, MediumClient};
use medium_synth::{SyntheticMedium, SyntheticSpec};

mod support;

const CONCURRENCY: usize = 32;
const LATENCY_MS: u64 = 20;

/// `etl synth` in its own process, stopped when dropped.
struct Synth {
    child: Child,
    base: String,
}

impl Synth {
    fn start(authors: usize) -> Synth {
        let mut child = Command::new(env!("CARGO_BIN_EXE_etl"))
            .args(["synth", "--authors", &authors.to_string()])
            .args(["--stories", "30", "--followings", "16", "--seed", "42"])
            .args(["--latency-ms", &LATENCY_MS.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("starts etl synth");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("its stdout"));
        let mut line = String::new();
        let base = loop {
            line.clear();
            let n = std::io::BufRead::read_line(&mut out, &mut line).expect("reads etl synth");
            assert!(n > 0, "etl synth stopped before it listened");
            if let Some(at) = line.find("http://") {
                let url: String = line[at..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                break url;
            }
        };
        // what it prints later is drained: a closed pipe would stop it at its next line
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Synth { child, base }
    }
}

impl Drop for Synth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One page to ask for: its path and query, and which payload it parses into.
#[derive(Clone)]
struct Page {
    stream: StreamId,
    query: String,
}

fn parse(page: &Page, body: &[u8]) -> usize {
    match page.stream {
        StreamId::Following(_) => parse_payload::<FollowingPayload>(body)
            .expect("a following page parses")
            .value
            .len(),
        _ => parse_payload::<StreamPayload>(body)
            .expect("a stream page parses")
            .references
            .users
            .0
            .len(),
    }
}

/// One GET, its body read into one buffer.
async fn read(http: &reqwest::Client, url: &url::Url) -> reqwest::Result<Vec<u8>> {
    let mut response = http.get(url.clone()).send().await?;
    let mut body = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[derive(Clone, Copy, PartialEq)]
enum Client {
    Reqwest,
    ReqwestParse,
    Product,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Reqwest => "reqwest, body read",
            Client::ReqwestParse => "reqwest, body read + guard + parse",
            Client::Product => "MediumClient::fetch_page (+ guard + parse)",
        }
    }
}

/// Asks for every page, `CONCURRENCY` at a time; returns (CPU seconds, wall seconds, bytes).
fn round(
    rt: &tokio::runtime::Runtime,
    base: &str,
    pages: &[Page],
    client: Client,
) -> (f64, f64, u64) {
    let base_url = url::Url::parse(base).expect("the synthetic Medium's URL");
    let settings = ClientSettings {
        concurrency: CONCURRENCY,
        max_rps: None,
        ..ClientSettings::new(base_url)
    };
    let product = Arc::new(
        MediumClient::new(settings.clone(), Arc::new(FetchStats::default())).expect("a client"),
    );
    let http = reqwest::Client::builder()
        .http1_only()
        .user_agent(settings.user_agent.clone())
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("a reqwest client");
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let (cpu, started) = (cpu_secs(), Instant::now());
    let bytes = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for page in pages.iter().cloned() {
            let (http, product, permits) = (http.clone(), product.clone(), permits.clone());
            let url = product.url_for(&page.stream, &page.query);
            tasks.spawn(async move {
                if client == Client::Product {
                    let (stream, query) = (&page.stream, page.query.as_str());
                    let fetched = match stream {
                        StreamId::Following(_) => product
                            .fetch_page::<FollowingPayload>(stream, query)
                            .await
                            .map(|f| f.0),
                        _ => product
                            .fetch_page::<StreamPayload>(stream, query)
                            .await
                            .map(|f| f.0),
                    };
                    return fetched.expect("fetches").body.len() as u64;
                }
                let _permit = permits.acquire_owned().await.expect("open");
                // a kept-alive connection the server has just closed fails the request that
                // reuses it (hyper's IncompleteMessage); the product retries that, so do we
                let mut attempts = 0;
                let body = loop {
                    attempts += 1;
                    match read(&http, &url).await {
                        Ok(body) => break body,
                        Err(e) if attempts < 3 => drop(e),
                        Err(e) => panic!("{url}: {e}"),
                    }
                };
                if client == Client::ReqwestParse {
                    std::hint::black_box(parse(&page, &body));
                }
                body.len() as u64
            });
        }
        let mut bytes = 0;
        while let Some(done) = tasks.join_next().await {
            bytes += done.expect("a request task");
        }
        bytes
    });
    (cpu_secs() - cpu, started.elapsed().as_secs_f64(), bytes)
}

fn main() {
    let measuring = support::measuring();
    let authors = if measuring { 1_000 } else { 20 };
    let rounds = if measuring { 3 } else { 1 };
    install_crypto_provider();
    // `etl synth`'s world (its defaults: 30 stories and 16 follows an author, seed 42)
    let medium = SyntheticMedium::new(SyntheticSpec {
        authors,
        stories_per_author: 30,
        followings_per_author: 16,
        seed: 42,
        ..SyntheticSpec::default()
    });
    let pages: Vec<Page> = medium
        .pages()
        .into_iter()
        .map(|p| Page {
            stream: p.stream,
            query: p.query,
        })
        .collect();
    let synth = Synth::start(authors);
    // the runtime `etl run` crawls on: one thread, unless TOKIO_WORKER_THREADS asks for
    // tokio's multi-threaded one
    let rt = medium_etl::runtime::crawl_runtime().expect("a runtime");
    let ideal = pages.len() as f64 * LATENCY_MS as f64 / 1000.0 / CONCURRENCY as f64;
    println!(
        "http_floor: {} requests ({authors} authors), {LATENCY_MS} ms a response, {CONCURRENCY} in flight, ideal {ideal:.2} s",
        pages.len()
    );
    for client in [Client::Reqwest, Client::ReqwestParse, Client::Product] {
        let mut per_request = Vec::new();
        let mut walls = Vec::new();
        for _ in 0..rounds {
            let (cpu, wall, bytes) = round(&rt, &synth.base, &pages, client);
            assert!(bytes > 0, "no body came back");
            per_request.push(cpu / pages.len() as f64 * 1000.0);
            walls.push(wall);
        }
        per_request.sort_by(f64::total_cmp);
        walls.sort_by(f64::total_cmp);
        println!(
            "  {:45} {:.3} ms CPU/request (median; {:.3}-{:.3}), wall {:.2} s = {:.2} x ideal",
            client.name(),
            per_request[per_request.len() / 2],
            per_request[0],
            per_request[per_request.len() - 1],
            walls[walls.len() / 2],
            walls[walls.len() / 2] / ideal
        );
    }
    // let the last connections close before the server goes
    std::thread::sleep(Duration::from_millis(50));
}
