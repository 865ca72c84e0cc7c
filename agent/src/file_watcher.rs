//! One followed file: its open handle, identity, read position and partial
//! line, and the detection of truncation.
//!
//! A plain struct driven by the scheduler: [`FileWatcher::read`] reads what
//! was appended since the last call and reports what happened. It holds the
//! file open, so a file deleted or renamed while followed can still be read
//! to its end, and its inode cannot be reused meanwhile.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use loghound_shared::{ByteOffset, FileId};

use crate::checkpointer::Checkpointer;
use crate::discovery::Tags;
use crate::fingerprint::{self, DevInode, Identity};
use crate::lines::{LineSplitter, RawLine};

/// Bytes read from the file per system call.
const READ_CHUNK_BYTES: usize = 64 << 10;

/// What a call to [`FileWatcher::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadStatus {
    /// Lines (maybe none) were read; `more` if the budget stopped the read
    /// before the end of the file.
    Lines { more: bool },
    /// The file shrank below the read position: it was truncated. Reading
    /// restarts at 0 under a new generation; `old` is the id that ended.
    Truncated { old: Option<FileId> },
    /// The file (re)gained an identity, after a truncation.
    Identified,
    /// The file has no identity yet (no complete first line).
    Waiting,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct FileWatcher {
    path: PathBuf,
    file: File,
    location: DevInode,
    generation: u32,
    identity: Option<Identity>,
    splitter: LineSplitter,
    tags: Tags,
    buffer: Vec<u8>,
    /// Consecutive rescans that did not find the file at any matching path.
    pub(crate) missing_rescans: u32,
}

impl FileWatcher {
    /// Opens `path` and resumes from its checkpoint, if any. `None` while
    /// the file has no identity yet.
    pub(crate) fn open(
        path: &Path,
        tags: Tags,
        max_line_bytes: usize,
        checkpoints: &Checkpointer,
    ) -> io::Result<Option<Self>> {
        let file = File::open(path)?;
        let metadata = file.metadata()?;
        let location = DevInode::of(&metadata);
        let Some(print) = fingerprint::fingerprint(&file)? else {
            return Ok(None);
        };
        let resume = checkpoints.lookup(location, &print.0);
        let (generation, start) = match resume.acked {
            Some(offset) if metadata.len() < offset.0 => {
                tracing::info!(path = %path.display(), acked = %offset, size = metadata.len(), "file was truncated while the agent was stopped; reading from the start");
                (resume.next_generation, ByteOffset(0))
            }
            Some(offset) => (resume.generation, offset),
            None => (resume.generation, ByteOffset(0)),
        };
        Ok(Some(Self {
            path: path.to_path_buf(),
            file,
            location,
            generation,
            identity: Some(Identity::new(location, print, generation)),
            splitter: LineSplitter::new(start, max_line_bytes),
            tags,
            buffer: Vec::new(),
            missing_rescans: 0,
        }))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Records that the file is now found at `path` (after a rename).
    pub(crate) fn set_path(&mut self, path: &Path, tags: Tags) {
        self.path = path.to_path_buf();
        self.tags = tags;
    }

    pub(crate) fn tags(&self) -> &Tags {
        &self.tags
    }

    pub(crate) fn location(&self) -> DevInode {
        self.location
    }

    pub(crate) fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Where reading resumes: the start of the first line not yet emitted.
    pub(crate) fn position(&self) -> ByteOffset {
        self.splitter.pending_line_start()
    }

    /// The file has no more names: it was deleted while we hold it open.
    pub(crate) fn is_deleted(&self) -> io::Result<bool> {
        Ok(self.file.metadata()?.nlink() == 0)
    }

    /// Everything in the file has been read.
    pub(crate) fn at_end(&self) -> io::Result<bool> {
        Ok(self.file.metadata()?.len() <= self.splitter.consumed().0)
    }

    /// Reads up to `max_bytes` of what was appended, pushing complete lines
    /// to `lines`.
    pub(crate) fn read(
        &mut self,
        max_bytes: usize,
        lines: &mut Vec<RawLine>,
    ) -> io::Result<ReadStatus> {
        let size = self.file.metadata()?.len();
        if size < self.splitter.consumed().0 {
            return Ok(self.truncated(size));
        }
        if self.identity.is_none() {
            return match fingerprint::fingerprint(&self.file)? {
                Some(print) => {
                    self.identity = Some(Identity::new(self.location, print, self.generation));
                    Ok(ReadStatus::Identified)
                }
                None => Ok(ReadStatus::Waiting),
            };
        }
        let mut budget = max_bytes;
        while budget > 0 {
            let position = self.splitter.consumed().0;
            let available = size.saturating_sub(position);
            if available == 0 {
                return Ok(ReadStatus::Lines { more: false });
            }
            let want = (available.min(budget as u64) as usize).min(READ_CHUNK_BYTES);
            self.buffer.resize(want, 0);
            let read = match self.file.read_at(&mut self.buffer, position) {
                Ok(0) => return Ok(ReadStatus::Lines { more: false }),
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            self.splitter.push(&self.buffer[..read], lines);
            budget -= read;
        }
        Ok(ReadStatus::Lines {
            more: size > self.splitter.consumed().0,
        })
    }

    /// The first line changed although the file did not shrink below our
    /// position: it was truncated and rewritten between two looks.
    pub(crate) fn check_rewritten(&mut self) -> io::Result<Option<ReadStatus>> {
        let Some(identity) = &self.identity else {
            return Ok(None);
        };
        match fingerprint::fingerprint(&self.file)? {
            Some(print) if print != identity.fingerprint => {
                let size = self.file.metadata()?.len();
                Ok(Some(self.truncated(size)))
            }
            _ => Ok(None),
        }
    }

    /// Moves to a generation at least `generation` (one no checkpoint at
    /// this location has used), before the identity is re-established.
    pub(crate) fn raise_generation(&mut self, generation: u32) {
        debug_assert!(self.identity.is_none());
        self.generation = self.generation.max(generation);
    }

    fn truncated(&mut self, size: u64) -> ReadStatus {
        tracing::info!(path = %self.path.display(), position = %self.splitter.consumed(), size, "file truncated; reading it again from the start");
        self.generation += 1;
        self.splitter.reset(ByteOffset(0));
        let old = self.identity.take().map(|identity| identity.file_id);
        ReadStatus::Truncated { old }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn append(path: &Path, bytes: &[u8]) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }

    fn messages(lines: &[RawLine]) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8_lossy(&l.bytes).into_owned())
            .collect()
    }

