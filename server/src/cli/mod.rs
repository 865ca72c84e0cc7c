//! The client side of the `loghound` binary: commands that talk to a
//! running server over its HTTP API. They speak only the API's own types
//! (`loghound_shared::api`), never the server's internals.

mod client;
pub mod histogram;
pub mod saved;
pub mod search;
pub mod stats;
pub mod tail;
pub mod tls;
