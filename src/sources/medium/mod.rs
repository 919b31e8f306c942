//! Medium as a source: the network and the read-through of pages, nothing downstream.
//!
//! - [`client`]: HTTP only (one pool, bounded concurrency, rate cap, timeouts, retries);
//! - [`origin`]: where a page comes from (HTTP or a replayed raw store) and the run's raw store
//!   in front of it;
//! - [`fallback`]: the doors (`--via`) and how a stream or a request family moves between them;
//! - [`crawl`]: a publication's stream, then every author's streams, concurrently;
//! - [`carry`]: what earlier dates read, for incremental runs (where a stream may stop).
//!
//! The I/O-free parts (guard, models, paging, endpoints, the decoders and the table of what
//! each format carries) are the `medium-api` crate, re-exported here. What the crawl produces
//! is [`crate::run`]'s values, so nothing downstream imports this module.

pub mod carry;
pub mod client;
pub mod crawl;
pub mod fallback;
pub mod origin;

pub use medium_api::{
    endpoints, guard, html, models, paging, rss, story, via, BodyError, StreamPage,
};