    #[test]
    fn reads_appends_and_detects_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let checkpoints = Checkpointer::load(dir.path()).unwrap();
        append(&path, b"part");
        assert!(FileWatcher::open(&path, Tags::default(), 100, &checkpoints)
            .unwrap()
            .is_none());
        append(&path, b"ial one\ntwo\nthr");
        let mut watcher = FileWatcher::open(&path, Tags::default(), 100, &checkpoints)
            .unwrap()
            .unwrap();
        let first_id = watcher.identity().unwrap().file_id.clone();
        let mut lines = Vec::new();
        assert_eq!(
            watcher.read(1 << 20, &mut lines).unwrap(),
            ReadStatus::Lines { more: false }
        );
        assert_eq!(messages(&lines), vec!["partial one", "two"]);
        assert_eq!(watcher.position(), ByteOffset(16));

        // Truncated to empty, then rewritten.
        std::fs::write(&path, b"").unwrap();
        assert_eq!(
            watcher.read(1 << 20, &mut lines).unwrap(),
            ReadStatus::Truncated {
                old: Some(first_id.clone())
            }
        );
        assert_eq!(
            watcher.read(1 << 20, &mut lines).unwrap(),
            ReadStatus::Waiting
        );
        append(&path, b"partial one\nnew\n");
        assert_eq!(
            watcher.read(1 << 20, &mut lines).unwrap(),
            ReadStatus::Identified
        );
        let second_id = watcher.identity().unwrap().file_id.clone();
        assert_ne!(
            second_id, first_id,
            "same first line, new generation, new id"
        );
        lines.clear();
        watcher.read(1 << 20, &mut lines).unwrap();
        assert_eq!(messages(&lines), vec!["partial one", "new"]);
        assert_eq!(lines[0].offset, ByteOffset(0));
    }

    #[test]
    fn budget_limits_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, b"aaaa\nbbbb\ncccc\n");
        let checkpoints = Checkpointer::load(dir.path()).unwrap();
        let mut watcher = FileWatcher::open(&path, Tags::default(), 100, &checkpoints)
            .unwrap()
            .unwrap();
        let mut lines = Vec::new();
        assert_eq!(
            watcher.read(6, &mut lines).unwrap(),
            ReadStatus::Lines { more: true }
        );
        assert_eq!(messages(&lines), vec!["aaaa"]);
        assert_eq!(
            watcher.read(100, &mut lines).unwrap(),
            ReadStatus::Lines { more: false }
        );
        assert_eq!(messages(&lines), vec!["aaaa", "bbbb", "cccc"]);
    }

    #[test]
    fn rewritten_file_is_seen_as_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, b"one\n");
        let checkpoints = Checkpointer::load(dir.path()).unwrap();
        let mut watcher = FileWatcher::open(&path, Tags::default(), 100, &checkpoints)
            .unwrap()
            .unwrap();
        let mut lines = Vec::new();
        watcher.read(100, &mut lines).unwrap();
        // Truncated and rewritten longer than our position before we looked.
        std::fs::write(&path, b"another first line\n").unwrap();
        assert!(matches!(
            watcher.check_rewritten().unwrap(),
            Some(ReadStatus::Truncated { .. })
        ));
    }
}
