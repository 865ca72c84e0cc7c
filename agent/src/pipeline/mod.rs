//! What happens to events once a source has read them: batch → ship or
//! spool → settle → checkpoint. Nothing here knows what a file is.
//!
//! A source hands the pipeline events of its streams, each with the
//! position its stream resumes at after it ([`Pipeline::emit`]). Events go
//! into the [`batcher`]; a full (or old enough) batch is recorded in the
//! [`checkpoints`] under every stream it holds and goes to the sender
//! threads ([`shipper`]), or, while the disk [`spool`] holds anything,
//! behind it into the spool, so delivery stays oldest first. A batch is
//! settled once the server acked it or it is durably spooled; a stream's
//! checkpoint then moves over its settled prefix only, and
//! `checkpoints.json` is written at most every [`CHECKPOINT_INTERVAL`].
//!
//! Reading pauses while `2 × max_in_flight` batches are unsettled, or the
//! spool is full ([`Pipeline::backpressured`]): the sources' own storage
//! (the log files) is the buffer.

pub(crate) mod batcher;
pub(crate) mod checkpoint_file;
pub(crate) mod checkpoints;
pub(crate) mod shipper;
pub(crate) mod spool;

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use loghound_shared::Event;

use self::batcher::{Batch, Batcher};
use self::checkpoint_file::CheckpointError;
use self::checkpoints::Checkpoints;
use self::shipper::{Outcome, Settled};
use self::spool::Spool;
use crate::metrics::Metrics;

/// Checkpoints are written at most this often while batches settle.
pub(crate) const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);
/// While reading waits for room in the spool, how often room is looked for.
const SPOOL_ROOM_POLL: Duration = Duration::from_millis(100);

/// Why the pipeline cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// No sender thread is left to take batches.
    #[error("every sender thread has stopped")]
    SendersStopped,
    /// A batch cannot be encoded.
    #[error("cannot encode a batch: {0}")]
    Encode(#[source] io::Error),
}

/// How batches are cut and how many may be unsettled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchLimits {
    pub(crate) max_bytes: usize,
    pub(crate) max_age: Duration,
    pub(crate) zstd_level: i32,
    pub(crate) max_in_flight: usize,
}

/// See the module docs.
pub(crate) struct Pipeline {
    batcher: Batcher,
    checkpoints: Checkpoints,
    /// To the sender threads.
    batches: Sender<Batch>,
    /// The disk spool, unless `spool_max_bytes` is 0.
    spool: Option<Arc<Spool>>,
    /// Whether reading is paused because the spool is full (logged once
    /// per episode).
    spool_full: bool,
    num_unsettled: usize,
    max_in_flight: usize,
    metrics: Arc<Metrics>,
}

