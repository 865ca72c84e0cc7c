//! Which byte of each file the server has acked, advanced strictly in file
//! order.
//!
//! Batches are acked out of order (several are in flight), but a checkpoint
//! may only cover lines that are all acked. For every file the checkpointer
//! keeps, in send order, the batches holding its lines and the offset each
//! one reaches; an ack marks its entries, and the checkpoint moves over the
//! acked prefix only.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use loghound_shared::{ByteOffset, FileId};

use crate::checkpoint_file::{self, CheckpointError, CheckpointRecord};
use crate::fingerprint::{DevInode, Identity};

/// What the checkpoints say about a file being opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resume {
    /// The generation to read the file under.
    pub(crate) generation: u32,
    /// The acked offset of that generation, if it has a checkpoint.
    pub(crate) acked: Option<ByteOffset>,
    /// The id that checkpoint was written under (an adopted copy keeps the
    /// id of the stream it continues, which its location does not give).
    pub(crate) file_id: Option<FileId>,
    /// A generation no checkpoint at this location has used yet: the one to
    /// take after a truncation, so the new id never repeats an old one.
    pub(crate) next_generation: u32,
}

/// Sequence number of a batch, in the order batches were built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct BatchSeq(pub(crate) u64);

#[derive(Debug)]
struct Pending {
    seq: BatchSeq,
    end_offset: ByteOffset,
    acked: bool,
}

#[derive(Debug)]
struct FileState {
    record: CheckpointRecord,
    pending: VecDeque<Pending>,
    /// Drop the record once nothing is pending (file deleted, or superseded
    /// by a newer generation).
    retired: bool,
}

/// In-memory checkpoints plus their persistence; see the module docs.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    state_dir: PathBuf,
    files: HashMap<FileId, FileState>,
    dirty: bool,
    last_write: Option<Instant>,
}

impl Checkpointer {
    /// Loads `<state_dir>/checkpoints.json`.
    pub(crate) fn load(state_dir: &Path) -> Result<Self, CheckpointError> {
        let files = checkpoint_file::load(state_dir)?
            .into_iter()
            .map(|record| {
                let state = FileState {
                    record,
                    pending: VecDeque::new(),
                    retired: false,
                };
                (state.record.file_id.clone(), state)
            })
            .collect();
        Ok(Self {
            state_dir: state_dir.to_path_buf(),
            files,
            dirty: false,
            last_write: None,
        })
    }

    /// The checkpoints of files still tracked (not retired).
    pub(crate) fn records(&self) -> impl Iterator<Item = &CheckpointRecord> {
        self.files
            .values()
            .filter(|state| !state.retired)
            .map(|state| &state.record)
    }

    /// A generation no checkpoint at `location` has used yet.
    pub(crate) fn next_generation(&self, location: DevInode) -> u32 {
        self.lookup(location, "").next_generation
    }

    /// Where to resume a file at `location` whose first line has
    /// `fingerprint`.
    pub(crate) fn lookup(&self, location: DevInode, fingerprint: &str) -> Resume {
        let at_location = || {
            self.files
                .values()
                .map(|state| &state.record)
                .filter(move |r| location.same_file(r.dev, r.inode, r.birth_ns))
        };
        let matching = at_location()
            .filter(|r| r.fingerprint == fingerprint)
            .max_by_key(|r| r.generation);
        let next_generation = at_location().map(|r| r.generation + 1).max().unwrap_or(0);
        match matching {
            Some(record) => Resume {
                generation: record.generation,
                acked: Some(record.offset),
                file_id: Some(record.file_id.clone()),
                next_generation,
            },
            None => Resume {
                generation: next_generation,
                acked: None,
                file_id: None,
                next_generation,
            },
        }
    }

    /// Starts tracking a file read from `start` (keeps an existing record).
    pub(crate) fn track(&mut self, identity: &Identity, path: &Path, start: ByteOffset) {
        let state = self
            .files
            .entry(identity.file_id.clone())
            .or_insert_with(|| FileState {
                record: CheckpointRecord {
                    file_id: identity.file_id.clone(),
                    offset: start,
                    path: path.to_path_buf(),
                    dev: identity.location.dev,
                    inode: identity.location.inode,
                    birth_ns: identity.location.birth_ns,
                    fingerprint: identity.fingerprint.0.clone(),
                    generation: identity.generation,
                },
                pending: VecDeque::new(),
                retired: false,
            });
        state.retired = false;
        if state.record.path != path {
            state.record.path = path.to_path_buf();
        }
        self.dirty = true;
        // Older generations of this file are superseded: drop them once acked.
        let superseded: Vec<FileId> = self
            .files
            .values()
            .map(|state| &state.record)
            .filter(|r| identity.location.same_file(r.dev, r.inode, r.birth_ns))
            .filter(|r| r.generation < identity.generation)
            .map(|r| r.file_id.clone())
            .collect();
        for file_id in superseded {
            self.retire(&file_id);
        }
    }

