//! End-to-end harness: starts the real `loghound` and `loghound-agent`
//! binaries as processes, writes real files, kills processes and asks the
//! server over HTTP what it holds.
//!
//! In the spirit of ripgrep's `tests/util.rs`: each test takes a fresh
//! temporary directory, starts its own server on port 0 and its own agent,
//! and every wait has a deadline with a message that says what was expected
//! and what was last seen. Child processes write their stderr to a log file
//! next to their data; when a test panics, the logs of the processes it
//! started are printed, so a failure report carries its own evidence.
//!
//! - [`paths`]: where the binaries and the shared corpus are;
//! - [`process`]: [`Server`], [`Agent`] and [`token`];
//! - [`http`]: the ingest and search API as a test client sees it;
//! - [`load`]: ingest clients at full speed that record what was acked;
//! - [`wait`]: bounded polling until the server holds what a test expects;
//! - [`data`]: events, numbered lines, corpus files and a word counter that
//!   is independent of the server's tokenizer code;
//! - [`writer`]: a thread appending numbered lines at a steady rate, which a
//!   test can pause and point at a new file, as a rotated application does;
//! - [`journal`]: real journal files written by `systemd-journal-remote`;
//! - [`fds`]: the open file descriptors of a process (`/proc/PID/fd`);
//! - [`receiver`]: a real HTTP server that records webhooks;
//! - [`smtp`]: a real SMTP server (Python's aiosmtpd) with a maildir.
#![warn(missing_docs)]

pub mod bench;
pub mod data;
pub mod fds;
pub mod http;
pub mod journal;
pub mod load;
pub mod paths;
pub mod process;
pub mod receiver;
pub mod smtp;
pub mod wait;
pub mod writer;

pub use http::{search, search_all, Hit, SearchPage};
pub use process::{token, Agent, Pipeline, Server, ServerOptions};
pub use wait::{
    assert_count_stays, assert_each_number_once, wait_for_count, wait_until_count_at_least,
};

/// A fresh temporary directory for one test; removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("loghound-e2e-")
        .tempdir()
        .expect("create a temporary directory")
}
