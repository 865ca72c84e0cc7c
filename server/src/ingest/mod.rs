//! The ingest room: every input hands its events to one entry point,
//! [`Ingest::submit`], which drops what was already logged, makes the rest
//! durable in the [`Log`] and passes it to the indexer.
//!
//! - [`agent`]: the agent protocol (a zstd NDJSON batch) → a [`Submission`];
//! - [`dedup`]: the rule that drops re-sent events;
//! - [`queue`]: the byte bound on what waits for the indexer;
//! - [`checkpoint`]: where replay starts, and who writes it;
//! - [`replay`]: the log read back into the indexer at start;
//! - `record`: what a log record's body holds.
//!
//! An input that is not an agent (syslog, a bulk API, OTLP) builds
//! [`InEvent`]s with an [`Origin::Input`] and, where its protocol names
//! positions in a stream, a [`StreamRange`] per event that makes re-sent
//! events harmless; events without one are never taken for duplicates.

pub mod agent;
pub mod checkpoint;
pub mod dedup;
pub mod queue;
mod record;
pub mod replay;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crossbeam_channel::Sender;
use loghound_shared::{AgentId, DecodeError, Event, FileId, Limits};
use serde::{Deserialize, Serialize};

use self::dedup::Dedup;
use self::queue::{events_cost_bytes, QueueBudget};
use crate::index::indexer::IndexerMsg;
use crate::log::{Log, LogError, LogPosition};

/// How long a batch that finds the indexer queue full waits for room
/// before it is refused (429): about one commit.
pub const ADMIT_PATIENCE: std::time::Duration = std::time::Duration::from_millis(1000);
/// How many batches wait for room at once; more are refused at once, so
/// that waiting bodies hold no more than this many request bodies.
pub const ADMIT_MAX_WAITING: usize = 8;

/// Who sent a batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A Loghound agent, by its id.
    Agent(AgentId),
    /// One of the server's own inputs (a listener or an API route), by name.
    Input(String),
}

/// Marks an input's name in an origin's text form; agent ids cannot hold
/// a `:`.
const INPUT_PREFIX: &str = "input:";

impl Origin {
    /// The origin as text: the agent id, or `input:<name>`. This is what the
    /// log stores, what deduplication is keyed by, and what the index's
    /// `agent` field holds.
    pub fn key(&self) -> String {
        match self {
            Origin::Agent(agent) => agent.as_str().to_string(),
            Origin::Input(name) => format!("{INPUT_PREFIX}{name}"),
        }
    }

    /// Reads [`Origin::key`] back.
    pub fn from_key(key: &str) -> Option<Origin> {
        match key.strip_prefix(INPUT_PREFIX) {
            Some(name) if !name.is_empty() => Some(Origin::Input(name.to_string())),
            Some(_) => None,
            None => AgentId::new(key).ok().map(Origin::Agent),
        }
    }
}

/// Where an event sits in the stream it was read from: the key that makes
/// a re-sent event a duplicate, and what context (lines around an event)
/// orders by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRange {
    /// The stream (for an agent: the file content stream).
    pub stream: FileId,
    /// Position of the event's first byte.
    pub start: u64,
    /// Position just past its end.
    pub end: u64,
}

/// One event on its way in, whatever input it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InEvent {
    /// Its place in its stream, when the input knows one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamRange>,
    /// Host it comes from.
    pub host: String,
    /// Where on the host (a file path, a listener and peer).
    pub source: String,
    /// The line.
    pub message: String,
    /// When the sender read it, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at_ms: Option<i64>,
    /// Labels, such as `app`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The line was cut at a length limit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The line was not valid UTF-8.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invalid_utf8: bool,
    /// How to parse the line (`auto`, `json`, …), when the sender says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The event's own time (ms since the epoch), when the sender records
    /// one apart from the line; it wins over a timestamp in the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<i64>,
    /// The sender's severity name, used when the line states no level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Fields the sender records apart from the line; on the same name
    /// they win over fields parsed from it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, serde_json::Value>,
}

