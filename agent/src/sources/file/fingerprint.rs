//! File identity: which content stream a path currently points at.
//!
//! A path is not an identity (rotation renames files) and neither is an
//! inode alone (inodes are reused). A [`FileId`] is a digest of the device,
//! the inode, the inode's birth time (where the file system records one), a
//! fingerprint of the file's first line and a truncation generation: a
//! renamed file keeps its id; a new file on a reused inode gets a new one
//! (its birth time differs, and usually its first line too); a truncated
//! file gets a new one (its generation is bumped).
//!
//! A copy (copytruncate's `app.log.1`) is a new inode and so would get a new
//! id; `copies.rs` recognises it by content and lets it carry on the id of
//! the stream it copies, see there.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use loghound_shared::FileId;
use sha2::{Digest, Sha256};

/// The fingerprint covers the first line, but never more than this many bytes.
pub(crate) const FINGERPRINT_MAX_BYTES: usize = 1024;

/// Where a file lives on disk: stable while the file is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct DevInode {
    pub(crate) dev: u64,
    pub(crate) inode: u64,
    /// Birth time of the inode in nanoseconds since the epoch; 0 where the
    /// file system does not record it. Tells a reused inode from its
    /// previous life even when both start with the same line.
    pub(crate) birth_ns: u64,
}

impl DevInode {
    pub(crate) fn of(metadata: &std::fs::Metadata) -> Self {
        let birth_ns = metadata
            .created()
            .ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_nanos() as u64);
        Self {
            dev: metadata.dev(),
            inode: metadata.ino(),
            birth_ns,
        }
    }

    /// Same inode in the same life. A birth time of 0 (unknown, or a
    /// checkpoint written before birth times were recorded) matches any.
    pub(crate) fn same_file(&self, dev: u64, inode: u64, birth_ns: u64) -> bool {
        self.dev == dev
            && self.inode == inode
            && (self.birth_ns == birth_ns || self.birth_ns == 0 || birth_ns == 0)
    }
}

/// Hex SHA-256 of the file's first line (with its `\n`), capped at
/// [`FINGERPRINT_MAX_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Fingerprint(pub(crate) String);

/// Everything that names one content stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) location: DevInode,
    pub(crate) fingerprint: Fingerprint,
    pub(crate) generation: u32,
    pub(crate) file_id: FileId,
}

impl Identity {
    pub(crate) fn new(location: DevInode, fingerprint: Fingerprint, generation: u32) -> Self {
        let file_id = file_id(location, &fingerprint, generation);
        Self::with_file_id(location, fingerprint, generation, file_id)
    }

    /// An identity that keeps an id given earlier: a checkpointed id, or
    /// the id of the stream a copy continues.
    pub(crate) fn with_file_id(
        location: DevInode,
        fingerprint: Fingerprint,
        generation: u32,
        file_id: FileId,
    ) -> Self {
        Self {
            location,
            fingerprint,
            generation,
            file_id,
        }
    }
}

