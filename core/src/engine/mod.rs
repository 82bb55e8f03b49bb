//! The runtime that owns the call legs: the sans-IO engine core and the trunk group (the tokio
//! shell that drives it is the shell crate's `engine::shell`).

pub mod core;
pub mod trunks;
