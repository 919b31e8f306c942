//! Command-line values → one validated [`Settings`] (validated once, at start, so the running
//! part cannot fail on configuration).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use reqwest::Url;

use crate::cli::RunArgs;
use crate::error::ConfigError;
use crate::sources::medium::client::{ClientSettings, DEFAULT_USER_AGENT};
use crate::sources::medium::endpoints::{is_safe_segment, PublicationRef};

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

/// Everything one run needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub date: RunDate,
    pub publications: Vec<PublicationRef>,
    pub out: PathBuf,
    /// Replay from this raw store instead of the network.
    pub source: Option<PathBuf>,
    pub refresh: bool,
    pub quiet: bool,
    pub max_authors: Option<usize>,
    pub max_pages: usize,
    pub client: ClientSettings,
    /// The command line as given (recorded in the manifest).
    pub arguments: Vec<String>,
}

fn positive_secs(flag: &'static str, v: f64) -> Result<Duration, ConfigError> {
    if v.is_finite() && v > 0.0 && v < 86_400.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(ConfigError::Value {
            flag,
            value: v.to_string(),
            reason: "expected a number of seconds above 0".into(),
        })
    }
}

impl Settings {
    pub fn from_args(args: &RunArgs) -> Result<Settings, ConfigError> {
        let date = RunDate::parse(&args.date)?;
        let mut publications = Vec::new();
        for id in &args.collection_ids {
            if !(is_safe_segment(id) && id.bytes().all(|b| b.is_ascii_alphanumeric())) {
                return Err(ConfigError::Value {
                    flag: "--collection-id",
                    value: id.clone(),
                    reason: "expected a collection id such as 7f60cf5620c9".into(),
                });
            }
            publications.push(PublicationRef::Id(id.clone()));
        }
        for slug in &args.publications {
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
            publications.push(PublicationRef::default_publication());
        }
        let mut seen = std::collections::HashSet::new();
        publications.retain(|p| seen.insert(p.clone()));

        let base_url = Url::parse(&args.base_url).map_err(|e| ConfigError::BaseUrl {
            value: args.base_url.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.host().is_none() {
            return Err(ConfigError::BaseUrl {
                value: args.base_url.clone(),
                reason: "expected an http:// or https:// URL with a host".into(),
            });
        }
        if args.concurrency == 0 || args.concurrency > 1024 {
            return Err(ConfigError::Value {
                flag: "--concurrency",
                value: args.concurrency.to_string(),
                reason: "expected 1 to 1024".into(),
            });
        }
        if !(args.max_rps.is_finite() && args.max_rps >= 0.0) {
            return Err(ConfigError::Value {
                flag: "--max-rps",
                value: args.max_rps.to_string(),
                reason: "expected 0 (no cap) or more".into(),
            });
        }
        if args.max_pages == 0 {
            return Err(ConfigError::Value {
                flag: "--max-pages",
                value: "0".into(),
                reason: "expected 1 or more".into(),
            });
        }
        if let Some(dir) = &args.source {
            if !dir.is_dir() {
                return Err(ConfigError::Source {
                    path: dir.clone(),
                    reason: "not a directory".into(),
                });
            }
        }
        let mut client = ClientSettings::new(base_url);
        client.user_agent = args
            .user_agent
            .clone()
            .filter(|ua| !ua.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_USER_AGENT.into());
        client.concurrency = args.concurrency;
        client.max_rps = (args.max_rps > 0.0).then_some(args.max_rps);
        client.timeout = positive_secs("--timeout", args.timeout)?;
        client.connect_timeout = positive_secs("--connect-timeout", args.connect_timeout)?;
        client.retries = args.retries;
        client.backoff_base = positive_secs("--backoff", args.backoff)?;
        client.backoff_max = positive_secs("--max-backoff", args.max_backoff)?;
        Ok(Settings {
            date,
            publications,
            out: args.out.clone(),
            source: args.source.clone(),
            refresh: args.refresh,
            quiet: args.quiet,
            max_authors: args.max_authors,
            max_pages: args.max_pages,
            client,
            arguments: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
