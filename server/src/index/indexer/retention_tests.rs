//! `retention_days`: old days of receipt are dropped whole, the rest stay
//! searchable, and nothing of a dropped day is left on disk.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loghound_shared::{AgentId, ByteOffset, Event, FileId};

use crate::ingest::checkpoint::Checkpoint;
use crate::ingest::{InEvent, Origin};
use crate::log::memory::MemoryLog;
use time::macros::date;
use time::Date;

use super::*;
use crate::index::search::{SearchRequest, Searcher};

const DAY_MS: i64 = 24 * 3600 * 1000;

fn noon_ms(day: Date) -> i64 {
    day.midnight().assume_utc().unix_timestamp() * 1000 + DAY_MS / 2
}

fn batch(seq: u64, day: Date, lines: u64) -> LoggedBatch {
    let file_id = FileId::new(format!("file-{seq}")).unwrap();
    let events = (0..lines)
        .map(|n| {
            let event = Event {
                file_id: file_id.clone(),
                offset: ByteOffset(n * 100),
                end_offset: ByteOffset(n * 100 + 100),
                host: "retention-host".into(),
                source: "/var/log/retention.log".into(),
                message: format!("retention line {n} of record {seq}"),
                read_at_ms: None,
                tags: Default::default(),
                truncated: false,
                invalid_utf8: false,
                format: None,
                fields: Default::default(),
                severity: None,
                time_ms: None,
            };
            (n as usize, InEvent::from(event))
        })
        .collect();
    LoggedBatch {
        position: LogPosition(seq),
        origin: Origin::Agent(AgentId::new("retention-agent").unwrap()),
        received_at_ms: noon_ms(day),
        cost_bytes: 0,
        events,
    }
}

struct Running {
    tx: crossbeam_channel::Sender<IndexerMsg>,
    thread: std::thread::JoinHandle<()>,
    indexes: Arc<IndexSet>,
}

fn start(data_dir: &Path, retention_days: Option<u32>) -> Running {
    std::fs::create_dir_all(data_dir.join("wal")).unwrap();
    let indexes = IndexSet::open(&data_dir.join("indexes")).unwrap();
    let checkpoint = Checkpoint::load(data_dir).unwrap();
    let log: Arc<dyn Log> = Arc::new(MemoryLog::default());
    let (committed_tx, _committed_rx) = watch::channel(checkpoint.indexed_through_seq);
    let indexer = Indexer::new(
        IndexerConfig {
            commit_interval: Duration::from_millis(50),
            writer_heap_bytes: 16 << 20,
            writer_threads: 1,
            retention_days,
        },
        Arc::clone(&indexes),
        // Nothing here goes through a WAL: every record counts as durable.
        log.clone(),
        Checkpoints::new(
            data_dir,
            log,
            Arc::new(std::sync::Mutex::new(checkpoint.dedup())),
        ),
        committed_tx,
        Arc::new(QueueBudget::new(64 << 20)),
    );
    let (tx, rx) = crossbeam_channel::bounded(16);
    let thread = std::thread::spawn(move || indexer.run(rx));
    Running {
        tx,
        thread,
        indexes,
    }
}

impl Running {
    fn retention(&self, today: Date) -> RetentionReport {
        let (done, report) = crossbeam_channel::bounded(1);
        self.tx.send(IndexerMsg::Retention { today, done }).unwrap();
        report.recv_timeout(Duration::from_secs(60)).unwrap()
    }

    fn stop(self) {
        let (ack, done) = crossbeam_channel::bounded(0);
        self.tx.send(IndexerMsg::Shutdown(ack)).unwrap();
        let _ = done.recv();
        self.thread.join().unwrap();
    }
}

fn count_all(indexes: &Arc<IndexSet>) -> u64 {
    let searcher = Searcher::new(Arc::clone(indexes));
    let request = SearchRequest {
        query: String::new(),
        from_ms: None,
        to_ms: None,
        limit: 10,
        before: None,
    };
    searcher.search(&request).unwrap().count
}

