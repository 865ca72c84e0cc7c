//! One followed file: its open handle, identity, read position and partial
//! line, and the detection of truncation.
//!
//! A plain struct driven by the scheduler: [`FileWatcher::read`] reads what
//! was appended since the last call and reports what happened. It holds the
//! file open, so a file deleted or renamed while followed can still be read
//! to its end, and its inode cannot be reused meanwhile.
//!
//! To bound open descriptors (`max_open_files`) the scheduler may
//! [`FileWatcher::close`] a file that is drained, still has a name and is
//! at its path; the watcher then remembers the size and modification time
//! it had, and [`FileWatcher::reopen`] opens its path again only if the
//! path still names the same inode in the same life (device, inode, birth
//! time), so a path that now names another file is never read as this one.
//!
//! Life cycle: opened (no identity until its first line is complete) →
//! identified → read, any number of times → either truncated (the stream
//! ends as an [`EndedStream`]; reading restarts at 0 under the next
//! generation) or released by the scheduler once it is drained and no glob
//! finds it any more; a partial last line is then shipped as it is
//! ([`FileWatcher::flush_partial`]) rather than lost.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use loghound_shared::ByteOffset;

use super::checkpoints::FileCheckpoints;
use super::copies::{self, EndedStream, Marks, TAIL_BYTES};
use super::discovery::Tags;
use super::fingerprint::{self, DevInode, Identity};
use super::lines::{LineSplitter, RawLine};
use crate::pipeline::checkpoints::Checkpoints;

/// Bytes read from the file per system call.
const READ_CHUNK_BYTES: usize = 64 << 10;

/// What a call to [`FileWatcher::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadStatus {
    /// Lines (maybe none) were read; `more` if the budget stopped the read
    /// before the end of the file.
    Lines { more: bool },
    /// The file shrank below the read position: it was truncated. Reading
    /// restarts at 0 under a new generation; `old` is the stream that ended.
    Truncated { old: Option<EndedStream> },
    /// The file (re)gained an identity, after a truncation.
    Identified,
    /// The file has no identity yet (no complete first line).
    Waiting,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct FileWatcher {
    path: PathBuf,
    /// `None` while closed to save a descriptor (see the module docs).
    file: Option<File>,
    /// Size and modification time when the file was closed.
    closed: Option<StatMark>,
    /// When bytes were last read: the longest idle files are closed first.
    last_active: Instant,
    location: DevInode,
    generation: u32,
    identity: Option<Identity>,
    splitter: LineSplitter,
    tags: Tags,
    buffer: Vec<u8>,
    /// The last bytes read (up to [`TAIL_BYTES`]), ending at the consumed
    /// position: what a copy of this stream must hold at the same place.
    tail: Vec<u8>,
    /// Checksums at read positions, for copies found after this stream
    /// ends (`copies.rs`).
    marks: Marks,
    /// Whether the marks changed since the caller last took them.
    marks_changed: bool,
    /// A copy shorter than where its stream resumes (`copies.rs`): there is
    /// nothing in it to read, and being shorter is no truncation.
    held: bool,
    /// Consecutive rescans that did not find the file at any matching path.
    pub(crate) missing_rescans: u32,
}

impl FileWatcher {
    /// Opens `path` and resumes from its checkpoint, if any. `None` while
    /// the file has no identity yet.
    #[cfg(test)]
    pub(crate) fn open(
        path: &Path,
        tags: Tags,
        max_line_bytes: usize,
        checkpoints: &Checkpoints,
    ) -> io::Result<Option<Self>> {
        Self::open_file(path, File::open(path)?, tags, max_line_bytes, checkpoints)
    }

