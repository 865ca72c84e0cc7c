//! The file source's view of the pipeline's checkpoints: what it records
//! about each file stream ([`FileState`], the stream's opaque state in
//! `checkpoints.json`) and the questions it asks of them when it opens a
//! file (which generation, resumed from where, under which id).
//!
//! The pipeline keeps the settled offset and the settle order; this module
//! only knows how a file is recognised again: device, inode, birth time,
//! first line and truncation generation, and the checksums at read
//! positions by which a copy of it is recognised (`copies.rs`).
//!
//! A stream whose file was truncated is not forgotten at once: its record
//! stays, marked *ended*, so that a copy of it found later (after a
//! restart too) carries it on from its settled offset. Ended records never
//! resume a file at their old location, are not shown by `status`, and at
//! most [`MAX_ENDED_STREAMS`] are kept.

use std::path::{Path, PathBuf};

use loghound_shared::{ByteOffset, FileId};
use serde::{Deserialize, Serialize};

use super::copies::{Mark, Marks, MAX_ENDED_STREAMS};
use super::fingerprint::{DevInode, Identity};
use crate::pipeline::checkpoints::{Checkpoints, StreamCheckpoint};

/// The name file streams are checkpointed under.
pub(crate) const SOURCE_NAME: &str = "file";
/// The version of [`FileState`] this agent writes.
const STATE_VERSION: u32 = 2;
/// The oldest version of [`FileState`] this agent reads (version 1 had no
/// marks and no ended streams).
const OLDEST_STATE_VERSION: u32 = 1;

/// What the file source records about one stream, besides its offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileState {
    /// [`STATE_VERSION`].
    pub(crate) version: u32,
    /// The path the file was last seen at (informational).
    pub(crate) path: PathBuf,
    pub(crate) dev: u64,
    pub(crate) inode: u64,
    /// Birth time of the inode (ns since the epoch); 0 when unknown.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) birth_ns: u64,
    /// Hex SHA-256 of the first line.
    pub(crate) fingerprint: String,
    /// How many times the file was truncated while followed.
    pub(crate) generation: u32,
    /// Checksums at read positions, to recognise a copy (`copies.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) marks: Vec<Mark>,
    /// When the stream ended (its file was truncated), in ms since the
    /// epoch; kept only so that a copy may carry it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ended_ms: Option<i64>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

/// One file stream's checkpoint, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileRecord {
    pub(crate) file_id: FileId,
    /// Every line before this byte is settled.
    pub(crate) offset: ByteOffset,
    pub(crate) state: FileState,
}

impl FileRecord {
    /// Decodes a checkpoint of the file source; `None` for another
    /// source's, or for a state this agent does not know.
    pub(crate) fn of(checkpoint: &StreamCheckpoint) -> Option<Self> {
        if checkpoint.source != SOURCE_NAME {
            return None;
        }
        let state = match FileState::deserialize(&checkpoint.state) {
            Ok(state) if (OLDEST_STATE_VERSION..=STATE_VERSION).contains(&state.version) => state,
            Ok(state) => {
                tracing::warn!(file_id = %checkpoint.stream_id, version = state.version, "file checkpoint of an unknown state version; ignored");
                return None;
            }
            Err(error) => {
                tracing::warn!(%error, file_id = %checkpoint.stream_id, "file checkpoint with an unreadable state; ignored");
                return None;
            }
        };
        Some(Self {
            file_id: checkpoint.stream_id.clone(),
            offset: checkpoint.offset,
            state,
        })
    }

    fn at(&self, location: DevInode) -> bool {
        location.same_file(self.state.dev, self.state.inode, self.state.birth_ns)
    }

    /// The file stream ended; the record is kept for its copies only.
    pub(crate) fn is_ended(&self) -> bool {
        self.state.ended_ms.is_some()
    }

    pub(crate) fn location(&self) -> DevInode {
        DevInode {
            dev: self.state.dev,
            inode: self.state.inode,
            birth_ns: self.state.birth_ns,
        }
    }
}

