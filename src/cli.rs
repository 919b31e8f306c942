//! The command line: `etl run` (and, as they land, more subcommands).
//!
//! Conventions: long flags in kebab-case; durations in seconds as decimals; `0` switches a cap
//! off where the help says so; the help text is these doc comments. Parsing is tested with
//! `try_parse_from`; values are validated once, in [`crate::config`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Harvest the top authors of Medium publications into typed, dated Parquet and CSV.
#[derive(Debug, Parser)]
#[command(name = "etl", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the job for one date: harvest, then publish the date's partitions.
    #[command(args_override_self = true)]
    Run(RunArgs),
    /// Serve a deterministic synthetic Medium on 127.0.0.1 (for trying and measuring `etl run`).
    Synth(SynthArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SynthArgs {
    /// Address to listen on (port 0 = any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: std::net::SocketAddr,
    /// Authors in the synthetic publication.
    #[arg(long, default_value_t = 200)]
    pub authors: usize,
    /// Stories per author (10 per profile page).
    #[arg(long, default_value_t = 30)]
    pub stories: usize,
    /// Users each author follows (8 per following page).
    #[arg(long, default_value_t = 16)]
    pub followings: usize,
    /// Delay before every response, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub latency_ms: u64,
    /// Seed of the generator (same seed, same bytes).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the whole harvest as a raw store into DIR (for `etl run --source DIR`) and exit
    /// instead of serving.
    #[arg(long, value_name = "DIR")]
    pub write_raw_store: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The run date (UTC): today, yesterday or YYYY-MM-DD. Names the output partitions.
    #[arg(long, default_value = "today")]
    pub date: String,

    /// A publication by collection id (repeatable). Default: Towards Data Science (7f60cf5620c9).
    #[arg(long = "collection-id", value_name = "ID")]
    pub collection_ids: Vec<String>,

    /// A publication by slug, such as towards-data-science (repeatable).
    #[arg(long = "publication", value_name = "SLUG")]
    pub publications: Vec<String>,

    /// Medium, or any server that answers the same API (a mirror, a local test server).
    #[arg(long, value_name = "URL", default_value = "https://medium.com")]
    pub base_url: String,

    /// The output root: raw/, tables/ and reports/ go under it.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub out: PathBuf,

    /// Requests in flight at once, across all authors.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,

    /// Requests started per second at most; 0 = no cap.
    #[arg(long, default_value_t = 10.0)]
    pub max_rps: f64,

    /// Fetch every page again, ignoring what the date's raw store already holds.
    #[arg(long)]
    pub refresh: bool,

    /// Answer every request from this raw store directory (such as data/raw/date=2026-11-20 or
    /// data/sample) instead of the network.
    #[arg(long, value_name = "DIR")]
    pub source: Option<PathBuf>,

    /// Print only warnings and errors.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Harvest at most this many authors (first seen first); the cap is reported.
    #[arg(long, value_name = "N")]
    pub max_authors: Option<usize>,

    /// Page cap per stream (a warning says when it is reached).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_pages: usize,

    /// Whole-request timeout in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,

    /// Connect timeout in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub connect_timeout: f64,

    /// Retries after a failed attempt (timeouts, connection errors, 429, 5xx, malformed bodies).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub retries: u32,

    /// First backoff in seconds; doubles with each retry, with jitter.
    #[arg(long, value_name = "SECS", default_value_t = 0.5)]
    pub backoff: f64,

    /// Longest wait between attempts, Retry-After included, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub max_backoff: f64,

    /// The User-Agent header (Medium refuses requests without one).
    #[arg(long, value_name = "TEXT")]
    pub user_agent: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_takes_the_documented_flags() {
        let cli = Cli::try_parse_from([
            "etl",
            "run",
            "--date",
            "2026-11-27",
            "--collection-id",
            "7f60cf5620c9",
            "--publication",
            "towards-data-science",
            "--base-url",
            "http://127.0.0.1:8080",
            "--out",
            "out",
            "--concurrency",
            "32",
            "--max-rps",
            "0",
            "--refresh",
            "--source",
            "data/sample",
            "--quiet",
        ])
        .unwrap();
        let Command::Run(a) = cli.command else {
            panic!("run")
        };
        assert_eq!(a.date, "2026-11-27");
        assert_eq!(a.collection_ids, ["7f60cf5620c9"]);
        assert_eq!(a.publications, ["towards-data-science"]);
        assert_eq!(a.concurrency, 32);
        assert_eq!(a.max_rps, 0.0);
        assert!(a.refresh && a.quiet);
        assert_eq!(
            a.source.as_deref(),
            Some(std::path::Path::new("data/sample"))
        );
    }

    #[test]
    fn run_defaults_need_nothing() {
        let Command::Run(a) = Cli::try_parse_from(["etl", "run"]).unwrap().command else {
            panic!("expected run")
        };
        assert_eq!(a.date, "today");
        assert_eq!(a.base_url, "https://medium.com");
        assert_eq!(a.out, PathBuf::from("data"));
        assert_eq!(a.concurrency, 8);
        assert_eq!(a.max_rps, 10.0);
        assert!(Cli::try_parse_from(["etl", "run", "--concurrency", "x"]).is_err());
        // a later flag overrides an earlier one (scripts append overrides)
        let Command::Run(a) =
            Cli::try_parse_from(["etl", "run", "--max-rps", "0", "--max-rps", "20"])
                .unwrap()
                .command
        else {
            panic!("expected run")
        };
        assert_eq!(a.max_rps, 20.0);
    }
}
