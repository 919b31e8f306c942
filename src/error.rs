//! The crate's error types and the one function that maps them to process exit codes
//! ([`exit_code`]).
//!
//! Library code returns these typed errors; every variant carries the URL or path at fault so
//! that `main` can print one clear line. Only `main` turns them into a report. A stream that
//! did not reach its end for a reason that is not a failure (not carried, stopped) is not a
//! [`FetchError`]: see [`crate::run::Unfinished`].

use std::path::PathBuf;

use medium_api::via::{Addressing, Via};
use thiserror::Error;

/// Process exit codes, documented in the README ("Exit codes").
pub mod exit {
    /// The run finished and everything was fetched and written.
    pub const OK: u8 = 0;
    /// The run finished, but some authors or pages failed (listed in the summary).
    pub const PARTIAL: u8 = 1;
    /// Bad usage: an invalid flag value such as `--date 2026-02-30` (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// The publication does not exist (the server answered 404 or another non-retryable 4xx).
    pub const NOT_FOUND: u8 = 3;
    /// The host could not be reached (connection refused, DNS, timeouts after every retry).
    pub const UNREACHABLE: u8 = 4;
    /// The server answered something that is not Medium's JSON (HTML, truncated, `success: false`).
    pub const MALFORMED: u8 = 5;
    /// Reading or writing local files failed (raw store, outputs, `--source`).
    pub const IO: u8 = 6;
    /// The config file or an `ETL_*` variable is malformed (an unknown key, a bad value).
    pub const CONFIG: u8 = 7;
    /// The server refuses this client: a block page, or a challenge that did not clear after
    /// the retries (Cloudflare). Try later, slower, or another door (`--via auto`).
    pub const REFUSED: u8 = 8;
    /// Another run is writing the same date under the same output root (its pid and run id
    /// are in the message). `etl schedule` waits for it instead.
    pub const LOCKED: u8 = 9;
    /// `--strict`: the date was published, but a quality check failed (the manifest's
    /// `checks` say which and why).
    pub const CHECKS_FAILED: u8 = 10;
    /// `etl publish`: a shard of the date has not committed yet, or is being written (a
    /// re-run holds its lock); nothing was published. Retry later.
    pub const SHARDS_UNFINISHED: u8 = 11;
}

pub use medium_api::BodyError;

