//! The subcommands of `etl`, each from its parsed flags to an exit code: settings are resolved
//! (and the command line recorded), logging set up, the library called, and any error printed
//! as one line (`etl: error: ...`) with the code [`exit_code`] gives it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use medium_etl::cli::{
    ProbeArgs, PublishArgs, RebuildArgs, RunArgs, ScheduleArgs, ServeArgs, SynthArgs,
};
use medium_etl::config::{LogFormat, Schedule};
use medium_etl::error::{error_chain, exit, exit_code, RunError};
use medium_etl::raw_store::{Captured, RawStore};
use medium_etl::run::CancelFlag;
use medium_etl::runtime::{crawl_runtime, runtime};
use medium_etl::{pipeline, schedule, serve, summary, Settings};
use medium_synth::{
    serve_with_faults, synthetic_slug, Faults, SyntheticMedium, SyntheticSpec, SYNTHETIC_COLLECTION,
};
use tracing_subscriber::EnvFilter;

/// `etl config`: the effective settings and where each came from.
pub fn config(args: &RunArgs) -> u8 {
    match Settings::from_args(args) {
        Ok(settings) => {
            print!("{}", settings.describe());
            exit::OK
        }
        Err(e) => fail(&e.into()),
    }
}

/// `etl run`: one date, then the summary; exit 1 when something failed.
pub fn run(args: &RunArgs) -> u8 {
    let settings = match settings_of(args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    run_with(settings)
}

/// `etl publish`: the date computed from its shards' raw stores, once all have committed.
pub fn publish(args: &PublishArgs) -> u8 {
    let settings = match settings_of(&args.run) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Some(lake) = &settings.lake {
        // the shards' raw stores and manifests, from their parts of the lake
        let date = settings.date.to_string();
        let pulled = runtime().and_then(|rt| {
            rt.block_on(medium_etl::lake::sync::pull_shards(
                lake,
                &settings.out,
                &date,
                args.shards,
            ))
            .map_err(RunError::from)
        });
        if let Err(e) = pulled {
            return fail(&e);
        }
    }
    match medium_etl::shards::publish_settings(settings, args.shards) {
        // the shards' locks are held until the publish ends
        Ok(publish) => {
            let code = run_with(publish.settings);
            drop(publish.locks);
            code
        }
        Err(e) => fail(&e),
    }
}

fn run_with(settings: Settings) -> u8 {
    init_tracing(&settings);
    let outcome = crawl_runtime().and_then(|rt| rt.block_on(pipeline::run(&settings)));
    match outcome {
        Ok(outcome) => {
            let failed_checks = outcome.manifest.failed_checks().count();
            let strict_failure = settings.strict && failed_checks > 0;
            if !settings.quiet || !outcome.is_complete() || strict_failure {
                // JSON logs own stdout (one object a line); the summary is for people then
                match settings.log_format {
                    LogFormat::Text => print!("{}", summary::summary(&outcome)),
                    LogFormat::Json => eprint!("{}", summary::summary(&outcome)),
                }
            }
            if strict_failure {
                eprintln!(
                    "etl: {failed_checks} quality check(s) failed (--strict); see the summary above"
                );
                return exit::CHECKS_FAILED;
            }
            if outcome.is_complete() {
                return exit::OK;
            }
            eprintln!(
                "etl: {} stream(s) failed; see the summary above",
                outcome.failures.len()
            );
            exit::PARTIAL
        }
        Err(e) => fail(&e),
    }
}

/// `etl rebuild`: dates derived again from the raw store, oldest first; stops at the first
/// date that cannot be rebuilt (it is left as it was).
pub fn rebuild(args: &RebuildArgs) -> u8 {
    let day = |s: &str| medium_etl::config::RunDate::parse_iso(s).map(|d| d.0);
    let parsed = (|| -> Result<_, medium_etl::error::ConfigError> {
        let date = args.date.as_deref().map(day).transpose()?;
        let range = match (&args.from, &args.to) {
            (Some(f), Some(t)) => Some((day(f)?, day(t)?)),
            _ => None,
        };
        Ok((date, range))
    })();
    let (date, range) = match parsed {
        Ok(p) => p,
        Err(e) => return fail(&e.into()),
    };
    let rt = match crawl_runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    // a lake: its dates' raw stores are pulled into the work directory, rebuilt there, and
    // committed to the lake as any run of theirs
    let lake = match rebuild_lake(args) {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    let out = match &lake {
        Some((settings, work)) => {
            let (from, to) = match (date, range) {
                (Some(d), _) => (d, d),
                (None, Some(r)) => r,
                (None, None) => unreachable!("clap requires --date or --from"),
            };
            let iso = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
            let pulled = medium_etl::lake::Lake::open(settings).and_then(|l| {
                rt.block_on(medium_etl::lake::sync::pull_for_rebuild(
                    &l,
                    work,
                    &iso(from),
                    &iso(to),
                ))
            });
            if let Err(e) = pulled {
                return fail(&e.into());
            }
            work.clone()
        }
        None => args.out.clone(),
    };
    let dates = match medium_etl::rebuild::dates(&out, date, range) {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    let mut tracing_ready = false;
    for d in dates {
        let mut settings = match medium_etl::rebuild::settings(&out, &d, args.quiet) {
            Ok(s) => s,
            Err(e) => return fail(&e),
        };
        if let Some((lake, _)) = &lake {
            settings.lake = Some(lake.clone());
            settings.table_format = medium_etl::lake::TableFormat::Delta;
        }
        if !tracing_ready {
            init_tracing(&settings);
            tracing_ready = true;
        }
        match rt.block_on(pipeline::run(&settings)) {
            Ok(outcome) => {
                if !args.quiet {
                    println!(
                        "rebuilt {d} from {}: {} and {}",
                        outcome.raw_store.root().display(),
                        outcome.tables_dir.display(),
                        outcome.reports_dir.display()
                    );
                }
            }
            Err(e) => return fail(&e),
        }
    }
    exit::OK
}

/// The lake `etl rebuild --out` names, and its work directory: an object-storage URL, or a
/// local Delta output (a directory with `published/` and its `.work`).
fn rebuild_lake(
    args: &RebuildArgs,
) -> Result<Option<(medium_etl::lake::LakeSettings, std::path::PathBuf)>, RunError> {
    let text = args.out.to_string_lossy().into_owned();
    let settings = |url: url::Url| medium_etl::lake::LakeSettings {
        url,
        options: Vec::new(),
        upload_every: Duration::from_secs(5),
        lease_ttl: medium_etl::lake::lease::TTL,
    };
    let bad = |reason: String| {
        RunError::Lake(medium_etl::error::LakeError::Open {
            url: text.clone(),
            reason,
        })
    };
    if medium_etl::lake::is_url(&text) {
        let url = url::Url::parse(&text).map_err(|e| bad(e.to_string()))?;
        let work = args
            .work_dir
            .clone()
            .unwrap_or_else(|| medium_etl::lake::default_work_dir(&url));
        return Ok(Some((settings(url), work)));
    }
    let work = args.out.join(medium_etl::layout::WORK_DIR);
    if !args.out.join(medium_etl::lake::sync::PUBLISHED).is_dir() {
        return Ok(None);
    }
    let dir = std::path::absolute(&args.out).map_err(|e| bad(e.to_string()))?;
    let url = url::Url::from_directory_path(&dir).map_err(|()| bad("not a directory".into()))?;
    Ok(Some((settings(url), args.work_dir.clone().unwrap_or(work))))
}

/// `etl probe`: exit 0 when the URL answers 2xx (a health check for `etl serve`).
pub fn probe(args: &ProbeArgs) -> u8 {
    medium_etl::sources::medium::client::install_crypto_provider();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let answer = rt.block_on(async {
        // a health check asks the server itself, never a proxy the environment names
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(args.timeout))
            .no_proxy()
            .build()?;
        client.get(&args.url).send().await.map(|r| r.status())
    });
    match answer {
        Ok(status) if status.is_success() => exit::OK,
        Ok(status) => {
            eprintln!("etl: {}: HTTP {}", args.url, status.as_u16());
            exit::PARTIAL
        }
        Err(e) => {
            eprintln!("etl: {}: {}", args.url, error_chain(&e));
            exit::PARTIAL
        }
    }
}

/// `etl schedule`: runs on a timer until SIGINT or SIGTERM.
pub fn schedule(args: &ScheduleArgs) -> u8 {
    let mut settings = match settings_of(&args.run) {
        Ok(s) => s,
        Err(code) => return code,
    };
    // scheduled runs are incremental unless --full
    settings.incremental = !args.run.full;
    let when = match Schedule::resolve(args.every.as_deref(), args.at.as_deref(), settings.schedule)
    {
        Ok(s) => s,
        Err(e) => return fail(&e.into()),
    };
    init_tracing(&settings);
    let rt = match crawl_runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    rt.block_on(async {
        let stop = CancelFlag::default();
        let stopped = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(stop_on_signal(stop.clone(), stopped.clone()));
        schedule::run_schedule(settings, when, args.max_runs, stop, stopped).await
    })
}

/// Sets `stop` and wakes the schedule on SIGINT or SIGTERM.
async fn stop_on_signal(stop: CancelFlag, stopped: Arc<tokio::sync::Notify>) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
    tracing::info!("StopRequested");
    stop.cancel();
    stopped.notify_waiters();
}

/// For `etl serve --data s3://…`: mirrors the lake's published reports into the work
/// directory now and every `--refresh-every` seconds after; the directory to serve.
async fn serve_lake(args: &ServeArgs) -> Result<Option<std::path::PathBuf>, RunError> {
    use medium_etl::lake::{sync, Lake, LakeSettings};
    let text = args.data.to_string_lossy().into_owned();
    if !medium_etl::lake::is_url(&text) {
        // a local Delta output: its work directory has the dates in the local layout
        let work = args.data.join(medium_etl::layout::WORK_DIR);
        let lake = args.data.join(sync::PUBLISHED).is_dir() && work.is_dir();
        return Ok(lake.then_some(work));
    }
    let url = url::Url::parse(&text).map_err(|e| {
        RunError::Lake(medium_etl::error::LakeError::Open {
            url: text.clone(),
            reason: e.to_string(),
        })
    })?;
    let work = args
        .work_dir
        .clone()
        // beside etl run's work directory, not in it: the mirror writes no run's files
        .unwrap_or_else(|| medium_etl::lake::default_work_dir(&url).join(".serve"));
    let lake = Lake::open(&LakeSettings {
        url,
        options: Vec::new(),
        upload_every: Duration::from_secs(5),
        lease_ttl: Duration::from_secs(120),
    })?;
    let pulled = sync::mirror_published(&lake, &work).await?;
    tracing::info!(lake = %lake.url(), work = %work.display(), files = pulled.files, "LakeMirrored");
    let every = Duration::from_secs(args.refresh_every);
    let mirror = work.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            match sync::mirror_published(&lake, &mirror).await {
                Ok(p) if p.files > 0 => tracing::info!(files = p.files, "LakeMirrored"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "LakeMirrorFailed"),
            }
        }
    });
    Ok(Some(work))
}

