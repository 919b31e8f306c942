//! Transforms: harvested pages → typed Arrow tables ([`normalize`]) → per-author metrics with
//! polars ([`aggregate`]).

pub mod aggregate;
pub mod normalize;