/// Reads the fingerprint from the start of `file`. `None` while the file has
/// neither a complete first line nor [`FINGERPRINT_MAX_BYTES`] bytes: such a
/// file has nothing to ship yet and is looked at again later.
pub(crate) fn fingerprint(file: &File) -> io::Result<Option<Fingerprint>> {
    let mut head = [0u8; FINGERPRINT_MAX_BYTES];
    let mut filled = 0;
    while filled < head.len() {
        match file.read_at(&mut head[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if head[filled - n..filled].contains(&b'\n') {
                    break;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(fingerprint_of_head(&head[..filled]))
}

/// The fingerprint of a file that starts with `head`.
pub(crate) fn fingerprint_of_head(head: &[u8]) -> Option<Fingerprint> {
    let first_line = match head.iter().position(|&b| b == b'\n') {
        Some(index) => &head[..=index],
        None if head.len() >= FINGERPRINT_MAX_BYTES => &head[..FINGERPRINT_MAX_BYTES],
        None => return None,
    };
    Some(Fingerprint(hex(&Sha256::digest(first_line))))
}

/// The [`FileId`] of a content stream: the first 16 bytes of a SHA-256 over
/// all its identifying parts, in hex.
pub(crate) fn file_id(location: DevInode, fingerprint: &Fingerprint, generation: u32) -> FileId {
    let mut hasher = Sha256::new();
    hasher.update(location.dev.to_le_bytes());
    hasher.update(location.inode.to_le_bytes());
    // Hashed only when known, so ids from before birth times stay the same.
    if location.birth_ns != 0 {
        hasher.update(location.birth_ns.to_le_bytes());
    }
    hasher.update(fingerprint.0.as_bytes());
    hasher.update(generation.to_le_bytes());
    let digest = hasher.finalize();
    FileId::new(hex(&digest[..16])).expect("hex digits are a valid file id")
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Identity of the file open as `file`, at `generation`; `None` while it has
/// no fingerprint yet.
#[cfg(test)]
fn identify(file: &File, generation: u32) -> io::Result<Option<Identity>> {
    let location = DevInode::of(&file.metadata()?);
    Ok(fingerprint(file)?.map(|print| Identity::new(location, print, generation)))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn write(path: &std::path::Path, bytes: &[u8]) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }

    fn id_of(path: &std::path::Path, generation: u32) -> Option<FileId> {
        identify(&File::open(path).unwrap(), generation)
            .unwrap()
            .map(|identity| identity.file_id)
    }

    #[test]
    fn no_identity_until_the_first_line_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        write(&path, b"first line without newline yet");
        assert_eq!(id_of(&path, 0), None);
        write(&path, b"\n");
        let id = id_of(&path, 0).unwrap();
        write(&path, b"more lines\n");
        assert_eq!(id_of(&path, 0), Some(id), "appending keeps the id");
    }

    #[test]
    fn long_first_line_uses_the_first_kilobyte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin.log");
        write(&path, &vec![b'x'; FINGERPRINT_MAX_BYTES]);
        let id = id_of(&path, 0).unwrap();
        write(&path, b"yyy\n");
        assert_eq!(id_of(&path, 0), Some(id));
    }

    #[test]
    fn renamed_file_keeps_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        write(&path, b"hello\n");
        let before = id_of(&path, 0).unwrap();
        let rotated = dir.path().join("app.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        assert_eq!(id_of(&rotated, 0), Some(before));
    }

    #[test]
    fn new_file_at_the_same_path_gets_a_new_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        write(&path, b"hello\n");
        // Keep the old file alive so its inode cannot be reused.
        let old = File::open(&path).unwrap();
        let before = identify(&old, 0).unwrap().unwrap().file_id;
        std::fs::remove_file(&path).unwrap();
        write(&path, b"a different first line\n");
        assert_ne!(id_of(&path, 0).unwrap(), before);
    }

    #[test]
    fn same_inode_different_first_line_gets_a_new_id() {
        let location = DevInode {
            dev: 1,
            inode: 42,
            birth_ns: 0,
        };
        let a = fingerprint_of_head(b"line a\n").unwrap();
        let b = fingerprint_of_head(b"line b\n").unwrap();
        assert_ne!(file_id(location, &a, 0), file_id(location, &b, 0));
    }

    #[test]
    fn reused_inode_with_the_same_first_line_gets_a_new_id() {
        let print = fingerprint_of_head(b"# header\n").unwrap();
        let first_life = DevInode {
            dev: 1,
            inode: 42,
            birth_ns: 1_000,
        };
        let second_life = DevInode {
            birth_ns: 2_000,
            ..first_life
        };
        assert_ne!(
            file_id(first_life, &print, 0),
            file_id(second_life, &print, 0)
        );
        assert!(!first_life.same_file(1, 42, 2_000));
        assert!(
            first_life.same_file(1, 42, 0),
            "old checkpoints still match"
        );
    }

    #[test]
    fn truncation_generation_changes_the_id() {
        let location = DevInode {
            dev: 1,
            inode: 42,
            birth_ns: 0,
        };
        let print = fingerprint_of_head(b"same\n").unwrap();
        assert_ne!(file_id(location, &print, 0), file_id(location, &print, 1));
        assert_eq!(file_id(location, &print, 1), file_id(location, &print, 1));
    }
}
