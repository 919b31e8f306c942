//! The Medium client: endpoints, the XSSI guard, paging, retries, serde models, and the harvest
//! that pages through a publication and its authors.
//!
//! The I/O-free parts (guard, models, paging, endpoints, and the RSS / HTML decoders with the
//! [`via`] formats) live in the `medium-api` crate (`crates/medium-api`) and are re-exported
//! here; the network parts are [`client`] and [`harvest`].

pub mod client;
pub mod harvest;

pub use medium_api::{
    endpoints, guard, html, models, paging, rss, story, via, BodyError, StreamPage,
};
