//! The indexer thread: turns logged batches into documents of the right
//! day index and commits about once a second.
//!
//! A commit only covers records already durable in the WAL, and stores the
//! last record's sequence number as each index's commit payload; replay
//! after a crash skips what an index already has, so no event is indexed
//! twice even though the day indexes do not commit atomically together.
//!
//! A full disk does not stop the indexer: the batches since the last
//! commit are kept (they count against the queue bound until committed),
//! the writers are dropped with whatever they had not committed, and after
//! a pause the kept batches are added again and committed. Other index
//! errors stop the process; the WAL replays on restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use tantivy::IndexWriter;
use time::Date;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

pub mod document;
mod error;
mod merge;
mod retention;

use self::error::tantivy;
pub use self::error::IndexerError;
use self::merge::merge_policy;
pub use self::merge::{MERGE_MIN_LAYER_DOCS, MERGE_MIN_SEGMENTS};
pub use self::retention::RetentionReport;
use super::{day_of_ms, IndexSet};
use crate::ingest::checkpoint::{Checkpoints, Stored};
use crate::ingest::queue::QueueBudget;
pub use crate::ingest::LoggedBatch;
use crate::log::{Log, LogPosition};

/// What the indexer thread is told.
pub enum IndexerMsg {
    /// Index these events.
    Batch(LoggedBatch),
    /// Commit what is pending and stop; the sender is dropped when done.
    Shutdown(crossbeam_channel::Sender<()>),
    /// Apply `retention_days` as of the UTC day `today` now, and report.
    Retention {
        /// The current UTC day (a parameter so tests can move time).
        today: Date,
        /// Receives what was done.
        done: crossbeam_channel::Sender<RetentionReport>,
    },
}

/// Settings of the indexer.
pub struct IndexerConfig {
    /// Time between commits.
    pub commit_interval: Duration,
    /// Writer memory per day.
    pub writer_heap_bytes: usize,
    /// Writer threads per day.
    pub writer_threads: usize,
    /// Days of receipt to keep (`retention_days`); `None` keeps all.
    pub retention_days: Option<u32>,
}

/// How often the checkpoint is rewritten and WAL segments are released.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);
/// How often retention runs (besides once at start).
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);
/// A day's writer closes after this long without new events.
const WRITER_IDLE: Duration = Duration::from_secs(120);
/// Most day writers open at once: today's, and yesterday's while a replay
/// or a batch straddles midnight.
const MAX_OPEN_WRITERS: usize = 2;
/// First pause after a full disk stopped a commit; doubles up to
/// [`DISK_FULL_MAX_PAUSE`].
const DISK_FULL_FIRST_PAUSE: Duration = Duration::from_millis(250);
/// Longest pause between two attempts on a full disk.
const DISK_FULL_MAX_PAUSE: Duration = Duration::from_secs(4);

/// Indexing paused by a full disk.
struct Stall {
    retry_at: Instant,
    pause: Duration,
}

struct Writer {
    writer: IndexWriter,
    dirty: bool,
    last_used: Instant,
}

/// The indexer's state, owned by its thread.
pub struct Indexer {
    config: IndexerConfig,
    indexes: Arc<IndexSet>,
    log: Arc<dyn Log>,
    checkpoints: Checkpoints,
    writers: HashMap<Date, Writer>,
    /// The last record added to a writer and not committed yet.
    pending_seq: Option<u64>,
    /// Every batch received and not committed yet, in order; the first
    /// `num_added` are in the writers.
    uncommitted: Vec<LoggedBatch>,
    num_added: usize,
    queue: Arc<QueueBudget>,
    stall: Option<Stall>,
    committed_tx: watch::Sender<u64>,
    last_checkpoint: Instant,
    checkpointed_seq: u64,
    /// Dropped days whose directories wait for searches to let go.
    doomed: Vec<Arc<super::DayIndex>>,
}

