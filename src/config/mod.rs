//! Command-line values, the environment (`ETL_*`) and the config file (`etl.toml`) → one
//! validated [`Settings`], validated once, at start, so the running part cannot fail on
//! configuration. Layers: flags > environment > file > [`defaults`] (each default is defined
//! once, there). `etl config` prints each value with where it came from.

pub mod defaults;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use medium_api::endpoints::{is_safe_segment, PublicationRef};
use medium_api::via::ViaMode;
use reqwest::Url;

use crate::cli::RunArgs;
use crate::error::ConfigError;
use crate::lake::{LakeSettings, TableFormat};

/// The date a run is for (UTC). Names the partitions it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunDate(pub NaiveDate);

impl RunDate {
    /// Parses `today`, `yesterday` (UTC) or `YYYY-MM-DD`.
    pub fn parse(value: &str) -> Result<RunDate, ConfigError> {
        Self::parse_at(value, Utc::now().date_naive())
    }

    /// As [`RunDate::parse`], with "today" given.
    pub fn parse_at(value: &str, today: NaiveDate) -> Result<RunDate, ConfigError> {
        let err = |reason: &str| ConfigError::Date {
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "today" => return Ok(RunDate(today)),
            "yesterday" => {
                return today
                    .checked_sub_days(Days::new(1))
                    .map(RunDate)
                    .ok_or_else(|| err("out of range"))
            }
            _ => {}
        }
        Self::parse_iso(value)
    }

    /// Parses exactly `YYYY-MM-DD` (a real date).
    pub fn parse_iso(value: &str) -> Result<RunDate, ConfigError> {
        let err = |reason: &str| ConfigError::Date {
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let shape_ok = value.len() == 10
            && value.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        if !shape_ok {
            return Err(err("expected today, yesterday or YYYY-MM-DD"));
        }
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map(RunDate)
            .map_err(|_| err("no such date"))
    }
}

impl fmt::Display for RunDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl FromStr for RunDate {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunDate::parse(s)
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env(String),
    File(PathBuf),
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag => f.write_str("flag"),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <LogFormat as clap::ValueEnum>::from_str(s, false)
    }
}

/// When `etl schedule` runs the job (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    Every(Duration),
    /// Daily at this time of day.
    At(chrono::NaiveTime),
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Every(d) => write!(f, "every {}s", d.as_secs()),
            Schedule::At(t) => write!(f, "daily at {} UTC", t.format("%H:%M")),
        }
    }
}

impl Schedule {
    /// The schedule of `etl schedule`: `--every`, else `--at`, else the config file's
    /// `[schedule]`; errors name the flag and value at fault.
    pub fn resolve(
        every: Option<&str>,
        at: Option<&str>,
        file: Option<Schedule>,
    ) -> Result<Schedule, ConfigError> {
        let invalid = |flag: &'static str, value: &str| ConfigError::Value {
            flag,
            value: value.to_owned(),
            reason: "expected 24h, 30m, 1h30m (up to 366d) or HH:MM".into(),
        };
        match (every, at) {
            (Some(e), _) => parse_interval(e)
                .map(Schedule::Every)
                .ok_or_else(|| invalid("--every", e)),
            (None, Some(a)) => parse_time_of_day(a)
                .map(Schedule::At)
                .ok_or_else(|| invalid("--at", a)),
            (None, None) => file.ok_or(ConfigError::Missing {
                what: "etl schedule needs --every or --at (or [schedule] in the config file)",
            }),
        }
    }

    /// The config file's `[schedule]`: exactly one of `every` and `at`.
    fn from_file(config: &ScheduleConfig) -> Result<Schedule, ConfigError> {
        let invalid = |flag: &'static str, value: &str, reason: &str| ConfigError::Value {
            flag,
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        match (&config.every, &config.at) {
            (Some(e), None) => parse_interval(e).map(Schedule::Every).ok_or_else(|| {
                invalid(
                    "schedule.every",
                    e,
                    "expected an interval such as 24h, 30m or 1h30m",
                )
            }),
            (None, Some(a)) => parse_time_of_day(a).map(Schedule::At).ok_or_else(|| {
                invalid("schedule.at", a, "expected a UTC time of day such as 02:00")
            }),
            _ => Err(invalid(
                "schedule",
                "every and at",
                "give exactly one of every or at",
            )),
        }
    }
}

/// The longest `--every`: a year.
pub const MAX_INTERVAL_SECS: u64 = 366 * 86_400;

/// Parses `24h`, `30m`, `90s`, `1h30m` or `2d`, at most [`MAX_INTERVAL_SECS`] (`None` beyond:
/// the sum is checked, so `213503982334602d` cannot wrap to a minute).
pub fn parse_interval(value: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut digits = String::new();
    for c in value.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        let unit: u64 = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    (digits.is_empty() && total > 0 && total <= MAX_INTERVAL_SECS)
        .then(|| Duration::from_secs(total))
}

/// Parses `HH:MM` (UTC).
pub fn parse_time_of_day(value: &str) -> Option<chrono::NaiveTime> {
    chrono::NaiveTime::parse_from_str(value.trim(), "%H:%M").ok()
}

