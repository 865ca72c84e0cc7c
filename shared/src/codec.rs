//! A batch on the wire: one JSON [`Event`] per line (NDJSON), compressed
//! with zstd.
//!
//! Decoding streams the decompressed bytes and never trusts a size the
//! sender declares: it stops as soon as any [`Limits`] bound is crossed, so a
//! decompression bomb costs at most `max_decompressed_bytes` of work and one
//! line's worth of memory beyond the events already accepted.

use std::fmt;
use std::io::{BufRead, BufReader, Read};

use crate::event::{Event, InvalidEvent};

/// Largest zstd window the decoder accepts (2^24 = 16 MiB). Encoders here
/// use far less; a frame asking for more is refused instead of allocating.
const MAX_WINDOW_LOG: u32 = 24;

/// Hard bounds on one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the compressed body.
    pub max_compressed_bytes: usize,
    /// Bytes after decompression, counted while decompressing.
    pub max_decompressed_bytes: usize,
    /// Bytes of one NDJSON line (one encoded event).
    pub max_line_bytes: usize,
    /// Events in one batch.
    pub max_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_compressed_bytes: 16 << 20,
            max_decompressed_bytes: 64 << 20,
            max_line_bytes: 2 << 20,
            max_events: 100_000,
        }
    }
}

/// Which of the [`Limits`] a batch exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`Limits::max_compressed_bytes`].
    CompressedBytes,
    /// [`Limits::max_decompressed_bytes`].
    DecompressedBytes,
    /// [`Limits::max_line_bytes`].
    LineBytes,
    /// [`Limits::max_events`].
    Events,
}

