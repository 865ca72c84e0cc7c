//! What the body of a log record written by the ingest room holds: the
//! events as sent and which of them were found to be duplicates, so that
//! replay repeats ingest's decisions instead of making them again.
//!
//! ```text
//! u8      kind: 0 = an agent batch exactly as received (zstd NDJSON of
//!         the wire protocol's events), 1 = events of another input
//!         (zstd NDJSON of `InEvent`)
//! u32 LE  number of duplicates, then each one's index (u32 LE, ascending)
//! the batch
//! ```
//!
//! Event ids are `position << 20 | index in the batch as sent`, so they
//! come out the same live and in replay.

use std::io::Read;

use loghound_shared::{decode_batch, Limits};

use super::InEvent;

const KIND_AGENT_BATCH: u8 = 0;
const KIND_EVENTS: u8 = 1;
/// zstd level for events the server encodes itself: fast, still small.
const EVENTS_ZSTD_LEVEL: i32 = 1;
/// Most bytes a kind-1 batch may decompress to.
const MAX_EVENTS_BYTES: u64 = 1 << 30;

/// Why a record body cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body ends inside its header.
    #[error("record body is cut short")]
    Short,
    /// An unknown kind byte.
    #[error("unknown record body kind {0}")]
    UnknownKind(u8),
    /// A duplicate's index is not an event of the batch.
    #[error("duplicate index {0} is past the batch's {1} events")]
    BadIndex(usize, usize),
    /// The agent batch does not decode.
    #[error("agent batch: {0}")]
    AgentBatch(#[from] loghound_shared::DecodeError),
    /// The events do not decode.
    #[error("events: {0}")]
    Events(String),
}

/// The body of a record holding `events`, of which those at `fresh`
/// (ascending) are new. An agent's batch is kept as it was received;
/// other events are encoded, which fails only if compression does.
pub fn encode(
    events: &[InEvent],
    fresh: &[usize],
    agent_body: Option<Vec<u8>>,
) -> std::io::Result<Vec<u8>> {
    let mut duplicates = Vec::with_capacity(events.len() - fresh.len());
    let mut fresh_iter = fresh.iter().peekable();
    for index in 0..events.len() {
        if fresh_iter.peek() == Some(&&index) {
            fresh_iter.next();
        } else {
            duplicates.push(index as u32);
        }
    }
    let (kind, batch) = match agent_body {
        Some(body) => (KIND_AGENT_BATCH, body),
        None => (KIND_EVENTS, encode_events(events)?),
    };
    let mut out = Vec::with_capacity(5 + 4 * duplicates.len() + batch.len());
    out.push(kind);
    out.extend_from_slice(&(duplicates.len() as u32).to_le_bytes());
    for index in duplicates {
        out.extend_from_slice(&index.to_le_bytes());
    }
    out.extend_from_slice(&batch);
    Ok(out)
}

fn encode_events(events: &[InEvent]) -> std::io::Result<Vec<u8>> {
    let mut ndjson = Vec::new();
    for event in events {
        serde_json::to_writer(&mut ndjson, event)?;
        ndjson.push(b'\n');
    }
    zstd::bulk::compress(&ndjson, EVENTS_ZSTD_LEVEL)
}

/// The new events of a record body, with their index in the batch as
/// sent. `limits` are the agent protocol's.
pub fn decode(body: &[u8], limits: &Limits) -> Result<Vec<(usize, InEvent)>, BodyError> {
    let (&kind, rest) = body.split_first().ok_or(BodyError::Short)?;
    let count = rest
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or(BodyError::Short)?;
    let list_end = 4usize
        .checked_add(count.checked_mul(4).ok_or(BodyError::Short)?)
        .ok_or(BodyError::Short)?;
    let list = rest.get(4..list_end).ok_or(BodyError::Short)?;
    let batch = &rest[list_end..];
    let events: Vec<InEvent> = match kind {
        KIND_AGENT_BATCH => decode_batch(batch, limits)?
            .into_iter()
            .map(InEvent::from)
            .collect(),
        KIND_EVENTS => decode_events(batch)?,
        other => return Err(BodyError::UnknownKind(other)),
    };
    let total = events.len();
    let mut duplicates = list
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .peekable();
    let mut kept = Vec::with_capacity(total.saturating_sub(count));
    for (index, event) in events.into_iter().enumerate() {
        if duplicates.peek() == Some(&index) {
            duplicates.next();
            continue;
        }
        kept.push((index, event));
    }
    if let Some(index) = duplicates.next() {
        return Err(BodyError::BadIndex(index, total));
    }
    Ok(kept)
}

