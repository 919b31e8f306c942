//! The command line: `etl run | config | schedule | serve | synth`, as clap derive types.
//!
//! Conventions: long flags in kebab-case; durations in seconds as decimals; `0` switches a cap
//! off where the help says so; the help text is these doc comments, and a flag with a default
//! names it from [`defaults`] (`help = defaults::help(...)`), the one place it is defined.
//! Named choices (`--via`, `--log-format`) are checked here, by clap; other values are
//! validated once, in [`crate::config`], for flags, environment and file alike. Parsing is
//! tested with `try_parse_from`.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use medium_api::via::ViaMode;

use crate::config::{defaults, LogFormat};

/// `--via`: the names of the table's formats and `auto`, parsed into a [`ViaMode`].
fn via_parser() -> impl TypedValueParser<Value = ViaMode> {
    PossibleValuesParser::new(ViaMode::names()).try_map(|name| name.parse::<ViaMode>())
}

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
    /// Print the effective configuration and where each value comes from.
    ///
    /// Origins: flag, environment (ETL_*), config file, default.
    #[command(args_override_self = true)]
    Config(RunArgs),
    /// Run the job on a schedule (UTC), one date at a time.
    ///
    /// Each run is for the date of its start; a date already published complete is skipped;
    /// runs never overlap; a failed run is reported and the schedule goes on; SIGINT / SIGTERM
    /// stop it cleanly (exit 0).
    #[command(args_override_self = true)]
    Schedule(ScheduleArgs),
    /// Serve the dated partitions over HTTP (index, downloads, top authors, run status).
    ///
    /// An index of dates with file sizes and downloads, a page per date with the top authors and
    /// a chart of their claps, and the status of the current or last run.
    Serve(ServeArgs),
    /// Serve a deterministic synthetic Medium on 127.0.0.1 (for trying and measuring `etl run`).
    Synth(SynthArgs),
    /// Derive dates' tables and reports again from the raw store alone (no network), following
    /// what each date's run fetched and carried (after an upgrade changes a definition).
    Rebuild(RebuildArgs),
    /// Publish a date harvested in shards: once every shard (`etl run --shard K/N`, K = 0..N-1)
    /// has committed, the date's tables and reports are computed from the shards' raw stores
    /// (no network) and published whole, as one `etl run` of the date would have. Takes the
    /// shards' own flags (publications, --via, caps), and --out the shards were given.
    #[command(args_override_self = true)]
    Publish(PublishArgs),
    /// GET a URL and exit 0 when it answers 2xx, else 1 (a container health check, where there
    /// is no shell or curl: `etl probe http://127.0.0.1:8080/status`).
    Probe(ProbeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// The URL to GET.
    pub url: String,
    /// Give up after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout: u64,
}

