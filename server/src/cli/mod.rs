//! The client side of the `loghound` binary: commands that talk to a
//! running server over its HTTP API.

pub mod histogram;
pub mod saved;
pub mod search;
pub mod tail;
pub mod tls;
