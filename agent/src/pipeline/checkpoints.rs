//! How far each stream is settled, advanced strictly in stream order.
//!
//! Batches settle out of order (several are in flight), but a checkpoint
//! may only cover events that are all settled. For every stream the table
//! keeps, in send order, the batches holding its events and the position
//! each one reaches; a settlement marks its entries, and the checkpoint
//! moves over the settled prefix only. What a position means beyond its
//! order (a byte offset, a journal cursor) and what else a source records
//! about a stream is the source's business: the table stores it as an
//! opaque [`StreamCheckpoint::state`] and [`StreamCheckpoint::cursor`].

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use loghound_shared::{ByteOffset, FileId};

pub(crate) use super::checkpoint_file::StreamCheckpoint;
use super::checkpoint_file::{self, CheckpointError};

/// Sequence number of a batch, in the order batches were built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct BatchSeq(pub(crate) u64);

/// A point in one stream: everything before it has been read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Position {
    /// The wire position: the `end_offset` of the stream's last event so
    /// far. Ordered within the stream; the server dedups on it.
    pub(crate) offset: ByteOffset,
    /// What the source needs besides to resume there, when the wire
    /// position does not say it (a journal cursor); files need none.
    pub(crate) cursor: Option<String>,
}

#[derive(Debug)]
struct Pending {
    seq: BatchSeq,
    position: Position,
    settled: bool,
}

#[derive(Debug)]
struct StreamState {
    checkpoint: StreamCheckpoint,
    pending: VecDeque<Pending>,
    /// Drop the checkpoint once nothing is pending (the stream ended).
    retired: bool,
}

/// In-memory checkpoints of every stream plus their persistence; see the
/// module docs.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    state_dir: PathBuf,
    streams: HashMap<FileId, StreamState>,
    dirty: bool,
    last_write: Option<Instant>,
}

impl Checkpoints {
    /// Loads `<state_dir>/checkpoints.json` (any format version this agent
    /// reads).
    pub(crate) fn load(state_dir: &Path) -> Result<Self, CheckpointError> {
        let streams = checkpoint_file::load(state_dir)?
            .into_iter()
            .map(|checkpoint| {
                let state = StreamState {
                    checkpoint,
                    pending: VecDeque::new(),
                    retired: false,
                };
                (state.checkpoint.stream_id.clone(), state)
            })
            .collect();
        Ok(Self {
            state_dir: state_dir.to_path_buf(),
            streams,
            dirty: false,
            last_write: None,
        })
    }

