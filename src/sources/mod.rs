//! Where data comes from. The network lives only here; nothing outside `pipeline` (which wires
//! the stages) and the command line imports it.

pub mod medium;