/// The config file, `etl.toml`. Every key is optional; an unknown key is an error.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub collection_ids: Option<Vec<String>>,
    pub publications: Option<Vec<String>>,
    pub base_url: Option<String>,
    pub out: Option<PathBuf>,
    pub concurrency: Option<usize>,
    pub max_rps: Option<f64>,
    pub timeout: Option<f64>,
    pub connect_timeout: Option<f64>,
    pub retries: Option<u32>,
    pub max_body_mb: Option<u64>,
    pub backoff: Option<f64>,
    pub max_backoff: Option<f64>,
    pub user_agent: Option<String>,
    pub http2: Option<bool>,
    pub max_authors: Option<usize>,
    pub max_pages: Option<usize>,
    pub log_format: Option<LogFormat>,
    pub via: Option<ViaMode>,
    pub incremental: Option<bool>,
    pub lag: Option<u32>,
    pub full_every: Option<u32>,
    pub followings_every: Option<u32>,
    pub strict: Option<bool>,
    pub max_drift: Option<f64>,
    pub schedule: Option<ScheduleConfig>,
    pub table_format: Option<TableFormat>,
    pub work_dir: Option<PathBuf>,
    pub upload_every: Option<f64>,
    pub lease_secs: Option<f64>,
    /// `[storage]`: object_store options for an `s3://`, `gs://` or `az://` `out`
    /// (`aws_endpoint = "http://127.0.0.1:9000"`, `aws_region`, …).
    pub storage: Option<std::collections::BTreeMap<String, String>>,
}

/// `[schedule]` in the config file: `every = "24h"` or `at = "02:00"` (UTC).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub every: Option<String>,
    pub at: Option<String>,
}

impl FileConfig {
    /// Reads and parses a config file; errors name the file and the key or line at fault.
    pub fn load(path: &std::path::Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            ConfigError::File {
                path: path.to_path_buf(),
                message: match line {
                    Some(line) => format!("line {line}: {}", e.message()),
                    None => e.message().to_owned(),
                },
            }
        })
    }
}

/// One shard of a sharded harvest (`--shard K/N`): the authors whose user id hashes to
/// `index` modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The most shards a date can be harvested in.
    pub const MAX: u32 = 4096;

    /// Parses `K/N` (0 <= K < N <= [`Shard::MAX`]).
    pub fn parse(text: &str) -> Result<Shard, ConfigError> {
        let invalid = |reason: &str| ConfigError::Value {
            flag: "--shard",
            value: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| invalid("expected K/N, such as 0/4"))?;
        let parse = |v: &str| v.trim().parse::<u32>().ok();
        let (Some(index), Some(count)) = (parse(k), parse(n)) else {
            return Err(invalid("expected K/N with whole numbers, such as 0/4"));
        };
        if count == 0 || count > Shard::MAX {
            return Err(invalid(&format!("N must be from 1 to {}", Shard::MAX)));
        }
        if index >= count {
            return Err(invalid("K must be from 0 to N-1"));
        }
        Ok(Shard { index, count })
    }

    /// Whether the author `user_id` is this shard's: FNV-1a (64 bit) of the id's bytes,
    /// modulo the shard count. The hash is fixed (not std's seeded one), so every shard and
    /// every version assigns an author to the same shard.
    pub fn owns(&self, user_id: &str) -> bool {
        shard_of(user_id, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard of `count` that `user_id` belongs to ([`Shard::owns`]).
pub fn shard_of(user_id: &str, count: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in user_id.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(count.max(1))) as u32
}

/// How the HTTP client behaves (`sources::medium::client`); built and validated here.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub base_url: Url,
    pub user_agent: String,
    /// Requests in flight at once, across all authors.
    pub concurrency: usize,
    /// Requests started per second at most; `None` = no cap.
    pub max_rps: Option<f64>,
    pub connect_timeout: Duration,
    /// Whole-request timeout, body included.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    /// The largest response body accepted, in decoded bytes.
    pub max_body: u64,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Offer HTTP/2 (ALPN); else HTTP/1.1 only.
    pub http2: bool,
    /// Credentials given in the base URL (`http://user:pass@host`), sent as HTTP basic auth;
    /// the base URL itself never holds them, so no URL shown or written does.
    pub basic_auth: Option<BasicAuth>,
}

/// A user name and password for HTTP basic auth.
pub type BasicAuth = (String, Option<String>);

impl ClientSettings {
    /// The defaults ([`defaults`], suited to medium.com); tests shorten the timeouts and
    /// backoff.
    pub fn new(base_url: Url) -> Self {
        let secs = Duration::from_secs_f64;
        ClientSettings {
            base_url,
            user_agent: defaults::USER_AGENT.into(),
            concurrency: defaults::CONCURRENCY,
            max_rps: Some(defaults::MAX_RPS).filter(|r| *r > 0.0),
            connect_timeout: secs(defaults::CONNECT_TIMEOUT_SECS),
            timeout: secs(defaults::TIMEOUT_SECS),
            retries: defaults::RETRIES,
            max_body: defaults::MAX_BODY_MB << 20,
            backoff_base: secs(defaults::BACKOFF_SECS),
            backoff_max: secs(defaults::MAX_BACKOFF_SECS),
            http2: defaults::HTTP2,
            basic_auth: None,
        }
    }
}

/// How far an incremental run carries from earlier dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarryPolicy {
    /// Days within which claps still change (`--lag`).
    pub lag_days: u32,
    /// A full run at least every this many days (`--full-every`).
    pub full_every_days: u32,
    /// Every following list read in full at least every this many days (`--followings-every`).
    pub followings_every_days: Option<u32>,
}