    /// A copy at `identity.location` carries on the stream `identity.file_id`
    /// from `start`: its checkpoint (if still kept) moves to the copy, with
    /// its pending batches; otherwise a new one starts at `start`.
    pub(crate) fn adopt(&mut self, identity: &Identity, path: &Path, start: ByteOffset) {
        if let Some(state) = self.files.get_mut(&identity.file_id) {
            state.record.path = path.to_path_buf();
            state.record.dev = identity.location.dev;
            state.record.inode = identity.location.inode;
            state.record.birth_ns = identity.location.birth_ns;
            state.retired = false;
            self.dirty = true;
        } else {
            self.track(identity, path, start);
        }
    }

    /// Records that batch `seq` holds lines of `file_id` up to `end_offset`.
    pub(crate) fn on_batch_built(
        &mut self,
        seq: BatchSeq,
        file_id: &FileId,
        end_offset: ByteOffset,
    ) {
        if let Some(state) = self.files.get_mut(file_id) {
            debug_assert!(state.pending.back().is_none_or(|p| p.seq < seq));
            state.pending.push_back(Pending {
                seq,
                end_offset,
                acked: false,
            });
        }
    }

    /// The server acked batch `seq`, which held lines of `file_ids`.
    pub(crate) fn on_batch_acked(&mut self, seq: BatchSeq, file_ids: &[FileId]) {
        for file_id in file_ids {
            let Some(state) = self.files.get_mut(file_id) else {
                continue;
            };
            if let Some(pending) = state.pending.iter_mut().find(|p| p.seq == seq) {
                pending.acked = true;
            }
            while state.pending.front().is_some_and(|p| p.acked) {
                let done = state.pending.pop_front().expect("front exists");
                state.record.offset = state.record.offset.max(done.end_offset);
                self.dirty = true;
            }
            if state.retired && state.pending.is_empty() {
                self.files.remove(file_id);
                self.dirty = true;
            }
        }
    }

    /// The acked offset of a file, if tracked.
    pub(crate) fn acked_offset(&self, file_id: &FileId) -> Option<ByteOffset> {
        self.files.get(file_id).map(|state| state.record.offset)
    }

    /// Updates the path a file was last seen at.
    pub(crate) fn set_path(&mut self, file_id: &FileId, path: &Path) {
        if let Some(state) = self.files.get_mut(file_id) {
            if state.record.path != path {
                state.record.path = path.to_path_buf();
                self.dirty = true;
            }
        }
    }

