//! Campaigns: settings, call lists, and the run that dials them.

pub mod config;
pub mod core;
pub mod decide;
pub mod leads;
pub mod lifecycle;
pub mod pace;
pub mod rate;
pub mod webhook;
pub mod window;