/// `path` as JSON can hold it: a path that is not UTF-8 is kept lossily
/// (it is informational, and only its directory is ever looked in).
fn storable(path: &Path) -> PathBuf {
    match path.to_str() {
        Some(_) => path.to_path_buf(),
        None => PathBuf::from(path.to_string_lossy().into_owned()),
    }
}

fn state_of(identity: &Identity, path: &Path) -> FileState {
    FileState {
        version: STATE_VERSION,
        path: storable(path),
        dev: identity.location.dev,
        inode: identity.location.inode,
        birth_ns: identity.location.birth_ns,
        fingerprint: identity.fingerprint.0.clone(),
        generation: identity.generation,
        marks: Vec::new(),
        ended_ms: None,
    }
}

fn to_value(state: &FileState) -> serde_json::Value {
    // Cannot fail: every field is a number or a UTF-8 string.
    serde_json::to_value(state).unwrap_or_default()
}

/// What the checkpoints say about a file being opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resume {
    /// The generation to read the file under.
    pub(crate) generation: u32,
    /// The settled offset of that generation, if it has a checkpoint.
    pub(crate) acked: Option<ByteOffset>,
    /// The id that checkpoint was written under (an adopted copy keeps the
    /// id of the stream it continues, which its location does not give).
    pub(crate) file_id: Option<FileId>,
    /// A generation no checkpoint at this location has used yet: the one to
    /// take after a truncation, so the new id never repeats an old one.
    pub(crate) next_generation: u32,
    /// The marks recorded for that checkpoint.
    pub(crate) marks: Marks,
}

/// The file source's questions and updates, on the pipeline's checkpoints.
pub(crate) trait FileCheckpoints {
    /// The checkpoints of files still followed or to be resumed (neither
    /// retired nor ended).
    fn file_records(&self) -> Vec<FileRecord>;
    /// The checkpoints of streams that ended and may be carried on by a
    /// copy, newest first.
    fn ended_records(&self) -> Vec<FileRecord>;
    /// The stream `file_id` ended (its file was truncated): its record is
    /// kept, with `marks`, for a copy to carry it on; the oldest ended
    /// records beyond [`MAX_ENDED_STREAMS`] are retired.
    fn end_stream(&mut self, file_id: &FileId, marks: &Marks);
    /// Records a stream's current marks.
    fn set_marks(&mut self, file_id: &FileId, marks: &Marks);
    /// A generation no checkpoint at `location` has used yet.
    fn next_generation(&self, location: DevInode) -> u32;
    /// Where to resume a file at `location` whose first line has
    /// `fingerprint`.
    fn lookup(&self, location: DevInode, fingerprint: &str) -> Resume;
    /// Starts tracking a file read from `start` (keeps an existing
    /// checkpoint); older generations at its location are retired.
    fn track(&mut self, identity: &Identity, path: &Path, start: ByteOffset);
    /// A copy at `identity.location` carries on the stream
    /// `identity.file_id` from `start`: its checkpoint (if still kept)
    /// moves to the copy, with its pending batches; otherwise a new one
    /// starts at `start`.
    fn adopt(&mut self, identity: &Identity, path: &Path, start: ByteOffset);
    /// Updates the path a file was last seen at.
    fn set_path(&mut self, file_id: &FileId, path: &Path);
}

impl FileCheckpoints for Checkpoints {
    fn file_records(&self) -> Vec<FileRecord> {
        self.of_source(SOURCE_NAME, false)
            .filter_map(FileRecord::of)
            .filter(|record| !record.is_ended())
            .collect()
    }

    fn ended_records(&self) -> Vec<FileRecord> {
        let mut ended: Vec<FileRecord> = self
            .of_source(SOURCE_NAME, false)
            .filter_map(FileRecord::of)
            .filter(FileRecord::is_ended)
            .collect();
        ended.sort_by_key(|record| std::cmp::Reverse(record.state.ended_ms));
        ended
    }