    /// The checkpoints of `source`'s streams, retired ones included when
    /// `with_retired` (they still reserve what they name until their last
    /// batch settles).
    pub(crate) fn of_source<'a>(
        &'a self,
        source: &'a str,
        with_retired: bool,
    ) -> impl Iterator<Item = &'a StreamCheckpoint> + 'a {
        self.streams
            .values()
            .filter(move |stream| stream.checkpoint.source == source)
            .filter(move |stream| with_retired || !stream.retired)
            .map(|stream| &stream.checkpoint)
    }

    /// The checkpoint of a stream, if tracked.
    pub(crate) fn get(&self, stream_id: &FileId) -> Option<&StreamCheckpoint> {
        self.streams.get(stream_id).map(|stream| &stream.checkpoint)
    }

    /// Starts tracking a stream; a checkpoint already kept for its id stays
    /// (with its position) and is no longer retired.
    pub(crate) fn open(&mut self, checkpoint: StreamCheckpoint) {
        let stream = self
            .streams
            .entry(checkpoint.stream_id.clone())
            .or_insert_with(|| StreamState {
                checkpoint,
                pending: VecDeque::new(),
                retired: false,
            });
        stream.retired = false;
        self.dirty = true;
    }

    /// Replaces what the source records about a stream besides its
    /// position, and its label.
    pub(crate) fn update(&mut self, stream_id: &FileId, label: String, state: serde_json::Value) {
        if let Some(stream) = self.streams.get_mut(stream_id) {
            if stream.checkpoint.state != state || stream.checkpoint.label != label {
                stream.checkpoint.state = state;
                stream.checkpoint.label = label;
                self.dirty = true;
            }
        }
    }

    /// Records that batch `seq` holds events of `stream_id` up to `position`.
    pub(crate) fn on_batch_built(&mut self, seq: BatchSeq, stream_id: &FileId, position: Position) {
        if let Some(stream) = self.streams.get_mut(stream_id) {
            debug_assert!(stream.pending.back().is_none_or(|p| p.seq < seq));
            stream.pending.push_back(Pending {
                seq,
                position,
                settled: false,
            });
        }
    }

    /// Batch `seq`, which held events of `stream_ids`, is settled: acked by
    /// the server or durably spooled.
    pub(crate) fn on_batch_settled(&mut self, seq: BatchSeq, stream_ids: &[FileId]) {
        for stream_id in stream_ids {
            let Some(stream) = self.streams.get_mut(stream_id) else {
                continue;
            };
            if let Some(pending) = stream.pending.iter_mut().find(|p| p.seq == seq) {
                pending.settled = true;
            }
            while stream.pending.front().is_some_and(|p| p.settled) {
                let done = stream.pending.pop_front().expect("front exists");
                let checkpoint = &mut stream.checkpoint;
                if done.position.offset >= checkpoint.offset {
                    checkpoint.offset = done.position.offset;
                    if done.position.cursor.is_some() {
                        checkpoint.cursor = done.position.cursor;
                    }
                }
                self.dirty = true;
            }
            if stream.retired && stream.pending.is_empty() {
                self.streams.remove(stream_id);
                self.dirty = true;
            }
        }
    }

    /// The settled position of a stream, if tracked.
    pub(crate) fn settled_offset(&self, stream_id: &FileId) -> Option<ByteOffset> {
        self.streams
            .get(stream_id)
            .map(|stream| stream.checkpoint.offset)
    }

    /// Forgets a stream once its pending batches are settled.
    pub(crate) fn retire(&mut self, stream_id: &FileId) {
        if let Some(stream) = self.streams.get_mut(stream_id) {
            stream.retired = true;
            if stream.pending.is_empty() {
                self.streams.remove(stream_id);
                self.dirty = true;
            }
        }
    }

    /// When the next write is due, if anything changed.
    pub(crate) fn write_due(&self, min_interval: Duration) -> Option<Instant> {
        if !self.dirty {
            return None;
        }
        Some(match self.last_write {
            Some(last) => last + min_interval,
            None => Instant::now(),
        })
    }

    /// Writes the checkpoint file if anything changed.
    pub(crate) fn persist(&mut self) -> Result<(), CheckpointError> {
        if !self.dirty {
            return Ok(());
        }
        let mut checkpoints: Vec<StreamCheckpoint> = self
            .streams
            .values()
            .map(|stream| stream.checkpoint.clone())
            .collect();
        checkpoints.sort_by(|a, b| {
            (&a.source, &a.label, &a.stream_id).cmp(&(&b.source, &b.label, &b.stream_id))
        });
        checkpoint_file::store(&self.state_dir, checkpoints)?;
        self.dirty = false;
        self.last_write = Some(Instant::now());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(id: &str, offset: u64) -> StreamCheckpoint {
        StreamCheckpoint {
            source: "test".into(),
            stream_id: FileId::new(id).unwrap(),
            label: format!("/l/{id}"),
            offset: ByteOffset(offset),
            cursor: None,
            state: serde_json::json!({"version": 1}),
        }
    }

    fn at(offset: u64) -> Position {
        Position {
            offset: ByteOffset(offset),
            cursor: None,
        }
    }

    #[test]
    fn out_of_order_settlement_does_not_skip_unsettled_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut checkpoints = Checkpoints::load(dir.path()).unwrap();
        let id = FileId::new("a1").unwrap();
        checkpoints.open(checkpoint("a1", 0));
        checkpoints.on_batch_built(BatchSeq(1), &id, at(100));
        checkpoints.on_batch_built(BatchSeq(2), &id, at(250));

        checkpoints.on_batch_settled(BatchSeq(2), std::slice::from_ref(&id));
        assert_eq!(checkpoints.settled_offset(&id), Some(ByteOffset(0)));

        checkpoints.on_batch_settled(BatchSeq(1), std::slice::from_ref(&id));
        assert_eq!(checkpoints.settled_offset(&id), Some(ByteOffset(250)));
    }

    #[test]
    fn streams_advance_independently() {
        let dir = tempfile::tempdir().unwrap();
        let mut checkpoints = Checkpoints::load(dir.path()).unwrap();
        let (a, b) = (FileId::new("a").unwrap(), FileId::new("b").unwrap());
        checkpoints.open(checkpoint("a", 0));
        checkpoints.open(checkpoint("b", 5));
        checkpoints.on_batch_built(BatchSeq(1), &a, at(10));
        checkpoints.on_batch_built(BatchSeq(2), &b, at(20));
        checkpoints.on_batch_settled(BatchSeq(2), std::slice::from_ref(&b));
        assert_eq!(checkpoints.settled_offset(&a), Some(ByteOffset(0)));
        assert_eq!(checkpoints.settled_offset(&b), Some(ByteOffset(20)));
    }

    #[test]
    fn a_cursor_is_checkpointed_with_its_settled_position_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut checkpoints = Checkpoints::load(dir.path()).unwrap();
        let id = FileId::new("j1").unwrap();
        checkpoints.open(checkpoint("j1", 0));
        let cursor = |offset: u64, cursor: &str| Position {
            offset: ByteOffset(offset),
            cursor: Some(cursor.into()),
        };
        checkpoints.on_batch_built(BatchSeq(1), &id, cursor(3, "s=a;i=3"));
        checkpoints.on_batch_built(BatchSeq(2), &id, cursor(7, "s=a;i=7"));
        checkpoints.on_batch_settled(BatchSeq(2), std::slice::from_ref(&id));
        assert_eq!(checkpoints.get(&id).unwrap().cursor, None);
        checkpoints.on_batch_settled(BatchSeq(1), std::slice::from_ref(&id));
        assert_eq!(
            checkpoints.get(&id).unwrap().cursor.as_deref(),
            Some("s=a;i=7")
        );
        checkpoints.persist().unwrap();
        let again = Checkpoints::load(dir.path()).unwrap();
        assert_eq!(again.get(&id), checkpoints.get(&id));
    }

    #[test]
    fn an_open_stream_keeps_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut checkpoints = Checkpoints::load(dir.path()).unwrap();
        let id = FileId::new("a1").unwrap();
        checkpoints.open(checkpoint("a1", 40));
        checkpoints.open(checkpoint("a1", 0));
        assert_eq!(checkpoints.settled_offset(&id), Some(ByteOffset(40)));
    }

    #[test]
    fn retired_stream_is_forgotten_after_its_last_settlement() {
        let dir = tempfile::tempdir().unwrap();
        let mut checkpoints = Checkpoints::load(dir.path()).unwrap();
        let id = FileId::new("x").unwrap();
        checkpoints.open(checkpoint("x", 0));
        checkpoints.on_batch_built(BatchSeq(1), &id, at(2));
        checkpoints.retire(&id);
        assert!(checkpoints.settled_offset(&id).is_some());
        assert_eq!(checkpoints.of_source("test", false).count(), 0);
        assert_eq!(checkpoints.of_source("test", true).count(), 1);
        checkpoints.on_batch_settled(BatchSeq(1), std::slice::from_ref(&id));
        assert_eq!(checkpoints.settled_offset(&id), None);
    }
}