/// Everything one run needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub date: RunDate,
    pub publications: Vec<PublicationRef>,
    /// The output root the run writes (a shard's own root under `shards/` for `--shard`); with
    /// a lake, the local work directory the run works in before it publishes to the lake.
    pub out: PathBuf,
    /// Publish to this lake (`--out s3://…`, or `--table-format delta`), from `out`.
    pub lake: Option<LakeSettings>,
    pub table_format: TableFormat,
    /// Replay from this raw store instead of the network.
    pub source: Option<PathBuf>,
    /// `--source s3://…/raw/date=D`: the raw store in a lake that `source` is a local copy of
    /// (brought before the run).
    pub source_lake: Option<LakeSettings>,
    /// `--shard K/N`: harvest only the authors of this shard.
    pub shard: Option<Shard>,
    /// Replay from these raw stores, the first that holds a page answering (`etl publish`:
    /// the shards' stores); `source` then names the directory holding them.
    pub shard_sources: Vec<PathBuf>,
    pub refresh: bool,
    pub quiet: bool,
    pub verbose: u8,
    pub log_format: LogFormat,
    pub max_authors: Option<usize>,
    pub max_pages: usize,
    /// Which formats to read (`--via`).
    pub via: ViaMode,
    /// Carry from earlier dates what did not change (`--incremental`).
    pub incremental: bool,
    /// How far carrying goes (`--lag`, `--full-every`, `--followings-every`).
    pub carry: CarryPolicy,
    /// Exit [`crate::error::exit::CHECKS_FAILED`] when a quality check fails (`--strict`).
    pub strict: bool,
    /// Quality check `row_drift`'s threshold, in percent (`--max-drift`).
    pub max_drift_pct: f64,
    /// `etl rebuild`: re-derive the date from its own raw store, following its recorded
    /// decisions (no network, no origin check).
    pub rebuild: bool,
    pub client: ClientSettings,
    pub schedule: Option<Schedule>,
    /// The command line as given (recorded in the manifest).
    pub arguments: Vec<String>,
    /// Every setting as `(key, value, origin)`, for `etl config`.
    pub provenance: Vec<(&'static str, String, Origin)>,
}

fn positive_secs(l: &Layers<'_>, flag: &'static str, v: f64) -> Result<Duration, ConfigError> {
    let ok = v.is_finite() && v > 0.0 && v < 86_400.0;
    l.check(
        flag,
        v,
        ok,
        "expected a number of seconds above 0 and below a day",
    )?;
    Ok(Duration::from_secs_f64(v))
}

/// A setting's value as `etl config` shows it: strings and paths quoted, numbers as written,
/// named choices quoted by name.
trait Shown: FromStr + Clone {
    fn shown(&self) -> String;
}

macro_rules! shown_by_debug {
    ($($t:ty),*) => {$(impl Shown for $t {
        fn shown(&self) -> String {
            format!("{self:?}")
        }
    })*};
}
shown_by_debug!(String, PathBuf, usize, u32, u64, f64, bool);

macro_rules! shown_by_name {
    ($($t:ty),*) => {$(impl Shown for $t {
        fn shown(&self) -> String {
            format!("{:?}", self.to_string())
        }
    })*};
}
shown_by_name!(ViaMode, LogFormat, TableFormat);

/// Picks setting `$key` from the layers, else `$default`: `$key` names the field of the flags
/// (`RunArgs`) and of the file (`FileConfig`), the `ETL_*` variable and the `etl config` line.
macro_rules! pick {
    ($l:expr, $args:expr, $file:expr, $key:ident, $default:expr) => {
        $l.pick(
            stringify!($key),
            $args.$key.clone(),
            $file.$key.clone(),
            $default,
        )
    };
}

/// As [`pick!`] for a setting without a default.
macro_rules! pick_opt {
    ($l:expr, $args:expr, $file:expr, $key:ident, $default:expr) => {
        $l.pick_opt(
            stringify!($key),
            $args.$key.clone(),
            $file.$key.clone(),
            $default,
        )
    };
}

/// The layers a setting is looked up in: flags > environment > file > defaults.
struct Layers<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    file_path: Option<PathBuf>,
    provenance: Vec<(&'static str, String, Origin)>,
}

