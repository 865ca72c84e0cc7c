//! The alert rules' search primitive against a brute-force oracle: batches
//! received on two days, then the count and newest matches of a query in
//! many spans of arrival (event id and receive time), each compared with
//! what the test computes from the events it sent.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use loghound_server::config::ServerConfig;
use loghound_server::index::arrivals::ArrivalsRequest;
use loghound_server::index::event_id;
use loghound_server::index::tail::last_id_of_seq;
use loghound_server::serve::{recover, Recovered};
use loghound_shared::{encode_batch, AgentId, ByteOffset, Event, FileId};

/// 2025-11-20T00:00:00Z.
const DAY0_MS: i64 = 1_763_596_800_000;
const HOUR_MS: i64 = 3_600_000;

struct Sent {
    id: u64,
    received_ms: i64,
    matches: bool,
}

fn event(offset: u64, message: String) -> Event {
    Event {
        file_id: FileId::new("f").unwrap(),
        offset: ByteOffset(offset),
        end_offset: ByteOffset(offset + message.len() as u64 + 1),
        host: "h".into(),
        source: "/var/log/f.log".into(),
        message,
        read_at_ms: None,
        tags: BTreeMap::new(),
        truncated: false,
        invalid_utf8: false,
        format: None,
        fields: Default::default(),
        severity: None,
        time_ms: None,
    }
}

fn ingest(
    server: &Recovered,
    received_ms: i64,
    start: u64,
    messages: &[String],
    sent: &mut Vec<Sent>,
) -> u64 {
    let events: Vec<Event> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| event((start + i as u64) * 100, m.clone()))
        .collect();
    let body = encode_batch(&events, 3).unwrap();
    let (answer, seq) = server
        .state
        .ingest
        .ingest(&AgentId::new("a").unwrap(), received_ms, &body)
        .unwrap();
    assert_eq!(answer.accepted, events.len() as u64);
    for (i, message) in messages.iter().enumerate() {
        sent.push(Sent {
            id: event_id(seq, i),
            received_ms,
            matches: message.split(' ').any(|w| w == "alpha"),
        });
    }
    seq
}

#[test]
fn arrivals_match_a_brute_force_count_over_many_spans() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        data_dir: dir.path().to_path_buf(),
        commit_interval_ms: 50,
        index_writer_heap_bytes: 16 << 20,
        index_writer_threads: 1,
        ..ServerConfig::default()
    };
    let server = recover(&config).unwrap();
    let mut sent = Vec::new();
    let mut last_seq = 0;
    let mut offset = 0;
    // 12 batches over two days of receipt, each a mix of matching lines.
    for batch in 0..12u64 {
        let received = DAY0_MS + 20 * HOUR_MS + batch as i64 * HOUR_MS / 2;
        let messages: Vec<String> = (0..(5 + batch * 3))
            .map(|i| {
                if (i + batch) % 3 == 0 {
                    format!("line {i} alpha beta")
                } else {
                    format!("line {i} gamma")
                }
            })
            .collect();
        last_seq = ingest(&server, received, offset, &messages, &mut sent);
        offset += messages.len() as u64;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while *server.state.committed.borrow() < last_seq {
        assert!(Instant::now() < deadline, "the indexer did not commit");
        std::thread::sleep(Duration::from_millis(20));
    }

    let searcher = &server.state.searcher;
    let snapshot = searcher.arrivals_snapshot().unwrap();
    let ids: Vec<u64> = sent.iter().map(|s| s.id).collect();
    let through_all = last_id_of_seq(last_seq);
    let mut checked = 0;
    for (a, &after) in [0].iter().chain(ids.iter().step_by(7)).enumerate() {
        for &through in ids
            .iter()
            .skip(a * 5)
            .step_by(11)
            .chain([through_all].iter())
        {
            for received_from in [
                None,
                Some(DAY0_MS + 23 * HOUR_MS),
                Some(DAY0_MS + 30 * HOUR_MS),
            ] {
                let request = ArrivalsRequest {
                    query: "alpha".into(),
                    after_id: after,
                    through_id: through,
                    received_from_ms: received_from,
                    samples: 3,
                };
                let got = searcher.arrivals_in(&snapshot, &request).unwrap();
                let mut expected: Vec<u64> = sent
                    .iter()
                    .filter(|s| {
                        s.matches
                            && s.id > after
                            && s.id <= through
                            && received_from.is_none_or(|from| s.received_ms >= from)
                    })
                    .map(|s| s.id)
                    .collect();
                assert_eq!(got.count, expected.len() as u64, "{request:?}");
                expected.sort_unstable_by(|a, b| b.cmp(a));
                expected.truncate(3);
                let newest: Vec<u64> = got.newest.iter().map(|h| h.id.parse().unwrap()).collect();
                assert_eq!(newest, expected, "{request:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} spans checked");
    // A malformed query is an error, even over an empty span.
    let bad = ArrivalsRequest {
        query: "(alpha".into(),
        after_id: through_all,
        through_id: through_all,
        received_from_ms: None,
        samples: 0,
    };
    assert!(searcher.arrivals_in(&snapshot, &bad).is_err());
    server.shutdown();
}
