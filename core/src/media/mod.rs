//! Media: G.711, SDP answers, per-call RTP sessions, answering-machine detection.

pub mod amd;
pub mod g711;
pub mod mixer;
pub mod recorder;
pub mod relay;
pub mod sdp;
pub mod session;
pub mod wav;