impl Layers<'_> {
    /// As [`check`], naming where the value came from: an `ETL_*` variable or the config file
    /// is a config error (exit 7) naming it; a flag is a usage error (exit 2). `flag` is
    /// `--key-name`, the setting's key with dashes.
    fn check(
        &self,
        flag: &'static str,
        value: impl fmt::Display,
        ok: bool,
        expected: &str,
    ) -> Result<(), ConfigError> {
        if ok {
            return Ok(());
        }
        let key = flag.trim_start_matches('-').replace('-', "_");
        let origin = self
            .provenance
            .iter()
            .rev()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, o)| o.clone());
        Err(match origin {
            Some(Origin::Env(var)) => ConfigError::EnvValue {
                var,
                value: value.to_string(),
                reason: expected.to_owned(),
            },
            Some(Origin::File(path)) => ConfigError::File {
                path,
                message: format!("{key} = {value}: {expected}"),
            },
            _ => ConfigError::Value {
                flag,
                value: value.to_string(),
                reason: expected.to_owned(),
            },
        })
    }

    /// Picks `key`'s value from the first layer that has it, else `default`.
    fn pick<T: Shown>(
        &mut self,
        key: &'static str,
        flag: Option<T>,
        file: Option<T>,
        default: T,
    ) -> Result<T, ConfigError> {
        let picked = self.pick_opt(key, flag, file, Some(default.clone()))?;
        Ok(picked.unwrap_or(default))
    }

    /// Picks `key`'s value from the first layer that has it; `None` when none has and there
    /// is no default.
    fn pick_opt<T: Shown>(
        &mut self,
        key: &'static str,
        flag: Option<T>,
        file: Option<T>,
        default: Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        let var = format!("ETL_{}", key.to_ascii_uppercase());
        let (value, origin) = if let Some(v) = flag {
            (Some(v), Origin::Flag)
        } else if let Some(text) = (self.env)(&var) {
            let v = text.trim().parse::<T>().map_err(|_| ConfigError::Env {
                var: var.clone(),
                value: text.clone(),
            })?;
            (Some(v), Origin::Env(var))
        } else if let Some(v) = file {
            let path = self.file_path.clone().unwrap_or_default();
            (Some(v), Origin::File(path))
        } else {
            (default, Origin::Default)
        };
        let shown = value
            .as_ref()
            .map(Shown::shown)
            .unwrap_or_else(|| "(none)".into());
        self.provenance.push((key, shown, origin));
        Ok(value)
    }

    /// Like [`Layers::pick`] for a list; the environment holds it comma-separated.
    fn pick_list(
        &mut self,
        key: &'static str,
        flag: &[String],
        file: Option<Vec<String>>,
    ) -> Vec<String> {
        let var = format!("ETL_{}", key.to_ascii_uppercase());
        let (value, origin) = if !flag.is_empty() {
            (flag.to_vec(), Origin::Flag)
        } else if let Some(text) = (self.env)(&var) {
            let items = text
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            (items, Origin::Env(var))
        } else if let Some(v) = file {
            (v, Origin::File(self.file_path.clone().unwrap_or_default()))
        } else {
            (Vec::new(), Origin::Default)
        };
        self.provenance.push((key, format!("{value:?}"), origin));
        value
    }
}

impl Settings {
    /// Resolves the settings of a run from its flags, the process environment and the config
    /// file.
    pub fn from_args(args: &RunArgs) -> Result<Settings, ConfigError> {
        Self::resolve(args, &|var| std::env::var(var).ok())
    }

