//! `etl`: parse the command line, set up logging, run, and map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use medium_etl::cli::{Cli, Command, RunArgs, ScheduleArgs, ServeArgs, SynthArgs};
use medium_etl::config::LogFormat;
use medium_etl::{exit, pipeline, Settings};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config(args) => match Settings::from_args(&args) {
            Ok(settings) => {
                print!("{}", settings.describe());
                ExitCode::from(exit::OK)
            }
            Err(e) => {
                let code = e.exit_code();
                fail(&e, code)
            }
        },
        Command::Run(args) => {
            let settings = match settings_of(&args) {
                Ok(s) => s,
                Err(code) => return code,
            };
            init_tracing(&settings);
            let runtime = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match runtime.block_on(pipeline::run(&settings)) {
                Ok(outcome) => {
                    if !settings.quiet || !outcome.is_complete() {
                        print!("{}", pipeline::summary(&outcome));
                    }
                    if outcome.is_complete() {
                        ExitCode::from(exit::OK)
                    } else {
                        eprintln!(
                            "etl: {} stream(s) failed; see the summary above",
                            outcome.failures.len()
                        );
                        ExitCode::from(exit::PARTIAL)
                    }
                }
                Err(e) => {
                    let code = e.exit_code();
                    fail(&e, code)
                }
            }
        }
        Command::Synth(args) => synth(args),
        Command::Schedule(args) => schedule(args),
        Command::Serve(args) => serve(args),
    }
}

fn schedule(args: ScheduleArgs) -> ExitCode {
    use medium_etl::config::{parse_interval, parse_time_of_day, Schedule};
    let settings = match settings_of(&args.run) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let schedule = match (&args.every, &args.at) {
        (Some(e), _) => parse_interval(e)
            .map(Schedule::Every)
            .ok_or(("--every", e.clone())),
        (None, Some(a)) => parse_time_of_day(a)
            .map(Schedule::At)
            .ok_or(("--at", a.clone())),
        (None, None) => settings.schedule.ok_or(("--every or --at", String::new())),
    };
    let schedule = match schedule {
        Ok(s) => s,
        Err((flag, value)) if value.is_empty() => {
            eprintln!("etl: error: etl schedule needs {flag} (or [schedule] in the config file)");
            return ExitCode::from(exit::USAGE);
        }
        Err((flag, value)) => {
            eprintln!("etl: error: invalid {flag} {value:?}: expected 24h, 30m, 1h30m or HH:MM");
            return ExitCode::from(exit::USAGE);
        }
    };
    init_tracing(&settings);
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let stop = medium_etl::sources::medium::harvest::CancelFlag::default();
        let stopped = std::sync::Arc::new(tokio::sync::Notify::new());
        let (signal_stop, signal_notify) = (stop.clone(), stopped.clone());
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
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
            signal_stop.cancel();
            signal_notify.notify_waiters();
        });
        let code =
            medium_etl::schedule::run_schedule(settings, schedule, args.max_runs, stop, stopped)
                .await;
        ExitCode::from(code)
    })
}

fn serve(args: ServeArgs) -> ExitCode {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let server = match medium_etl::serve::start(args.addr, args.data.clone()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!(
                    "etl: error: serving {} on {}: {e}",
                    args.data.display(),
                    args.addr
                );
                return ExitCode::from(exit::IO);
            }
        };
        println!("serving {} on http://{}/", args.data.display(), server.addr);
        tokio::select! {
            _ = server.wait() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        ExitCode::from(exit::OK)
    })
}

fn synth(args: SynthArgs) -> ExitCode {
    use medium_etl::synthetic::{
        serve_with_faults, synthetic_slug, Faults, SyntheticMedium, SyntheticSpec,
        SYNTHETIC_COLLECTION,
    };
    let spec = SyntheticSpec {
        authors: args.authors,
        stories_per_author: args.stories,
        followings_per_author: args.followings,
        seed: args.seed,
        ..SyntheticSpec::default()
    };
    let medium = std::sync::Arc::new(SyntheticMedium::new(spec));
    if let Some(dir) = &args.write_raw_store {
        let store = medium_etl::raw_store::RawStore::new(dir);
        return match medium.write_raw_store(&store) {
            Ok(pages) => {
                println!(
                    "wrote {pages} pages of a synthetic publication ({SYNTHETIC_COLLECTION}) to {}",
                    dir.display()
                );
                ExitCode::from(exit::OK)
            }
            Err(e) => fail(&e, exit::IO),
        };
    }
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let latency = std::time::Duration::from_millis(args.latency_ms);
        let faults = Faults {
            json_closed: args.json_closed,
            ..Faults::default()
        };
        let server = match serve_with_faults(args.addr, medium.clone(), latency, faults).await {
            Ok(s) => s,
            Err(e) => return fail(&e, exit::IO),
        };
        // closed: a 403 per request family, the publication's page, one page per author
        let requests = match args.json_closed {
            true => 3 + 1 + args.authors,
            false => medium.expected_requests(),
        };
        println!(
            "synthetic Medium on {} (collection {SYNTHETIC_COLLECTION}, {requests} requests per full harvest)",
            server.base_url(),
        );
        if args.json_closed {
            println!(
                "the JSON API answers 403; try: etl run --base-url {} --publication {} --max-rps 0",
                server.base_url(),
                synthetic_slug()
            );
        } else {
            println!(
                "try: etl run --base-url {} --collection-id {SYNTHETIC_COLLECTION} --max-rps 0",
                server.base_url()
            );
        }
        let _ = tokio::signal::ctrl_c().await;
        let stats = &server.stats;
        println!(
            "served {} requests (at most {} at once)",
            stats.requests.load(std::sync::atomic::Ordering::Relaxed),
            stats.max_in_flight.load(std::sync::atomic::Ordering::Relaxed)
        );
        ExitCode::from(exit::OK)
    })
}

fn fail(e: &dyn std::error::Error, code: u8) -> ExitCode {
    eprintln!("etl: error: {}", medium_etl::error::error_chain(e));
    ExitCode::from(code)
}

/// The multi-threaded tokio runtime every subcommand runs on; or the exit.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|e| fail(&e, exit::IO))
}

/// The validated settings of a run or schedule, with the command line recorded; or the exit.
fn settings_of(args: &RunArgs) -> Result<Settings, ExitCode> {
    match Settings::from_args(args) {
        Ok(s) => Ok(Settings {
            arguments: std::env::args().collect(),
            ..s
        }),
        Err(e) => {
            let code = e.exit_code();
            Err(fail(&e, code))
        }
    }
}

/// Logs to stderr: `RUST_LOG` filters win; else `-q` warn, default info, `-v` debug, `-vv`
/// trace (for this crate; dependencies stay at warn).
fn init_tracing(settings: &Settings) {
    let level = match (settings.quiet, settings.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let default = format!("warn,medium_etl={level},medium_api={level},etl={level}");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}