/// A failed request, after retries where retries apply.
#[derive(Debug, Error)]
pub enum FetchError {
    #[error("{url}: HTTP {status}{}", retry_note(*.attempts))]
    Status {
        url: String,
        status: u16,
        attempts: u32,
    },
    #[error("{url}: request timed out{}", retry_note(*.attempts))]
    Timeout { url: String, attempts: u32 },
    #[error("{url}: cannot connect: {message}{}", retry_note(*.attempts))]
    Connect {
        url: String,
        message: String,
        attempts: u32,
    },
    #[error("{url}: transfer failed: {message}{}", retry_note(*.attempts))]
    Transfer {
        url: String,
        message: String,
        attempts: u32,
    },
    #[error("{url}: malformed response: {kind}{}", retry_note(*.attempts))]
    Body {
        url: String,
        kind: BodyError,
        attempts: u32,
    },
    /// The body is longer than `--max-body-mb` (after decompression): not stored, not retried.
    #[error("{url}: the response body is larger than {} MiB (--max-body-mb); nothing of it was stored", limit >> 20)]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: not in the source store {dir} (expected {file})")]
    NotInSource {
        url: String,
        dir: PathBuf,
        file: PathBuf,
    },
    #[error("{url}: stored body {file} is malformed: {kind}")]
    StoredBody {
        url: String,
        file: PathBuf,
        kind: BodyError,
    },
    /// The stream cannot be requested in the chosen format (a publication given by id for
    /// HTML/RSS, an author without a username, followings outside JSON).
    #[error("{reason}")]
    Unaddressable { stream: String, reason: String },
    /// A publication feed named its authors only by display name.
    #[error(
        "{url}: the RSS feed names its {} author(s) only by display name ({}), not by username, so their stories and feeds cannot be harvested from RSS; use --via html or auto",
        names.len(),
        names.join(", ")
    )]
    AuthorsUnresolved { url: String, names: Vec<String> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An error and its causes on one line ("error sending request: connection refused"), each
/// cause added once.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn retry_note(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

impl FetchError {
    /// The URL of the request at fault (or the store path for store errors).
    pub fn url(&self) -> String {
        match self {
            FetchError::Status { url, .. }
            | FetchError::Timeout { url, .. }
            | FetchError::Connect { url, .. }
            | FetchError::Transfer { url, .. }
            | FetchError::Body { url, .. }
            | FetchError::TooLarge { url, .. }
            | FetchError::NotInSource { url, .. }
            | FetchError::StoredBody { url, .. }
            | FetchError::AuthorsUnresolved { url, .. } => url.clone(),
            FetchError::Unaddressable { stream, .. } => stream.clone(),
            FetchError::Store(e) => e.path().display().to_string(),
        }
    }

    /// The error of a request that posted `operation` (GraphQL: every request goes to one
    /// URL), its URL naming the operation and variables too.
    pub fn for_operation(mut self, operation: &str) -> FetchError {
        match &mut self {
            FetchError::Status { url, .. }
            | FetchError::Timeout { url, .. }
            | FetchError::Connect { url, .. }
            | FetchError::Transfer { url, .. } => *url = format!("{url} ({operation})"),
            // a GraphQL error names its operation itself
            FetchError::Body { url, kind, .. }
                if !matches!(kind, BodyError::Graphql(_) | BodyError::NotFound(_)) =>
            {
                *url = format!("{url} ({operation})")
            }
            _ => {}
        }
        self
    }

    /// Whether the answer says this door is closed, so that `--via auto` tries the next
    /// format: 403 / 404, a challenge or error page instead of data, or (replaying) a format
    /// the source store does not hold.
    pub fn is_closed_door(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => matches!(status, 403 | 404),
            FetchError::Body { kind, .. } | FetchError::StoredBody { kind, .. } => {
                kind.is_closed_door()
            }
            FetchError::NotInSource { .. } | FetchError::Unaddressable { .. } => true,
            _ => false,
        }
    }

    /// Whether asking again cannot help: a block page, a GraphQL `NotFound` or an error saying
    /// the field or operation does not exist ([`BodyError::is_final`]).
    pub fn is_final(&self) -> bool {
        matches!(self, FetchError::Body { kind, .. } | FetchError::StoredBody { kind, .. } if kind.is_final())
    }

    /// Whether the door is closed for the whole request family when the answer came through
    /// `via`: as [`FetchError::closes_family`], and for GraphQL, whose every request goes to one
    /// endpoint, any closed door but `NotFound` (a 404 there means no GraphQL at all).
    pub fn closes_family_via(&self, via: Via) -> bool {
        self.closes_family()
            || (via.format().addressing == Addressing::Graphql
                && matches!(self, FetchError::Status { .. } | FetchError::Body { .. })
                && self.is_closed_door()
                && !matches!(
                    self,
                    FetchError::Body {
                        kind: BodyError::NotFound(_),
                        ..
                    }
                ))
    }

    /// Whether the door is closed for the whole request family (403, a challenge page), not
    /// just for this one stream (404: that author or page may be gone): later streams of the
    /// family go straight to the next format.
    pub fn closes_family(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => *status == 403,
            FetchError::Body { kind, .. } => kind.closes_family(),
            _ => false,
        }
    }
}

/// Reading or writing the raw store failed.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: unreadable metadata: {message}")]
    Meta { path: PathBuf, message: String },
}

impl StoreError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn path(&self) -> &std::path::Path {
        match self {
            StoreError::Io { path, .. } | StoreError::Meta { path, .. } => path,
        }
    }
}

/// Building or publishing the tables and reports failed.
#[derive(Debug, Error)]
pub enum SinkError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: writing Parquet: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{what}: {source}")]
    Polars {
        what: String,
        #[source]
        source: polars::prelude::PolarsError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// Reading or writing the lake (object storage, or a local Delta output) failed.
#[derive(Debug, Error)]
pub enum LakeError {
    #[error("--out {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("{url}: {message}")]
    Store { url: String, message: String },
    #[error("{path}: {message}")]
    Local { path: PathBuf, message: String },
    #[error("the Delta table {table}: {reason}")]
    Delta { table: String, reason: String },
    #[error("{url}: the date is being written by {holder} (its lease runs until {until}); wait for it, or let the lease run out if its run was killed")]
    Leased {
        url: String,
        holder: String,
        until: String,
    },
}

/// Taking a date's lock failed: another run holds it, or the lock file cannot be opened.
#[derive(Debug, Error)]
pub enum LockError {
    #[error(
        "another run is writing date {date} under this output root ({holder}); it holds \
         {path} until it ends: wait for it, or use another --out"
    )]
    Busy {
        path: PathBuf,
        date: String,
        holder: String,
    },
    #[error("{path}: cannot take the date's lock: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LockError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LockError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Building the tables from a harvest, or the reports from the tables, failed.
#[derive(Debug, Error)]
pub enum TransformError {
    #[error("building the {table} table: {source}")]
    Arrow {
        table: &'static str,
        #[source]
        source: arrow::error::ArrowError,
    },
    /// The columns handed to a table do not match its schema by name.
    #[error("the {table} table: columns {actual:?} do not match its schema {expected:?}")]
    SchemaMismatch {
        table: &'static str,
        expected: Vec<String>,
        actual: Vec<String>,
    },
    #[error("computing {report}: {source}")]
    Polars {
        report: &'static str,
        #[source]
        source: polars::prelude::PolarsError,
    },
}

