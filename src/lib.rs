//! # medium-etl
//!
//! Harvests the top authors of Medium publications and publishes typed, dated Parquet and CSV.
//!
//! Data flows one way (`docs/architecture.md` has the drawing and the import rules):
//!
//! ```text
//! sources::medium ─pages─▶ raw_store ─▶ transforms::normalize ─batches─▶ transforms::aggregate
//!   (client, origin,          (exact        (Arrow tables)                 (polars metrics)
//!    fallback, crawl)          bodies)                                            │
//!        │                                                                      ▼
//!        └──────── run (Harvest, Failure, FetchStats, ...) ─────────────▶ sinks (Parquet, CSV,
//!                                                                          manifest, publish)
//! ```
//!
//! [`pipeline`] wires the stages for one run date and is the only module below the command line
//! that imports [`sources`]; the values a run produces live in [`run`], the names on disk in
//! [`layout`], a lake on object storage or in Delta tables in [`lake`], the settings and their defaults in [`config`]. What each format (`--via`)
//! carries is one table in the `medium-api` crate. The contract is `SPEC.md`.

pub mod atomic_file;
pub mod cli;
pub mod config;
pub mod error;
pub mod events;
pub mod lake;
pub mod layout;
pub mod lock;
pub mod memory;
pub mod pipeline;
pub mod progress;
pub mod raw_store;
pub mod rebuild;
pub mod run;
pub mod runtime;
pub mod schedule;
pub mod schema;
pub mod serve;
pub mod shards;
pub mod sinks;
pub mod sources;
pub mod summary;
pub mod transforms;

pub use config::{RunDate, Settings};
pub use error::{exit, exit_code, RunError};
pub use pipeline::{run, RunOutcome};