/// `etl serve`: the partitions over HTTP until SIGINT.
pub fn serve(args: &ServeArgs) -> u8 {
    init_logs(args.log_format, "info");
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    rt.block_on(async {
        let data = match serve_lake(args).await {
            Ok(Some(work)) => work,
            Ok(None) => args.data.clone(),
            Err(e) => return fail(&e),
        };
        let mut server = match serve::start(args.addr, data, args.limits()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!(
                    "etl: error: serving {} on {}: {e}",
                    args.data.display(),
                    args.addr
                );
                return exit::IO;
            }
        };
        let url = format!("http://{}/", server.addr);
        match args.log_format {
            LogFormat::Text => println!("serving {} on {url}", args.data.display()),
            LogFormat::Json => tracing::info!(data = %args.data.display(), url, "ServeStarted"),
        }
        // SIGINT or SIGTERM (what `docker stop` sends; as PID 1 in a container nothing else
        // would end it) stop it with exit 0
        let stop = CancelFlag::default();
        let stopped = Arc::new(tokio::sync::Notify::new());
        let notified = stopped.notified();
        tokio::spawn(stop_on_signal(stop, stopped.clone()));
        tokio::pin!(notified);
        tokio::select! {
            () = &mut notified => {}
            // the accept loop ended by itself: it never does but by a panic
            () = server.wait() => return exit::IO,
        }
        let left = server.shutdown(SERVE_GRACE).await;
        if left > 0 {
            tracing::warn!(
                connections = left,
                grace_secs = SERVE_GRACE.as_secs(),
                "ServeStoppedWithRequestsInFlight"
            );
        }
        tracing::info!("ServeStopped");
        exit::OK
    })
}