    fn end_stream(&mut self, file_id: &FileId, marks: &Marks) {
        let Some(mut record) = self.get(file_id).and_then(FileRecord::of) else {
            return;
        };
        if record.is_ended() {
            return;
        }
        // Strictly after every other ended stream: the order is the one
        // they are retired in.
        let newest = self
            .ended_records()
            .first()
            .and_then(|newest| newest.state.ended_ms);
        record.state.ended_ms = Some(newest.map_or(now_ms(), |newest| now_ms().max(newest + 1)));
        record.state.marks = marks.to_vec();
        let label = self
            .get(file_id)
            .map(|checkpoint| checkpoint.label.clone())
            .unwrap_or_default();
        self.update(file_id, label, to_value(&record.state));
        let ended = self.ended_records();
        for old in ended.iter().skip(MAX_ENDED_STREAMS) {
            self.retire(&old.file_id);
        }
    }

    fn set_marks(&mut self, file_id: &FileId, marks: &Marks) {
        let Some(mut record) = self.get(file_id).and_then(FileRecord::of) else {
            return;
        };
        let marks = marks.to_vec();
        if record.state.marks != marks && !record.is_ended() {
            record.state.marks = marks;
            let label = self
                .get(file_id)
                .map(|checkpoint| checkpoint.label.clone())
                .unwrap_or_default();
            self.update(file_id, label, to_value(&record.state));
        }
    }

    fn next_generation(&self, location: DevInode) -> u32 {
        self.lookup(location, "").next_generation
    }

    fn lookup(&self, location: DevInode, fingerprint: &str) -> Resume {
        // Retired checkpoints count too: their generations stay taken
        // until their last batch settles.
        let at_location: Vec<FileRecord> = self
            .of_source(SOURCE_NAME, true)
            .filter_map(FileRecord::of)
            .filter(|record| record.at(location))
            .collect();
        let matching = at_location
            .iter()
            .filter(|r| r.state.fingerprint == fingerprint && !r.is_ended())
            .max_by_key(|r| r.state.generation);
        let next_generation = at_location
            .iter()
            .map(|r| r.state.generation + 1)
            .max()
            .unwrap_or(0);
        match matching {
            Some(record) => Resume {
                generation: record.state.generation,
                acked: Some(record.offset),
                file_id: Some(record.file_id.clone()),
                next_generation,
                marks: Marks::from_vec(record.state.marks.clone()),
            },
            None => Resume {
                generation: next_generation,
                acked: None,
                file_id: None,
                next_generation,
                marks: Marks::default(),
            },
        }
    }

    fn track(&mut self, identity: &Identity, path: &Path, start: ByteOffset) {
        let state = state_of(identity, path);
        self.open(StreamCheckpoint {
            source: SOURCE_NAME.into(),
            stream_id: identity.file_id.clone(),
            label: path.display().to_string(),
            offset: start,
            cursor: None,
            state: to_value(&state),
        });
        self.set_path(&identity.file_id, path);
        // Older generations of this file are superseded: they ended (a
        // copy may still carry them on).
        let superseded: Vec<(FileId, Marks)> = self
            .of_source(SOURCE_NAME, false)
            .filter_map(FileRecord::of)
            .filter(|r| r.at(identity.location) && r.state.generation < identity.generation)
            .map(|r| (r.file_id, Marks::from_vec(r.state.marks)))
            .collect();
        for (file_id, marks) in superseded {
            self.end_stream(&file_id, &marks);
        }
    }

    fn adopt(&mut self, identity: &Identity, path: &Path, start: ByteOffset) {
        let Some(mut record) = self.get(&identity.file_id).and_then(FileRecord::of) else {
            self.track(identity, path, start);
            return;
        };
        record.state.path = storable(path);
        record.state.dev = identity.location.dev;
        record.state.inode = identity.location.inode;
        record.state.birth_ns = identity.location.birth_ns;
        record.state.ended_ms = None;
        self.update(
            &identity.file_id,
            path.display().to_string(),
            to_value(&record.state),
        );
        if let Some(checkpoint) = self.get(&identity.file_id).cloned() {
            self.open(checkpoint);
        }
    }

