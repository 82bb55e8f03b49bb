//! The runtime that owns the call legs: a sans-IO core and its tokio shell.

pub mod core;
pub mod shared;
pub mod shell;
pub mod trunks;
