//! Which followed files give up their descriptor when `max_open_files` is
//! reached: the longest idle among those that are drained, still named and
//! at their path (see [`FileWatcher::closable`]). Files with unread bytes,
//! deleted files and files renamed out of the globs keep theirs, so the
//! limit can be exceeded by such files only in the sense that new files
//! wait for a descriptor until they drain (see `file_server.rs`).

use std::collections::HashMap;

use super::fingerprint::DevInode;
use super::watcher::FileWatcher;

/// Descriptors kept free for the short-lived opens that identify a new file
/// and check whether it copies a followed one.
pub(crate) const RESERVED_DESCRIPTORS: usize = 1;

/// Up to `count` open files to close, longest idle first. Being marked
/// ready does not protect a file: the rescan marks every open file ready,
/// and whether it has bytes to read is what [`FileWatcher::closable`]
/// checks.
pub(crate) fn idle_to_close(
    watchers: &HashMap<DevInode, FileWatcher>,
    count: usize,
) -> Vec<DevInode> {
    let mut candidates: Vec<(std::time::Instant, DevInode)> = watchers
        .iter()
        .filter(|(_, watcher)| watcher.closable())
        .map(|(location, watcher)| (watcher.last_active(), *location))
        .collect();
    candidates.sort_unstable();
    candidates
        .into_iter()
        .take(count)
        .map(|(_, location)| location)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::Path;

    use super::*;
    use crate::pipeline::checkpoints::Checkpoints;
    use crate::sources::file::discovery::Tags;
    use crate::sources::file::watcher::ReadStatus;

    fn append(path: &Path, bytes: &[u8]) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }

    fn drained(path: &Path, checkpoints: &Checkpoints) -> FileWatcher {
        let mut watcher = FileWatcher::open(path, Tags::default(), 100, checkpoints)
            .unwrap()
            .unwrap();
        let mut lines = Vec::new();
        assert_eq!(
            watcher.read(1 << 20, &mut lines).unwrap(),
            ReadStatus::Lines { more: false }
        );
        watcher
    }

    #[test]
    fn only_drained_named_idle_files_are_closed_longest_idle_first() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = Checkpoints::load(dir.path()).unwrap();
        let mut watchers = HashMap::new();
        let mut order = Vec::new();
        for name in ["old", "unread", "deleted", "recent"] {
            let path = dir.path().join(format!("{name}.log"));
            append(&path, format!("{name} first\n").as_bytes());
            let watcher = drained(&path, &checkpoints);
            order.push((name, watcher.location()));
            watchers.insert(watcher.location(), watcher);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let location = |name: &str| order.iter().find(|(n, _)| *n == name).unwrap().1;
        append(&dir.path().join("unread.log"), b"not read yet\n");
        std::fs::remove_file(dir.path().join("deleted.log")).unwrap();

        assert_eq!(
            idle_to_close(&watchers, 10),
            vec![location("old"), location("recent")]
        );
        assert_eq!(idle_to_close(&watchers, 1), vec![location("old")]);
        let old = watchers.get_mut(&location("old")).unwrap();
        assert!(old.close());
        assert!(!old.is_open());
        assert_eq!(
            idle_to_close(&watchers, 10),
            vec![location("recent")],
            "a closed file is not closed again"
        );
    }
}