    /// Forgets a file once its pending batches are acked.
    pub(crate) fn retire(&mut self, file_id: &FileId) {
        if let Some(state) = self.files.get_mut(file_id) {
            state.retired = true;
            if state.pending.is_empty() {
                self.files.remove(file_id);
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
        let mut records: Vec<CheckpointRecord> = self
            .files
            .values()
            .map(|state| state.record.clone())
            .collect();
        records.sort_by(|a, b| a.path.cmp(&b.path).then(a.generation.cmp(&b.generation)));
        checkpoint_file::store(&self.state_dir, records)?;
        self.dirty = false;
        self.last_write = Some(Instant::now());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::{fingerprint_of_head, Identity};

    fn identity(first_line: &[u8]) -> Identity {
        let location = DevInode {
            dev: 1,
            inode: 9,
            birth_ns: 0,
        };
        Identity::new(location, fingerprint_of_head(first_line).unwrap(), 0)
    }

    #[test]
    fn out_of_order_ack_does_not_skip_unacked_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut checkpointer = Checkpointer::load(dir.path()).unwrap();
        let file = identity(b"first\n");
        let id = file.file_id.clone();
        checkpointer.track(&file, Path::new("/l/app.log"), ByteOffset(0));
        checkpointer.on_batch_built(BatchSeq(1), &id, ByteOffset(100));
        checkpointer.on_batch_built(BatchSeq(2), &id, ByteOffset(250));

        checkpointer.on_batch_acked(BatchSeq(2), std::slice::from_ref(&id));
        assert_eq!(checkpointer.acked_offset(&id), Some(ByteOffset(0)));

        checkpointer.on_batch_acked(BatchSeq(1), std::slice::from_ref(&id));
        assert_eq!(checkpointer.acked_offset(&id), Some(ByteOffset(250)));
    }

    #[test]
    fn files_advance_independently() {
        let dir = tempfile::tempdir().unwrap();
        let mut checkpointer = Checkpointer::load(dir.path()).unwrap();
        let (a, b) = (identity(b"a\n"), identity(b"b\n"));
        checkpointer.track(&a, Path::new("/l/a"), ByteOffset(0));
        checkpointer.track(&b, Path::new("/l/b"), ByteOffset(5));
        checkpointer.on_batch_built(BatchSeq(1), &a.file_id, ByteOffset(10));
        checkpointer.on_batch_built(BatchSeq(2), &b.file_id, ByteOffset(20));
        checkpointer.on_batch_acked(BatchSeq(2), std::slice::from_ref(&b.file_id));
        assert_eq!(checkpointer.acked_offset(&a.file_id), Some(ByteOffset(0)));
        assert_eq!(checkpointer.acked_offset(&b.file_id), Some(ByteOffset(20)));
    }

    #[test]
    fn persisted_checkpoints_are_found_again_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = identity(b"first\n");
        {
            let mut checkpointer = Checkpointer::load(dir.path()).unwrap();
            checkpointer.track(&file, Path::new("/l/app.log"), ByteOffset(0));
            checkpointer.on_batch_built(BatchSeq(1), &file.file_id, ByteOffset(42));
            checkpointer.on_batch_acked(BatchSeq(1), std::slice::from_ref(&file.file_id));
            checkpointer.persist().unwrap();
        }
        let checkpointer = Checkpointer::load(dir.path()).unwrap();
        let resume = checkpointer.lookup(file.location, &file.fingerprint.0);
        assert_eq!((resume.generation, resume.acked), (0, Some(ByteOffset(42))));
        // Another first line on the same inode never reuses generation 0.
        let other = checkpointer.lookup(file.location, "other");
        assert_eq!((other.generation, other.acked), (1, None));
        let elsewhere = DevInode {
            dev: 1,
            inode: 10,
            birth_ns: 0,
        };
        assert_eq!(checkpointer.lookup(elsewhere, "other").generation, 0);
    }

    #[test]
    fn new_generation_supersedes_the_old_one_after_its_acks() {
        let dir = tempfile::tempdir().unwrap();
        let mut checkpointer = Checkpointer::load(dir.path()).unwrap();
        let old = identity(b"x\n");
        checkpointer.track(&old, Path::new("/l/x"), ByteOffset(0));
        checkpointer.on_batch_built(BatchSeq(1), &old.file_id, ByteOffset(2));
        let new = Identity::new(old.location, old.fingerprint.clone(), 1);
        checkpointer.track(&new, Path::new("/l/x"), ByteOffset(0));
        assert!(
            checkpointer.acked_offset(&old.file_id).is_some(),
            "kept while unacked"
        );
        checkpointer.on_batch_acked(BatchSeq(1), std::slice::from_ref(&old.file_id));
        assert_eq!(checkpointer.acked_offset(&old.file_id), None);
        assert_eq!(
            checkpointer
                .lookup(old.location, &old.fingerprint.0)
                .generation,
            1
        );
    }

    #[test]
    fn retired_file_is_forgotten_after_its_last_ack() {
        let dir = tempfile::tempdir().unwrap();
        let mut checkpointer = Checkpointer::load(dir.path()).unwrap();
        let file = identity(b"x\n");
        checkpointer.track(&file, Path::new("/l/x"), ByteOffset(0));
        checkpointer.on_batch_built(BatchSeq(1), &file.file_id, ByteOffset(2));
        checkpointer.retire(&file.file_id);
        assert!(checkpointer.acked_offset(&file.file_id).is_some());
        checkpointer.on_batch_acked(BatchSeq(1), std::slice::from_ref(&file.file_id));
        assert_eq!(checkpointer.acked_offset(&file.file_id), None);
    }
}
