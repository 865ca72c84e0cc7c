//! The Loghound server: ingest with a write-ahead log, one tantivy index
//! per day, the search API, and the command-line client.
//!
//! - [`ingest`]: the one entry point every input calls: dedup → log →
//!   indexer, with the agent protocol, the queue bound, the checkpoint
//!   and replay;
//! - [`log`]: the durable log ingest writes, behind a trait;
//! - [`wal`]: its single-node backend, the write-ahead log with group
//!   commit;
//! - [`parse`]: a line's own timestamp, severity and fields;
//! - [`query`]: the query language, text → tantivy query;
//! - [`index`]: day indexes, the indexer thread, search;
//! - [`http`]: routes and handlers;
//! - [`tokens`], [`meta`]: API tokens in `meta.sqlite`;
//! - [`alerts`]: saved searches, alert rules, notification delivery;
//! - [`sessions`]: the web UI's sign-in sessions;
//! - [`storage`]: telling a full disk from other I/O failures;
//! - [`serve`]: wires it all together; [`cli`]: the client commands.
#![warn(missing_docs)]

pub mod alerts;
pub mod cli;
pub mod config;
pub mod elastic;
pub mod http;
pub mod index;
pub mod ingest;
pub mod log;
pub mod meta;
pub mod otlp;
pub mod parse;
pub mod query;
pub mod serve;
pub mod sessions;
pub mod storage;
pub mod syslog;
pub mod timeparse;
pub mod tls;
pub mod tokens;
pub mod wal;

pub use index::EVENT_INDEX_BITS;
