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
//! stream S, and whose bytes agree with S's bytes where we stopped reading
//! S, is a copy of S:
//!
//! - while S is still followed and not truncated, the copy is *shadowed*:
//!   not read, looked at again later (S itself carries the content on);
//! - once S has ended (truncated, or released after a delete), the copy
//!   *continues* S: it is read under S's [`loghound_shared::FileId`] from
//!   where S stopped. Lines of S written before the copy but not yet read
//!   when S was truncated are thus read from the copy, and nothing already
//!   read is read again (the server's per-id byte ranges absorb any
//!   overlap).
//!
//! Ended streams are remembered in memory only (a bounded list): an agent
//! restart between a truncation and the discovery of its copy treats the
//! copy as a new file.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use loghound_shared::ByteOffset;

use super::fingerprint::Identity;

/// How many of the last bytes read of a stream are kept to recognise copies.
pub(crate) const TAIL_BYTES: usize = 4096;
/// How many ended streams are remembered.
pub(crate) const MAX_ENDED_STREAMS: usize = 256;

/// A stream that ended (its file was truncated or released), as far as it
/// was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EndedStream {
    pub(crate) identity: Identity,
    /// The first byte of the first line not shipped: where a copy resumes.
    pub(crate) resume_at: ByteOffset,
    /// Every byte before this one was read.
    pub(crate) consumed: ByteOffset,
    /// The last bytes read, ending at `consumed`.
    pub(crate) tail: Vec<u8>,
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

/// `copy` (of `copy_size` bytes, same first line) holds what `ended` had
/// read, at the same place: it continues that stream.
pub(crate) fn continues(copy: &File, copy_size: u64, ended: &EndedStream) -> io::Result<bool> {
    if copy_size < ended.consumed.0 {
        return Ok(false);
    }
    let start = ended.consumed.0 - ended.tail.len() as u64;
    Ok(bytes_at(copy, start, ended.tail.len())?.is_some_and(|bytes| bytes == ended.tail))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::file::fingerprint::{fingerprint_of_head, DevInode};

    fn file_with(dir: &std::path::Path, name: &str, bytes: &[u8]) -> File {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        File::open(path).unwrap()
    }

    fn ended(content: &[u8], consumed: usize) -> EndedStream {
        let location = DevInode {
            dev: 1,
            inode: 2,
            birth_ns: 3,
        };
        let tail_start = consumed.saturating_sub(TAIL_BYTES);
        EndedStream {
            identity: Identity::new(location, fingerprint_of_head(content).unwrap(), 0),
            resume_at: ByteOffset(consumed as u64),
            consumed: ByteOffset(consumed as u64),
            tail: content[tail_start..consumed].to_vec(),
        }
    }

    #[test]
    fn a_copy_holding_what_was_read_continues_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let original = b"first\nsecond\nthird\nfourth\n";
        let stream = ended(original, 13);
        let copy = file_with(dir.path(), "copy", original);
        assert!(continues(&copy, original.len() as u64, &stream).unwrap());
        let short = file_with(dir.path(), "short", b"first\n");
        assert!(!continues(&short, 6, &stream).unwrap(), "shorter than read");
        let other = b"first\nSECOND\nthird\nfourth\n";
        let different = file_with(dir.path(), "other", other);
        assert!(
            !continues(&different, other.len() as u64, &stream).unwrap(),
            "same first line, other content"
        );
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
}