impl Limit {
    /// The limit's name as it appears in configuration and error bodies.
    pub fn name(self) -> &'static str {
        match self {
            Limit::CompressedBytes => "max_compressed_bytes",
            Limit::DecompressedBytes => "max_decompressed_bytes",
            Limit::LineBytes => "max_line_bytes",
            Limit::Events => "max_events",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a batch could not be decoded. Line numbers count from 1.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A bound in [`Limits`] was crossed.
    #[error("batch exceeds {limit} ({max})")]
    TooLarge {
        /// Which limit.
        limit: Limit,
        /// Its configured value.
        max: usize,
    },
    /// The body is not a valid zstd stream.
    #[error("invalid zstd data: {0}")]
    Zstd(#[source] std::io::Error),
    /// A line is not UTF-8.
    #[error("line {line}: not valid UTF-8")]
    InvalidUtf8 {
        /// The line.
        line: usize,
    },
    /// A line is not a JSON event.
    #[error("line {line}: {source}")]
    Json {
        /// The line.
        line: usize,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// A line is a JSON event that contradicts itself.
    #[error("line {line}: {source}")]
    InvalidEvent {
        /// The line.
        line: usize,
        /// What is wrong.
        #[source]
        source: InvalidEvent,
    },
    /// The batch holds no event.
    #[error("batch holds no event")]
    Empty,
}

impl DecodeError {
    /// The exceeded limit, for errors that are about a limit.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            DecodeError::TooLarge { limit, .. } => Some(*limit),
            _ => None,
        }
    }
}

/// Encodes events as zstd-compressed NDJSON at the given zstd level.
pub fn encode_batch(events: &[Event], level: i32) -> std::io::Result<Vec<u8>> {
    let mut ndjson = Vec::with_capacity(events.len() * 128);
    for event in events {
        serde_json::to_writer(&mut ndjson, event)?;
        ndjson.push(b'\n');
    }
    zstd::bulk::compress(&ndjson, level)
}

/// Decodes a batch, enforcing `limits` while streaming.
pub fn decode_batch(body: &[u8], limits: &Limits) -> Result<Vec<Event>, DecodeError> {
    if body.len() > limits.max_compressed_bytes {
        return Err(DecodeError::TooLarge {
            limit: Limit::CompressedBytes,
            max: limits.max_compressed_bytes,
        });
    }
    let mut decoder = zstd::stream::read::Decoder::with_buffer(body).map_err(DecodeError::Zstd)?;
    decoder
        .window_log_max(MAX_WINDOW_LOG)
        .map_err(DecodeError::Zstd)?;
    // One byte past the limit tells "exactly at the limit" from "over it".
    let budget = (limits.max_decompressed_bytes as u64).saturating_add(1);
    let mut reader = BufReader::with_capacity(64 << 10, decoder.take(budget));

    let mut events = Vec::new();
    let mut line = Vec::new();
    let mut decompressed = 0usize;
    let mut line_number = 0usize;
    loop {
        line.clear();
        let complete = read_line_bounded(&mut reader, &mut line, limits.max_line_bytes)?;
        decompressed += line.len() + usize::from(complete);
        if decompressed > limits.max_decompressed_bytes {
            return Err(DecodeError::TooLarge {
                limit: Limit::DecompressedBytes,
                max: limits.max_decompressed_bytes,
            });
        }
        if line.is_empty() && !complete {
            break;
        }
        line_number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if events.len() == limits.max_events {
            return Err(DecodeError::TooLarge {
                limit: Limit::Events,
                max: limits.max_events,
            });
        }
        let text = std::str::from_utf8(&line)
            .map_err(|_| DecodeError::InvalidUtf8 { line: line_number })?;
        let event: Event = serde_json::from_str(text).map_err(|source| DecodeError::Json {
            line: line_number,
            source,
        })?;
        event
            .validate()
            .map_err(|source| DecodeError::InvalidEvent {
                line: line_number,
                source,
            })?;
        events.push(event);
    }
    if events.is_empty() {
        return Err(DecodeError::Empty);
    }
    Ok(events)
}

/// Reads up to and excluding the next `\n` into `line`. Returns whether a
/// `\n` ended the line (false at end of input). Fails without buffering more
/// than `max_line_bytes` when the line is longer.
fn read_line_bounded<R: BufRead>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max_line_bytes: usize,
) -> Result<bool, DecodeError> {
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(DecodeError::Zstd(error)),
        };
        if available.is_empty() {
            return Ok(false);
        }
        let (chunk, found) = match memchr_newline(available) {
            Some(index) => (&available[..index], true),
            None => (available, false),
        };
        if line.len() + chunk.len() > max_line_bytes {
            return Err(DecodeError::TooLarge {
                limit: Limit::LineBytes,
                max: max_line_bytes,
            });
        }
        line.extend_from_slice(chunk);
        let consumed = chunk.len() + usize::from(found);
        reader.consume(consumed);
        if found {
            return Ok(true);
        }
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::ids::{ByteOffset, FileId};

    fn event(offset: u64, message: &str) -> Event {
        Event {
            file_id: FileId::new("f1").unwrap(),
            offset: ByteOffset(offset),
            end_offset: ByteOffset(offset + message.len() as u64 + 1),
            host: "web3".into(),
            source: "/var/log/app.log".into(),
            message: message.into(),
            read_at_ms: Some(1_700_000_000_000),
            tags: BTreeMap::new(),
            truncated: false,
            invalid_utf8: false,
            format: None,
            fields: Default::default(),
            severity: None,
            time_ms: None,
        }
    }

    fn compress(raw: &[u8]) -> Vec<u8> {
        zstd::bulk::compress(raw, 3).unwrap()
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let mut tagged = event(10, "tagged ünïcode \"quoted\" \t tab");
        tagged.tags.insert("app".into(), "api".into());
        tagged.truncated = true;
        tagged.invalid_utf8 = true;
        tagged.read_at_ms = None;
        let events = vec![event(0, "first"), tagged];
        let body = encode_batch(&events, 3).unwrap();
        assert_eq!(decode_batch(&body, &Limits::default()).unwrap(), events);
    }

    #[test]
    fn compressed_size_limit() {
        let body = encode_batch(&[event(0, "x")], 3).unwrap();
        let limits = Limits {
            max_compressed_bytes: body.len() - 1,
            ..Limits::default()
        };
        let err = decode_batch(&body, &limits).unwrap_err();
        assert_eq!(err.limit(), Some(Limit::CompressedBytes));
        let exact = Limits {
            max_compressed_bytes: body.len(),
            ..Limits::default()
        };
        assert!(decode_batch(&body, &exact).is_ok());
    }

    #[test]
    fn decompressed_size_limit_is_counted_not_declared() {
        // A bomb: 64 MiB of spaces compress to a few KiB.
        let bomb = compress(&vec![b' '; 64 << 20]);
        assert!(bomb.len() < 64 << 10);
        let limits = Limits {
            max_decompressed_bytes: 1 << 20,
            ..Limits::default()
        };
        let err = decode_batch(&bomb, &limits).unwrap_err();
        assert_eq!(err.limit(), Some(Limit::DecompressedBytes));
    }

    #[test]
    fn decompressed_limit_allows_exactly_the_limit() {
        let body = encode_batch(&[event(0, "a"), event(2, "b")], 3).unwrap();
        let raw_len = zstd::stream::decode_all(&body[..]).unwrap().len();
        let exact = Limits {
            max_decompressed_bytes: raw_len,
            ..Limits::default()
        };
        assert_eq!(decode_batch(&body, &exact).unwrap().len(), 2);
        let under = Limits {
            max_decompressed_bytes: raw_len - 1,
            ..Limits::default()
        };
        assert_eq!(
            decode_batch(&body, &under).unwrap_err().limit(),
            Some(Limit::DecompressedBytes)
        );
    }

    #[test]
    fn line_size_limit() {
        let body = encode_batch(&[event(0, &"y".repeat(5000))], 3).unwrap();
        let limits = Limits {
            max_line_bytes: 4096,
            ..Limits::default()
        };
        assert_eq!(
            decode_batch(&body, &limits).unwrap_err().limit(),
            Some(Limit::LineBytes)
        );
        // A newline-free bomb fails on the line limit, not after buffering it all.
        let endless = compress(&vec![b'z'; 8 << 20]);
        assert_eq!(
            decode_batch(&endless, &limits).unwrap_err().limit(),
            Some(Limit::LineBytes)
        );
    }

    #[test]
    fn event_count_limit() {
        let events: Vec<Event> = (0..11).map(|i| event(i * 10, "e")).collect();
        let body = encode_batch(&events, 3).unwrap();
        let limits = Limits {
            max_events: 10,
            ..Limits::default()
        };
        assert_eq!(
            decode_batch(&body, &limits).unwrap_err().limit(),
            Some(Limit::Events)
        );
        let enough = Limits {
            max_events: 11,
            ..Limits::default()
        };
        assert_eq!(decode_batch(&body, &enough).unwrap().len(), 11);
    }

    #[test]
    fn corrupt_zstd_is_an_error() {
        let err = decode_batch(b"definitely not zstd", &Limits::default()).unwrap_err();
        assert!(matches!(err, DecodeError::Zstd(_)), "{err:?}");
        let mut body = encode_batch(&[event(0, "hello world")], 3).unwrap();
        body.truncate(body.len() - 3);
        assert!(decode_batch(&body, &Limits::default()).is_err());
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let good = serde_json::to_string(&event(0, "ok")).unwrap();
        let raw = format!("{good}\n{{\"not\": \"an event\"}}\n");
        match decode_batch(&compress(raw.as_bytes()), &Limits::default()) {
            Err(DecodeError::Json { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected a JSON error on line 2, got {other:?}"),
        }
        let raw = [good.as_bytes(), b"\n\xff\xfe\n"].concat();
        match decode_batch(&compress(&raw), &Limits::default()) {
            Err(DecodeError::InvalidUtf8 { line }) => assert_eq!(line, 2),
            other => panic!("expected invalid UTF-8 on line 2, got {other:?}"),
        }
        let mut backwards = event(50, "x");
        backwards.end_offset = ByteOffset(40);
        let raw = serde_json::to_string(&backwards).unwrap();
        assert!(matches!(
            decode_batch(&compress(raw.as_bytes()), &Limits::default()),
            Err(DecodeError::InvalidEvent { line: 1, .. })
        ));
    }

    #[test]
    fn empty_batch_is_an_error_and_blank_lines_are_skipped() {
        assert!(matches!(
            decode_batch(&compress(b"\n\n"), &Limits::default()),
            Err(DecodeError::Empty)
        ));
        let good = serde_json::to_string(&event(0, "ok")).unwrap();
        let raw = format!("\n{good}\n\n{good}");
        assert_eq!(
            decode_batch(&compress(raw.as_bytes()), &Limits::default())
                .unwrap()
                .len(),
            2
        );
    }

    fn arb_event() -> impl Strategy<Value = Event> {
        (
            "[a-z0-9]{1,20}",
            0u64..1 << 40,
            1u64..1 << 20,
            ".{0,40}",
            ".{0,200}",
            proptest::option::of(any::<i64>()),
            proptest::collection::btree_map("[a-z]{1,8}", ".{0,10}", 0..3),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(file, offset, len, source, message, read_at_ms, tags, truncated, bad)| Event {
                    file_id: FileId::new(file).unwrap(),
                    offset: ByteOffset(offset),
                    end_offset: ByteOffset(offset + len),
                    host: "h".into(),
                    source,
                    message,
                    read_at_ms,
                    tags,
                    truncated,
                    invalid_utf8: bad,
                    format: None,
                    fields: Default::default(),
                    severity: None,
                    time_ms: None,
                },
            )
    }

    proptest! {
        #[test]
        fn prop_round_trip(events in proptest::collection::vec(arb_event(), 1..50)) {
            let body = encode_batch(&events, 1).unwrap();
            prop_assert_eq!(decode_batch(&body, &Limits::default()).unwrap(), events);
        }

        #[test]
        fn prop_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = decode_batch(&bytes, &Limits::default());
            let _ = decode_batch(&compress(&bytes), &Limits::default());
        }
    }
}