impl From<Event> for InEvent {
    fn from(event: Event) -> Self {
        InEvent {
            stream: Some(StreamRange {
                stream: event.file_id,
                start: event.offset.0,
                end: event.end_offset.0,
            }),
            host: event.host,
            source: event.source,
            message: event.message,
            read_at_ms: event.read_at_ms,
            tags: event.tags,
            truncated: event.truncated,
            invalid_utf8: event.invalid_utf8,
            format: event.format,
            time_ms: event.time_ms,
            severity: event.severity,
            fields: event.fields,
        }
    }
}

/// A batch of events from one origin, as an input hands it in.
#[derive(Debug, Clone)]
pub struct Submission {
    /// Who sent it.
    pub origin: Origin,
    /// When the server received it.
    pub received_at_ms: i64,
    /// The events, in the order sent.
    pub events: Vec<InEvent>,
    /// The agent batch exactly as received, logged as it is instead of
    /// encoding the events again (agent protocol only).
    pub agent_body: Option<Vec<u8>>,
}

/// What became of an accepted submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Events logged.
    pub accepted: u64,
    /// Events dropped as already logged.
    pub duplicates: u64,
    /// Answer only once the log is durable through here.
    pub durable_at: LogPosition,
}

/// The accepted events of one log record, on their way to the indexer.
pub struct LoggedBatch {
    /// The record's position in the log.
    pub position: LogPosition,
    /// Who sent it.
    pub origin: Origin,
    /// When the server received the batch.
    pub received_at_ms: i64,
    /// Bytes reserved for it in the queue budget, given back once the
    /// batch is committed.
    pub cost_bytes: u64,
    /// Accepted events with their position in the batch as sent.
    pub events: Vec<(usize, InEvent)>,
}

