//! Guarantees 1 and 2 across an agent upgrade: the state directory an agent
//! of the previous release left behind (`checkpoints.json` of format 1, a
//! spool segment of format 1 holding batches not yet delivered) is read by
//! the new agent, which delivers the spooled lines, continues the file
//! from the old checkpoint under the old file id, and so ships every line
//! exactly once.
//!
//! The old state is written here byte for byte as that release wrote it
//! (its `checkpoint_file.rs` and `spool_file.rs`), for a real log file.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use loghound_shared::{encode_batch, ByteOffset, Event, FileId};
use loghound_tests::data::{append, numbered_line, numbered_lines};
use loghound_tests::http::ingest;
use loghound_tests::{
    assert_count_stays, assert_each_number_once, temp_dir, token, wait_for_count, Agent, Server,
};
use sha2::{Digest, Sha256};

const TAG: &str = "upgrade";
/// The old agent had lines `0..ACKED` acked by the server,
const ACKED: u64 = 100;
/// lines `ACKED..SPOOLED` in its spool, not yet delivered (settled, so its
/// checkpoint is past them),
const SPOOLED: u64 = 250;
/// and the file held lines up to `WRITTEN` when it stopped;
const WRITTEN: u64 = 300;
/// lines up to `TOTAL` were appended while no agent ran.
const TOTAL: u64 = 400;
/// The old agent's id and the file id its checkpoint was written under.
/// An id kept in a checkpoint is never recomputed, and this one is not
/// what the file's identity would give: a new agent that ignored the old
/// checkpoint would ship the whole file again under another id, and the
/// server would keep both copies.
const AGENT_ID: &str = "0123456789abcdef";
const OLD_FILE_ID: &str = "feedfacecafebeef00112233445566ff";

#[test]
fn state_of_the_previous_release_is_continued_without_loss_or_duplicates() {
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    let state = tmp.path().join("agent");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(state.join("spool")).unwrap();
    let log_file = logs.join("app.log");
    append(&log_file, &numbered_lines(TAG, 0..WRITTEN));
    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);

    let events = file_events(&log_file, 0..SPOOLED);
    let (acked, spooled) = events.split_at(ACKED as usize);
    // What the old agent had delivered before it stopped.
    let answer = ingest(&url, &ingest_token, AGENT_ID, acked);
    assert_eq!(answer.accepted, ACKED);
    let checkpoint_offset = spooled.last().unwrap().end_offset;
    std::fs::write(state.join("agent_id"), format!("{AGENT_ID}\n")).unwrap();
    write_format_1_checkpoints(&state, &log_file, checkpoint_offset);
    write_format_1_spool_segment(&state.join("spool"), spooled);

    append(&log_file, &numbered_lines(TAG, WRITTEN..TOTAL));
    let mut agent = Agent::start_with(
        &url,
        &ingest_token,
        &state,
        &[format!("{}/*.log", logs.display())],
        &["--rescan-interval-ms", "300"],
    );
    wait_for_count(&url, &read_token, TAG, TOTAL, Duration::from_secs(60));
    assert_count_stays(&url, &read_token, TAG, TOTAL, Duration::from_secs(3));
    assert_each_number_once(&url, &read_token, TAG, TOTAL);
    // The state is carried on in the new formats, and the old segment,
    // delivered, is gone.
    let spool_dir = state.join("spool");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&spool_dir).unwrap().next().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "spool not emptied: {:?}",
            std::fs::read_dir(&spool_dir).unwrap().collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let checkpoints: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("checkpoints.json")).unwrap()).unwrap();
    assert_eq!(checkpoints["version"], 2, "{checkpoints}");
    assert_eq!(
        checkpoints["files"][0]["stream_id"], OLD_FILE_ID,
        "{checkpoints}"
    );
    agent.assert_running();
}

/// The events an agent reads from lines `range` of `path`.
fn file_events(path: &Path, range: std::ops::Range<u64>) -> Vec<Event> {
    let mut offset = 0;
    let mut events = Vec::new();
    for number in 0..range.end {
        let message = numbered_line(TAG, number);
        let end_offset = offset + message.len() as u64 + 1;
        if range.contains(&number) {
            events.push(Event {
                file_id: FileId::new(OLD_FILE_ID).unwrap(),
                offset: ByteOffset(offset),
                end_offset: ByteOffset(end_offset),
                host: "old-agent".into(),
                source: path.display().to_string(),
                message,
                read_at_ms: None,
                tags: Default::default(),
                truncated: false,
                invalid_utf8: false,
                format: None,
                fields: Default::default(),
                severity: None,
                time_ms: None,
            });
        }
        offset = end_offset;
    }
    events
}

/// `checkpoints.json` of format 1 for `log_file`, acked up to `offset`.
fn write_format_1_checkpoints(state: &Path, log_file: &Path, offset: ByteOffset) {
    let metadata = std::fs::metadata(log_file).unwrap();
    let birth_ns = metadata
        .created()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos() as u64);
    let first_line = format!("{}\n", numbered_line(TAG, 0));
    let fingerprint: String = Sha256::digest(first_line.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let mut record = serde_json::json!({
        "file_id": OLD_FILE_ID,
        "offset": offset.0,
        "path": log_file,
        "dev": metadata.dev(),
        "inode": metadata.ino(),
        "fingerprint": fingerprint,
        "generation": 0,
    });
    if birth_ns != 0 {
        record["birth_ns"] = birth_ns.into();
    }
    let file = serde_json::json!({ "version": 1, "files": [record] });
    std::fs::write(
        state.join("checkpoints.json"),
        serde_json::to_vec_pretty(&file).unwrap(),
    )
    .unwrap();
}

/// A spool segment of format 1 (`LHSPOOL1`) holding `events` in records of
/// 50 events: `LHSR`, payload length, CRC-32 of the payload, then the
/// payload: header length, header JSON, zstd NDJSON body.
fn write_format_1_spool_segment(spool_dir: &Path, events: &[Event]) {
    let mut segment = b"LHSPOOL1".to_vec();
    for chunk in events.chunks(50) {
        let end = chunk.last().unwrap().end_offset.0;
        let header = format!(
            r#"{{"num_events":{},"file_ends":[["{OLD_FILE_ID}",{end}]]}}"#,
            chunk.len()
        );
        let body = encode_batch(chunk, 3).unwrap();
        let mut payload = (header.len() as u32).to_le_bytes().to_vec();
        payload.extend_from_slice(header.as_bytes());
        payload.extend_from_slice(&body);
        segment.extend_from_slice(b"LHSR");
        segment.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        segment.extend_from_slice(&crc32(&payload).to_le_bytes());
        segment.extend_from_slice(&payload);
    }
    std::fs::write(spool_dir.join(format!("{:020}.seg", 1)), segment).unwrap();
}

/// CRC-32 (IEEE, as zlib and `crc32fast` compute it), bit by bit.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}