    fn set_path(&mut self, file_id: &FileId, path: &Path) {
        let Some(mut record) = self.get(file_id).and_then(FileRecord::of) else {
            return;
        };
        if record.state.path != storable(path) {
            record.state.path = storable(path);
            self.update(file_id, path.display().to_string(), to_value(&record.state));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::checkpoints::{BatchSeq, Position};
    use crate::sources::file::fingerprint::fingerprint_of_head;

    fn identity(first_line: &[u8]) -> Identity {
        let location = DevInode {
            dev: 1,
            inode: 9,
            birth_ns: 0,
        };
        Identity::new(location, fingerprint_of_head(first_line).unwrap(), 0)
    }

    fn at(offset: u64) -> Position {
        Position {
            offset: ByteOffset(offset),
            cursor: None,
        }
    }

    #[test]
    fn out_of_order_ack_does_not_skip_unacked_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut checkpoints = Checkpoints::load(dir.path()).unwrap();
        let file = identity(b"first\n");
        let id = file.file_id.clone();
        checkpoints.track(&file, Path::new("/l/app.log"), ByteOffset(0));
        checkpoints.on_batch_built(BatchSeq(1), &id, at(100));
        checkpoints.on_batch_built(BatchSeq(2), &id, at(250));

        checkpoints.on_batch_settled(BatchSeq(2), std::slice::from_ref(&id));
        assert_eq!(checkpoints.settled_offset(&id), Some(ByteOffset(0)));

        checkpoints.on_batch_settled(BatchSeq(1), std::slice::from_ref(&id));
        assert_eq!(checkpoints.settled_offset(&id), Some(ByteOffset(250)));
    }

    #[test]
    fn files_advance_independently() {
        let dir = tempfile::tempdir().unwrap();
        let mut checkpoints = Checkpoints::load(dir.path()).unwrap();
        let (a, b) = (identity(b"a\n"), identity(b"b\n"));
        checkpoints.track(&a, Path::new("/l/a"), ByteOffset(0));
        checkpoints.track(&b, Path::new("/l/b"), ByteOffset(5));
        checkpoints.on_batch_built(BatchSeq(1), &a.file_id, at(10));
        checkpoints.on_batch_built(BatchSeq(2), &b.file_id, at(20));
        checkpoints.on_batch_settled(BatchSeq(2), std::slice::from_ref(&b.file_id));
        assert_eq!(checkpoints.settled_offset(&a.file_id), Some(ByteOffset(0)));
        assert_eq!(checkpoints.settled_offset(&b.file_id), Some(ByteOffset(20)));
    }

    #[test]
    fn persisted_checkpoints_are_found_again_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = identity(b"first\n");
        {
            let mut checkpoints = Checkpoints::load(dir.path()).unwrap();
            checkpoints.track(&file, Path::new("/l/app.log"), ByteOffset(0));
            checkpoints.on_batch_built(BatchSeq(1), &file.file_id, at(42));
            checkpoints.on_batch_settled(BatchSeq(1), std::slice::from_ref(&file.file_id));
            checkpoints.persist().unwrap();
        }
        let checkpoints = Checkpoints::load(dir.path()).unwrap();
        let resume = checkpoints.lookup(file.location, &file.fingerprint.0);
        assert_eq!((resume.generation, resume.acked), (0, Some(ByteOffset(42))));
        // Another first line on the same inode never reuses generation 0.
        let other = checkpoints.lookup(file.location, "other");
        assert_eq!((other.generation, other.acked), (1, None));
        let elsewhere = DevInode {
            dev: 1,
            inode: 10,
            birth_ns: 0,
        };
        assert_eq!(checkpoints.lookup(elsewhere, "other").generation, 0);
    }

