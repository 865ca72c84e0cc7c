//! Groups events into batches, flushed by size or by age, whichever first.
//!
//! The size counted is the exact uncompressed NDJSON size; a batch is also
//! capped in events. A flushed batch is compressed with
//! [`loghound_shared::encode_batch`] and remembers, per file, the offset its
//! lines reach, which the checkpointer needs once the batch is acked.

use std::io;
use std::time::{Duration, Instant};

use loghound_shared::{encode_batch, ByteOffset, Event, FileId};

use crate::checkpointer::BatchSeq;

/// Most events in one batch.
pub(crate) const MAX_EVENTS_PER_BATCH: usize = 10_000;

/// A compressed batch ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    pub(crate) seq: BatchSeq,
    /// zstd-compressed NDJSON.
    pub(crate) body: Vec<u8>,
    pub(crate) num_events: usize,
    /// For each file in the batch, the end offset of its last line.
    pub(crate) file_ends: Vec<(FileId, ByteOffset)>,
}

/// Accumulates events; see the module docs.
#[derive(Debug)]
pub(crate) struct Batcher {
    max_bytes: usize,
    max_age: Duration,
    zstd_level: i32,
    next_seq: u64,
    events: Vec<Event>,
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
            ndjson_bytes: 0,
            oldest: None,
        }
    }

    /// Adds an event; returns the batch if this one filled it.
    pub(crate) fn push(&mut self, event: Event, now: Instant) -> io::Result<Option<Batch>> {
        let mut counter = ByteCounter(0);
        serde_json::to_writer(&mut counter, &event)?;
        self.ndjson_bytes += counter.0 + 1;
        self.events.push(event);
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
        self.ndjson_bytes = 0;
        self.oldest = None;
        let mut file_ends: Vec<(FileId, ByteOffset)> = Vec::new();
        for event in &events {
            match file_ends.iter_mut().find(|(id, _)| *id == event.file_id) {
                Some((_, end)) => *end = (*end).max(event.end_offset),
                None => file_ends.push((event.file_id.clone(), event.end_offset)),
            }
        }
        let body = encode_batch(&events, self.zstd_level)?;
        let seq = BatchSeq(self.next_seq);
        self.next_seq += 1;
        Ok(Batch {
            seq,
            body,
            num_events: events.len(),
            file_ends,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use loghound_shared::{decode_batch, Limits};

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
        }
    }

    #[test]
    fn flushes_by_size() {
        let now = Instant::now();
        let mut batcher = Batcher::new(1024, Duration::from_secs(60), 3);
        let mut flushed = None;
        for i in 0..100 {
            if let Some(batch) = batcher
                .push(event("f", i * 101, &"x".repeat(100)), now)
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
        assert!(batcher.push(event("a", 0, "one"), start).unwrap().is_none());
        assert!(batcher.push(event("b", 0, "x"), start).unwrap().is_none());
        assert!(batcher.push(event("a", 4, "two"), start).unwrap().is_none());
        assert_eq!(batcher.deadline(), Some(start + Duration::from_millis(200)));
        assert!(batcher
            .poll(start + Duration::from_millis(199))
            .unwrap()
            .is_none());
        let batch = batcher
            .poll(start + Duration::from_millis(200))
            .unwrap()
            .unwrap();
        assert_eq!(
            batch.file_ends,
            vec![
                (FileId::new("a").unwrap(), ByteOffset(8)),
                (FileId::new("b").unwrap(), ByteOffset(2)),
            ]
        );
        assert_eq!(batcher.deadline(), None);
        let next = {
            batcher.push(event("a", 8, "z"), start).unwrap();
            batcher.flush().unwrap()
        };
        assert!(next.seq > batch.seq);
    }
}
