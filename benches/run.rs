//! Whole runs: an offline replay of 1,000 authors × 20 stories from a raw store, and a crawl of
//! a local synthetic Medium answering every request after 20 ms (200 authors × 3 profile pages
//! × 2 following pages), at `--concurrency` 8 and 32. For the crawl, the ideal time is
//! requests × 20 ms ÷ concurrency; the bench prints it beside criterion's measurement.
//!
//! A third crawl closes the synthetic JSON API (403) so `--via auto` reads the HTML pages.
//!
//! `cargo bench --bench run` (peak memory of the replay: `benches/peak_rss.sh`)

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use medium_etl::cli::{Cli, Command};
use medium_etl::raw_store::RawStore;
use medium_etl::run::{CancelFlag, FetchStats, SpentHarvest};
use medium_etl::sources::medium::client::MediumClient;
use medium_etl::sources::medium::crawl::{HarvestSettings, Harvester};
use medium_etl::sources::medium::origin::Origin;
use medium_etl::{pipeline, Settings};
use medium_synth::{
    serve_with_faults, synthetic_slug, Faults, SyntheticMedium, SyntheticSpec, SYNTHETIC_COLLECTION,
};

fn settings(extra: &[&str], out: &std::path::Path) -> Settings {
    let mut args = vec![
        "etl",
        "run",
        "--date",
        "2026-11-27",
        "--quiet",
        "--max-rps",
        "0",
    ];
    args.extend_from_slice(extra);
    let out = out.to_string_lossy().into_owned();
    args.extend_from_slice(&["--out", &out]);
    let Command::Run(run) = Cli::try_parse_from(args).expect("valid flags").command else {
        panic!("expected run")
    };
    Settings::from_args(&run).expect("valid settings")
}

