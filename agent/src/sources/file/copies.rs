//! Recognising a copy of a stream we follow or followed, so that it is not
//! shipped a second time.
//!
//! copytruncate rotation copies `app.log` to `app.log.1` and truncates
//! `app.log` in place. The copy is a new inode and so, by location, a new
//! stream; if a glob matches it, every line in it would be shipped again.
//! Identity by content alone (Vector's checksum) would avoid that but
//! confuses two files that merely start alike; identity by inode alone
//! (Filebeat) ships copies twice. We keep inode-based ids and add one rule:
//! a new file with no checkpoint of its own whose first line equals that of
//! stream S, and whose bytes agree with S's bytes at a place where we know
//! them, is a copy of S:
//!
//! - while S is still followed and not truncated, a copy whose name is a
//!   rotated form of S's ([`rotated_name_of`]) and whose last bytes equal
//!   S's at the same place is *shadowed*: not read, looked at again on
//!   every rescan, for as long as that holds (S itself carries the content
//!   on; there is no time limit after which it would be read as new);
//! - once S has ended (truncated, or released after a delete), the copy
//!   *continues* S: it is read under S's [`loghound_shared::FileId`] from
//!   where S stopped. Lines of S written before the copy but not yet read
//!   when S was truncated are thus read from the copy, and nothing already
//!   read is read again. A copy shorter than what was read of S (lines
//!   written between the copy and the truncation, read from S) is *held*:
//!   it has nothing to ship, and is only read if it ever grows past that
//!   point.
//!
//! What "agrees" means: S's last [`TAIL_BYTES`] read when the copy reaches
//! as far as S was read; otherwise the newest of S's [`Marks`] (a checksum
//! of [`MARK_BYTES`] ending at a read position, kept about
//! [`MARK_SPACING`] apart) that the copy reaches. A copy shorter than every
//! mark (all of it lies in S's first read) is judged by its first line.
//!
//! Ended streams are remembered twice: in memory (where reading stopped,
//! with the last bytes read), and in the checkpoints, whose record of S
//! stays (marked ended, with its marks) after S's truncation, bounded to
//! [`MAX_ENDED_STREAMS`]. So a copy found after a restart, or taken and
//! truncated while the agent was stopped, continues S from its last
//! settled offset too.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use loghound_shared::ByteOffset;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::fingerprint::Identity;

/// How many of the last bytes read of a stream are kept to recognise copies.
pub(crate) const TAIL_BYTES: usize = 4096;
/// How many ended streams are remembered.
pub(crate) const MAX_ENDED_STREAMS: usize = 256;
/// Bytes a mark's checksum covers (fewer at the very start of a file).
pub(crate) const MARK_BYTES: usize = 256;
/// Marks older than the newest are at least this far apart.
pub(crate) const MARK_SPACING: u64 = 32 << 10;
/// Marks kept per stream: the newest and older ones covering at least
/// `(MAX_MARKS - 1) * MARK_SPACING` bytes before it.
pub(crate) const MAX_MARKS: usize = 24;

/// A checksum of the bytes just before `end` in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Mark {
    /// The byte just past the checked bytes.
    pub(crate) end: u64,
    /// How many bytes before `end` are checked.
    pub(crate) len: u32,
    /// The first 8 bytes of their SHA-256, as a number.
    pub(crate) sum: u64,
}

impl Mark {
    fn of(end: u64, bytes: &[u8]) -> Self {
        Self {
            end,
            len: bytes.len() as u32,
            sum: checksum(bytes),
        }
    }

    /// Whether `file` holds the same bytes before `end`; false if shorter.
    fn matches(&self, file: &File) -> io::Result<bool> {
        let Some(start) = self.end.checked_sub(u64::from(self.len)) else {
            return Ok(false);
        };
        Ok(bytes_at(file, start, self.len as usize)?.is_some_and(|b| checksum(&b) == self.sum))
    }
}

