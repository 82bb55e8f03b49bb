//! outdial-core — the sans-IO cores of the outdial dialer: SIP messages, transactions and
//! dialogs, call legs, RTP media sessions and answering-machine detection, the ACD
//! (registrar, agents, queue), pacing, the campaign core, the engine core, and the one call
//! event vocabulary they speak.
//!
//! Every core is a plain state machine fed with input and the current time, returning what to
//! send and when to wake up. Nothing here opens a socket, starts a task, touches a database,
//! reads the clock or draws from the global random generator: the clock is an argument
//! (`now: Instant`), randomness a seeded stream ([`sip::message::Tokens`]) the shell hands in.
//! The shell crate (`outdial`: sockets, store, REST API, command line) drives them;
//! `scripts/check-architecture.sh` keeps the rule.

#![warn(missing_docs, unreachable_pub)]

pub mod acd;
pub mod call;
pub mod campaign;
pub mod engine;
pub mod events;
pub mod ivr;
pub mod media;
pub mod pacing;
pub mod sip;
pub mod time;
