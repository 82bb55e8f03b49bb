//! Media: G.711, answering-machine detection, and (with the RTP work) per-call sessions.

pub mod amd;
pub mod g711;
pub mod wav;
