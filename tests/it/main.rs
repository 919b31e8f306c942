//! The integration tests: one binary, real HTTP servers on 127.0.0.1, real fixtures.

mod cli;
mod client;
mod faults;
mod graphql;
mod harvest;
mod incremental;
mod lake;
mod metrics;
mod properties;
mod schedule;
mod serve;
mod shards;
mod sources;
mod support;
