//! Unit tests of one followed file: appends, budgets, truncation,
//! rewrites and closing.

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
    let checkpoints = Checkpoints::load(dir.path()).unwrap();
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
    match watcher.read(1 << 20, &mut lines).unwrap() {
        ReadStatus::Truncated { old: Some(old) } => {
            assert_eq!(old.identity.file_id, first_id);
            assert_eq!(old.consumed, ByteOffset(19));
            assert_eq!(old.resume_at, ByteOffset(16));
            assert_eq!(old.tail, b"partial one\ntwo\nthr");
        }
        other => panic!("expected a truncation, got {other:?}"),
    }
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
    let checkpoints = Checkpoints::load(dir.path()).unwrap();
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
fn rewrite_past_the_position_with_the_same_first_line_is_a_truncation() {
    // Regression: copytruncate under a busy writer grew the file past
    // our position before we looked, and the size alone said "appended".
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, b"header\nold line 1\nold line 2\n");
    let checkpoints = Checkpoints::load(dir.path()).unwrap();
    let mut watcher = FileWatcher::open(&path, Tags::default(), 100, &checkpoints)
        .unwrap()
        .unwrap();
    let mut lines = Vec::new();
    while let ReadStatus::Identified = watcher.read(1000, &mut lines).unwrap() {}
    assert_eq!(messages(&lines), ["header", "old line 1", "old line 2"]);
    std::fs::write(
        &path,
        b"header\nnew line 1 is longer\nnew line 2 is longer\n",
    )
    .unwrap();
    assert!(matches!(
        watcher.read(1000, &mut lines).unwrap(),
        ReadStatus::Truncated { .. }
    ));
    lines.clear();
    while !matches!(
        watcher.read(1000, &mut lines).unwrap(),
        ReadStatus::Lines { more: false }
    ) {}
    assert_eq!(
        messages(&lines),
        ["header", "new line 1 is longer", "new line 2 is longer"]
    );
}

#[test]
fn closed_file_reopens_only_as_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, b"one\n");
    let checkpoints = Checkpoints::load(dir.path()).unwrap();
    let mut watcher = FileWatcher::open(&path, Tags::default(), 100, &checkpoints)
        .unwrap()
        .unwrap();
    let mut lines = Vec::new();
    watcher.read(100, &mut lines).unwrap();
    assert!(watcher.closable());
    assert!(watcher.close());
    assert!(!watcher.is_open() && !watcher.closable());
    assert!(!watcher.changed_since_close(&std::fs::metadata(&path).unwrap()));
    assert!(watcher.at_end().unwrap(), "drained when closed");

    append(&path, b"two\n");
    assert!(watcher.changed_since_close(&std::fs::metadata(&path).unwrap()));
    assert!(watcher.reopen().unwrap());
    lines.clear();
    watcher.read(100, &mut lines).unwrap();
    assert_eq!(messages(&lines), ["two"]);

    // Bytes not read yet: the file is not closed.
    append(&path, b"three\n");
    assert!(!watcher.close());
    assert!(watcher.is_open());
    lines.clear();
    watcher.read(100, &mut lines).unwrap();

    // The path now names another file: it is not opened as this one.
    assert!(watcher.close());
    let keep_inode_busy = File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    append(&path, b"someone else\n");
    assert!(!watcher.reopen().unwrap());
    assert!(!watcher.is_open());
    assert!(watcher.is_deleted().unwrap());
    drop(keep_inode_busy);
}

#[test]
fn rewritten_file_is_seen_as_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, b"one\n");
    let checkpoints = Checkpoints::load(dir.path()).unwrap();
    let mut watcher = FileWatcher::open(&path, Tags::default(), 100, &checkpoints)
        .unwrap()
        .unwrap();
    let mut lines = Vec::new();
    watcher.read(100, &mut lines).unwrap();
    // Truncated and rewritten longer than our position before we looked.
    std::fs::write(&path, b"another first line\n").unwrap();
    assert!(watcher.check_truncated().unwrap().is_some());
    assert!(watcher.check_truncated().unwrap().is_none(), "only once");
}