impl Indexer {
    /// An indexer whose indexes hold every record through the position
    /// `committed_tx` starts at. It never makes searchable what `log` has
    /// not made durable, and writes checkpoints through `checkpoints`. Each
    /// batch's `cost_bytes` is given back to `queue` once the batch is
    /// committed.
    pub fn new(
        config: IndexerConfig,
        indexes: Arc<IndexSet>,
        log: Arc<dyn Log>,
        checkpoints: Checkpoints,
        committed_tx: watch::Sender<u64>,
        queue: Arc<QueueBudget>,
    ) -> Self {
        let checkpointed_seq = *committed_tx.borrow();
        Indexer {
            config,
            indexes,
            log,
            checkpoints,
            writers: HashMap::new(),
            pending_seq: None,
            uncommitted: Vec::new(),
            num_added: 0,
            queue,
            stall: None,
            committed_tx,
            last_checkpoint: Instant::now(),
            checkpointed_seq,
            doomed: Vec::new(),
        }
    }

    /// Runs until shutdown or until the channel closes. A full disk pauses
    /// indexing; other index failures are fatal: the process exits and the
    /// WAL replays on restart.
    pub fn run(mut self, inbox: Receiver<IndexerMsg>) {
        let mut next_commit = Instant::now() + self.config.commit_interval;
        // The first pass is asked for by `serve` once replay is done.
        let mut next_retention = Instant::now() + RETENTION_INTERVAL;
        loop {
            let wake = match &self.stall {
                Some(stall) => stall.retry_at,
                None => next_commit,
            };
            let wait = wake.saturating_duration_since(Instant::now());
            let done = match inbox.recv_timeout(wait) {
                Ok(IndexerMsg::Batch(batch)) => {
                    self.receive(batch);
                    None
                }
                Ok(IndexerMsg::Retention { today, done }) => {
                    let report = self.retention_pass(today);
                    let _ = done.send(report);
                    None
                }
                Ok(IndexerMsg::Shutdown(ack)) => Some(Some(ack)),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(None),
            };
            if let Some(ack) = done {
                if self.stall.is_some() {
                    self.resume();
                } else {
                    self.commit_or_stall();
                }
                if !self.uncommitted.is_empty() {
                    warn!(
                        batches = self.uncommitted.len(),
                        "indexer stopped with batches not committed (disk full); \
                         the write-ahead log replays them at the next start"
                    );
                }
                info!(seq = self.committed_seq(), "indexer stopped");
                drop(ack);
                return;
            }
            if let Some(stall) = &self.stall {
                if Instant::now() >= stall.retry_at {
                    self.resume();
                    next_commit = Instant::now() + self.config.commit_interval;
                }
            } else if Instant::now() >= next_commit || self.queue_pressed() {
                self.commit_or_stall();
                self.delete_released_days();
                next_commit = Instant::now() + self.config.commit_interval;
            }
            if Instant::now() >= next_retention {
                self.retention_pass(day_of_ms(crate::timeparse::now_ms()));
                next_retention = Instant::now() + RETENTION_INTERVAL;
            }
        }
    }

    /// Writes `checkpoint.json` for what is committed and lets the log
    /// free what is before it. Only with nothing uncommitted, so replay
    /// never starts past a record a full disk kept out of the indexes.
    /// Returns whether it was written: it waits while records of an
    /// earlier release are not all committed.
    fn store_checkpoint(&mut self) -> Result<bool, IndexerError> {
        debug_assert!(self.uncommitted.is_empty() && self.pending_seq.is_none());
        let committed = self.committed_seq();
        self.last_checkpoint = Instant::now();
        match self.checkpoints.store(LogPosition(committed))? {
            Stored::Written { released } => {
                self.checkpointed_seq = committed;
                if released > 0 {
                    debug!(released, through_seq = committed, "released log segments");
                }
                Ok(true)
            }
            Stored::Deferred(until) => {
                debug!(%until, "checkpoint waits for records of an earlier release");
                Ok(false)
            }
        }
    }

    /// Stops the process on an index error other than a full disk.
    fn fatal(error: &IndexerError) -> ! {
        error!(
            %error,
            "indexing failed; stopping so that restart replays the write-ahead log"
        );
        std::process::exit(70);
    }

