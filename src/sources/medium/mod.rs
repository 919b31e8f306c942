//! The Medium client: endpoints, the XSSI guard, paging, retries, serde models, and the harvest
//! that pages through a publication and its authors.

pub mod client;
pub mod endpoints;
pub mod guard;
pub mod harvest;
pub mod models;
pub mod paging;