#[derive(Debug, Clone, Args)]
pub struct RebuildArgs {
    /// The date to rebuild.
    #[arg(long, value_name = "YYYY-MM-DD", required_unless_present = "from", conflicts_with_all = ["from", "to"])]
    pub date: Option<String>,
    /// Rebuild every date with a raw store from this one...
    #[arg(long, value_name = "YYYY-MM-DD", requires = "to")]
    pub from: Option<String>,
    /// ...to this one (inclusive), oldest first.
    #[arg(long, value_name = "YYYY-MM-DD", requires = "from")]
    pub to: Option<String>,
    /// The output root (as given to `etl run --out`): a directory, a local Delta output, or a
    /// lake on object storage (s3://…, reached with the AWS_* variables).
    #[arg(long, value_name = "DIR|URL", default_value = defaults::OUT)]
    pub out: PathBuf,
    /// With a lake: the local directory the rebuild works in [default: as etl run's].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Print only warnings and errors.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// How many shards the date was harvested in (the N of `--shard K/N`).
    #[arg(long, value_name = "N")]
    pub shards: u32,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ScheduleArgs {
    /// Run now, then every INTERVAL (such as 24h, 6h, 30m) [config: schedule.every].
    #[arg(long, value_name = "INTERVAL", conflicts_with = "at")]
    pub every: Option<String>,
    /// Run daily at HH:MM UTC [config: schedule.at].
    #[arg(long, value_name = "HH:MM")]
    pub at: Option<String>,
    /// Stop after this many scheduled runs (skipped dates count).
    #[arg(long, value_name = "N")]
    pub max_runs: Option<u32>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default; 0.0.0.0 exposes it to the network).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// The output root to serve (as given to `etl run --out`): a directory, or a lake on
    /// object storage (s3://bucket/prefix, reached with the AWS_* variables), whose reports are
    /// mirrored into --work-dir and refreshed every --refresh-every seconds.
    #[arg(long, value_name = "DIR|URL", default_value = defaults::OUT)]
    pub data: PathBuf,
    /// With a lake: where its reports are mirrored [default: as etl run's --work-dir].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// With a lake: look for newly published dates this often.
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub refresh_every: u64,
    /// Connections open at once, at most (more wait; lowered to fit the open-file limit).
    #[arg(long, value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_connections: u32,
    /// Close a connection that moves no byte for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub idle_timeout: u64,
    /// Close a connection whose request headers take longer than this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub header_timeout: u64,
    /// Log lines as text (stderr) or as JSON objects (stdout, for machines).
    #[arg(long, value_enum, env = "ETL_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl ServeArgs {
    /// The server's limits from the flags.
    pub fn limits(&self) -> crate::serve::Limits {
        crate::serve::Limits {
            max_connections: self.max_connections as usize,
            header_read: std::time::Duration::from_secs(self.header_timeout),
            idle: std::time::Duration::from_secs(self.idle_timeout),
            ..crate::serve::Limits::default()
        }
    }
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
    /// Answer 403 on every JSON API path, as Medium does to automated clients; GraphQL
    /// (`POST /_/graphql`), the HTML pages (`/pub-<id>`, `/@author<i>`) and feeds (`/feed/...`)
    /// still answer (try `--via auto`: it moves to GraphQL).
    #[arg(long)]
    pub json_closed: bool,
    /// Allow at most this many requests per second (a token bucket); beyond it answer 429 with
    /// `Retry-After: 1`, as a rate-limited host does (try `etl run --max-rps 0`).
    #[arg(long, value_name = "RPS")]
    pub rate_limit: Option<f64>,
    /// Answer 403 on the GraphQL endpoint too (with `--json-closed`, `--via auto` moves on to
    /// the HTML pages and feeds).
    #[arg(long)]
    pub graphql_closed: bool,
    /// Be the adversarial server: author 1's stories are a body of MB MiB streamed with no
    /// length, author 2's followings a gzip bomb inflating to MB MiB, author 3's stories nested
    /// 100,000 deep, author 4's values out of range (see `medium_synth::hostile`).
    #[arg(long, value_name = "MB", value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub hostile: Option<u32>,
    /// Serve the world as it is DAY days after 2026-11-27, listed newest first: each day one
    /// author in twenty publishes a story, one in ten follows someone new, and young stories
    /// gain claps (for trying `etl run --incremental` day after day).
    #[arg(long, value_name = "DAY", value_parser = clap::value_parser!(u32).range(0..=3_650))]
    pub day: Option<u32>,
    /// Write the whole harvest as a raw store into DIR (for `etl run --source DIR`) and exit
    /// instead of serving.
    #[arg(long, value_name = "DIR")]
    pub write_raw_store: Option<std::path::PathBuf>,
}

