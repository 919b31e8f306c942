//! Where data comes from. The network lives only here.

pub mod medium;