fn replay(c: &mut Criterion) {
    let spec = SyntheticSpec {
        authors: 1_000,
        stories_per_author: 20,
        ..SyntheticSpec::default()
    };
    let store = tempfile::tempdir().expect("a temp dir");
    let pages = write_raw_store(spec, store.path());
    let source = store.path().to_string_lossy().into_owned();
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let mut group = c.benchmark_group("replay");
    group.sample_size(10);
    group.throughput(Throughput::Elements(pages as u64));
    group.bench_function("1000 authors x 20 stories from a raw store", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("a temp dir"),
            |out| {
                let s = settings(
                    &["--collection-id", SYNTHETIC_COLLECTION, "--source", &source],
                    out.path(),
                );
                let o = rt.block_on(pipeline::run(&s)).expect("runs");
                assert!(o.is_complete());
                out
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Stores a full harvest of the synthetic Medium of `spec` in `dir`, with the product's own
/// `etl synth --write-raw-store`; returns the number of pages.
fn write_raw_store(spec: SyntheticSpec, dir: &std::path::Path) -> usize {
    let n = |v: usize| v.to_string();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_etl"))
        .args(["synth", "--authors", &n(spec.authors), "--stories"])
        .arg(n(spec.stories_per_author))
        .args(["--followings", &n(spec.followings_per_author), "--seed"])
        .arg(spec.seed.to_string())
        .arg("--write-raw-store")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("etl synth runs");
    assert!(status.success(), "etl synth --write-raw-store failed");
    SyntheticMedium::new(spec).expected_requests()
}

/// The publication both crawls harvest: 200 authors × 3 profile pages × 2 following pages.
fn crawled_publication() -> Arc<SyntheticMedium> {
    Arc::new(SyntheticMedium::new(SyntheticSpec {
        authors: 200,
        stories_per_author: 30,
        followings_per_author: 16,
        ..SyntheticSpec::default()
    }))
}

/// The harvest stage of a run alone: every page fetched and stored, no publishing.
fn harvest_only(rt: &tokio::runtime::Runtime, s: &Settings, concurrency: usize) -> SpentHarvest {
    rt.block_on(async {
        let stats = Arc::new(FetchStats::default());
        let client = MediumClient::new(s.client.clone(), stats.clone()).expect("a client");
        let harvester = Arc::new(Harvester::new(
            Origin::Http(Box::new(client)),
            RawStore::for_date(&s.out, &s.date.to_string()),
            HarvestSettings {
                refresh: false,
                max_pages: s.max_pages,
                max_authors: None,
                tasks: concurrency * 4,
                cancel: CancelFlag::default(),
                via: s.via,
                date: s.date.to_string(),
                previous: None,
                shard: None,
            },
            stats,
        ));
        harvester.harvest(&s.publications, Box::new(())).await
    })
}

/// A synthetic Medium served on its own one-thread runtime (so its work does not share the
/// client's threads); the server stops before its runtime when dropped.
struct AloneServer {
    server: medium_synth::SyntheticServer,
    _rt: tokio::runtime::Runtime,
}

fn serve_alone(medium: Arc<SyntheticMedium>, latency: Duration, faults: Faults) -> AloneServer {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let server = rt
        .block_on(serve_with_faults(addr, medium, latency, faults))
        .expect("serves");
    AloneServer { server, _rt: rt }
}

/// The crawl alone (the harvest stage: every page fetched and stored, no publishing), against a
/// server on its own runtime thread.
fn crawl(c: &mut Criterion) {
    let latency = Duration::from_millis(20);
    let medium = crawled_publication();
    let requests = medium.expected_requests();
    let server = serve_alone(medium, latency, Faults::default());
    let base = server.server.base_url();
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let mut group = c.benchmark_group("crawl 20ms");
    group.sample_size(10);
    group.throughput(Throughput::Elements(requests as u64));
    for concurrency in [8usize, 32] {
        let ideal = latency.as_secs_f64() * requests as f64 / concurrency as f64;
        eprintln!(
            "crawl: {requests} requests x 20 ms / concurrency {concurrency}: ideal {ideal:.3} s"
        );
        let c_text = concurrency.to_string();
        group.bench_function(format!("concurrency {concurrency}"), |b| {
            b.iter_batched(
                || tempfile::tempdir().expect("a temp dir"),
                |out| {
                    let s = settings(
                        &[
                            "--collection-id",
                            SYNTHETIC_COLLECTION,
                            "--base-url",
                            &base,
                            "--concurrency",
                            &c_text,
                        ],
                        out.path(),
                    );
                    let harvest = harvest_only(&rt, &s, concurrency);
                    assert!(harvest.failures().is_empty());
                    (out, harvest)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
    drop(server);
}

/// The same crawl with the JSON API closed (403): `--via auto` finds each family's door closed
/// once and reads every family through GraphQL (`POST /_/graphql`, pages of 10 stories and 8
/// followings as the JSON pages, one batch of bodies per author), at concurrency 8 and 32.
fn crawl_graphql(c: &mut Criterion) {
    let latency = Duration::from_millis(20);
    let medium = crawled_publication();
    let requests = 3 + medium.expected_graphql_requests();
    let faults = Faults {
        json_closed: true,
        ..Faults::default()
    };
    let server = serve_alone(medium, latency, faults);
    let base = server.server.base_url();
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let mut group = c.benchmark_group("crawl 20ms graphql");
    group.sample_size(10);
    group.throughput(Throughput::Elements(requests as u64));
    for concurrency in [8usize, 32] {
        let ideal = latency.as_secs_f64() * requests as f64 / concurrency as f64;
        eprintln!(
            "crawl via GraphQL: {requests} requests x 20 ms / concurrency {concurrency}: ideal {ideal:.3} s"
        );
        let c_text = concurrency.to_string();
        group.bench_function(format!("auto to graphql, concurrency {concurrency}"), |b| {
            b.iter_batched(
                || tempfile::tempdir().expect("a temp dir"),
                |out| {
                    let s = settings(
                        &[
                            "--collection-id",
                            SYNTHETIC_COLLECTION,
                            "--base-url",
                            &base,
                            "--concurrency",
                            &c_text,
                        ],
                        out.path(),
                    );
                    let harvest = harvest_only(&rt, &s, concurrency);
                    assert!(harvest.failures().is_empty());
                    assert_eq!(harvest.authors.len(), 200);
                    (out, harvest)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
    drop(server);
}

/// The same 200 authors with both API doors closed (403): `--via auto` finds each family's
/// JSON and GraphQL doors closed once, then reads the publication's page and every author's
/// page (200 HTML pages at 20 ms, one page each). Lower bound: the publication's two 403s and
/// page in turn, two probe rounds, then 200 pages ÷ concurrency rounds.
fn crawl_json_closed(c: &mut Criterion) {
    let latency = Duration::from_millis(20);
    let medium = crawled_publication();
    let faults = Faults {
        json_closed: true,
        graphql_closed: true,
        ..Faults::default()
    };
    let server = serve_alone(medium, latency, faults);
    let base = server.server.base_url();
    let slug = synthetic_slug();
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let mut group = c.benchmark_group("crawl 20ms json closed");
    group.sample_size(10);
    let concurrency = 8usize;
    let bound = latency.as_secs_f64() * (5.0 + (200.0 / concurrency as f64).ceil());
    eprintln!(
        "crawl, JSON and GraphQL closed: 207 requests, concurrency {concurrency}: lower bound {bound:.3} s"
    );
    group.bench_function("auto to html, concurrency 8", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("a temp dir"),
            |out| {
                let s = settings(
                    &[
                        "--publication",
                        &slug,
                        "--base-url",
                        &base,
                        "--concurrency",
                        "8",
                    ],
                    out.path(),
                );
                let harvest = harvest_only(&rt, &s, concurrency);
                assert!(harvest.failures().is_empty());
                assert_eq!(harvest.authors.len(), 200);
                (out, harvest)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    drop(server);
}

criterion_group!(benches, replay, crawl, crawl_graphql, crawl_json_closed);
criterion_main!(benches);
