//! SIP: the wire adapter, and the sans-IO transactions and dialogs (the tokio transport is
//! the shell crate's `sip::transport`).

pub mod dialog;
pub mod digest;
pub mod message;
pub mod sdp;
pub mod transaction;