    /// As [`Settings::from_args`], with the environment given (for tests).
    pub fn resolve(
        args: &RunArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let date = RunDate::parse(&args.date)?;
        let file_path = match (&args.config, env("ETL_CONFIG")) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(p)) => Some(PathBuf::from(p)),
            (None, None) => Some(PathBuf::from(defaults::CONFIG_FILE)).filter(|p| p.is_file()),
        };
        let file = match &file_path {
            Some(p) => FileConfig::load(p)?,
            None => FileConfig::default(),
        };
        let mut l = Layers {
            env,
            file_path,
            provenance: Vec::new(),
        };
        let publications = publications(&mut l, args, &file)?;
        // picked in this order (`etl config` lists them so), each checked as it is picked
        let f = &file;
        let (base_url, credentials) =
            base_url(pick!(l, args, f, base_url, defaults::BASE_URL.into())?)?;
        if let Some(entry) = l
            .provenance
            .iter_mut()
            .rev()
            .find(|(k, _, _)| *k == "base_url")
        {
            entry.1 = redact(&entry.1);
        }
        let out: PathBuf = pick!(l, args, f, out, defaults::OUT.into())?;
        let shown = out.display().to_string();
        l.check(
            "--out",
            &shown,
            !shown.trim().is_empty(),
            "expected a directory",
        )?;
        let remote = crate::lake::is_url(&shown);
        let format_default = match remote {
            true => TableFormat::Delta,
            false => TableFormat::Parquet,
        };
        let table_format = pick!(l, args, f, table_format, format_default)?;
        l.check(
            "--table-format",
            table_format,
            !(remote && table_format == TableFormat::Parquet),
            "delta on object storage: it has no rename, so hive Parquet files could not be published whole",
        )?;
        let work_dir = pick_opt!(l, args, f, work_dir, None)?;
        let work_dir_given = work_dir.is_some();
        let upload_every = pick!(l, args, f, upload_every, defaults::UPLOAD_EVERY_SECS)?;
        l.check(
            "--upload-every",
            upload_every,
            upload_every >= 0.1,
            "expected 0.1 seconds or more",
        )?;
        let upload_every = positive_secs(&l, "--upload-every", upload_every)?;
        let lease_secs = pick!(l, args, f, lease_secs, defaults::LEASE_SECS)?;
        l.check(
            "--lease-secs",
            lease_secs,
            (1.0..86_400.0).contains(&lease_secs),
            "expected 1 to 86399 seconds",
        )?;
        let lease_ttl = Duration::from_secs_f64(lease_secs);
        let lake = match (remote, table_format) {
            (false, TableFormat::Parquet) => None,
            (true, _) => {
                let url = url::Url::parse(&shown).map_err(|e| ConfigError::Value {
                    flag: "--out",
                    value: shown.clone(),
                    reason: format!("not a URL: {e}"),
                })?;
                if !matches!(
                    url.scheme(),
                    "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "azure" | "file"
                ) {
                    return Err(ConfigError::Value {
                        flag: "--out",
                        value: shown.clone(),
                        reason: "expected s3://, gs://, az:// (or abfs://), file:// or a directory"
                            .into(),
                    });
                }
                let work = work_dir.unwrap_or_else(|| crate::lake::default_work_dir(&url));
                Some((url, work))
            }
            (false, TableFormat::Delta) => {
                let dir = std::path::absolute(&out).map_err(|e| ConfigError::Value {
                    flag: "--out",
                    value: shown.clone(),
                    reason: e.to_string(),
                })?;
                let url = url::Url::from_directory_path(&dir).map_err(|()| ConfigError::Value {
                    flag: "--out",
                    value: shown.clone(),
                    reason: "not a directory path".into(),
                })?;
                let work = work_dir.unwrap_or_else(|| out.join(crate::layout::WORK_DIR));
                Some((url, work))
            }
        };
        let lake = lake.map(|(url, work)| {
            let options: Vec<(String, String)> = f
                .storage
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (k, _) in &options {
                l.provenance.push((
                    "storage",
                    format!("{k} = (set)"),
                    Origin::File(l.file_path.clone().unwrap_or_default()),
                ));
            }
            let from_out = l
                .provenance
                .iter()
                .find(|(k, _, _)| *k == "out")
                .map(|(_, _, o)| o.clone())
                .unwrap_or(Origin::Default);
            l.provenance.push(("lake", url.to_string(), from_out));
            if !work_dir_given {
                l.provenance.push((
                    "work_dir (this lake's default)",
                    work.display().to_string(),
                    Origin::Default,
                ));
            }
            (
                LakeSettings {
                    url,
                    options,
                    upload_every,
                    lease_ttl,
                },
                work,
            )
        });
        let concurrency = pick!(l, args, f, concurrency, defaults::CONCURRENCY)?;
        let ok = (1..=1024).contains(&concurrency);
        l.check("--concurrency", concurrency, ok, "expected 1 to 1024")?;
        let max_rps = pick!(l, args, f, max_rps, defaults::MAX_RPS)?;
        let ok = max_rps == 0.0 || (0.001..=100_000.0).contains(&max_rps);
        l.check(
            "--max-rps",
            max_rps,
            ok,
            "expected 0 (no cap) or 0.001 to 100000",
        )?;
        let max_pages = pick!(l, args, f, max_pages, defaults::MAX_PAGES)?;
        l.check(
            "--max-pages",
            max_pages,
            max_pages > 0,
            "expected 1 or more",
        )?;
        let max_authors = pick_opt!(l, args, f, max_authors, None)?;
        let via = pick!(l, args, f, via, defaults::VIA)?;
        let timeout = pick!(l, args, f, timeout, defaults::TIMEOUT_SECS)?;
        let connect_timeout = pick!(l, args, f, connect_timeout, defaults::CONNECT_TIMEOUT_SECS)?;
        let retries = pick!(l, args, f, retries, defaults::RETRIES)?;
        l.check("--retries", retries, retries <= 100, "expected 0 to 100")?;
        let max_body_mb = pick!(l, args, f, max_body_mb, defaults::MAX_BODY_MB)?;
        let ok = (1..=4096).contains(&max_body_mb);
        l.check("--max-body-mb", max_body_mb, ok, "expected 1 to 4096 (MiB)")?;
        let backoff = pick!(l, args, f, backoff, defaults::BACKOFF_SECS)?;
        let max_backoff = pick!(l, args, f, max_backoff, defaults::MAX_BACKOFF_SECS)?;
        let user_agent = pick!(l, args, f, user_agent, defaults::USER_AGENT.into())?;
        let http2_flag = match (args.http2, args.no_http2) {
            (true, _) => Some(true),
            (false, true) => Some(false),
            (false, false) => None,
        };
        let http2 = l.pick("http2", http2_flag, f.http2, defaults::HTTP2)?;
        let log_format = pick!(l, args, f, log_format, defaults::LOG_FORMAT)?;
        let incremental_flag = match (args.incremental, args.full) {
            (true, _) => Some(true),
            (false, true) => Some(false),
            (false, false) => None,
        };
        let incremental = l.pick("incremental", incremental_flag, f.incremental, false)?;
        let lag = pick!(l, args, f, lag, defaults::LAG_DAYS)?;
        l.check("--lag", lag, lag <= 3_650, "expected 0 to 3650 days")?;
        let full_every = pick!(l, args, f, full_every, defaults::FULL_EVERY_DAYS)?;
        let ok = (1..=3_650).contains(&full_every);
        l.check("--full-every", full_every, ok, "expected 1 to 3650 days")?;
        let strict = l.pick("strict", args.strict.then_some(true), f.strict, false)?;
        let max_drift = pick!(l, args, f, max_drift, defaults::MAX_DRIFT_PCT)?;
        let ok = max_drift.is_finite() && (0.0..=1e6).contains(&max_drift);
        l.check("--max-drift", max_drift, ok, "expected a percentage from 0")?;
        let followings_every = pick_opt!(l, args, f, followings_every, None)?;
        if let Some(n) = followings_every {
            let ok = (1..=3_650).contains(&n);
            l.check("--followings-every", n, ok, "expected 1 to 3650 days")?;
        }
        let schedule = f.schedule.as_ref().map(Schedule::from_file).transpose()?;
        if let Some(s) = &schedule {
            let origin = Origin::File(l.file_path.clone().unwrap_or_default());
            l.provenance.push(("schedule", s.to_string(), origin));
        }
        let source_url = match &args.source {
            Some(dir) if crate::lake::is_url(&dir.to_string_lossy()) => {
                let text = dir.to_string_lossy().into_owned();
                Some(url::Url::parse(&text).map_err(|e| ConfigError::Source {
                    path: dir.clone(),
                    reason: format!("not a URL: {e}"),
                })?)
            }
            _ => None,
        };
        if let Some(dir) = args.source.as_ref().filter(|_| source_url.is_none()) {
            if !dir.is_dir() {
                return Err(ConfigError::Source {
                    path: dir.clone(),
                    reason: "not a directory".into(),
                });
            }
        }
        let mut client = ClientSettings::new(base_url);
        client.basic_auth = credentials;
        if !user_agent.trim().is_empty() {
            client.user_agent = user_agent;
        }
        client.concurrency = concurrency;
        client.max_rps = (max_rps > 0.0).then_some(max_rps);
        client.timeout = positive_secs(&l, "--timeout", timeout)?;
        client.connect_timeout = positive_secs(&l, "--connect-timeout", connect_timeout)?;
        client.retries = retries;
        client.max_body = max_body_mb << 20;
        client.backoff_base = positive_secs(&l, "--backoff", backoff)?;
        client.backoff_max = positive_secs(&l, "--max-backoff", max_backoff)?;
        client.http2 = http2;
        let shard = args.shard.as_deref().map(Shard::parse).transpose()?;
        let (out, lake) = match lake {
            Some((settings, work)) => {
                let settings = match shard {
                    Some(s) => settings.shard_part(s.index, s.count),
                    None => settings,
                };
                (work, Some(settings))
            }
            None => (out, None),
        };
        let out = match shard {
            Some(s) => crate::layout::shard_root(&out, s.index, s.count),
            None => out,
        };
        // a raw store in a lake is replayed from a local copy, kept under the output root
        let (source, source_lake) = match source_url {
            Some(url) => {
                let dir = out.join(".sources").join(crate::lake::url_dir(&url));
                let settings = LakeSettings {
                    url,
                    options: f
                        .storage
                        .iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    upload_every,
                    lease_ttl,
                };
                (Some(dir), Some(settings))
            }
            None => (args.source.clone(), None),
        };
        if let Some(s) = shard {
            // clap reads ETL_SHARD itself: say which of the two it was
            let origin = match std::env::var("ETL_SHARD") {
                Ok(v) if Some(v.as_str()) == args.shard.as_deref() => {
                    Origin::Env("ETL_SHARD".into())
                }
                _ => Origin::Flag,
            };
            l.provenance.push(("shard", s.to_string(), origin.clone()));
            if let Some(lake) = &lake {
                l.provenance.push((
                    "lake (the shard's part)",
                    lake.url.to_string(),
                    origin.clone(),
                ));
            }
            l.provenance
                .push(("out (the shard's root)", out.display().to_string(), origin));
        }
        Ok(Settings {
            date,
            publications,
            out,
            lake,
            table_format,
            source,
            source_lake,
            shard,
            shard_sources: Vec::new(),
            refresh: args.refresh,
            quiet: args.quiet,
            verbose: args.verbose,
            log_format,
            max_authors,
            max_pages,
            via,
            incremental,
            carry: CarryPolicy {
                lag_days: lag,
                full_every_days: full_every,
                followings_every_days: followings_every,
            },
            rebuild: false,
            strict,
            max_drift_pct: max_drift,
            client,
            schedule,
            arguments: Vec::new(),
            provenance: l.provenance,
        })
    }

    /// The effective configuration, one `key = value  # origin` line each (for `etl config`).
    pub fn describe(&self) -> String {
        let width = self
            .provenance
            .iter()
            .map(|(k, v, _)| k.len() + v.len() + 3)
            .max()
            .unwrap_or(0)
            .min(36);
        let mut out = String::new();
        for (key, value, origin) in &self.provenance {
            let line = format!("{key} = {value}");
            out.push_str(&format!("{line:<width$}  # {origin}\n"));
        }
        out
    }
}

