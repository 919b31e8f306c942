//! `etl`: parse the command line, resolve the settings, run the command, and map the outcome
//! to an exit code. The commands themselves are in [`commands`].

use std::process::ExitCode;

use clap::Parser;
use medium_etl::cli::{Cli, Command};

mod commands;

fn main() -> ExitCode {
    medium_etl::memory::configure();
    let code = match Cli::parse().command {
        Command::Config(args) => commands::config(&args),
        Command::Run(args) => commands::run(&args),
        Command::Schedule(args) => commands::schedule(&args),
        Command::Serve(args) => commands::serve(&args),
        Command::Synth(args) => commands::synth(&args),
        Command::Rebuild(args) => commands::rebuild(&args),
        Command::Publish(args) => commands::publish(&args),
        Command::Probe(args) => commands::probe(&args),
    };
    ExitCode::from(code)
}