/// The flags of `etl run` (and `etl config`, `etl schedule`). A flag left out falls back to the
/// environment (`ETL_<FLAG>`), then the config file, then the default shown in its help.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// The run date (UTC): today, yesterday or YYYY-MM-DD. Names the output partitions.
    #[arg(long, default_value = defaults::DATE)]
    pub date: String,

    #[arg(long, value_name = "FILE", help = defaults::help("The config file", format_args!("./{} when it exists; env ETL_CONFIG", defaults::CONFIG_FILE)))]
    pub config: Option<PathBuf>,

    #[arg(long = "collection-id", value_name = "ID", help = defaults::help("A publication by collection id (repeatable)", format_args!("{}, Towards Data Science", defaults::COLLECTION_ID)))]
    pub collection_ids: Vec<String>,

    /// A publication by slug, such as towards-data-science (repeatable).
    #[arg(long = "publication", value_name = "SLUG")]
    pub publications: Vec<String>,

    #[arg(long, value_name = "URL", help = defaults::help("Medium, or any server that answers the same API", defaults::BASE_URL))]
    pub base_url: Option<String>,

    #[arg(long, value_name = "DIR|URL", help = defaults::help("The output root: raw/, tables/ and reports/ go under it; or a lake on object storage, s3://bucket/prefix (gs://, az://)", defaults::OUT))]
    pub out: Option<PathBuf>,

    /// How tables and reports are published: hive-partitioned Parquet files, or Delta tables
    /// partitioned by date (one commit a run, history kept). [default: parquet; delta on
    /// object storage]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub table_format: Option<crate::lake::TableFormat>,

    /// With a lake (object storage, or --table-format delta): the local directory a run works
    /// in before it publishes (a cache, rebuilt from the lake when deleted). [default:
    /// ~/.cache/medium-etl/<scheme>/<bucket>/<prefix>; OUT/.work for a local Delta output]
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    #[arg(long, value_name = "SECS", help = defaults::help("With a lake: upload the raw store's new pages this often (what a killed run can lose)", defaults::UPLOAD_EVERY_SECS))]
    pub upload_every: Option<f64>,

    #[arg(long, value_name = "SECS", help = defaults::help("With a lake: the date's lease (one writer at a time) lasts this long unrenewed, so a killed run keeps others out this long", defaults::LEASE_SECS))]
    pub lease_secs: Option<f64>,

    #[arg(long, value_name = "N", help = defaults::help("Requests in flight at once, across all authors", defaults::CONCURRENCY))]
    pub concurrency: Option<usize>,

    #[arg(long, value_name = "R", help = defaults::help("Requests started per second at most; 0 = no cap", defaults::MAX_RPS))]
    pub max_rps: Option<f64>,

    /// Fetch every page again, ignoring what the date's raw store already holds.
    #[arg(long)]
    pub refresh: bool,

    /// Ask only for what changed since the latest earlier date under --out: each stream is
    /// read newest first until a page brings nothing new or recent, and the rest is carried
    /// from that date (`etl schedule` runs this way unless --full).
    #[arg(long, conflicts_with = "full")]
    pub incremental: bool,

    /// Read every stream in full (the default of `etl run`; for `etl schedule`, turns off its
    /// incremental runs).
    #[arg(long)]
    pub full: bool,

    #[arg(long, value_name = "DAYS", help = defaults::help("Incremental runs: stories younger than this many days are read again (their claps still change)", defaults::LAG_DAYS))]
    pub lag: Option<u32>,

    #[arg(long, value_name = "N", help = defaults::help("Incremental runs: a full run when the last one is this many days old", defaults::FULL_EVERY_DAYS))]
    pub full_every: Option<u32>,

    /// Incremental runs: read every following list in full when the last full read is this
    /// many days old (otherwise only when its first page or Medium's count changed).
    #[arg(long, value_name = "N")]
    pub followings_every: Option<u32>,

    /// Exit 10 when a quality check fails (the date is published either way; the manifest
    /// lists the checks).
    #[arg(long)]
    pub strict: bool,

    #[arg(long, value_name = "PCT", help = defaults::help("Quality check: a table's row count may move this many percent from the previous date's", defaults::MAX_DRIFT_PCT))]
    pub max_drift: Option<f64>,

    /// Answer every request from this raw store directory (such as data/raw/date=2026-11-20 or
    /// data/sample) instead of the network.
    #[arg(long, value_name = "DIR")]
    pub source: Option<PathBuf>,

    /// Harvest shard K of N (K from 0): the authors whose user id hashes to K (every shard reads
    /// the publication's pages). The shard's output, raw store included, goes under
    /// OUT/shards/shard=K-of-N/ (an output root of its own); `etl publish --shards N` then publishes the date from
    /// all N. Env ETL_SHARD (an Indexed Job: `--shard $(JOB_COMPLETION_INDEX)/N`).
    #[arg(long, value_name = "K/N", env = "ETL_SHARD")]
    pub shard: Option<String>,

    /// Print only warnings and errors, and no progress bars.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// More log detail (-v: debug, -vv: trace).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[arg(long, value_enum, help = defaults::help("Log lines as text or as JSON objects (for machines)", defaults::LOG_FORMAT))]
    pub log_format: Option<LogFormat>,

    /// Harvest at most this many authors (first seen first); the cap is reported.
    #[arg(long, value_name = "N")]
    pub max_authors: Option<usize>,

    #[arg(long, value_name = "N", help = defaults::help("Page cap per stream; a warning says when it is reached", defaults::MAX_PAGES))]
    pub max_pages: Option<usize>,

    #[arg(long, value_parser = via_parser(), help = defaults::help("Where to read Medium: json (the legacy API), graphql (POST /_/graphql, what Medium's web app uses), html (pages' embedded state), rss (feeds), or auto: per request family JSON, then GraphQL, then HTML, then RSS, moving on when a door is closed (403, 404, a block page, a challenge that keeps coming back, success: false, a GraphQL field that is unavailable)", defaults::VIA))]
    pub via: Option<ViaMode>,

    #[arg(long, value_name = "SECS", help = defaults::help("Whole-request timeout in seconds", defaults::TIMEOUT_SECS))]
    pub timeout: Option<f64>,

    #[arg(long, value_name = "SECS", help = defaults::help("Connect timeout in seconds", defaults::CONNECT_TIMEOUT_SECS))]
    pub connect_timeout: Option<f64>,

    #[arg(long, value_name = "N", help = defaults::help("Retries after a failed attempt (timeouts, connection errors, 429, 5xx, malformed bodies)", defaults::RETRIES))]
    pub retries: Option<u32>,

    #[arg(long, value_name = "MIB", help = defaults::help("The largest response body accepted, in MiB after decompression; a larger one is an error naming the URL, and nothing of it is stored", defaults::MAX_BODY_MB))]
    pub max_body_mb: Option<u64>,

    #[arg(long, value_name = "SECS", help = defaults::help("First backoff in seconds; doubles with each retry, with jitter", defaults::BACKOFF_SECS))]
    pub backoff: Option<f64>,

    #[arg(long, value_name = "SECS", help = defaults::help("Longest wait between attempts, Retry-After included, in seconds", defaults::MAX_BACKOFF_SECS))]
    pub max_backoff: Option<f64>,

    #[arg(long, value_name = "TEXT", help = defaults::help("The User-Agent header; Medium refuses requests without one", defaults::USER_AGENT))]
    pub user_agent: Option<String>,

    /// Offer HTTP/2 to servers that support it; by default the client speaks HTTP/1.1 only,
    /// since Cloudflare refuses HTTP/2 from clients that are not browsers [env ETL_HTTP2].
    #[arg(long, overrides_with = "no_http2")]
    pub http2: bool,

    /// Speak HTTP/1.1 only (the default), overriding `http2` from the file or ETL_HTTP2.
    #[arg(long, overrides_with = "http2")]
    pub no_http2: bool,
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
        assert_eq!(a.concurrency, Some(32));
        assert_eq!(a.max_rps, Some(0.0));
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
        assert_eq!(
            a.base_url, None,
            "defaults are applied in config, after env and file"
        );
        assert_eq!(a.concurrency, None);
        assert!(Cli::try_parse_from(["etl", "run", "--concurrency", "x"]).is_err());
        // a later flag overrides an earlier one (scripts append overrides)
        let Command::Run(a) =
            Cli::try_parse_from(["etl", "run", "--max-rps", "0", "--max-rps", "20"])
                .unwrap()
                .command
        else {
            panic!("expected run")
        };
        assert_eq!(a.max_rps, Some(20.0));
    }
}