    /// Whether the batches in the writers hold half the queue bound:
    /// committing now gives room back before ingest has to refuse batches.
    /// (Batches still in the channel do not count, or a long queue would
    /// make a commit of every batch.)
    fn queue_pressed(&self) -> bool {
        let added: u64 = self.uncommitted[..self.num_added]
            .iter()
            .map(|batch| batch.cost_bytes)
            .sum();
        added.saturating_mul(2) >= self.queue.max_bytes()
    }

    /// Takes a batch: added at once, or kept for later while paused.
    fn receive(&mut self, batch: LoggedBatch) {
        self.uncommitted.push(batch);
        if self.stall.is_none() {
            if let Err(error) = self.add_next() {
                self.on_error(error);
            }
        }
    }

    /// Adds the first batch of `uncommitted` not yet in the writers.
    fn add_next(&mut self) -> Result<(), IndexerError> {
        // Taken out for the call, so `add` can borrow `self` mutably.
        let uncommitted = std::mem::take(&mut self.uncommitted);
        let result = match uncommitted.get(self.num_added) {
            Some(batch) => self.add(batch).map(|()| 1),
            None => Ok(0),
        };
        self.uncommitted = uncommitted;
        self.num_added += result?;
        Ok(())
    }

    /// A full disk pauses indexing; anything else is fatal.
    fn on_error(&mut self, error: IndexerError) {
        if !error.is_disk_full() {
            Self::fatal(&error);
        }
        let pause = self.stall.as_ref().map_or(DISK_FULL_FIRST_PAUSE, |s| {
            (s.pause * 2).min(DISK_FULL_MAX_PAUSE)
        });
        warn!(
            %error,
            batches = self.uncommitted.len(),
            retry_in_ms = pause.as_millis() as u64,
            "indexing paused: the data directory is full"
        );
        // What the writers hold uncommitted is thrown away with them; the
        // batches are kept and added again when space is back.
        for (_, writer) in self.writers.drain() {
            drop(writer.writer);
        }
        self.pending_seq = None;
        self.num_added = 0;
        self.stall = Some(Stall {
            retry_at: Instant::now() + pause,
            pause,
        });
    }

    /// After a pause: adds every kept batch again and commits.
    fn resume(&mut self) {
        let result = (|| {
            while self.num_added < self.uncommitted.len() {
                self.add_next()?;
            }
            self.commit()
        })();
        match result {
            Ok(()) => {
                if self.stall.take().is_some() {
                    info!("indexing resumed: the data directory has room again");
                }
            }
            Err(error) => self.on_error(error),
        }
    }

    fn commit_or_stall(&mut self) {
        if let Err(error) = self.commit() {
            self.on_error(error);
        }
    }

    fn committed_seq(&self) -> u64 {
        *self.committed_tx.borrow()
    }

    fn add(&mut self, batch: &LoggedBatch) -> Result<(), IndexerError> {
        let fields = self.indexes.fields.clone();
        let seq = batch.position.get();
        // Indexes are per day of receipt: the live stream and a back-fill of
        // old files both go to one writer, whatever times the lines carry.
        let day = self.indexes.open_day(day_of_ms(batch.received_at_ms))?;
        if day.committed_seq() >= seq {
            // Replay of a record this day already committed.
            self.pending_seq = Some(seq);
            return Ok(());
        }
        let origin = batch.origin.key();
        let writer = self.writer(day.day)?;
        for (index, event) in &batch.events {
            let doc = document::build(
                &fields,
                day.derives_fields,
                seq,
                *index,
                event,
                &origin,
                batch.received_at_ms,
            );
            if let Err(error) = writer.writer.add_document(doc) {
                // A failed indexing thread shows here only as "killed";
                // joining the threads yields the real cause.
                return Err(match writer.writer.prepare_commit() {
                    Err(source) => IndexerError::AddDocument {
                        shown: error.to_string(),
                        source,
                    },
                    Ok(_) => tantivy("add a document")(error),
                });
            }
        }
        writer.dirty = true;
        writer.last_used = Instant::now();
        self.pending_seq = Some(seq);
        Ok(())
    }

