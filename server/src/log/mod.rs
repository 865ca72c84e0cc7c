//! The durable log behind ingest: append a record and get its position,
//! wait until a position is durable, read from a position, release
//! everything through a position.
//!
//! Ingest and the indexer see only the [`Log`] trait. The single-node
//! backend is the local write-ahead log ([`crate::wal::Wal`]); a replicated
//! backend implements the same trait. A record's body is opaque here: the
//! ingest room decides what it holds.

use std::future::Future;
use std::pin::Pin;

#[cfg(test)]
pub mod memory;

/// A record's place in the log: from 1, without gaps, in append order.
/// Position 0 means "before the first record".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LogPosition(pub u64);

impl LogPosition {
    /// The position as a number (event ids and commit payloads carry it).
    pub fn get(self) -> u64 {
        self.0
    }

    /// The position after this one.
    pub fn next(self) -> LogPosition {
        LogPosition(self.0 + 1)
    }
}

impl std::fmt::Display for LogPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// How a record's body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// An agent batch exactly as received, logged before the log stored
    /// ingest's decisions: replay must decide again which events are new.
    /// Only found in logs written by earlier releases.
    LegacyAgentBatch,
    /// A body written by the ingest room (see `ingest::record`).
    Ingest,
}

/// One record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Where it is in the log.
    pub position: LogPosition,
    /// When the server received it.
    pub received_at_ms: i64,
    /// Who sent it: an agent id, or an input's name.
    pub origin: String,
    /// How to read `body`.
    pub format: BodyFormat,
    /// What was appended.
    pub body: Vec<u8>,
}

/// What reading the log found besides its records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReadReport {
    /// Records handed to the reader.
    pub records: u64,
    /// Bytes that were not records and were skipped.
    pub bytes_skipped: u64,
}

/// Why the log could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The storage under the log is full; nothing of the record stays.
    #[error("the log's storage is full: {0}")]
    StorageFull(#[source] std::io::Error),
    /// Any other I/O failure; nothing of the record stays.
    #[error("log I/O failed: {0}")]
    Io(#[source] std::io::Error),
    /// An earlier failure could not be undone; the log refuses writes
    /// until the server restarts and recovers it.
    #[error("the log is unusable after an earlier failure; restart the server")]
    Poisoned,
}

impl LogError {
    /// An I/O error, told apart into a full disk or another failure.
    pub fn from_io(error: std::io::Error) -> Self {
        if crate::storage::is_disk_full_io(&error) {
            LogError::StorageFull(error)
        } else {
            LogError::Io(error)
        }
    }
}

/// A future that completes once a position is durable.
pub type DurableFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The durable, ordered log of accepted batches.
pub trait Log: Send + Sync + 'static {
    /// Appends a record; returns its position. Not durable until
    /// [`Log::wait_durable`] says so.
    fn append(
        &self,
        received_at_ms: i64,
        origin: &str,
        body: &[u8],
    ) -> Result<LogPosition, LogError>;

    /// The position of the last record appended (durable or not).
    fn last_appended(&self) -> LogPosition;

    /// Completes once every record up to `position` is durable.
    fn wait_durable(&self, position: LogPosition) -> DurableFuture<'_>;

    /// Blocking form of [`Log::wait_durable`], for threads.
    fn wait_durable_blocking(&self, position: LogPosition);

    /// Hands every record from `from` on to `each`, in order, up to the
    /// last one appended when the call began. Holds one record at a time.
    fn read_from(
        &self,
        from: LogPosition,
        each: &mut dyn FnMut(LogRecord),
    ) -> Result<ReadReport, LogError>;

    /// Tells the log that nothing up to `through` will be read again; it
    /// may free that space. Returns how many storage units were freed.
    fn release_through(&self, through: LogPosition) -> Result<usize, LogError>;
}
