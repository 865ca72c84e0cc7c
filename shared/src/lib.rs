//! The wire protocol spoken between `loghound-agent` and the `loghound` server.
//!
//! Both sides depend on this crate and on nothing else for the format:
//! - [`ids`]: newtypes for the identifiers and offsets that travel on the wire;
//! - [`event`]: one log line as the agent ships it;
//! - [`codec`]: a batch of events as zstd-compressed NDJSON, with hard limits
//!   enforced while decoding;
//! - [`api`]: the HTTP API's paths, headers, limits and JSON bodies, shared
//!   by the agent, the server, the command-line client and the tests.
#![warn(missing_docs)]

pub mod api;
pub mod codec;
pub mod event;
pub mod ids;

pub use codec::{decode_batch, encode_batch, DecodeError, Limit, Limits};
pub use event::Event;
pub use ids::{AgentId, ByteOffset, FileId, InvalidId};

/// Version of the batch format. Sent by the agent in
/// [`api::HEADER_PROTOCOL`]; the server rejects versions it does not know.
pub const PROTOCOL_VERSION: u32 = 1;
