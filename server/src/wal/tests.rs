//! The write-ahead log on real files: order, torn tails, segments, and
//! records of the previous release.

use super::*;

const AGENT: &str = "a1";

fn replay_all(dir: &Path, from: u64) -> (Vec<LogRecord>, OpenReport, Arc<Wal>) {
    let (wal, report) = Wal::open(dir, 1 << 20, LogPosition(from)).unwrap();
    let mut records = Vec::new();
    wal.read_from(LogPosition(from), &mut |r| records.push(r))
        .unwrap();
    (records, report, wal)
}

#[tokio::test]
async fn appended_records_replay_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, wal) = replay_all(dir.path(), 1);
    for i in 0..10u8 {
        let seq = wal.append(5, AGENT, &[i; 3]).unwrap();
        assert_eq!(seq, LogPosition(u64::from(i) + 1));
    }
    wal.wait_durable(LogPosition(10)).await;
    drop(wal);
    let (records, report, wal) = replay_all(dir.path(), 4);
    assert_eq!(records.len(), 7);
    assert_eq!(records[0].position, LogPosition(4));
    assert_eq!(records[0].body, vec![3; 3]);
    assert_eq!(records[0].origin, AGENT);
    assert_eq!(records[0].format, BodyFormat::Ingest);
    assert_eq!(report.bytes_truncated, 0);
    assert_eq!(wal.last_appended(), LogPosition(10));
}

#[tokio::test]
async fn torn_tail_is_cut_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, wal) = replay_all(dir.path(), 1);
    wal.append(1, AGENT, b"one").unwrap();
    wal.append(1, AGENT, b"two").unwrap();
    wal.wait_durable(LogPosition(2)).await;
    drop(wal);
    let (_, path) = list_segments(dir.path()).unwrap().pop().unwrap();
    let len = fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 2)
        .unwrap();

    let (records, report, wal) = replay_all(dir.path(), 1);
    assert_eq!(records.len(), 1);
    assert!(report.bytes_truncated > 0);
    assert_eq!(wal.append(1, AGENT, b"three").unwrap(), LogPosition(2));
    wal.wait_durable(LogPosition(2)).await;
    drop(wal);
    let (records, report, _) = replay_all(dir.path(), 1);
    let bodies: Vec<_> = records.iter().map(|r| r.body.clone()).collect();
    assert_eq!(bodies, vec![b"one".to_vec(), b"three".to_vec()]);
    assert_eq!(report.bytes_truncated, 0);
}

#[tokio::test]
async fn segments_roll_and_old_ones_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), 1 << 20, LogPosition(1)).unwrap();
    let body = vec![7u8; 300 << 10];
    for _ in 0..8 {
        wal.append(1, AGENT, &body).unwrap();
    }
    wal.wait_durable(LogPosition(8)).await;
    let before = list_segments(dir.path()).unwrap();
    assert!(before.len() >= 2, "{before:?}");
    let mut read = Vec::new();
    wal.read_from(LogPosition(5), &mut |r| read.push(r.position.get()))
        .unwrap();
    assert_eq!(
        read,
        vec![5, 6, 7, 8],
        "reading skips whole segments before the start"
    );
    wal.release_through(LogPosition(8)).unwrap();
    let after = list_segments(dir.path()).unwrap();
    assert_eq!(after.len(), 1, "the current segment stays");
    drop(wal);
    // What remains replays, and numbering continues.
    let (wal, _) = Wal::open(dir.path(), 1 << 20, LogPosition(9)).unwrap();
    assert_eq!(wal.last_appended(), LogPosition(8));
}

#[tokio::test]
async fn records_of_an_earlier_release_are_read_back_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), 1 << 20, LogPosition(1)).unwrap();
    let seq = wal
        .append_record(AGENT, BodyFormat::LegacyAgentBatch, 9, b"as sent")
        .unwrap();
    wal.append(9, "input:syslog", b"decided").unwrap();
    wal.wait_durable(LogPosition(2)).await;
    drop(wal);
    let (records, _, _) = replay_all(dir.path(), seq);
    let formats: Vec<_> = records
        .iter()
        .map(|r| (r.format, r.origin.as_str()))
        .collect();
    assert_eq!(
        formats,
        vec![
            (BodyFormat::LegacyAgentBatch, AGENT),
            (BodyFormat::Ingest, "input:syslog")
        ]
    );
}