    /// [`FileWatcher::open`] for a file the caller already opened at `path`.
    pub(crate) fn open_file(
        path: &Path,
        file: File,
        tags: Tags,
        max_line_bytes: usize,
        checkpoints: &Checkpoints,
    ) -> io::Result<Option<Self>> {
        let metadata = file.metadata()?;
        let location = DevInode::of(&metadata);
        let Some(print) = fingerprint::fingerprint(&file)? else {
            return Ok(None);
        };
        let resume = checkpoints.lookup(location, &print.0);
        let size = metadata.len();
        let mut held = false;
        let identity = match (resume.acked, resume.file_id) {
            (Some(offset), Some(file_id))
                if size < offset.0 && copies::holds_marked_bytes(&file, size, &resume.marks)? =>
            {
                // A copy that carries a stream on but ends before where that
                // stream was read to: nothing to read, no truncation.
                held = true;
                (
                    Identity::with_file_id(location, print, resume.generation, file_id),
                    offset,
                )
            }
            (Some(offset), _) if size < offset.0 => {
                tracing::info!(path = %path.display(), acked = %offset, size, "file was truncated while the agent was stopped; reading from the start");
                (
                    Identity::new(location, print, resume.next_generation),
                    ByteOffset(0),
                )
            }
            (Some(offset), Some(file_id)) => (
                Identity::with_file_id(location, print, resume.generation, file_id),
                offset,
            ),
            _ => (
                Identity::new(location, print, resume.generation),
                ByteOffset(0),
            ),
        };
        let resumed = identity.1 > ByteOffset(0);
        let mut watcher =
            Self::with_identity(path, file, identity.0, identity.1, tags, max_line_bytes);
        if resumed {
            watcher.marks = resume.marks;
        }
        watcher.held = held;
        Ok(Some(watcher))
    }

    /// Opens `path`, a copy of the stream `ended`, to carry that stream on
    /// under its id from where it ended (see `copies.rs`); `held` if the
    /// copy ends before that point.
    pub(crate) fn continuing(
        path: &Path,
        file: File,
        location: DevInode,
        ended: &EndedStream,
        held: bool,
        tags: Tags,
        max_line_bytes: usize,
    ) -> Self {
        let old = &ended.identity;
        let identity = Identity::with_file_id(
            location,
            old.fingerprint.clone(),
            old.generation,
            old.file_id.clone(),
        );
        let mut watcher =
            Self::with_identity(path, file, identity, ended.resume_at, tags, max_line_bytes);
        watcher.marks = ended.marks.clone();
        watcher.held = held;
        watcher
    }

    fn with_identity(
        path: &Path,
        file: File,
        identity: Identity,
        start: ByteOffset,
        tags: Tags,
        max_line_bytes: usize,
    ) -> Self {
        Self {
            path: path.to_path_buf(),
            file: Some(file),
            closed: None,
            last_active: Instant::now(),
            location: identity.location,
            generation: identity.generation,
            identity: Some(identity),
            splitter: LineSplitter::new(start, max_line_bytes),
            tags,
            buffer: Vec::new(),
            tail: Vec::new(),
            marks: Marks::default(),
            marks_changed: false,
            held: false,
            missing_rescans: 0,
        }
    }

    /// The open file; an error while the watcher is closed.
    pub(crate) fn file(&self) -> io::Result<&File> {
        self.file
            .as_ref()
            .ok_or_else(|| io::Error::other("file is closed"))
    }

    /// Whether the watcher holds a descriptor.
    pub(crate) fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// When bytes were last read from the file.
    pub(crate) fn last_active(&self) -> Instant {
        self.last_active
    }

    /// Whether the descriptor may be given up: open, found at its path by
    /// the last rescan, not deleted, and read to its end. A file with
    /// unread bytes is never closed.
    pub(crate) fn closable(&self) -> bool {
        let Some(file) = &self.file else {
            return false;
        };
        self.missing_rescans == 0
            && file.metadata().is_ok_and(|metadata| {
                metadata.nlink() > 0 && metadata.len() <= self.splitter.consumed().0
            })
    }

