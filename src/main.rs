//! `etl`: parse the command line, set up logging, run, and map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use medium_etl::cli::{Cli, Command, SynthArgs};
use medium_etl::{exit, pipeline, Settings};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            init_tracing(args.quiet);
            let settings = match Settings::from_args(&args) {
                Ok(s) => Settings {
                    arguments: std::env::args().collect(),
                    ..s
                },
                Err(e) => return fail(&e, exit::USAGE),
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return fail(&e, exit::IO),
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
    }
}

fn synth(args: SynthArgs) -> ExitCode {
    use medium_etl::synthetic::{serve_on, SyntheticMedium, SyntheticSpec, SYNTHETIC_COLLECTION};
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
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&e, exit::IO),
    };
    runtime.block_on(async {
        let latency = std::time::Duration::from_millis(args.latency_ms);
        let server = match serve_on(args.addr, medium.clone(), latency).await {
            Ok(s) => s,
            Err(e) => return fail(&e, exit::IO),
        };
        println!(
            "synthetic Medium on {} (collection {SYNTHETIC_COLLECTION}, {} requests per full harvest)",
            server.base_url(),
            medium.expected_requests()
        );
        println!(
            "try: etl run --base-url {} --collection-id {SYNTHETIC_COLLECTION} --max-rps 0",
            server.base_url()
        );
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
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = s.source();
    }
    eprintln!("etl: error: {line}");
    ExitCode::from(code)
}

fn init_tracing(quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
