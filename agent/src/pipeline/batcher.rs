//! Groups events into batches, flushed by size or by age, whichever first.
//!
//! The size counted is the exact uncompressed NDJSON size; a batch is also
//! capped in events. A flushed batch is compressed with
//! [`loghound_shared::encode_batch`] and remembers, per stream, the
//! position its events reach, which the checkpoints need once the batch is
//! settled.

use std::io;
use std::time::{Duration, Instant};

use loghound_shared::{encode_batch, Event, FileId};

use super::checkpoints::{BatchSeq, Position};

/// Most events in one batch.
pub(crate) const MAX_EVENTS_PER_BATCH: usize = 10_000;

/// A compressed batch ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    pub(crate) seq: BatchSeq,
    /// zstd-compressed NDJSON.
    pub(crate) body: Vec<u8>,
    pub(crate) num_events: usize,
    /// For each stream in the batch, the position of its last event.
    pub(crate) stream_ends: Vec<(FileId, Position)>,
}

impl Batch {
    /// The streams the batch holds events of.
    pub(crate) fn stream_ids(&self) -> Vec<FileId> {
        self.stream_ends.iter().map(|(id, _)| id.clone()).collect()
    }
}

/// Accumulates events; see the module docs.
#[derive(Debug)]
pub(crate) struct Batcher {
    max_bytes: usize,
    max_age: Duration,
    zstd_level: i32,
    next_seq: u64,
    events: Vec<Event>,
    /// The cursor given with each event, where its source has one.
    cursors: Vec<Option<String>>,
    ndjson_bytes: usize,
    oldest: Option<Instant>,
}

/// Counts bytes written through it.
struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Batcher {
    pub(crate) fn new(max_bytes: usize, max_age: Duration, zstd_level: i32) -> Self {
        Self {
            max_bytes,
            max_age,
            zstd_level,
            next_seq: 1,
            events: Vec::new(),
            cursors: Vec::new(),
            ndjson_bytes: 0,
            oldest: None,
        }
    }

    /// Adds an event and the cursor its source resumes at after it;
    /// returns the batch if this one filled it. Events of one stream come
    /// in stream order.
    pub(crate) fn push(
        &mut self,
        event: Event,
        cursor: Option<String>,
        now: Instant,
    ) -> io::Result<Option<Batch>> {
        let mut counter = ByteCounter(0);
        serde_json::to_writer(&mut counter, &event)?;
        self.ndjson_bytes += counter.0 + 1;
        self.events.push(event);
        self.cursors.push(cursor);
        self.oldest.get_or_insert(now);
        if self.ndjson_bytes >= self.max_bytes || self.events.len() >= MAX_EVENTS_PER_BATCH {
            return self.flush().map(Some);
        }
        Ok(None)
    }

    /// When the oldest buffered event reaches the age limit.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.oldest.map(|oldest| oldest + self.max_age)
    }

    /// Flushes if the age limit was reached.
    pub(crate) fn poll(&mut self, now: Instant) -> io::Result<Option<Batch>> {
        match self.deadline() {
            Some(deadline) if now >= deadline => self.flush().map(Some),
            _ => Ok(None),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Builds a batch of everything buffered (which must not be empty).
    pub(crate) fn flush(&mut self) -> io::Result<Batch> {
        debug_assert!(!self.events.is_empty());
        let events = std::mem::take(&mut self.events);
        let cursors = std::mem::take(&mut self.cursors);
        self.ndjson_bytes = 0;
        self.oldest = None;
        let mut stream_ends: Vec<(FileId, Position)> = Vec::new();
        for (event, cursor) in events.iter().zip(cursors) {
            let end = match stream_ends.iter_mut().find(|(id, _)| *id == event.file_id) {
                Some((_, end)) => end,
                None => {
                    stream_ends.push((event.file_id.clone(), Position::default()));
                    &mut stream_ends.last_mut().expect("just pushed").1
                }
            };
            end.offset = end.offset.max(event.end_offset);
            if cursor.is_some() {
                end.cursor = cursor;
            }
        }
        let body = encode_batch(&events, self.zstd_level)?;
        let seq = BatchSeq(self.next_seq);
        self.next_seq += 1;
        Ok(Batch {
            seq,
            body,
            num_events: events.len(),
            stream_ends,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use loghound_shared::{decode_batch, ByteOffset, Limits};

    use super::*;

    fn event(file: &str, offset: u64, message: &str) -> Event {
        Event {
            file_id: FileId::new(file).unwrap(),
            offset: ByteOffset(offset),
            end_offset: ByteOffset(offset + message.len() as u64 + 1),
            host: "h".into(),
            source: "/l/a".into(),
            message: message.into(),
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

    #[test]
    fn flushes_by_size() {
        let now = Instant::now();
        let mut batcher = Batcher::new(1024, Duration::from_secs(60), 3);
        let mut flushed = None;
        for i in 0..100 {
            if let Some(batch) = batcher
                .push(event("f", i * 101, &"x".repeat(100)), None, now)
                .unwrap()
            {
                flushed = Some(batch);
                break;
            }
        }
        let batch = flushed.expect("1 KiB is reached within 100 events of 100 bytes");
        assert!(batch.num_events < 10, "{}", batch.num_events);
        assert!(batcher.is_empty());
        let decoded = decode_batch(&batch.body, &Limits::default()).unwrap();
        assert_eq!(decoded.len(), batch.num_events);
    }

    #[test]
    fn flushes_by_age_and_records_file_ends() {
        let start = Instant::now();
        let mut batcher = Batcher::new(1 << 20, Duration::from_millis(200), 3);
        assert!(batcher
            .push(event("a", 0, "one"), None, start)
            .unwrap()
            .is_none());
        assert!(batcher
            .push(event("b", 0, "x"), None, start)
            .unwrap()
            .is_none());
        assert!(batcher
            .push(event("a", 4, "two"), None, start)
            .unwrap()
            .is_none());
        assert_eq!(batcher.deadline(), Some(start + Duration::from_millis(200)));
        assert!(batcher
            .poll(start + Duration::from_millis(199))
            .unwrap()
            .is_none());
        let batch = batcher
            .poll(start + Duration::from_millis(200))
            .unwrap()
            .unwrap();
        let at = |offset| Position {
            offset: ByteOffset(offset),
            cursor: None,
        };
        assert_eq!(
            batch.stream_ends,
            vec![
                (FileId::new("a").unwrap(), at(8)),
                (FileId::new("b").unwrap(), at(2)),
            ]
        );
        assert_eq!(batcher.deadline(), None);
        let next = {
            batcher.push(event("a", 8, "z"), None, start).unwrap();
            batcher.flush().unwrap()
        };
        assert!(next.seq > batch.seq);
    }

    #[test]
    fn a_stream_ends_at_the_cursor_of_its_last_event() {
        let now = Instant::now();
        let mut batcher = Batcher::new(1 << 20, Duration::from_secs(60), 3);
        batcher
            .push(event("j", 0, "one"), Some("i=1".into()), now)
            .unwrap();
        batcher
            .push(event("j", 4, "two"), Some("i=2".into()), now)
            .unwrap();
        let batch = batcher.flush().unwrap();
        assert_eq!(
            batch.stream_ends,
            vec![(
                FileId::new("j").unwrap(),
                Position {
                    offset: ByteOffset(8),
                    cursor: Some("i=2".into())
                }
            )]
        );
    }
}
