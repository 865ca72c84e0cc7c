//! The entry point and replay over an in-memory log: what is submitted
//! reaches the indexer once, and replay hands on exactly what was logged,
//! with the same positions in the batch.

use std::sync::{Arc, Mutex};

use loghound_shared::{ByteOffset, Event, FileId, Limits};

use super::checkpoint::Checkpoints;
use super::replay::Replay;
use super::*;
use crate::log::memory::MemoryLog;

fn wire(offsets: &[u64]) -> Vec<Event> {
    offsets
        .iter()
        .map(|&o| Event {
            file_id: FileId::new("f1").unwrap(),
            offset: ByteOffset(o),
            end_offset: ByteOffset(o + 10),
            host: "h".into(),
            source: "/var/log/app.log".into(),
            message: format!("line at {o}"),
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

fn input_event(n: usize) -> InEvent {
    InEvent {
        stream: None,
        host: "router1".into(),
        source: "syslog 127.0.0.1:5514".into(),
        message: format!("link {n} down"),
        read_at_ms: None,
        tags: Default::default(),
        truncated: false,
        invalid_utf8: false,
        format: Some("syslog".into()),
        fields: Default::default(),
        severity: None,
        time_ms: None,
    }
}

struct Room {
    log: Arc<MemoryLog>,
    ingest: Ingest,
    rx: crossbeam_channel::Receiver<IndexerMsg>,
}

fn room() -> Room {
    let log = Arc::new(MemoryLog::default());
    let (tx, rx) = crossbeam_channel::unbounded();
    let ingest = Ingest::new(
        Limits::default(),
        log.clone(),
        Arc::default(),
        tx,
        Arc::new(QueueBudget::new(1 << 20)),
    );
    Room { log, ingest, rx }
}

fn batches(rx: &crossbeam_channel::Receiver<IndexerMsg>) -> Vec<(u64, Vec<(usize, InEvent)>)> {
    rx.try_iter()
        .filter_map(|msg| match msg {
            IndexerMsg::Batch(b) => Some((b.position.get(), b.events)),
            _ => None,
        })
        .collect()
}

#[test]
fn resent_agent_events_are_dropped_and_replay_repeats_the_decisions() {
    let room = room();
    let agent = AgentId::new("agent-1").unwrap();
    let first = loghound_shared::encode_batch(&wire(&[0, 10]), 3).unwrap();
    let second = loghound_shared::encode_batch(&wire(&[10, 20, 0, 30]), 3).unwrap();
    let (a, _) = room.ingest.ingest(&agent, 1, &first).unwrap();
    assert_eq!((a.accepted, a.duplicates), (2, 0));
    let (b, _) = room.ingest.ingest(&agent, 2, &second).unwrap();
    assert_eq!((b.accepted, b.duplicates), (2, 2));
    room.ingest
        .submit(Submission {
            origin: Origin::Input("syslog-tcp".into()),
            received_at_ms: 3,
            events: (0..3).map(input_event).collect(),
            agent_body: None,
        })
        .unwrap();
    let live = batches(&room.rx);
    let positions: Vec<Vec<usize>> = live
        .iter()
        .map(|(_, e)| e.iter().map(|(i, _)| *i).collect())
        .collect();
    assert_eq!(positions, vec![vec![0, 1], vec![1, 3], vec![0, 1, 2]]);

    // Replay from an empty checkpoint hands on the same events.
    let (tx, rx) = crossbeam_channel::unbounded();
    let state = Mutex::new(Dedup::default());
    let log: Arc<dyn Log> = room.log.clone();
    let checkpoints = Checkpoints::new(std::path::Path::new("/nonexistent"), log, Arc::default());
    let queue = QueueBudget::new(1 << 20);
    let replayed = Replay {
        limits: &Limits::default(),
        state: &state,
        checkpoints: &checkpoints,
        queue: &queue,
        indexer: &tx,
    }
    .run(room.log.as_ref(), LogPosition(1))
    .unwrap();
    assert_eq!(replayed.read.records, 3);
    assert_eq!(batches(&rx), live);
    // And the state it rebuilt knows the agent's lines.
    let state = state.into_inner().unwrap();
    let again: Vec<InEvent> = wire(&[0, 30, 40]).into_iter().map(InEvent::from).collect();
    assert_eq!(state.new_events("agent-1", &again), vec![2]);
}

#[test]
fn a_full_queue_refuses_before_logging() {
    let log = Arc::new(MemoryLog::default());
    let (tx, _rx) = crossbeam_channel::unbounded();
    let queue = Arc::new(QueueBudget::new(100));
    assert!(queue.try_reserve(100));
    let ingest = Ingest::new(Limits::default(), log.clone(), Arc::default(), tx, queue);
    let body = loghound_shared::encode_batch(&wire(&[0]), 3).unwrap();
    let refused = ingest.ingest(&AgentId::new("a").unwrap(), 1, &body);
    assert!(matches!(refused, Err(IngestError::Overloaded { .. })));
    assert_eq!(log.last_appended(), LogPosition(0));
}
