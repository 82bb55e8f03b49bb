//! SIP: the wire adapter, sans-IO transactions and dialogs, and the tokio transport shell.

pub mod dialog;
pub mod digest;
pub mod message;
pub mod sdp;
pub mod transaction;
pub mod transport;