/// The publications of a run: collection ids, then slugs, each checked, de-duplicated; the
/// default publication when none is given.
fn publications(
    l: &mut Layers<'_>,
    args: &RunArgs,
    file: &FileConfig,
) -> Result<Vec<PublicationRef>, ConfigError> {
    let ids = l.pick_list(
        "collection_ids",
        &args.collection_ids,
        file.collection_ids.clone(),
    );
    let slugs = l.pick_list(
        "publications",
        &args.publications,
        file.publications.clone(),
    );
    let mut publications = Vec::new();
    for id in &ids {
        if !(is_safe_segment(id) && id.bytes().all(|b| b.is_ascii_alphanumeric())) {
            return Err(ConfigError::Value {
                flag: "--collection-id",
                value: id.clone(),
                reason: "expected a collection id such as 7f60cf5620c9".into(),
            });
        }
        publications.push(PublicationRef::Id(id.clone()));
    }
    for slug in &slugs {
        if !is_safe_segment(slug) {
            return Err(ConfigError::Value {
                flag: "--publication",
                value: slug.clone(),
                reason: "expected a publication slug such as towards-data-science".into(),
            });
        }
        publications.push(PublicationRef::Slug(slug.clone()));
    }
    if publications.is_empty() {
        publications.push(PublicationRef::Id(defaults::COLLECTION_ID.into()));
    }
    let mut seen = std::collections::HashSet::new();
    publications.retain(|p| seen.insert(p.clone()));
    Ok(publications)
}

/// The base URL: an http:// or https:// URL with a host.
/// `text` with the credentials of any URL in it (`http://user:secret@host`) replaced by `***`,
/// for everything that is shown or written: the manifest's command line, `etl config`, errors.
pub fn redact(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let (head, rest) = text.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    format!("{head}{authority}{}", redact(tail))
}

