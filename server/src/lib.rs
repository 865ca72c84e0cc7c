//! The Loghound server: ingest with a write-ahead log, one tantivy index
//! per day, the search API, and the command-line client.
//!
//! - [`wal`]: the write-ahead log with group commit;
//! - [`dedup`]: the rule that drops re-sent events;
//! - [`checkpoint`]: where replay starts after a restart;
//! - [`ingest`]: decode → dedup → log → indexer, behind a trait;
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
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod dedup;
pub mod http;
pub mod index;
pub mod ingest;
pub mod meta;
pub mod parse;
pub mod query;
pub mod serve;
pub mod sessions;
pub mod storage;
pub mod timeparse;
pub mod tls;
pub mod tokens;
pub mod wal;

pub use index::EVENT_INDEX_BITS;
