//! `loghound-agent`: follows log files and ships their lines to a Loghound
//! server, resuming exactly where the server's acks left off.
//!
//! Two halves meet at the [`sources::Source`] seam:
//! - `sources/`: where events come from. [`sources::file`] follows log
//!   files by glob (discovery, identity, rotation, copies, the descriptor
//!   budget, multi-line joining).
//! - `pipeline/`: what happens to them, knowing nothing of files: the
//!   batcher, the sender threads (`shipper/`), the disk spool and its
//!   replay (`spool/`), and per-stream checkpoints that never pass an
//!   unsettled batch (`checkpoints.rs`, `checkpoint_file.rs`).
//!
//! Around them: [`config`] (`agent.toml` and flags → validated settings),
//! `scheduler.rs` (the loop that gives sources their turns and moves
//! settlements into checkpoints), `agent.rs` (wiring, [`run`]), the agent
//! id, `metrics.rs` and `metrics_http.rs` (counters and `/metrics`), and
//! [`status`] with `status_file.rs` (the `status` subcommand and the
//! errors the running agent records for it).
#![warn(missing_docs)]

mod agent;
mod agent_id;
mod atomic_file;
pub mod config;
mod metrics;
mod metrics_http;
mod pipeline;
mod scheduler;
pub mod sources;
pub mod status;
mod status_file;

pub use agent::{run, AgentError};
pub use agent_id::AgentIdError;
pub use atomic_file::AtomicWriteError;
pub use pipeline::checkpoint_file::CheckpointError;
pub use pipeline::PipelineError;
pub use scheduler::SchedulerError;
pub use sources::SourceError;
pub use status_file::StatusFileError;