/// `etl synth`: a synthetic Medium, served or written as a raw store.
pub fn synth(args: &SynthArgs) -> u8 {
    let spec = SyntheticSpec {
        authors: args.authors,
        stories_per_author: args.stories,
        followings_per_author: args.followings,
        seed: args.seed,
        evolution: args.day.map(medium_synth::Evolution::from_2026_11_27),
        ..SyntheticSpec::default()
    };
    let medium = Arc::new(SyntheticMedium::new(spec));
    if let Some(dir) = &args.write_raw_store {
        return match write_raw_store(&medium, &RawStore::new(dir)) {
            Ok(pages) => {
                println!(
                    "wrote {pages} pages of a synthetic publication ({SYNTHETIC_COLLECTION}) to {}",
                    dir.display()
                );
                exit::OK
            }
            Err(e) => fail(&e.into()),
        };
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    rt.block_on(serve_synthetic(args, medium))
}

/// Stores a full harvest of `medium` as `etl run` against medium.com would have.
pub fn write_raw_store(
    medium: &SyntheticMedium,
    store: &RawStore,
) -> Result<usize, medium_etl::error::StoreError> {
    let pages = medium.pages();
    let urls: Vec<String> = pages.iter().map(|p| p.url()).collect();
    store.import(pages.iter().zip(&urls).map(|(p, url)| Captured {
        stream: &p.stream,
        index: p.index,
        query: &p.query,
        url,
        body: &p.body,
        fetched_at: "2026-01-01T00:00:00.000Z",
    }))
}

async fn serve_synthetic(args: &SynthArgs, medium: Arc<SyntheticMedium>) -> u8 {
    let latency = Duration::from_millis(args.latency_ms);
    let faults = Faults {
        json_closed: args.json_closed,
        graphql_closed: args.graphql_closed,
        rate_limit: args.rate_limit,
        hostile: args
            .hostile
            .map(|mb| Arc::new(medium_synth::Hostile::standard(mb as usize * (1 << 20)))),
        ..Faults::default()
    };
    let server = match serve_with_faults(args.addr, medium.clone(), latency, faults).await {
        Ok(s) => s,
        Err(e) => {
            // as before the synthetic Medium had its own crate
            eprintln!("etl: error: {}", error_chain(&e));
            return exit::IO;
        }
    };
    // a closed door: a 403 per request family; with both API doors closed, the publication's
    // page and one page per author
    let requests = match (args.json_closed, args.graphql_closed) {
        (true, true) => 6 + 1 + args.authors,
        (true, false) => 3 + medium.expected_graphql_requests(),
        (false, _) => medium.expected_requests(),
    };
    let base = server.base_url();
    println!(
        "synthetic Medium on {base} (collection {SYNTHETIC_COLLECTION}, {requests} requests per full harvest)"
    );
    if args.json_closed && args.graphql_closed {
        println!(
            "the JSON API and GraphQL answer 403; try: etl run --base-url {base} --publication {} --max-rps 0",
            synthetic_slug()
        );
    } else if args.json_closed {
        println!(
            "the JSON API answers 403 (GraphQL answers); try: etl run --base-url {base} --collection-id {SYNTHETIC_COLLECTION} --max-rps 0"
        );
    } else {
        println!(
            "try: etl run --base-url {base} --collection-id {SYNTHETIC_COLLECTION} --max-rps 0"
        );
    }
    let _ = tokio::signal::ctrl_c().await;
    let stats = &server.stats;
    println!(
        "served {} requests (at most {} at once)",
        stats.requests.load(Ordering::Relaxed),
        stats.max_in_flight.load(Ordering::Relaxed)
    );
    exit::OK
}

/// Prints the error and its causes on one line; returns its exit code.
fn fail(e: &RunError) -> u8 {
    eprintln!("etl: error: {}", error_chain(e));
    exit_code(e)
}

/// The validated settings of a run or schedule, with the command line recorded; or the exit.
fn settings_of(args: &RunArgs) -> Result<Settings, u8> {
    match Settings::from_args(args) {
        Ok(s) => Ok(Settings {
            arguments: std::env::args()
                .map(|a| medium_etl::config::redact(&a))
                .collect(),
            ..s
        }),
        Err(e) => Err(fail(&e.into())),
    }
}

/// Logs at the level the settings ask: `-q` warn, default info, `-v` debug, `-vv` trace.
fn init_tracing(settings: &Settings) {
    let level = match (settings.quiet, settings.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    init_logs(settings.log_format, level);
}

/// Text logs go to stderr (stdout is the summary's); JSON logs to stdout, one object a line, as
/// a container's log collector expects. `RUST_LOG` filters win over `level` (for this crate;
/// dependencies stay at warn).
fn init_logs(format: LogFormat, level: &str) {
    let default = format!("warn,medium_etl={level},medium_api={level},etl={level}");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match format {
        LogFormat::Json => builder
            .with_writer(std::io::stdout)
            .with_ansi(false)
            .json()
            .flatten_event(true)
            .init(),
        LogFormat::Text => builder
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

/// How long `etl serve` lets requests in flight finish after SIGTERM (Docker waits 10 s before
/// it kills).
const SERVE_GRACE: Duration = Duration::from_secs(8);