/// Why a submission was not accepted; what the caller must do about it.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The batch itself is bad; the client must not resend it as is.
    #[error(transparent)]
    Invalid(#[from] DecodeError),
    /// The indexer is behind: the batch would not fit under
    /// `index_queue_max_bytes`. Nothing was logged; retry later.
    #[error(
        "the indexer is behind: {queued_bytes} bytes wait for it, the bound \
         (index_queue_max_bytes) is {max_bytes}; nothing was stored, retry later"
    )]
    Overloaded {
        /// Bytes waiting when the batch was refused.
        queued_bytes: u64,
        /// `index_queue_max_bytes`.
        max_bytes: u64,
    },
    /// The storage under the log is full; nothing was stored, retry later.
    #[error("the log's storage is full; nothing was stored")]
    StorageFull(#[source] LogError),
    /// The log cannot take records now (an I/O failure); retry later.
    #[error("the log cannot store batches: {0}")]
    Unavailable(#[source] LogError),
    /// The server is shutting down.
    #[error("server is shutting down")]
    ShuttingDown,
}

impl From<LogError> for IngestError {
    fn from(error: LogError) -> Self {
        match error {
            LogError::StorageFull(_) => IngestError::StorageFull(error),
            other => IngestError::Unavailable(other),
        }
    }
}

/// The entry point every input calls.
pub struct Ingest {
    limits: Limits,
    log: Arc<dyn Log>,
    /// Held from the duplicate check until the indexer has the batch, so
    /// that decisions and log order agree. Shared with the checkpoint
    /// writer, which snapshots it.
    state: Arc<Mutex<Dedup>>,
    indexer: Sender<IndexerMsg>,
    queue: Arc<QueueBudget>,
}

impl Ingest {
    /// The entry point over `log`, whose replay left its deduplication
    /// state in `state`; new batches reserve their room in `queue` before
    /// they are logged. `limits` apply to agent batches.
    pub fn new(
        limits: Limits,
        log: Arc<dyn Log>,
        state: Arc<Mutex<Dedup>>,
        indexer: Sender<IndexerMsg>,
        queue: Arc<QueueBudget>,
    ) -> Self {
        Ingest {
            limits,
            log,
            state,
            indexer,
            queue,
        }
    }

    /// The agent protocol's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn overloaded(&self) -> IngestError {
        IngestError::Overloaded {
            queued_bytes: self.queue.used_bytes(),
            max_bytes: self.queue.max_bytes(),
        }
    }

    /// Refuses when nothing more fits under the queue bound, so that under
    /// overload a batch costs nothing, not even decoding; a few batches at
    /// a time wait up to [`ADMIT_PATIENCE`] for room first. Blocking.
    pub fn admit(&self) -> Result<(), IngestError> {
        if !self
            .queue
            .wait_for_room(1, ADMIT_PATIENCE, ADMIT_MAX_WAITING)
        {
            return Err(self.overloaded());
        }
        Ok(())
    }

    fn lock_state(&self) -> MutexGuard<'_, Dedup> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops the events already logged, logs the rest and hands them to
    /// the indexer. Returns before the record is durable: the caller
    /// answers after [`Ingest::wait_durable`] on the receipt's position.
    /// Blocking: run it off the async executor.
    pub fn submit(&self, submission: Submission) -> Result<Receipt, IngestError> {
        let Submission {
            origin,
            received_at_ms,
            events,
            agent_body,
        } = submission;
        let key = origin.key();
        let total = events.len() as u64;
        // Room for every event (the new ones are a part), waited for before
        // the dedup lock is taken so that a wait holds up nobody else; if
        // it does not come, the reservation below decides (a batch of
        // events all seen before needs none).
        self.queue.wait_for_room(
            events_cost_bytes(&events),
            ADMIT_PATIENCE,
            ADMIT_MAX_WAITING,
        );
        let mut dedup = self.lock_state();
        let fresh = dedup.new_events(&key, &events);
        let accepted = fresh.len() as u64;
        if fresh.is_empty() {
            // Nothing new, but the copy already logged may not be durable.
            return Ok(Receipt {
                accepted,
                duplicates: total,
                durable_at: self.log.last_appended(),
            });
        }
        // The room is taken before the log is written, so a refused batch
        // is not logged and its retry is not a duplicate.
        let cost_bytes = events_cost_bytes(fresh.iter().map(|&i| &events[i]));
        if !self.queue.try_reserve(cost_bytes) {
            return Err(self.overloaded());
        }
        let body = match record::encode(&events, &fresh, agent_body) {
            Ok(body) => body,
            Err(error) => {
                self.queue.release(cost_bytes);
                return Err(IngestError::Unavailable(LogError::Io(error)));
            }
        };
        let position = match self.log.append(received_at_ms, &key, &body) {
            Ok(position) => position,
            Err(error) => {
                self.queue.release(cost_bytes);
                return Err(error.into());
            }
        };
        dedup.record(&key, fresh.iter().map(|&i| &events[i]));
        let batch = LoggedBatch {
            position,
            origin,
            received_at_ms,
            cost_bytes,
            events: take_indices(events, &fresh),
        };
        self.indexer
            .send(IndexerMsg::Batch(batch))
            .map_err(|_| IngestError::ShuttingDown)?;
        Ok(Receipt {
            accepted,
            duplicates: total - accepted,
            durable_at: position,
        })
    }

    /// Completes once the log is durable through `position`.
    pub async fn wait_durable(&self, position: LogPosition) {
        self.log.wait_durable(position).await;
    }
}

/// The events at the positions in `keep` (ascending), with their positions.
fn take_indices<E>(events: Vec<E>, keep: &[usize]) -> Vec<(usize, E)> {
    let mut keep = keep.iter().peekable();
    events
        .into_iter()
        .enumerate()
        .filter(|(i, _)| {
            if keep.peek() == Some(&i) {
                keep.next();
                true
            } else {
                false
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod upgrade_tests;
