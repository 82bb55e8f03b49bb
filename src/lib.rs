//! outdial — an outbound dialer engine that speaks SIP itself.
//!
//! Layers (see `docs/architecture.md`): sans-IO protocol cores ([`sip::transaction`],
//! [`sip::dialog`], [`call::leg`], [`engine::core`]) driven by input and the current time,
//! and thin tokio shells ([`sip::transport`], [`engine::shell`], [`runner`]) that do
//! the sockets, the timers and the database. Every call comes out as [`events::CallEvent`]s.

// The OpenAPI document (src/api/openapi.rs) is one deep `json!` literal.
#![recursion_limit = "256"]

// The sans-IO cores, from the core crate (`core/`), under the paths they always had.
pub use outdial_core::{acd, call, campaign, events, ivr, time};

/// SIP: the core crate's messages, transactions and dialogs, and the tokio transport.
pub mod sip {
    pub use outdial_core::sip::*;
    pub mod transport;
}

/// The engine: the core crate's engine core and trunk group, and the tokio shell driving it.
pub mod engine {
    pub use outdial_core::engine::*;
    pub mod shared;
    pub mod shell;
}

/// Media: the core crate's G.711, SDP, RTP sessions and AMD, and the AMD corpus and evaluation
/// tools (they read files and run `sox`).
pub mod media {
    pub use outdial_core::media::*;
    pub mod retention;
    pub mod wav;
    /// Answering-machine detection: the core crate's detectors, and the corpus and evaluation.
    pub mod amd {
        pub use outdial_core::media::amd::*;
        pub mod corpus;
        pub mod eval;
    }
}

/// Pacing: the core crate's pacer, and the simulator that drives it on a virtual clock.
pub mod pacing {
    pub use outdial_core::pacing::*;
    pub mod sim;
}

pub mod api;
pub mod app;
pub mod demo;
pub mod fuzzing;
pub mod notify;
pub mod overrides;
pub mod report;
pub mod runner;
pub mod service;
pub mod store;
pub mod web;