/// The base URL without credentials, and the credentials (sent as HTTP basic auth), so that no
/// URL the run shows, logs or publishes carries them.
fn base_url(text: String) -> Result<(Url, Option<BasicAuth>), ConfigError> {
    let mut url = Url::parse(&text).map_err(|e| ConfigError::BaseUrl {
        value: redact(&text),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::BaseUrl {
            value: text,
            reason: "expected an http:// or https:// URL with a host".into(),
        });
    }
    let credentials = (!url.username().is_empty()).then(|| {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        (decode(url.username()), url.password().map(decode))
    });
    // Url's setters only fail for URLs without a host, checked above
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok((url, credentials))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit_code;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn parses_today_yesterday_and_iso_dates() {
        let today = d("2026-03-01");
        assert_eq!(RunDate::parse_at("today", today).unwrap().0, today);
        assert_eq!(
            RunDate::parse_at("Yesterday", today).unwrap().0,
            d("2026-02-28")
        );
        assert_eq!(
            RunDate::parse_at("2024-02-29", today).unwrap().to_string(),
            "2024-02-29"
        );
    }

    fn args(flags: &[&str]) -> crate::cli::RunArgs {
        use clap::Parser;
        let mut argv = vec!["etl", "run"];
        argv.extend_from_slice(flags);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Run(a) => a,
            _ => unreachable!(),
        }
    }

    fn origin_of(s: &Settings, key: &str) -> Origin {
        s.provenance
            .iter()
            .find(|(k, _, _)| *k == key)
            .unwrap()
            .2
            .clone()
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("etl.toml");
        std::fs::write(
            &file,
            "concurrency = 3\nmax_rps = 2.5\nretries = 9\ncollection_ids = [\"abc123\"]\n[schedule]\nat = \"02:00\"\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let env = |var: &str| match var {
            "ETL_MAX_RPS" => Some("7".to_owned()),
            "ETL_RETRIES" => Some("5".to_owned()),
            _ => None,
        };
        let s = Settings::resolve(&args(&["--config", f, "--retries", "1"]), &env).unwrap();
        assert_eq!(s.client.retries, 1);
        assert_eq!(origin_of(&s, "retries"), Origin::Flag);
        assert_eq!(s.client.max_rps, Some(7.0));
        assert_eq!(origin_of(&s, "max_rps"), Origin::Env("ETL_MAX_RPS".into()));
        assert_eq!(s.client.concurrency, 3);
        assert_eq!(origin_of(&s, "concurrency"), Origin::File(file.clone()));
        assert_eq!(s.publications, vec![PublicationRef::Id("abc123".into())]);
        assert_eq!(s.client.timeout, Duration::from_secs(30));
        assert_eq!(origin_of(&s, "timeout"), Origin::Default);
        assert_eq!(
            s.schedule,
            Some(Schedule::At(
                chrono::NaiveTime::from_hms_opt(2, 0, 0).unwrap()
            ))
        );
        let text = s.describe();
        assert!(text.contains("concurrency = 3"), "{text}");
        assert!(
            text.contains(&format!("# file {}", file.display())),
            "{text}"
        );
        assert!(text.contains("# env ETL_MAX_RPS"), "{text}");
    }

    #[test]
    fn an_unknown_key_names_the_key_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("etl.toml");
        std::fs::write(&file, "concurrency = 3\nconcurency = 4\n").unwrap();
        let err =
            Settings::resolve(&args(&["--config", file.to_str().unwrap()]), &|_| None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("concurency") && text.contains("etl.toml"),
            "{text}"
        );
        assert!(!text.contains('\n'), "one line: {text}");
        assert_eq!(exit_code(&err.into()), crate::error::exit::CONFIG);
        let err = Settings::resolve(&args(&[]), &|v| {
            (v == "ETL_CONCURRENCY").then(|| "lots".into())
        })
        .unwrap_err();
        assert!(err.to_string().contains("ETL_CONCURRENCY"), "{err}");
        let missing = dir.path().join("nope.toml");
        let err = Settings::resolve(&args(&["--config", missing.to_str().unwrap()]), &|_| None)
            .unwrap_err();
        assert!(err.to_string().contains("nope.toml"), "{err}");
    }

    #[test]
    fn via_comes_from_flag_env_or_file_and_defaults_to_auto() {
        use medium_api::via::Via;
        assert_eq!(
            Settings::resolve(&args(&[]), &|_| None).unwrap().via,
            ViaMode::Auto
        );
        let s = Settings::resolve(&args(&[]), &|v| (v == "ETL_VIA").then(|| "rss".into())).unwrap();
        assert_eq!(s.via, ViaMode::Only(Via::Rss));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("etl.toml");
        std::fs::write(&file, "via = \"html\"\n").unwrap();
        let f = file.to_str().unwrap();
        let s = Settings::resolve(&args(&["--config", f]), &|_| None).unwrap();
        assert_eq!(s.via, ViaMode::Only(Via::Html));
        let s = Settings::resolve(&args(&["--config", f, "--via", "json"]), &|_| None).unwrap();
        assert_eq!(s.via, ViaMode::Only(Via::Json));
        // a bad --via is refused by the command line itself (clap's usage error, exit 2),
        // naming the flag and the value
        use clap::Parser;
        let err = crate::cli::Cli::try_parse_from(["etl", "run", "--via", "atom"]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("--via") && text.contains("atom"), "{text}");
        assert_eq!(err.exit_code(), i32::from(crate::error::exit::USAGE));
        let err = Settings::resolve(&args(&[]), &|v| (v == "ETL_VIA").then(|| "atom".into()))
            .unwrap_err();
        assert!(err.to_string().contains("ETL_VIA"), "{err}");
        assert_eq!(exit_code(&err.into()), crate::error::exit::CONFIG);
    }

    #[test]
    fn http2_is_off_unless_asked_for_by_flag_env_or_file() {
        assert!(
            !Settings::resolve(&args(&[]), &|_| None)
                .unwrap()
                .client
                .http2
        );
        assert!(
            Settings::resolve(&args(&["--http2"]), &|_| None)
                .unwrap()
                .client
                .http2
        );
        let env = |v: &str| (v == "ETL_HTTP2").then(|| "true".to_owned());
        let s = Settings::resolve(&args(&[]), &env).unwrap();
        assert!(s.client.http2);
        assert_eq!(origin_of(&s, "http2"), Origin::Env("ETL_HTTP2".into()));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("etl.toml");
        std::fs::write(&file, "http2 = true\n").unwrap();
        let f = file.to_str().unwrap();
        let s = Settings::resolve(&args(&["--config", f]), &|_| None).unwrap();
        assert!(s.client.http2);
        let s = Settings::resolve(&args(&["--config", f, "--no-http2"]), &|_| None).unwrap();
        assert!(!s.client.http2);
        assert_eq!(origin_of(&s, "http2"), Origin::Flag);
        let bad = |v: &str| (v == "ETL_HTTP2").then(|| "sometimes".to_owned());
        let err = Settings::resolve(&args(&[]), &bad).unwrap_err();
        assert!(err.to_string().contains("ETL_HTTP2"), "{err}");
    }

    #[test]
    fn parses_schedule_intervals_and_times() {
        assert_eq!(parse_interval("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_interval("1h30m"), Some(Duration::from_secs(5_400)));
        assert_eq!(parse_interval("90s"), Some(Duration::from_secs(90)));
        // #14: these panicked or wrapped (213503982334602d became 61184 s)
        for bad in [
            "",
            "0s",
            "h",
            "10",
            "5x",
            "-1h",
            "100000000d",
            "213503982334602d",
            "367d",
        ] {
            assert_eq!(parse_interval(bad), None, "{bad}");
        }
        assert_eq!(
            parse_interval("366d"),
            Some(Duration::from_secs(366 * 86_400))
        );
        assert!(parse_time_of_day("02:00").is_some());
        assert!(parse_time_of_day("25:00").is_none());
    }

    #[test]
    fn refuses_impossible_and_odd_dates_naming_them() {
        for bad in [
            "2026-02-30",
            "tomorrow",
            "2026-1-5",
            "26-01-05",
            "2026/01/05",
            "",
            "2026-13-01",
        ] {
            let err = RunDate::parse_at(bad, d("2026-01-01")).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    /// #14: numeric settings are range checked wherever they come from, and the error names
    /// where: a flag is a usage error (2), a variable or the file a config error (7) naming it.
    /// These used to panic (`1e-30` requests per second overflowed a Duration).
    #[test]
    fn every_numeric_setting_is_range_checked_naming_its_origin() {
        let err = Settings::resolve(&args(&["--max-rps", "1e-30"]), &|_| None).unwrap_err();
        assert_eq!(exit_code(&err.into()), 2);
        let env =
            |v: &'static str, val: &'static str| move |k: &str| (k == v).then(|| val.to_owned());
        for (var, value) in [
            ("ETL_MAX_RPS", "1e-19"),
            ("ETL_CONCURRENCY", "0"),
            ("ETL_RETRIES", "1000"),
            ("ETL_TIMEOUT", "1e300"),
            ("ETL_OUT", ""),
            ("ETL_MAX_BODY_MB", "0"),
        ] {
            let err = Settings::resolve(&args(&[]), &env(var, value)).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(var), "{var}: {text}");
            assert_eq!(exit_code(&err.into()), 7, "{var}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("etl.toml");
        std::fs::write(&file, "concurrency = 0\n").unwrap();
        let f = file.to_str().unwrap();
        let err = Settings::resolve(&args(&["--config", f]), &|_| None).unwrap_err();
        assert!(err.to_string().contains(f) && err.to_string().contains("concurrency = 0"));
        assert_eq!(exit_code(&err.into()), 7);
    }

    /// #14: credentials in the base URL are sent as basic auth and shown nowhere.
    #[test]
    fn credentials_never_leave_the_client() {
        let s = Settings::resolve(
            &args(&["--base-url", "http://user:s3cret@127.0.0.1:9/mirror"]),
            &|_| None,
        )
        .unwrap();
        assert_eq!(s.client.base_url.as_str(), "http://127.0.0.1:9/mirror");
        assert_eq!(
            s.client.basic_auth,
            Some(("user".to_owned(), Some("s3cret".to_owned())))
        );
        assert!(s.provenance.iter().all(|(_, v, _)| !v.contains("s3cret")));
        assert_eq!(
            redact("--base-url=https://a:b@host:8/x?y=1"),
            "--base-url=https://***@host:8/x?y=1"
        );
        assert_eq!(redact("https://host/p@x"), "https://host/p@x");
        assert_eq!(redact("plain"), "plain");
    }
}
