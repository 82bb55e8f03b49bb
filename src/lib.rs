//! outdial — an outbound dialer engine that speaks SIP itself.
//!
//! Layers (see `docs/architecture.md`): sans-IO protocol cores ([`sip::transaction`],
//! [`sip::dialog`], [`call::leg`], [`engine::core`]) driven by input and the current time,
//! and thin tokio shells ([`sip::transport`], [`engine::shell`], [`runner`]) that do
//! the sockets, the timers and the database. Every call comes out as [`events::CallEvent`]s.

pub mod acd;
pub mod api;
pub mod app;
pub mod call;
pub mod campaign;
pub mod demo;
pub mod engine;
pub mod events;
pub mod fuzzing;
pub mod media;
pub mod notify;
pub mod pacing;
pub mod report;
pub mod runner;
pub mod service;
pub mod sip;
pub mod store;
pub mod time;