fn decode_events(batch: &[u8]) -> Result<Vec<InEvent>, BodyError> {
    let mut ndjson = Vec::new();
    zstd::stream::Decoder::new(batch)
        .map_err(|e| BodyError::Events(e.to_string()))?
        .take(MAX_EVENTS_BYTES)
        .read_to_end(&mut ndjson)
        .map_err(|e| BodyError::Events(e.to_string()))?;
    ndjson
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).map_err(|e| BodyError::Events(e.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use loghound_shared::FileId;

    use super::*;
    use crate::ingest::StreamRange;

    fn event(n: u64, stream: bool) -> InEvent {
        InEvent {
            stream: stream.then(|| StreamRange {
                stream: FileId::new("f").unwrap(),
                start: n * 10,
                end: n * 10 + 10,
            }),
            host: "h".into(),
            source: "listener 127.0.0.1:5514".into(),
            message: format!("line {n} with ünïcode"),
            read_at_ms: Some(7),
            tags: [("app".to_string(), "sshd".to_string())].into(),
            truncated: n == 2,
            invalid_utf8: false,
            format: Some("syslog".into()),
            fields: Default::default(),
            severity: None,
            time_ms: None,
        }
    }

    #[test]
    fn events_of_an_input_round_trip_without_their_duplicates() {
        let events: Vec<_> = (0..5).map(|n| event(n, n % 2 == 0)).collect();
        let body = encode(&events, &[0, 2, 3], None).unwrap();
        let back = decode(&body, &Limits::default()).unwrap();
        let expected: Vec<_> = [0usize, 2, 3]
            .iter()
            .map(|&i| (i, events[i].clone()))
            .collect();
        assert_eq!(back, expected);
    }

    #[test]
    fn an_agent_batch_is_kept_as_sent() {
        let wire: Vec<loghound_shared::Event> = (0..3)
            .map(|n| loghound_shared::Event {
                file_id: FileId::new("f").unwrap(),
                offset: loghound_shared::ByteOffset(n * 10),
                end_offset: loghound_shared::ByteOffset(n * 10 + 10),
                host: "h".into(),
                source: "/var/log/a.log".into(),
                message: format!("line {n}"),
                read_at_ms: None,
                tags: Default::default(),
                truncated: false,
                invalid_utf8: false,
                format: None,
                fields: Default::default(),
                severity: None,
                time_ms: None,
            })
            .collect();
        let sent = loghound_shared::encode_batch(&wire, 3).unwrap();
        let events: Vec<InEvent> = wire.iter().cloned().map(InEvent::from).collect();
        let body = encode(&events, &[1, 2], Some(sent.clone())).unwrap();
        assert!(body.ends_with(&sent), "the batch is logged as received");
        let back = decode(&body, &Limits::default()).unwrap();
        assert_eq!(back, vec![(1, events[1].clone()), (2, events[2].clone())]);
    }

    #[test]
    fn damaged_bodies_are_errors() {
        let events: Vec<_> = (0..2).map(|n| event(n, true)).collect();
        let body = encode(&events, &[0], None).unwrap();
        for cut in 0..5 {
            assert!(
                decode(&body[..cut], &Limits::default()).is_err(),
                "cut {cut}"
            );
        }
        let mut bad_kind = body.clone();
        bad_kind[0] = 9;
        assert!(matches!(
            decode(&bad_kind, &Limits::default()),
            Err(BodyError::UnknownKind(9))
        ));
        let mut bad_index = body;
        bad_index[5] = 40;
        assert!(matches!(
            decode(&bad_index, &Limits::default()),
            Err(BodyError::BadIndex(40, 2))
        ));
    }
}
