//! `etl serve`: the published partitions over HTTP, in place of the nginx container the old
//! pipeline needed.
//!
//! - `/`: every date with its files, their sizes and download links;
//! - `/date/YYYY-MM-DD`: that date's top authors (table) and claps by author (an SVG chart);
//! - `/status`: the current run (`_status.json`, while a run is going) or the last one (its
//!   manifest): progress, requests, failures;
//! - `/files/<path>`: downloads of files under `tables/` and `reports/`.
//!
//! [`server`] is the HTTP part (axum), [`files`] what may be read and how it is named, [`pages`]
//! the HTML. Invariants: only files under the data root's `tables/` and `reports/` are ever
//! read — requests with `..` (raw or percent-encoded), absolute paths, backslashes or NUL are
//! refused, and the resolved path must stay inside the root after symlinks are followed. Every
//! response names its content type. Data from the files is HTML-escaped. What a client can hold
//! (connections, time to send headers, idle time, time to answer) is bounded: [`Limits`].

mod files;
mod pages;
mod server;

pub use pages::escape;
pub use server::{start, Limits, Server};