    /// Gives up the descriptor, remembering size and modification time;
    /// false (and nothing changes) unless the file is read to its end. The
    /// mark comes from the same `fstat` as that check, so bytes appended
    /// between a [`FileWatcher::closable`] and the close show as a change.
    pub(crate) fn close(&mut self) -> bool {
        let Some(file) = &self.file else {
            return false;
        };
        let Ok(metadata) = file.metadata() else {
            return false;
        };
        if metadata.len() > self.splitter.consumed().0 || metadata.nlink() == 0 {
            return false;
        }
        self.closed = Some(StatMark::of(&metadata));
        self.file = None;
        true
    }

    /// For a closed file: whether `metadata` (of its path) shows a change
    /// since it was closed, so it must be opened and read again.
    pub(crate) fn changed_since_close(&self, metadata: &std::fs::Metadata) -> bool {
        self.closed
            .is_some_and(|mark| mark != StatMark::of(metadata))
    }

    /// Opens the path of a closed watcher again. `Ok(false)` when the path
    /// no longer names this file (device, inode and birth time differ):
    /// the watcher stays closed and is never fed another file's bytes.
    pub(crate) fn reopen(&mut self) -> io::Result<bool> {
        if self.file.is_some() {
            return Ok(true);
        }
        let file = File::open(&self.path)?;
        if DevInode::of(&file.metadata()?) != self.location {
            return Ok(false);
        }
        self.file = Some(file);
        self.closed = None;
        Ok(true)
    }

    /// Ships the partial last line as it is, for a file that is released
    /// and so will never get its `\n`; true if there was one.
    pub(crate) fn flush_partial(&mut self, lines: &mut Vec<RawLine>) -> bool {
        match self.splitter.take_partial() {
            Some(line) => {
                tracing::info!(path = %self.path.display(), offset = %line.offset, "shipping the partial last line of a released file");
                lines.push(line);
                true
            }
            None => false,
        }
    }

    /// The stream as it stands, to be remembered once the file is released.
    pub(crate) fn ended(&self) -> Option<EndedStream> {
        self.identity.as_ref().map(|identity| EndedStream {
            identity: identity.clone(),
            path: self.path.clone(),
            resume_at: self.splitter.pending_line_start(),
            consumed: self.splitter.consumed(),
            tail: self.tail.clone(),
            marks: self.marks.clone(),
        })
    }

    /// The stream and its marks if they changed since the last call, to be
    /// recorded with its checkpoint.
    pub(crate) fn take_changed_marks(&mut self) -> Option<(&Identity, &Marks)> {
        if !std::mem::take(&mut self.marks_changed) {
            return None;
        }
        Some((self.identity.as_ref()?, &self.marks))
    }

