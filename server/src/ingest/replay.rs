//! Start-up: the log is read from the checkpoint into the indexer, one
//! record at a time, each waiting for room under the same byte bound as
//! ingest, so a long log streams through instead of sitting in memory.

use std::sync::atomic::Ordering;
use std::sync::Mutex;

use crossbeam_channel::Sender;
use loghound_shared::{decode_batch, Limits};
use tracing::error;

use super::checkpoint::Checkpoints;
use super::dedup::Dedup;
use super::queue::{events_cost_bytes, QueueBudget};
use super::{record, take_indices, InEvent, LoggedBatch, Origin};
use crate::index::indexer::IndexerMsg;
use crate::log::{BodyFormat, Log, LogError, LogPosition, LogRecord, ReadReport};

/// What replay did.
#[derive(Debug, Default)]
pub struct Replayed {
    /// What reading the log found.
    pub read: ReadReport,
    /// Records written by an earlier release, decided again.
    pub legacy_records: u64,
    /// Records that no longer decode (reported and skipped).
    pub undecodable: u64,
}

/// Everything replay needs besides the log.
pub struct Replay<'a> {
    /// The agent protocol's limits, for agent batches.
    pub limits: &'a Limits,
    /// The ingest room's deduplication state, from the checkpoint.
    pub state: &'a Mutex<Dedup>,
    /// The checkpoint writer, told about records of earlier releases.
    pub checkpoints: &'a Checkpoints,
    /// The indexer queue's byte bound.
    pub queue: &'a QueueBudget,
    /// The indexer.
    pub indexer: &'a Sender<IndexerMsg>,
}

impl Replay<'_> {
    /// Hands every record from `from` on to the indexer, bringing the
    /// deduplication state up to date on the way.
    pub fn run(&self, log: &dyn Log, from: LogPosition) -> Result<Replayed, LogError> {
        let mut replayed = Replayed::default();
        let legacy_marker = self.checkpoints.legacy_marker();
        replayed.read = log.read_from(from, &mut |record| {
            let legacy = record.format == BodyFormat::LegacyAgentBatch;
            let batch = {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                if legacy {
                    // Raised before the state changes, so no checkpoint
                    // holds this record's decisions before it is committed.
                    legacy_marker.fetch_max(record.position.get(), Ordering::SeqCst);
                    replayed.legacy_records += 1;
                }
                self.decide(&mut state, record)
            };
            let Some(batch) = batch else {
                replayed.undecodable += 1;
                return;
            };
            self.queue.reserve_blocking(batch.cost_bytes);
            // Fails only if the indexer died, which ends the process.
            let _ = self.indexer.send(IndexerMsg::Batch(batch));
        })?;
        Ok(replayed)
    }

    /// The new events of one record. A record of this release carries
    /// ingest's decisions; one of an earlier release is decided again,
    /// which gives the same answer because the rule is deterministic and
    /// the checkpoint such records follow holds the state as of them.
    fn decide(&self, state: &mut Dedup, record: LogRecord) -> Option<LoggedBatch> {
        let Some(origin) = Origin::from_key(&record.origin) else {
            error!(seq = record.position.get(), origin = %record.origin,
                "logged batch has an unknown origin; skipped");
            return None;
        };
        let key = record.origin;
        let events = match record.format {
            BodyFormat::Ingest => match record::decode(&record.body, self.limits) {
                Ok(events) => {
                    state.record(&key, events.iter().map(|(_, e)| e));
                    events
                }
                Err(error) => {
                    error!(%error, seq = record.position.get(), "logged batch no longer decodes; skipped");
                    return None;
                }
            },
            BodyFormat::LegacyAgentBatch => match decode_batch(&record.body, self.limits) {
                Ok(events) => {
                    let events: Vec<InEvent> = events.into_iter().map(InEvent::from).collect();
                    let fresh = state.new_events(&key, &events);
                    state.record(&key, fresh.iter().map(|&i| &events[i]));
                    take_indices(events, &fresh)
                }
                Err(error) => {
                    error!(%error, seq = record.position.get(), "logged batch no longer decodes; skipped");
                    return None;
                }
            },
        };
        Some(LoggedBatch {
            position: record.position,
            origin,
            received_at_ms: record.received_at_ms,
            cost_bytes: events_cost_bytes(events.iter().map(|(_, e)| e)),
            events,
        })
    }
}