fn dir_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Bytes of every file under `dir`, recursively.
fn du(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            du(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// Bytes of the files a day's index really uses: its live segments' files
/// and its metadata.
fn live_bytes(indexes: &IndexSet, day: Date) -> u64 {
    let index = indexes.open_day(day).unwrap();
    let dir = indexes.day_dir(day);
    let mut files: BTreeSet<std::path::PathBuf> = index
        .index
        .searchable_segment_metas()
        .unwrap()
        .iter()
        .flat_map(|meta| meta.list_files())
        .collect();
    files.insert("meta.json".into());
    files.insert(".managed.json".into());
    files
        .iter()
        .filter_map(|file| std::fs::metadata(dir.join(file)).ok())
        .map(|meta| meta.len())
        .sum()
}

#[test]
fn old_days_are_dropped_whole_and_the_rest_stay_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let today = date!(2026 - 03 - 10);
    let days = [
        (today - time::Duration::days(5), 3),
        (today - time::Duration::days(3), 4),
        (today - time::Duration::days(2), 5),
        (today, 6),
    ];
    let running = start(data, Some(2));
    for (seq, (day, lines)) in days.iter().enumerate() {
        running
            .tx
            .send(IndexerMsg::Batch(batch(seq as u64 + 1, *day, *lines)))
            .unwrap();
    }
    // As of two days ago, only the oldest day is past the cutoff. The pass
    // commits everything before it judges.
    let first = running.retention(today - time::Duration::days(2));
    assert_eq!(first.dropped, vec![days[0].0]);
    assert_eq!(first.deferred, Vec::<Date>::new());
    assert_eq!(count_all(&running.indexes), 4 + 5 + 6);

    // A search that still holds the day when retention drops it: the day
    // leaves searches at once and its files go once the search lets go.
    let held = running.indexes.days_from(None);
    let report = running.retention(today);
    assert_eq!(report.dropped, Vec::<Date>::new());
    assert_eq!(report.deferred, vec![days[1].0]);
    assert_eq!(
        count_all(&running.indexes),
        5 + 6,
        "searches skip dropped days"
    );
    assert!(running.indexes.day_dir(days[1].0).exists());
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(30);
    while running.indexes.day_dir(days[1].0).exists() {
        assert!(
            Instant::now() < deadline,
            "the released day was not deleted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Nothing of a dropped day is needed again: the checkpoint is past
    // every record, so a restart replays none of them.
    running.stop();
    assert_eq!(Checkpoint::load(data).unwrap().indexed_through_seq, 4);
    let reopened = start(data, Some(2));
    assert_eq!(reopened.indexes.days(), vec![days[2].0, days[3].0]);
    assert_eq!(count_all(&reopened.indexes), 5 + 6);

    // Only the kept days are on disk, and only their live files.
    let indexes_dir = data.join("indexes");
    let expected: BTreeSet<String> = ["2026-03-08", "2026-03-10"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(dir_names(&indexes_dir), expected);
    let live: u64 = [days[2].0, days[3].0]
        .iter()
        .map(|day| live_bytes(&reopened.indexes, *day))
        .sum();
    assert!(live > 0);
    assert_eq!(
        du(&indexes_dir),
        live,
        "files on disk that no live segment uses"
    );

    // A pass with nothing to drop changes nothing.
    assert_eq!(reopened.retention(today), RetentionReport::default());
    reopened.stop();
}

#[test]
fn without_retention_days_nothing_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), None);
    let old = date!(2020 - 01 - 01);
    running
        .tx
        .send(IndexerMsg::Batch(batch(1, old, 2)))
        .unwrap();
    assert_eq!(
        running.retention(date!(2026 - 03 - 10)),
        RetentionReport::default()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while count_all(&running.indexes) < 2 {
        assert!(Instant::now() < deadline, "the batch was not committed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(running.indexes.days(), vec![old]);
    running.stop();
}