impl Pipeline {
    pub(crate) fn new(
        limits: BatchLimits,
        checkpoints: Checkpoints,
        batches: Sender<Batch>,
        spool: Option<Arc<Spool>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            batcher: Batcher::new(limits.max_bytes, limits.max_age, limits.zstd_level),
            checkpoints,
            batches,
            spool,
            spool_full: false,
            num_unsettled: 0,
            max_in_flight: limits.max_in_flight,
            metrics,
        }
    }

    /// Takes one event; `cursor` is what its source resumes at after it,
    /// when the event's `end_offset` does not say it. Events of one stream
    /// come in stream order, and the stream is open in [`Self::checkpoints`].
    pub(crate) fn emit(
        &mut self,
        event: Event,
        cursor: Option<String>,
    ) -> Result<(), PipelineError> {
        if let Some(batch) = self
            .batcher
            .push(event, cursor, Instant::now())
            .map_err(PipelineError::Encode)?
        {
            self.submit(batch)?;
        }
        Ok(())
    }

    /// Whether sources should stop reading for now.
    pub(crate) fn backpressured(&self) -> bool {
        self.num_unsettled >= 2 * self.max_in_flight || self.spool_full
    }

    pub(crate) fn checkpoints(&self) -> &Checkpoints {
        &self.checkpoints
    }

    pub(crate) fn checkpoints_mut(&mut self) -> &mut Checkpoints {
        &mut self.checkpoints
    }

    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub(crate) fn num_unsettled(&self) -> usize {
        self.num_unsettled
    }

    /// Writes the checkpoints if anything changed; a failure is logged and
    /// recorded, and the write is tried again later.
    pub(crate) fn persist(&mut self) {
        if let Err(error) = self.checkpoints.persist() {
            tracing::error!(%error, "checkpoint write failed");
            self.metrics
                .note_error(format!("checkpoint write failed: {error}"));
        }
    }

    /// Whether a checkpoint write is due now. (The first write is due at
    /// the moment it is asked about, so "now" is taken after the deadline.)
    pub(crate) fn persist_due(&self) -> bool {
        self.checkpoints
            .write_due(CHECKPOINT_INTERVAL)
            .is_some_and(|due| due <= Instant::now())
    }

    /// The pipeline's next deadline: batch age, checkpoint write, and a
    /// look for room while the spool is full.
    pub(crate) fn next_wakeup(&self, now: Instant) -> Option<Instant> {
        [
            self.spool_full.then(|| now + SPOOL_ROOM_POLL),
            self.batcher.deadline(),
            self.checkpoints.write_due(CHECKPOINT_INTERVAL),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Sends the open batch if it is old enough.
    pub(crate) fn poll(&mut self, now: Instant) -> Result<(), PipelineError> {
        if let Some(batch) = self.batcher.poll(now).map_err(PipelineError::Encode)? {
            self.submit(batch)?;
        }
        Ok(())
    }

    /// Sends the open batch, whatever its age.
    pub(crate) fn flush(&mut self) -> Result<(), PipelineError> {
        if !self.batcher.is_empty() {
            let batch = self.batcher.flush().map_err(PipelineError::Encode)?;
            self.submit(batch)?;
        }
        Ok(())
    }

    /// Pauses reading while the spool is full, and says so once.
    pub(crate) fn check_spool_room(&mut self) {
        let Some(spool) = &self.spool else {
            return;
        };
        let full = !spool.has_room();
        if full && !self.spool_full {
            let stats = spool.stats();
            tracing::warn!(
                spool_bytes = stats.bytes,
                spool_max_bytes = spool.max_bytes(),
                num_batches = stats.num_unsent,
                "spool is full; reading paused until the server takes spooled batches (the log files hold the rest)"
            );
        } else if !full && self.spool_full {
            tracing::info!("spool has room again; reading resumes");
        }
        self.spool_full = full;
    }

    /// Appends `batch` to the spool if the spool is on and has room;
    /// returns whether it is now durably spooled (and so settled).
    fn spool_batch(&mut self, batch: &Batch) -> bool {
        let Some(spool) = &self.spool else {
            return false;
        };
        if !spool.has_room() {
            return false;
        }
        match spool.append(batch) {
            Ok(()) => {
                self.checkpoints
                    .on_batch_settled(batch.seq, &batch.stream_ids());
                true
            }
            Err(error) => {
                tracing::error!(%error, seq = batch.seq.0, "cannot write a batch to the spool; keeping it in memory and retrying");
                false
            }
        }
    }

    fn submit(&mut self, batch: Batch) -> Result<(), PipelineError> {
        for (stream_id, position) in &batch.stream_ends {
            self.checkpoints
                .on_batch_built(batch.seq, stream_id, position.clone());
        }
        tracing::debug!(
            seq = batch.seq.0,
            num_events = batch.num_events,
            compressed_bytes = batch.body.len(),
            "batch built"
        );
        if self.spool.as_ref().is_some_and(|spool| spool.is_active()) && self.spool_batch(&batch) {
            return Ok(());
        }
        self.num_unsettled += 1;
        let metrics = &self.metrics;
        metrics
            .lines_shipped
            .fetch_add(batch.num_events as u64, Ordering::Relaxed);
        metrics.batches_shipped.fetch_add(1, Ordering::Relaxed);
        metrics
            .bytes_shipped
            .fetch_add(batch.body.len() as u64, Ordering::Relaxed);
        metrics
            .batches_in_flight
            .store(self.num_unsettled as u64, Ordering::Relaxed);
        self.batches
            .send(batch)
            .map_err(|_| PipelineError::SendersStopped)
    }

    /// A sender settled a batch (or gave it up, for the spool).
    pub(crate) fn on_settled(&mut self, settled: Settled) {
        if let Some(batch) = settled.unsent {
            if !self.spool_batch(&batch) {
                // The spool is full (reading is paused) or failed: the
                // senders keep it in memory and try again.
                let _ = self.batches.send(batch);
                return;
            }
        }
        self.num_unsettled = self.num_unsettled.saturating_sub(1);
        self.metrics
            .batches_in_flight
            .store(self.num_unsettled as u64, Ordering::Relaxed);
        if let Outcome::Acked(answer) = &settled.outcome {
            self.metrics
                .lines_acked
                .fetch_add(answer.accepted + answer.duplicates, Ordering::Relaxed);
            self.metrics.batches_acked.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                seq = settled.seq.0,
                accepted = answer.accepted,
                duplicates = answer.duplicates,
                "batch acked"
            );
        }
        if settled.outcome != Outcome::Unreachable {
            self.checkpoints
                .on_batch_settled(settled.seq, &settled.stream_ids);
        }
    }

    /// Writes the checkpoints at shutdown; the error is the caller's.
    pub(crate) fn persist_final(&mut self) -> Result<(), CheckpointError> {
        self.checkpoints.persist()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins a bug of the first cut of this module: the deadline of a first
    /// write is "now" as of the question, so a `now` taken before asking
    /// never reached it and checkpoints were never written.
    #[test]
    fn a_first_checkpoint_write_is_due_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut checkpoints = Checkpoints::load(dir.path()).unwrap();
        checkpoints.open(checkpoints::StreamCheckpoint {
            source: "test".into(),
            stream_id: loghound_shared::FileId::new("s1").unwrap(),
            label: "s1".into(),
            offset: loghound_shared::ByteOffset(0),
            cursor: None,
            state: serde_json::Value::Null,
        });
        let (batches, _receiver) = crossbeam_channel::unbounded();
        let limits = BatchLimits {
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(1),
            zstd_level: 3,
            max_in_flight: 1,
        };
        let mut pipeline = Pipeline::new(
            limits,
            checkpoints,
            batches,
            None,
            Arc::new(Metrics::default()),
        );
        assert!(pipeline.persist_due());
        pipeline.persist();
        assert!(!pipeline.persist_due());
        assert!(dir.path().join(checkpoint_file::CHECKPOINTS_FILE).exists());
    }
}
