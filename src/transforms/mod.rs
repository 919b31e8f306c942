//! Transforms: harvested pages → typed Arrow tables ([`normalize`]) → per-author metrics with
//! polars ([`aggregate`]); quality checks of the tables at publish ([`checks`]).

pub mod aggregate;
pub mod checks;
pub mod normalize;
