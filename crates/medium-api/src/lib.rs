//! Medium's legacy JSON API, without I/O: the XSSI guard and envelope ([`guard`]), serde models
//! of the payloads ([`models`]), paging exactly as the contract defines it ([`paging`]), and the
//! endpoint paths ([`endpoints`]).
//!
//! A crate of its own so that the parsers can be fuzzed (`fuzz/`) and reused without building
//! the pipeline's heavy dependencies (polars, arrow); `medium-etl` re-exports it as
//! `medium_etl::sources::medium`.

pub mod endpoints;
pub mod guard;
pub mod models;
pub mod paging;

use thiserror::Error;

/// What is wrong with a response body (see [`guard::parse_payload`]).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BodyError {
    #[error("empty body")]
    Empty,
    #[error("an HTML page, not JSON (a challenge or error page?)")]
    Html,
    #[error("truncated JSON: {0}")]
    Truncated(String),
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("the server said success: false{}", .0.as_deref().map(|e| format!(" ({e})")).unwrap_or_default())]
    Unsuccessful(Option<String>),
    #[error("no payload in the response")]
    NoPayload,
    #[error("unexpected payload shape: {0}")]
    Shape(String),
}