    fn writer(&mut self, day: Date) -> Result<&mut Writer, IndexerError> {
        if !self.writers.contains_key(&day) {
            if self.writers.len() >= MAX_OPEN_WRITERS {
                self.close_least_recent_writer()?;
            }
            let index = self.indexes.open_day(day)?;
            let writer: IndexWriter = index
                .index
                .writer_with_num_threads(
                    self.config.writer_threads,
                    self.config.writer_heap_bytes * self.config.writer_threads,
                )
                .map_err(tantivy("open a writer"))?;
            writer.set_merge_policy(Box::new(merge_policy()));
            debug!(%day, "opened index writer");
            self.writers.insert(
                day,
                Writer {
                    writer,
                    dirty: false,
                    last_used: Instant::now(),
                },
            );
        }
        Ok(self
            .writers
            .get_mut(&day)
            .expect("inserted above when missing"))
    }

    /// Commits one day's writer up to `seq`: every record up to it has been
    /// added (records arrive in order), so the payload is truthful.
    fn commit_day(&mut self, day: Date, seq: u64) -> Result<(), IndexerError> {
        let Some(writer) = self.writers.get_mut(&day).filter(|w| w.dirty) else {
            return Ok(());
        };
        // Never make searchable what a crash could still take back.
        self.log.wait_durable_blocking(LogPosition(seq));
        let mut prepared = writer
            .writer
            .prepare_commit()
            .map_err(tantivy("prepare a commit"))?;
        prepared.set_payload(&seq.to_string());
        prepared.commit().map_err(tantivy("commit"))?;
        writer.dirty = false;
        let index = self.indexes.open_day(day)?;
        index.reader.reload().map_err(tantivy("reload a reader"))?;
        index.set_committed_seq(seq);
        Ok(())
    }

    fn close_least_recent_writer(&mut self) -> Result<(), IndexerError> {
        let Some(day) = self
            .writers
            .iter()
            .min_by_key(|(_, w)| w.last_used)
            .map(|(day, _)| *day)
        else {
            return Ok(());
        };
        if let Some(seq) = self.pending_seq {
            self.commit_day(day, seq)?;
        }
        if let Some(writer) = self.writers.remove(&day) {
            writer
                .writer
                .wait_merging_threads()
                .map_err(tantivy("close a writer"))?;
        }
        debug!(%day, "closed index writer (too many open)");
        Ok(())
    }

    fn commit(&mut self) -> Result<(), IndexerError> {
        if let Some(seq) = self.pending_seq.take() {
            let started = Instant::now();
            let days: Vec<Date> = self.writers.keys().copied().collect();
            for day in &days {
                self.commit_day(*day, seq)?;
            }
            self.committed_tx.send_replace(seq);
            self.release_committed();
            debug!(
                seq,
                writers = days.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "committed"
            );
        }
        self.writers
            .retain(|_, w| w.dirty || w.last_used.elapsed() < WRITER_IDLE);
        self.release_committed();
        let committed = self.committed_seq();
        if committed > self.checkpointed_seq
            && self.last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL
        {
            if let Err(error) = self.store_checkpoint() {
                if !error.is_disk_full() {
                    return Err(error);
                }
                // The WAL keeps every segment the last checkpoint needs;
                // the next commit tries again.
                warn!(%error, "cannot write the checkpoint: the data directory is full");
            }
        }
        Ok(())
    }

    /// Gives back the queue room of every batch in the writers once they
    /// are committed.
    fn release_committed(&mut self) {
        if self.pending_seq.is_some() {
            return;
        }
        let bytes: u64 = self
            .uncommitted
            .drain(..self.num_added)
            .map(|batch| batch.cost_bytes)
            .sum();
        self.num_added = 0;
        self.queue.release(bytes);
    }
}

#[cfg(test)]
mod retention_tests;
