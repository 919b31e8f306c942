//! Every setting's default, once. The flags' help text (`cli`), the resolution of settings
//! (`config`) and the client's own defaults (`ClientSettings::new`) all read them from here.

use medium_api::via::ViaMode;

use super::LogFormat;

/// Towards Data Science, the original pipeline's publication.
pub const COLLECTION_ID: &str = "7f60cf5620c9";
pub const BASE_URL: &str = "https://medium.com";
/// The run date: today (UTC).
pub const DATE: &str = "today";
pub const OUT: &str = "data";
pub const CONCURRENCY: usize = 8;
/// Requests started per second at most; 0 = no cap.
pub const MAX_RPS: f64 = 10.0;
pub const MAX_PAGES: usize = 1000;
pub const VIA: ViaMode = ViaMode::Auto;
pub const TIMEOUT_SECS: f64 = 30.0;
pub const CONNECT_TIMEOUT_SECS: f64 = 10.0;
pub const RETRIES: u32 = 4;
/// The largest response body accepted, in MiB of decoded bytes (Medium's pages are a few
/// hundred KB; a gzip bomb or an endless stream stops here).
pub const MAX_BODY_MB: u64 = 32;
pub const BACKOFF_SECS: f64 = 0.5;
pub const MAX_BACKOFF_SECS: f64 = 60.0;
pub const LOG_FORMAT: LogFormat = LogFormat::Text;
/// Incremental runs: claps are taken to change on stories younger than this many days.
pub const LAG_DAYS: u32 = 30;
/// Incremental runs: a full run at least every this many days.
pub const FULL_EVERY_DAYS: u32 = 7;
/// Quality check `row_drift`: the largest move of a table's row count from the previous date.
pub const MAX_DRIFT_PCT: f64 = 50.0;
/// HTTP/1.1 only: Cloudflare refuses HTTP/2 from clients that are not browsers.
pub const HTTP2: bool = false;
/// With a lake: the page log's new records are uploaded this often (what a kill -9 can lose).
pub const UPLOAD_EVERY_SECS: f64 = 5.0;
/// With a lake: a date's lease lasts this long unrenewed (how long a killed run keeps other
/// writers of its date out).
pub const LEASE_SECS: f64 = 120.0;
/// The config file read when it exists and none is named.
pub const CONFIG_FILE: &str = "etl.toml";
/// Names the tool and where it comes from (Medium refuses requests without a User-Agent).
pub const USER_AGENT: &str = concat!(
    "medium-etl/",
    env!("CARGO_PKG_VERSION"),
    " (analytics harvester; +https://github.com/medium-etl/medium-etl)"
);

/// A flag's help line with its default, as clap would print it: `text [default: value]`.
pub fn help(text: &str, default: impl std::fmt::Display) -> String {
    format!("{text} [default: {default}]")
}