    #[test]
    fn new_generation_ends_the_old_one_and_keeps_it_for_copies() {
        let dir = tempfile::tempdir().unwrap();
        let mut checkpoints = Checkpoints::load(dir.path()).unwrap();
        let old = identity(b"x\n");
        checkpoints.track(&old, Path::new("/l/x"), ByteOffset(0));
        checkpoints.on_batch_built(BatchSeq(1), &old.file_id, at(2));
        let new = Identity::new(old.location, old.fingerprint.clone(), 1);
        checkpoints.track(&new, Path::new("/l/x"), ByteOffset(0));
        checkpoints.on_batch_settled(BatchSeq(1), std::slice::from_ref(&old.file_id));
        assert_eq!(
            checkpoints.settled_offset(&old.file_id),
            Some(ByteOffset(2))
        );
        let ended: Vec<FileId> = checkpoints
            .ended_records()
            .into_iter()
            .map(|record| record.file_id)
            .collect();
        assert_eq!(ended, vec![old.file_id.clone()]);
        let live: Vec<FileId> = checkpoints
            .file_records()
            .into_iter()
            .map(|record| record.file_id)
            .collect();
        assert_eq!(live, vec![new.file_id.clone()]);
        let resume = checkpoints.lookup(old.location, &old.fingerprint.0);
        assert_eq!(resume.generation, 1, "an ended record never resumes a file");
        assert_eq!(resume.file_id, Some(new.file_id.clone()));
        assert_eq!(resume.next_generation, 2);
    }

    #[test]
    fn ended_records_are_bounded_and_keep_their_marks() {
        let dir = tempfile::tempdir().unwrap();
        let mut checkpoints = Checkpoints::load(dir.path()).unwrap();
        let mut marks = Marks::default();
        marks.note(10, b"0123456789");
        let mut first = None;
        for n in 0..MAX_ENDED_STREAMS + 3 {
            let file = identity(format!("file {n}\n").as_bytes());
            checkpoints.track(&file, Path::new("/l/x"), ByteOffset(0));
            checkpoints.end_stream(&file.file_id, &marks);
            first.get_or_insert(file.file_id);
        }
        let ended = checkpoints.ended_records();
        assert_eq!(ended.len(), MAX_ENDED_STREAMS);
        assert!(ended
            .iter()
            .all(|record| record.state.marks == marks.to_vec()));
        assert!(checkpoints.file_records().is_empty());
        checkpoints.persist().unwrap();
        let reloaded = Checkpoints::load(dir.path()).unwrap();
        assert_eq!(reloaded.ended_records().len(), MAX_ENDED_STREAMS);
        assert!(
            reloaded.get(&first.unwrap()).is_none(),
            "the oldest ended record was retired"
        );
    }

    #[test]
    fn retired_file_is_forgotten_after_its_last_ack() {
        let dir = tempfile::tempdir().unwrap();
        let mut checkpoints = Checkpoints::load(dir.path()).unwrap();
        let file = identity(b"x\n");
        checkpoints.track(&file, Path::new("/l/x"), ByteOffset(0));
        checkpoints.on_batch_built(BatchSeq(1), &file.file_id, at(2));
        checkpoints.retire(&file.file_id);
        assert!(checkpoints.settled_offset(&file.file_id).is_some());
        checkpoints.on_batch_settled(BatchSeq(1), std::slice::from_ref(&file.file_id));
        assert_eq!(checkpoints.settled_offset(&file.file_id), None);
    }

    #[test]
    fn a_format_1_record_is_found_again_by_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = identity(b"first\n");
        let format_1 = serde_json::json!({
            "version": 1,
            "files": [{
                "file_id": "feedfacecafebeef",
                "offset": 42,
                "path": "/l/app.log",
                "dev": file.location.dev,
                "inode": file.location.inode,
                "fingerprint": file.fingerprint.0,
                "generation": 0,
            }]
        });
        std::fs::write(
            dir.path()
                .join(crate::pipeline::checkpoint_file::CHECKPOINTS_FILE),
            format_1.to_string(),
        )
        .unwrap();
        let checkpoints = Checkpoints::load(dir.path()).unwrap();
        let resume = checkpoints.lookup(file.location, &file.fingerprint.0);
        assert_eq!(resume.acked, Some(ByteOffset(42)));
        assert_eq!(resume.file_id.unwrap().as_str(), "feedfacecafebeef");
        assert_eq!(
            checkpoints.file_records()[0].state.path,
            Path::new("/l/app.log")
        );
    }
}
