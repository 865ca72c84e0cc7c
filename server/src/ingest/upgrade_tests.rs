//! A data directory left by the previous release: a version 1 checkpoint
//! and write-ahead log records whose bodies are agent batches as received.
//! This release replays them (deciding duplicates again, as they need),
//! takes new batches after them, and after a restart still holds every
//! line exactly once.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use loghound_shared::{encode_batch, AgentId, ByteOffset, Event, FileId};

use crate::config::ServerConfig;
use crate::index::search::SearchRequest;
use crate::log::BodyFormat;
use crate::serve::{recover, Recovered};
use crate::wal::Record;

const AGENT: &str = "old-agent";

fn lines(range: std::ops::Range<u64>) -> Vec<Event> {
    range
        .map(|n| Event {
            file_id: FileId::new("file-1").unwrap(),
            offset: ByteOffset(n * 100),
            end_offset: ByteOffset(n * 100 + 100),
            host: "host-1".into(),
            source: "/var/log/upgrade.log".into(),
            message: format!("upgrade line {n}"),
            read_at_ms: None,
            tags: Default::default(),
            truncated: false,
            invalid_utf8: false,
            format: None,
            fields: Default::default(),
            severity: None,
            time_ms: None,
        })
        .collect()
}

/// What the previous release left: a checkpoint at record 1 whose state
/// knows lines 0..10, and records 1 (lines 0..10, indexed before the
/// checkpoint in that release, so absent from these fresh indexes and
/// skipped by replay), 2 (a resend of 5..15: 5..10 duplicates) and 3
/// (15..20).
fn write_previous_release(data_dir: &Path) {
    std::fs::create_dir_all(data_dir.join("wal")).unwrap();
    std::fs::write(
        data_dir.join("checkpoint.json"),
        format!(
            r#"{{"version":1,"indexed_through_seq":1,"streams":[{{"agent":"{AGENT}","file_id":"file-1","ranges":[[0,1000]]}}]}}"#
        ),
    )
    .unwrap();
    let mut segment = Vec::new();
    for (seq, range) in [(1, 0..10), (2, 5..15), (3, 15..20)] {
        Record {
            seq,
            received_at_ms: crate::timeparse::now_ms(),
            origin: AGENT.into(),
            format: BodyFormat::LegacyAgentBatch,
            body: encode_batch(&lines(range), 3).unwrap(),
        }
        .encode_into(&mut segment);
    }
    std::fs::write(data_dir.join("wal").join(format!("{:020}.wal", 1)), segment).unwrap();
}

fn config(data_dir: &Path) -> ServerConfig {
    ServerConfig {
        data_dir: data_dir.to_path_buf(),
        commit_interval_ms: 50,
        index_writer_heap_bytes: 16 << 20,
        index_writer_threads: 1,
        ..ServerConfig::default()
    }
}

/// Every message searchable, with how often each is found, once `count`
/// are (or after 30 s).
fn messages(server: &Recovered, count: u64) -> BTreeMap<String, usize> {
    let request = SearchRequest {
        query: String::new(),
        from_ms: None,
        to_ms: None,
        limit: 1000,
        before: None,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = server.state.searcher.search(&request).unwrap();
        if found.count >= count || Instant::now() > deadline {
            let mut seen = BTreeMap::new();
            for hit in found.hits {
                *seen.entry(hit.message).or_insert(0) += 1;
            }
            return seen;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn expected(range: std::ops::Range<u64>) -> BTreeMap<String, usize> {
    range.map(|n| (format!("upgrade line {n}"), 1)).collect()
}

#[test]
fn a_data_directory_of_the_previous_release_replays_exactly_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    write_previous_release(dir.path());

    let server = recover(&config(dir.path())).unwrap();
    // Records 2 and 3 replayed: lines 10..20 (5..10 were duplicates).
    assert_eq!(messages(&server, 10), expected(10..20));
    // New batches follow, judged against the replayed state.
    let agent = AgentId::new(AGENT).unwrap();
    let body = encode_batch(&lines(18..25), 3).unwrap();
    let (answer, _) = server
        .state
        .ingest
        .ingest(&agent, crate::timeparse::now_ms(), &body)
        .unwrap();
    assert_eq!((answer.accepted, answer.duplicates), (5, 2));
    assert_eq!(messages(&server, 15), expected(10..25));
    server.shutdown();

    // A restart replays old and new records alike, nothing twice.
    let server = recover(&config(dir.path())).unwrap();
    assert_eq!(messages(&server, 15), expected(10..25));
    let again = encode_batch(&lines(0..25), 3).unwrap();
    let (answer, _) = server
        .state
        .ingest
        .ingest(&agent, crate::timeparse::now_ms(), &again)
        .unwrap();
    assert_eq!((answer.accepted, answer.duplicates), (0, 25));
    server.shutdown();
}
