//! One outbound call, end to end, and what its outcome means to a contact centre.

pub mod actions;
pub mod leg;