impl SinkError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SinkError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn polars(what: impl Into<String>, source: polars::prelude::PolarsError) -> Self {
        SinkError::Polars {
            what: what.into(),
            source,
        }
    }
}

/// Invalid settings: found once, at start, before anything runs.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("invalid --date {value:?}: {reason}")]
    Date { value: String, reason: String },
    #[error("invalid --base-url {value:?}: {reason}")]
    BaseUrl { value: String, reason: String },
    #[error("invalid {flag} {value:?}: {reason}")]
    Value {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("--source {path}: {reason}")]
    Source { path: PathBuf, reason: String },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("invalid value {value:?} in {var}")]
    Env { var: String, value: String },
    #[error("invalid value {value:?} in {var}: {reason}")]
    EnvValue {
        var: String,
        value: String,
        reason: String,
    },
    /// A setting the command needs was given nowhere.
    #[error("{what}")]
    Missing { what: &'static str },
}

/// Everything that can end a run early.
#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("publication {publication}: {source}")]
    Publication {
        publication: String,
        #[source]
        source: crate::run::Unfinished,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error(transparent)]
    Transform(#[from] TransformError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// The date's raw store holds pages from elsewhere than this run reads from.
    #[error(
        "{store}: the date's raw store holds pages from {stored}, but this run reads from \
         {requested}; pass --refresh to read every page from {requested} (stored pages are \
         replaced as they are read), or use another --out"
    )]
    OtherOrigin {
        store: PathBuf,
        stored: String,
        requested: String,
    },
    /// `etl rebuild` could not re-derive a date from its raw store alone.
    #[error("cannot rebuild {date} from the raw store: {}", missing.join("; "))]
    Rebuild { date: String, missing: Vec<String> },
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(String),
    /// The publish stage ended without an answer (a bug: it panicked).
    #[error("the publish stage stopped unexpectedly: {0}")]
    Publish(String),
    #[error("stopped before publishing; the pages fetched so far are kept in the raw store")]
    Cancelled,
    /// `etl publish` cannot publish the date from its shards yet (`unfinished`: a shard has
    /// not committed, or is being written; else the shards or the flags disagree).
    #[error("cannot publish {date} from {count} shard(s): {reason}")]
    Shards {
        date: String,
        count: u32,
        reason: String,
        unfinished: bool,
    },
}

/// The exit code an error earns: the one table, by error kind (the codes are [`exit`]).
pub fn exit_code(err: &RunError) -> u8 {
    match err {
        RunError::Config(
            ConfigError::File { .. } | ConfigError::Env { .. } | ConfigError::EnvValue { .. },
        ) => exit::CONFIG,
        RunError::Config(_) => exit::USAGE,
        RunError::Publication { source, .. } => match source {
            crate::run::Unfinished::Failed(e) => fetch_exit_code(e),
            crate::run::Unfinished::NotCarried { .. } => exit::OK,
            crate::run::Unfinished::Stopped { .. } => exit::OK,
        },
        RunError::Store(_)
        | RunError::Client(_)
        | RunError::Transform(_)
        | RunError::Sink(_)
        | RunError::Publish(_)
        | RunError::Runtime(_) => exit::IO,
        RunError::Lake(LakeError::Open { .. }) => exit::USAGE,
        RunError::Lake(LakeError::Leased { .. }) => exit::LOCKED,
        RunError::Lake(_) => exit::IO,
        RunError::Locked(LockError::Busy { .. }) => exit::LOCKED,
        RunError::OtherOrigin { .. } => exit::USAGE,
        RunError::Rebuild { .. } => exit::IO,
        RunError::Shards {
            unfinished: true, ..
        } => exit::SHARDS_UNFINISHED,
        RunError::Shards { .. } => exit::USAGE,
        RunError::Locked(LockError::Io { .. }) => exit::IO,
        RunError::Cancelled => exit::OK,
    }
}

/// The exit code of a failed request that ended a run (a publication that yielded nothing).
fn fetch_exit_code(e: &FetchError) -> u8 {
    match e {
        FetchError::Status { status, .. } if (400..500).contains(status) && *status != 429 => {
            exit::NOT_FOUND
        }
        FetchError::Status { .. }
        | FetchError::Timeout { .. }
        | FetchError::Connect { .. }
        | FetchError::Transfer { .. } => exit::UNREACHABLE,
        FetchError::Body {
            kind: BodyError::Blocked | BodyError::Challenge,
            ..
        } => exit::REFUSED,
        FetchError::Body { .. } | FetchError::StoredBody { .. } | FetchError::TooLarge { .. } => {
            exit::MALFORMED
        }
        FetchError::NotInSource { .. } | FetchError::Store(_) => exit::IO,
        FetchError::Unaddressable { .. } => exit::USAGE,
        FetchError::AuthorsUnresolved { .. } => exit::PARTIAL,
    }
}