fn checksum(bytes: &[u8]) -> u64 {
    let digest = Sha256::digest(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// A stream's marks, oldest first; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Marks(VecDeque<Mark>);

impl Marks {
    pub(crate) fn from_vec(marks: Vec<Mark>) -> Self {
        let mut marks: Vec<Mark> = marks.into_iter().filter(|m| m.len > 0).collect();
        marks.sort_by_key(|mark| mark.end);
        marks.dedup_by_key(|mark| mark.end);
        Self(marks.into())
    }

    pub(crate) fn to_vec(&self) -> Vec<Mark> {
        self.0.iter().copied().collect()
    }

    /// Records a mark at `consumed`, `tail` being the bytes read just before
    /// it. The newest mark moves along; an older one is kept once the next
    /// is [`MARK_SPACING`] past it.
    pub(crate) fn note(&mut self, consumed: u64, tail: &[u8]) {
        let len = tail.len().min(MARK_BYTES);
        if len == 0 || self.0.back().is_some_and(|mark| mark.end >= consumed) {
            return;
        }
        // The newest mark so far stays as an anchor only if it lies far
        // enough past the one before it.
        if let (Some(last), Some(before)) = (
            self.0.back(),
            self.0.len().checked_sub(2).and_then(|i| self.0.get(i)),
        ) {
            if last.end - before.end < MARK_SPACING {
                self.0.pop_back();
            }
        }
        self.0
            .push_back(Mark::of(consumed, &tail[tail.len() - len..]));
        while self.0.len() > MAX_MARKS {
            self.0.pop_front();
        }
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// The newest mark a file of `size` bytes reaches.
    fn newest_within(&self, size: u64) -> Option<&Mark> {
        self.0.iter().rev().find(|mark| mark.end <= size)
    }

    /// Whether every mark lies past `size`.
    fn all_past(&self, size: u64) -> bool {
        self.0.front().is_none_or(|mark| mark.end > size)
    }
}

/// A stream that ended (its file was truncated or released), as far as it
/// was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EndedStream {
    pub(crate) identity: Identity,
    /// Where its file was last seen: a copy has a rotated form of its name.
    pub(crate) path: PathBuf,
    /// The first byte of the first line not shipped: where a copy resumes.
    pub(crate) resume_at: ByteOffset,
    /// Every byte before this one was read.
    pub(crate) consumed: ByteOffset,
    /// The last bytes read, ending at `consumed` (empty when the stream is
    /// known from its checkpoint only).
    pub(crate) tail: Vec<u8>,
    pub(crate) marks: Marks,
}

/// The bytes of `file` in `[start, start + len)`, or `None` if the file is
/// shorter.
fn bytes_at(file: &File, start: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut bytes[filled..], start + filled as u64) {
            Ok(0) => return Ok(None),
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(Some(bytes))
}

/// How a copy carries an ended stream on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Continuation {
    /// The copy reaches where the stream resumes: read it from there.
    Read,
    /// The copy is shorter than that: everything in it was read from the
    /// stream already.
    Held,
}

/// Whether `copy` (of `copy_size` bytes, same first line) holds what
/// `ended` had read, at the same place, and so continues that stream.
pub(crate) fn continues(
    copy: &File,
    copy_size: u64,
    ended: &EndedStream,
) -> io::Result<Option<Continuation>> {
    let how = if copy_size >= ended.resume_at.0 {
        Continuation::Read
    } else {
        Continuation::Held
    };
    let tail_start = ended.consumed.0 - ended.tail.len() as u64;
    if !ended.tail.is_empty() && copy_size >= ended.consumed.0 {
        let agrees =
            bytes_at(copy, tail_start, ended.tail.len())?.is_some_and(|bytes| bytes == ended.tail);
        return Ok(agrees.then_some(how));
    }
    if ended.marks.all_past(copy_size) {
        // Within the stream's first read: the first line is all we know.
        return Ok(Some(how));
    }
    Ok(holds_marked_bytes(copy, copy_size, &ended.marks)?.then_some(how))
}

/// Whether `file` (of `size` bytes) holds the stream's bytes where the
/// newest of `marks` it reaches lies; false if it reaches none.
pub(crate) fn holds_marked_bytes(file: &File, size: u64, marks: &Marks) -> io::Result<bool> {
    match marks.newest_within(size) {
        Some(mark) => mark.matches(file),
        None => Ok(false),
    }
}

/// `copy` (same first line as the live file `original`) is a copy of it,
/// complete or still being written: it is no longer than `original` and
/// its last bytes equal `original`'s at the same place.
pub(crate) fn is_copy_of_live(copy: &File, copy_size: u64, original: &File) -> io::Result<bool> {
    if copy_size > original.metadata()?.len() {
        return Ok(false);
    }
    let len = copy_size.min(TAIL_BYTES as u64) as usize;
    let start = copy_size - len as u64;
    let ours = bytes_at(copy, start, len)?;
    let theirs = bytes_at(original, start, len)?;
    Ok(ours.is_some() && ours == theirs)
}

/// Whether `copy`'s file name is a rotated form of `original`'s, as
/// logrotate and its peers name them: the original name with a suffix
/// (`app.log.1`, `app.log-20261203`, `app.log.2.gz`), or the name before
/// its extension with one (`app-20261203.log`, `app.1.log`). Only such a
/// file is held back as a copy of a live file: two unrelated files that
/// start alike are both read.
pub(crate) fn rotated_name_of(copy: &Path, original: &Path) -> bool {
    let (Some(copy), Some(original)) = (copy.file_name(), original.file_name()) else {
        return false;
    };
    let (copy, original) = (copy.as_encoded_bytes(), original.as_encoded_bytes());
    if copy == original {
        return false;
    }
    let stem = match original.iter().rposition(|&b| b == b'.') {
        Some(dot) if dot > 0 => &original[..dot],
        _ => original,
    };
    [original, stem].iter().any(|prefix| {
        copy.len() > prefix.len()
            && copy.starts_with(prefix)
            && matches!(copy[prefix.len()], b'.' | b'-' | b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::file::fingerprint::{fingerprint_of_head, DevInode};

    fn file_with(dir: &std::path::Path, name: &str, bytes: &[u8]) -> File {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        File::open(path).unwrap()
    }

    /// The stream `content` as read in `reads`-byte steps up to `consumed`.
    fn ended(content: &[u8], consumed: usize, reads: usize) -> EndedStream {
        let location = DevInode {
            dev: 1,
            inode: 2,
            birth_ns: 3,
        };
        let mut marks = Marks::default();
        let mut at = 0;
        while at < consumed {
            at = (at + reads).min(consumed);
            marks.note(at as u64, &content[at.saturating_sub(TAIL_BYTES)..at]);
        }
        let tail_start = consumed.saturating_sub(TAIL_BYTES);
        EndedStream {
            identity: Identity::new(location, fingerprint_of_head(content).unwrap(), 0),
            path: PathBuf::from("/var/log/app.log"),
            resume_at: ByteOffset(consumed as u64),
            consumed: ByteOffset(consumed as u64),
            tail: content[tail_start..consumed].to_vec(),
            marks,
        }
    }

    fn numbered(lines: std::ops::Range<u32>) -> Vec<u8> {
        lines
            .flat_map(|n| format!("line {n:08} of the stream\n").into_bytes())
            .collect()
    }

    #[test]
    fn a_copy_holding_what_was_read_continues_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let original = b"first\nsecond\nthird\nfourth\n";
        let stream = ended(original, 13, 13);
        let copy = file_with(dir.path(), "copy", original);
        assert_eq!(
            continues(&copy, original.len() as u64, &stream).unwrap(),
            Some(Continuation::Read)
        );
        let other = b"first\nSECOND\nthird\nfourth\n";
        let different = file_with(dir.path(), "other", other);
        assert_eq!(
            continues(&different, other.len() as u64, &stream).unwrap(),
            None,
            "same first line, other content"
        );
    }

    #[test]
    fn a_copy_shorter_than_what_was_read_is_held_if_its_bytes_agree() {
        let dir = tempfile::tempdir().unwrap();
        let content = numbered(0..40_000);
        // Read in 64 KiB steps to the end; the copy was taken at 70 % of it.
        let stream = ended(&content, content.len(), 64 << 10);
        let cut = content.len() * 7 / 10;
        let copy = file_with(dir.path(), "copy", &content[..cut]);
        assert_eq!(
            continues(&copy, cut as u64, &stream).unwrap(),
            Some(Continuation::Held)
        );
        let mut altered = content[..cut].to_vec();
        let mark = stream.marks.newest_within(cut as u64).unwrap().end as usize;
        assert!(cut - mark < 64 << 10);
        altered[mark - 10] ^= 1;
        let altered_copy = file_with(dir.path(), "altered", &altered);
        assert_eq!(
            continues(&altered_copy, cut as u64, &stream).unwrap(),
            None,
            "a byte changed where the newest mark the copy reaches lies"
        );
    }

    #[test]
    fn marks_keep_the_newest_and_anchors_at_least_the_spacing_apart() {
        let content = numbered(0..100_000);
        let mut marks = Marks::default();
        for end in (1000..content.len()).step_by(1000) {
            marks.note(end as u64, &content[end - MARK_BYTES..end]);
        }
        let all = marks.to_vec();
        assert!(all.len() <= MAX_MARKS);
        let last = content.len() / 1000 * 1000;
        let last = if last == content.len() {
            last - 1000
        } else {
            last
        };
        assert_eq!(all.last().unwrap().end, last as u64);
        for pair in all[..all.len() - 1].windows(2) {
            assert!(pair[1].end - pair[0].end >= MARK_SPACING, "{pair:?}");
        }
        assert_eq!(Marks::from_vec(all.clone()), marks, "round trip");
    }

    #[test]
    fn a_partial_copy_of_a_live_file_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let live = file_with(dir.path(), "live", b"first\nsecond\nthird\n");
        let partial = file_with(dir.path(), "partial", b"first\nsec");
        assert!(is_copy_of_live(&partial, 9, &live).unwrap());
        let newer = file_with(dir.path(), "newer", b"first\nnew line\n");
        assert!(!is_copy_of_live(&newer, 15, &live).unwrap());
        let longer = file_with(dir.path(), "longer", b"first\nsecond\nthird\nmore\n");
        assert!(!is_copy_of_live(&longer, 24, &live).unwrap());
    }

    #[test]
    fn rotated_names() {
        let original = Path::new("/var/log/app.log");
        for copy in [
            "/var/log/app.log.1",
            "/var/log/app.log-20261203",
            "/var/log/old/app.log.2.gz",
            "/var/log/app-20261203.log",
            "/var/log/app.1.log",
            "/var/log/app_2026.log",
        ] {
            assert!(rotated_name_of(Path::new(copy), original), "{copy}");
        }
        for other in [
            "/var/log/app.log",
            "/var/log/application.log",
            "/var/log/other.log",
            "/var/log/app",
        ] {
            assert!(!rotated_name_of(Path::new(other), original), "{other}");
        }
    }
}