    /// Whether this is a copy held because it ends before where its stream
    /// was read to.
    pub(crate) fn is_held(&self) -> bool {
        self.held
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
    /// A closed file counts as deleted once its path names another file.
    pub(crate) fn is_deleted(&self) -> io::Result<bool> {
        match &self.file {
            Some(file) => Ok(file.metadata()?.nlink() == 0),
            None => Ok(std::fs::metadata(&self.path)
                .map_or(true, |metadata| DevInode::of(&metadata) != self.location)),
        }
    }

    /// Everything in the file has been read. A closed file was read to its
    /// end when it was closed.
    pub(crate) fn at_end(&self) -> io::Result<bool> {
        match &self.file {
            Some(file) => Ok(file.metadata()?.len() <= self.splitter.consumed().0),
            None => Ok(true),
        }
    }

    /// Reads up to `max_bytes` of what was appended, pushing complete lines
    /// to `lines`.
    pub(crate) fn read(
        &mut self,
        max_bytes: usize,
        lines: &mut Vec<RawLine>,
    ) -> io::Result<ReadStatus> {
        let size = self.file()?.metadata()?.len();
        if self.held {
            if size < self.splitter.consumed().0 {
                return Ok(ReadStatus::Lines { more: false });
            }
            self.held = false;
        }
        let file = self.file()?;
        if size < self.splitter.consumed().0 || self.rewritten_below_position(file)? {
            return Ok(self.truncated(size));
        }
        if self.identity.is_none() {
            return match fingerprint::fingerprint(self.file()?)? {
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
            let file = self.file.as_ref().expect("checked open above");
            let read = match file.read_at(&mut self.buffer, position) {
                Ok(0) => return Ok(ReadStatus::Lines { more: false }),
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            self.splitter.push(&self.buffer[..read], lines);
            remember_tail(&mut self.tail, &self.buffer[..read]);
            self.marks.note(self.splitter.consumed().0, &self.tail);
            self.marks_changed = true;
            self.last_active = Instant::now();
            budget -= read;
        }
        Ok(ReadStatus::Lines {
            more: size > self.splitter.consumed().0,
        })
    }

    /// Whether the bytes just before our position are no longer the ones we
    /// read there: the file was truncated and written past our position
    /// between two looks (copytruncate under a busy writer), so its size
    /// alone does not tell. One small read per call.
    fn rewritten_below_position(&self, file: &File) -> io::Result<bool> {
        let position = self.splitter.consumed().0;
        let check = self.tail.len().min(REWRITE_CHECK_BYTES);
        if check == 0 || position < check as u64 {
            return Ok(false);
        }
        let mut on_disk = [0u8; REWRITE_CHECK_BYTES];
        let on_disk = &mut on_disk[..check];
        match file.read_exact_at(on_disk, position - check as u64) {
            Ok(()) => {}
            // Shorter than our position: truncated.
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(true),
            Err(error) => return Err(error),
        }
        Ok(on_disk[..] != self.tail[self.tail.len() - check..])
    }

    /// Whether the file was truncated since the last look: it shrank below
    /// our position, or its first line changed (truncated and rewritten
    /// between two looks). Returns the stream that ended. A closed file is
    /// checked when it is opened again.
    pub(crate) fn check_truncated(&mut self) -> io::Result<Option<EndedStream>> {
        let (Some(identity), Some(file)) = (&self.identity, &self.file) else {
            return Ok(None);
        };
        if self.held {
            return Ok(None);
        }
        let size = file.metadata()?.len();
        let rewritten = size >= self.splitter.consumed().0
            && fingerprint::fingerprint(file)?.is_some_and(|p| p != identity.fingerprint);
        if size < self.splitter.consumed().0 || rewritten {
            return Ok(match self.truncated(size) {
                ReadStatus::Truncated { old } => old,
                _ => None,
            });
        }
        Ok(None)
    }

    /// Moves to a generation at least `generation` (one no checkpoint at
    /// this location has used), before the identity is re-established.
    pub(crate) fn raise_generation(&mut self, generation: u32) {
        debug_assert!(self.identity.is_none());
        self.generation = self.generation.max(generation);
    }

    fn truncated(&mut self, size: u64) -> ReadStatus {
        tracing::info!(path = %self.path.display(), position = %self.splitter.consumed(), size, "file truncated; reading it again from the start");
        let old = self.ended();
        self.generation += 1;
        self.splitter.reset(ByteOffset(0));
        self.tail.clear();
        self.marks.clear();
        self.marks_changed = true;
        self.identity = None;
        ReadStatus::Truncated { old }
    }
}

/// What a stat says about a closed file's content: size and modification
/// time (ns). Equal marks mean nothing was written since the file was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StatMark {
    size: u64,
    mtime_ns: i128,
}

impl StatMark {
    fn of(metadata: &std::fs::Metadata) -> Self {
        Self {
            size: metadata.len(),
            mtime_ns: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
        }
    }
}

/// Bytes before the read position compared on every read to notice a
/// truncate-and-rewrite that the size does not show.
const REWRITE_CHECK_BYTES: usize = 64;

/// Keeps the last [`TAIL_BYTES`] of everything read in `tail`.
fn remember_tail(tail: &mut Vec<u8>, read: &[u8]) {
    if read.len() >= TAIL_BYTES {
        tail.clear();
        tail.extend_from_slice(&read[read.len() - TAIL_BYTES..]);
        return;
    }
    let overflow = (tail.len() + read.len()).saturating_sub(TAIL_BYTES);
    tail.drain(..overflow);
    tail.extend_from_slice(read);
}

#[cfg(test)]
mod tests;
