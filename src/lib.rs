//! # medium-etl
//!
//! Harvests the top authors of Medium publications and publishes typed, dated Parquet and CSV.
//!
//! Data flows one way: [`sources::medium`] fetches pages (concurrently, politely, resumably)
//! from Medium's JSON API, its HTML pages or its RSS feeds (`--via`, falling back from one to the
//! next when a door is closed) and keeps every body in the [`raw_store`]; every format is mapped
//! onto the same models, so [`transforms`] builds one set of tables whatever the source;
//! [`pipeline`] wires the stages for one run date.
//! The contract is `SPEC.md` (Medium's API shapes, paging, metrics, output layout, failures).

pub mod atomic_file;
pub mod cli;
pub mod config;
pub mod error;
pub mod pipeline;
pub mod progress;
pub mod raw_store;
pub mod schedule;
pub mod schema;
pub mod serve;
pub mod sinks;
pub mod sources;
pub mod synthetic;
pub mod transforms;

pub use config::{RunDate, Settings};
pub use error::{exit, RunError};
pub use pipeline::{run, RunOutcome};
