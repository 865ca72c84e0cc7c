//! The ingest path behind the HTTP handler: decode, drop duplicates, log
//! durably, hand to the indexer. Handlers talk to the [`IngestBackend`]
//! trait only, so another backend (a replicated stream, say) can replace
//! the local WAL without touching them.

use std::sync::{Arc, Mutex};

use crossbeam_channel::Sender;
use loghound_shared::api::IngestResponse;
use loghound_shared::{decode_batch, AgentId, DecodeError, Limits};

use crate::dedup::Dedup;
use crate::index::indexer::{IndexerMsg, LoggedBatch};
use crate::index::queue::{events_cost_bytes, QueueBudget};
use crate::wal::{Wal, WalError};

/// Why a batch was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The batch itself is bad; the client must not resend it as is.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The server could not make it durable; the client should retry.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The indexer is behind: the batch would not fit under
    /// `index_queue_max_bytes`. Nothing was logged; the client should retry.
    #[error(
        "the indexer is behind: {queued_bytes} bytes wait for it, the bound \
         (index_queue_max_bytes) is {max_bytes}; nothing was stored, retry later"
    )]
    Busy {
        /// Bytes waiting when the batch was refused.
        queued_bytes: u64,
        /// `index_queue_max_bytes`.
        max_bytes: u64,
    },
    /// The server is shutting down.
    #[error("server is shutting down")]
    ShuttingDown,
}

/// Where accepted batches go.
pub trait IngestBackend: Send + Sync + 'static {
    /// Accepts a compressed batch from `agent`; returns once the new events
    /// are durable. Blocking: run it off the async executor.
    fn ingest(
        &self,
        agent: &AgentId,
        received_at_ms: i64,
        body: &[u8],
    ) -> Result<(IngestResponse, u64), IngestError>;

    /// Waits until the given WAL position is durable.
    fn wait_durable(
        &self,
        seq: u64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
}

/// The single-node backend: WAL + deduplication + local indexer.
pub struct LocalIngest {
    limits: Limits,
    wal: Arc<Wal>,
    /// Held from the duplicate check until the indexer has the batch, so
    /// that decisions and log order agree.
    state: Mutex<Dedup>,
    indexer: Sender<IndexerMsg>,
    queue: Arc<QueueBudget>,
}

impl LocalIngest {
    /// A backend over an opened WAL whose replay produced `dedup`; new
    /// batches reserve their room in `queue` before they are logged.
    pub fn new(
        limits: Limits,
        wal: Arc<Wal>,
        dedup: Dedup,
        indexer: Sender<IndexerMsg>,
        queue: Arc<QueueBudget>,
    ) -> Self {
        LocalIngest {
            limits,
            wal,
            state: Mutex::new(dedup),
            indexer,
            queue,
        }
    }

    fn busy(&self) -> IngestError {
        IngestError::Busy {
            queued_bytes: self.queue.used_bytes(),
            max_bytes: self.queue.max_bytes(),
        }
    }

    /// Applies one replayed WAL record: the same decision as when it was
    /// first logged, because the rule is deterministic.
    pub fn replay_decide(
        dedup: &mut Dedup,
        limits: &Limits,
        record: crate::wal::Record,
    ) -> Option<LoggedBatch> {
        let events = match decode_batch(&record.body, limits) {
            Ok(events) => events,
            Err(error) => {
                tracing::error!(%error, seq = record.seq, "logged batch no longer decodes; skipped");
                return None;
            }
        };
        let fresh = dedup.new_events(&record.agent, &events);
        dedup.record(&record.agent, fresh.iter().map(|&i| &events[i]));
        let events = take_indices(events, &fresh);
        Some(LoggedBatch {
            seq: record.seq,
            agent: record.agent,
            received_at_ms: record.received_at_ms,
            cost_bytes: events_cost_bytes(events.iter().map(|(_, e)| e)),
            events,
        })
    }
}

fn take_indices(
    events: Vec<loghound_shared::Event>,
    keep: &[usize],
) -> Vec<(usize, loghound_shared::Event)> {
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

impl IngestBackend for LocalIngest {
    fn ingest(
        &self,
        agent: &AgentId,
        received_at_ms: i64,
        body: &[u8],
    ) -> Result<(IngestResponse, u64), IngestError> {
        // Refused before decoding: under overload most batches cost nothing.
        if self.queue.is_full() {
            return Err(self.busy());
        }
        let events = decode_batch(body, &self.limits)?;
        let total = events.len() as u64;
        let mut dedup = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = dedup.new_events(agent, &events);
        let response = IngestResponse {
            accepted: fresh.len() as u64,
            duplicates: total - fresh.len() as u64,
        };
        if fresh.is_empty() {
            // Nothing new, but the copy we hold may not be durable yet.
            return Ok((response, self.wal.next_seq() - 1));
        }
        // The room is taken before the log is written, so a refused batch
        // is not logged and its retry is not a duplicate.
        let cost_bytes = events_cost_bytes(fresh.iter().map(|&i| &events[i]));
        if !self.queue.try_reserve(cost_bytes) {
            return Err(self.busy());
        }
        let seq = match self.wal.append(agent, received_at_ms, body) {
            Ok(seq) => seq,
            Err(error) => {
                self.queue.release(cost_bytes);
                return Err(error.into());
            }
        };
        dedup.record(agent, fresh.iter().map(|&i| &events[i]));
        let batch = LoggedBatch {
            seq,
            agent: agent.clone(),
            received_at_ms,
            cost_bytes,
            events: take_indices(events, &fresh),
        };
        self.indexer
            .send(IndexerMsg::Batch(batch))
            .map_err(|_| IngestError::ShuttingDown)?;
        Ok((response, seq))
    }

    fn wait_durable(
        &self,
        seq: u64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(self.wal.durability().wait(seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_indices_keeps_positions() {
        let dummy = |o| loghound_shared::Event {
            file_id: loghound_shared::FileId::new("f").unwrap(),
            offset: loghound_shared::ByteOffset(o),
            end_offset: loghound_shared::ByteOffset(o + 1),
            host: "h".into(),
            source: "s".into(),
            message: "m".into(),
            read_at_ms: None,
            tags: Default::default(),
            truncated: false,
            invalid_utf8: false,
            format: None,
        };
        let kept = take_indices((0..5).map(dummy).collect(), &[1, 3]);
        let positions: Vec<_> = kept.iter().map(|(i, e)| (*i, e.offset.0)).collect();
        assert_eq!(positions, vec![(1, 1), (3, 3)]);
    }
}
