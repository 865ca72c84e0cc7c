//! The spool's unit tests: ordering, restarts, bounds and damage.

use loghound_shared::{ByteOffset, FileId};

use super::*;
use crate::pipeline::checkpoints::{BatchSeq, Position};

fn batch(n: u64, body_len: usize) -> Batch {
    Batch {
        seq: BatchSeq(n),
        body: vec![n as u8; body_len],
        num_events: n as usize,
        stream_ends: vec![(
            FileId::new("f1").unwrap(),
            Position {
                offset: ByteOffset(n * 10),
                cursor: None,
            },
        )],
    }
}

fn drain(spool: &Spool) -> Vec<usize> {
    let mut seen = Vec::new();
    while let Some(claim) = spool.claim(Duration::ZERO) {
        let (header, body) = spool.read(&claim).unwrap();
        assert_eq!(body.len(), 1000);
        seen.push(header.num_events);
        spool.done(&claim);
    }
    seen
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join(SPOOL_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn batches_come_back_oldest_first_and_files_go_once_done() {
    let dir = tempfile::tempdir().unwrap();
    // 64 KiB segments: 100 batches of ~1 KiB fill two of them.
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    assert!(!spool.is_active());
    for n in 1..=100 {
        spool.append(&batch(n, 1000)).unwrap();
    }
    assert!(spool.is_active());
    assert_eq!(spool.stats().num_unsent, 100);
    assert_eq!(segment_files(dir.path()).len(), 2);
    assert_eq!(on_disk(dir.path()).unwrap(), spool.stats());
    assert_eq!(drain(&spool), (1..=100).collect::<Vec<_>>());
    assert!(!spool.is_active());
    assert_eq!(spool.stats(), SpoolStats::default());
    assert!(segment_files(dir.path()).is_empty());
    // And it starts again after draining.
    spool.append(&batch(7, 1000)).unwrap();
    assert_eq!(drain(&spool), [7]);
}

#[test]
fn undelivered_and_unfinished_batches_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        for n in 1..=100 {
            spool.append(&batch(n, 1000)).unwrap();
        }
        // Deliver the first 70: the first segment (about 63) goes.
        for _ in 0..70 {
            let claim = spool.claim(Duration::ZERO).unwrap();
            spool.done(&claim);
        }
        assert_eq!(segment_files(dir.path()).len(), 1);
    }
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    let again = drain(&spool);
    // The second segment's delivered records are sent again (the
    // server drops them), none of the first segment's, all of the rest.
    assert_eq!(again.last(), Some(&100));
    assert!(again.len() > 30 && again.len() < 100, "{}", again.len());
    assert_eq!(again, (101 - again.len()..=100).collect::<Vec<_>>());
}

#[test]
fn room_is_bounded_by_max_bytes_plus_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 100_000).unwrap();
    let mut appended = 0;
    while spool.has_room() {
        spool.append(&batch(1, 1000)).unwrap();
        appended += 1;
    }
    let bytes = spool.stats().bytes;
    assert!((100_000..100_000 + 1100).contains(&bytes), "{bytes}");
    assert_eq!(appended, spool.stats().num_unsent);
    let claim = spool.claim(Duration::ZERO).unwrap();
    spool.done(&claim);
    assert!(!spool.has_room(), "room comes back a segment at a time");
}

#[test]
fn a_damaged_segment_is_reported_and_its_intact_records_replayed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        for n in 1..=5 {
            spool.append(&batch(n, 1000)).unwrap();
        }
    }
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 1);
    let mut bytes = fs::read(&files[0]).unwrap();
    // Corrupt the body of the third record, tear the fifth.
    let record_len = (bytes.len() - SEGMENT_MAGIC.len()) / 5;
    bytes[SEGMENT_MAGIC.len() + 2 * record_len + 500] ^= 1;
    bytes.truncate(bytes.len() - 10);
    fs::write(&files[0], &bytes).unwrap();
    // A file that is not a segment at all is kept aside.
    fs::write(
        dir.path().join(SPOOL_DIR).join("00000000000000000099.seg"),
        b"junk",
    )
    .unwrap();

    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(drain(&spool), [1, 2, 4]);
    let names: Vec<String> = segment_files(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["00000000000000000099.corrupt"]);
}

#[test]
fn a_record_damaged_after_start_is_an_error_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    spool.append(&batch(1, 1000)).unwrap();
    let claim = spool.claim(Duration::ZERO).unwrap();
    let path = &segment_files(dir.path())[0];
    let mut bytes = fs::read(path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(path, &bytes).unwrap();
    let error = spool.read(&claim).unwrap_err();
    assert!(error.contains("checksum"), "{error}");
}

#[test]
fn a_format_1_segment_left_by_the_previous_agent_is_replayed_and_appends_go_to_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join(SPOOL_DIR);
    fs::create_dir_all(&spool_dir).unwrap();
    let mut bytes = b"LHSPOOL1".to_vec();
    for n in 1..=3usize {
        let header = format!(r#"{{"num_events":{n},"file_ends":[["f1",{}]]}}"#, n * 10);
        let mut payload = (header.len() as u32).to_le_bytes().to_vec();
        payload.extend_from_slice(header.as_bytes());
        payload.extend_from_slice(&[n as u8; 1000]);
        bytes.extend_from_slice(b"LHSR");
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
    }
    fs::write(spool_dir.join("00000000000000000007.seg"), &bytes).unwrap();

    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    assert!(spool.is_active());
    assert_eq!(on_disk(dir.path()).unwrap().num_unsent, 3);
    spool.append(&batch(4, 1000)).unwrap();
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 2);
    assert!(fs::read(&files[1]).unwrap().starts_with(SEGMENT_MAGIC));
    assert_eq!(drain(&spool), [1, 2, 3, 4]);
    assert!(segment_files(dir.path()).is_empty());
}
