//! The write-ahead log: every accepted batch is appended here and fsynced
//! before the server acknowledges it.
//!
//! Records go into numbered segment files (`wal/<first seq>.wal`). A single
//! sync thread does group commit: writers append under a short lock and then
//! wait on [`Wal::wait_durable`]; the sync thread `fdatasync`s whatever has
//! been written since its last pass and publishes the durable sequence
//! number, so one fsync covers every request that arrived meanwhile.
//! Segments are deleted once the index has committed past them.

mod record;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

pub use record::{Record, RecordError};
use tokio::sync::watch;
use tracing::{error, info, warn};

const SEGMENT_SUFFIX: &str = ".wal";

/// Why an append failed. Nothing of the record is left in the log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// Writing failed (often: disk full); the record was rolled back.
    #[error("write-ahead log write failed: {0}")]
    Io(#[from] std::io::Error),
    /// An earlier failure could not be rolled back; the log refuses writes
    /// until the server restarts and recovers it.
    #[error("write-ahead log is unusable after an earlier failure; restart the server")]
    Poisoned,
}

/// What opening the log found.
#[derive(Debug, Default)]
pub struct ReplayReport {
    /// Records handed to the replay callback.
    pub records_replayed: u64,
    /// Bytes cut off a torn or corrupt tail.
    pub bytes_truncated: u64,
}

struct Writer {
    dir: PathBuf,
    file: File,
    segment_len: u64,
    segment_max_bytes: u64,
    next_seq: u64,
    poisoned: bool,
    encode_buffer: Vec<u8>,
}

/// The log, shared by ingest handlers (append) and the sync thread.
pub struct Wal {
    writer: Mutex<Writer>,
    written: Condvar,
    durability: Durability,
}

/// The highest sequence number known to be on disk, and a way to wait for
/// a given one. Cloned to whoever must not run ahead of the disk (ingest
/// answers, index commits).
#[derive(Clone)]
pub struct Durability(Arc<watch::Sender<u64>>);

impl Durability {
    /// Starts at `seq` (what is already on disk).
    pub fn new(seq: u64) -> Self {
        Durability(Arc::new(watch::channel(seq).0))
    }

    /// The highest durable sequence number.
    pub fn durable_seq(&self) -> u64 {
        *self.0.borrow()
    }

    /// Waits until every record up to `seq` is on disk.
    pub async fn wait(&self, seq: u64) {
        let mut rx = self.0.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = rx.wait_for(|durable| *durable >= seq).await;
    }

    /// Blocking form of [`Durability::wait`], for the indexer thread.
    pub fn wait_blocking(&self, seq: u64) {
        while self.durable_seq() < seq {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    fn publish(&self, seq: u64) {
        self.0.send_if_modified(|durable| {
            let advanced = seq > *durable;
            *durable = (*durable).max(seq);
            advanced
        });
    }
}

/// Deletes every segment in `dir` whose records all have a sequence number
/// of at most `seq`. The newest segment (the one being written) is kept.
/// Safe while the log is written: a segment rolled meanwhile only adds a
/// newer file.
pub fn remove_segments_through(dir: &Path, seq: u64) -> std::io::Result<usize> {
    let segments = list_segments(dir)?;
    let mut removed = 0;
    for pair in segments.windows(2) {
        let (_, path) = &pair[0];
        let (next_first, _) = pair[1];
        if next_first <= seq + 1 {
            fs::remove_file(path)?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}{SEGMENT_SUFFIX}"))
}

/// Segment files, oldest first, with the first sequence number each holds.
fn list_segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(first) = name
            .strip_suffix(SEGMENT_SUFFIX)
            .and_then(|n| n.parse::<u64>().ok())
        {
            segments.push((first, path));
        }
    }
    segments.sort();
    Ok(segments)
}

/// Reads the next record from `reader`, of which `remaining` bytes are
/// left in the segment. The outer error is a failed read; the inner one
/// bytes that are not a record (a torn or corrupt tail).
fn read_record(
    reader: &mut impl Read,
    remaining: u64,
) -> std::io::Result<Result<(Record, usize), RecordError>> {
    let mut header = [0u8; record::HEADER_BYTES];
    if remaining < header.len() as u64 {
        return Ok(Err(RecordError::Torn {
            needed: header.len(),
            available: remaining as usize,
        }));
    }
    reader.read_exact(&mut header)?;
    let payload_len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if payload_len > record::MAX_PAYLOAD_BYTES {
        return Ok(Err(RecordError::Corrupt("impossible length")));
    }
    let total = header.len() + payload_len;
    if (total as u64) > remaining {
        return Ok(Err(RecordError::Torn {
            needed: total,
            available: remaining as usize,
        }));
    }
    let mut bytes = Vec::with_capacity(total);
    bytes.extend_from_slice(&header);
    bytes.resize(total, 0);
    reader.read_exact(&mut bytes[header.len()..])?;
    Ok(Record::decode(&bytes))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Wal {
    /// Opens the log in `dir`, replaying every record with a sequence number
    /// of at least `from_seq` through `replay`, in order. A torn or corrupt
    /// tail is cut off and reported. New records continue after the last
    /// one found (or at `from_seq` if the log is empty). `durability`
    /// advances as records are replayed, since each segment is fsynced
    /// before it is read.
    pub fn open(
        dir: &Path,
        segment_max_bytes: u64,
        from_seq: u64,
        durability: Durability,
        mut replay: impl FnMut(Record),
    ) -> anyhow::Result<(Arc<Wal>, ReplayReport)> {
        fs::create_dir_all(dir)?;
        let segments = list_segments(dir)?;
        let mut report = ReplayReport::default();
        let mut last_seq = from_seq.saturating_sub(1);
        for (index, (_, path)) in segments.iter().enumerate() {
            let is_last = index + 1 == segments.len();
            let file = File::open(path)?;
            file.sync_all()?;
            let file_len = file.metadata()?.len();
            // One record at a time: replay holds a record, never a segment.
            let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
            let mut at = 0u64;
            while at < file_len {
                match read_record(&mut reader, file_len - at)? {
                    Ok((record, len)) => {
                        at += len as u64;
                        last_seq = last_seq.max(record.seq);
                        durability.publish(record.seq);
                        if record.seq >= from_seq {
                            report.records_replayed += 1;
                            replay(record);
                        }
                    }
                    Err(problem) => {
                        let cut = file_len - at;
                        report.bytes_truncated += cut;
                        if is_last {
                            warn!(%problem, segment = %path.display(), offset = at, bytes_cut = cut,
                                "cutting off the damaged tail of the write-ahead log");
                            let file = OpenOptions::new().write(true).open(path)?;
                            file.set_len(at)?;
                            file.sync_all()?;
                        } else {
                            error!(%problem, segment = %path.display(), offset = at, bytes_skipped = cut,
                                "damaged record inside the write-ahead log; skipping the rest of this segment");
                        }
                        break;
                    }
                }
            }
        }
        let next_seq = last_seq + 1;
        let (file, segment_len) = match segments.last() {
            Some((_, path)) => {
                let mut file = OpenOptions::new().append(true).open(path)?;
                file.sync_all()?;
                let len = file.seek(SeekFrom::End(0))?;
                (file, len)
            }
            None => (Self::create_segment(dir, next_seq)?, 0),
        };
        durability.publish(last_seq);
        let wal = Arc::new(Wal {
            writer: Mutex::new(Writer {
                dir: dir.to_path_buf(),
                file,
                segment_len,
                segment_max_bytes,
                next_seq,
                poisoned: false,
                encode_buffer: Vec::new(),
            }),
            written: Condvar::new(),
            durability,
        });
        let syncer = Arc::clone(&wal);
        std::thread::Builder::new()
            .name("wal-sync".into())
            .spawn(move || syncer.sync_loop())?;
        Ok((wal, report))
    }

    /// Creates the segment whose first record will be `first_seq`. If the
    /// directory cannot be synced (a full disk), the new file is removed
    /// again, so a later attempt can create it.
    fn create_segment(dir: &Path, first_seq: u64) -> std::io::Result<File> {
        let path = segment_path(dir, first_seq);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        if let Err(error) = sync_dir(dir) {
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(error);
        }
        Ok(file)
    }

    fn lock(&self) -> MutexGuard<'_, Writer> {
        // A panic while holding the lock leaves the writer consistent (every
        // write is rolled back or complete), so a poisoned mutex is usable.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    /// Appends a record built from the sequence number it will get. Not
    /// durable until [`Wal::wait_durable`] says so.
    pub fn append(
        &self,
        agent: &loghound_shared::AgentId,
        received_at_ms: i64,
        body: &[u8],
    ) -> Result<u64, WalError> {
        let mut writer = self.lock();
        if writer.poisoned {
            return Err(WalError::Poisoned);
        }
        if writer.segment_len >= writer.segment_max_bytes {
            writer.roll()?;
        }
        let seq = writer.next_seq;
        let record = Record {
            seq,
            received_at_ms,
            agent: agent.clone(),
            body: body.to_vec(),
        };
        let mut buffer = std::mem::take(&mut writer.encode_buffer);
        buffer.clear();
        record.encode_into(&mut buffer);
        let result = writer.file.write_all(&buffer);
        let len = buffer.len() as u64;
        writer.encode_buffer = buffer;
        if let Err(error) = result {
            // Cut whatever part of the record reached the file, so that the
            // next record does not follow garbage.
            let keep = writer.segment_len;
            if writer.file.set_len(keep).is_err() {
                writer.poisoned = true;
            }
            return Err(WalError::Io(error));
        }
        writer.segment_len += len;
        writer.next_seq += 1;
        drop(writer);
        self.written.notify_one();
        Ok(seq)
    }

    /// The durability handle of this log.
    pub fn durability(&self) -> &Durability {
        &self.durability
    }

    fn sync_loop(&self) {
        loop {
            let (target, file) = {
                let mut writer = self.lock();
                while writer.next_seq - 1 <= self.durability.durable_seq() {
                    writer = self.written.wait(writer).unwrap_or_else(|p| p.into_inner());
                }
                (writer.next_seq - 1, writer.file.try_clone())
            };
            let synced = file.and_then(|f| f.sync_data());
            if let Err(error) = synced {
                // After a failed fsync the kernel may have dropped the dirty
                // pages; nothing written since the last good sync can be
                // trusted. Stop, and let restart replay what is really there.
                error!(%error, "write-ahead log fsync failed; stopping the server");
                std::process::abort();
            }
            self.durability.publish(target);
        }
    }
}

impl Writer {
    fn roll(&mut self) -> Result<(), WalError> {
        self.file.sync_all()?;
        self.file = Wal::create_segment(&self.dir, self.next_seq)?;
        self.segment_len = 0;
        info!(
            first_seq = self.next_seq,
            "started a new write-ahead log segment"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use loghound_shared::AgentId;

    use super::*;

    fn agent() -> AgentId {
        AgentId::new("a1").unwrap()
    }

    fn replay_all(dir: &Path, from: u64) -> (Vec<Record>, ReplayReport, Arc<Wal>) {
        let mut records = Vec::new();
        let (wal, report) =
            Wal::open(dir, 1 << 20, from, Durability::new(0), |r| records.push(r)).unwrap();
        (records, report, wal)
    }

    #[tokio::test]
    async fn appended_records_replay_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (_, _, wal) = replay_all(dir.path(), 1);
        for i in 0..10u8 {
            let seq = wal.append(&agent(), 5, &[i; 3]).unwrap();
            assert_eq!(seq, u64::from(i) + 1);
        }
        wal.durability().wait(10).await;
        drop(wal);
        let (records, report, wal) = replay_all(dir.path(), 4);
        assert_eq!(records.len(), 7);
        assert_eq!(records[0].seq, 4);
        assert_eq!(records[0].body, vec![3; 3]);
        assert_eq!(report.bytes_truncated, 0);
        assert_eq!(wal.next_seq(), 11);
    }

    #[tokio::test]
    async fn torn_tail_is_cut_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let (_, _, wal) = replay_all(dir.path(), 1);
        wal.append(&agent(), 1, b"one").unwrap();
        wal.append(&agent(), 1, b"two").unwrap();
        wal.durability().wait(2).await;
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
        assert_eq!(wal.append(&agent(), 1, b"three").unwrap(), 2);
        wal.durability().wait(2).await;
        drop(wal);
        let (records, report, _) = replay_all(dir.path(), 1);
        let bodies: Vec<_> = records.iter().map(|r| r.body.clone()).collect();
        assert_eq!(bodies, vec![b"one".to_vec(), b"three".to_vec()]);
        assert_eq!(report.bytes_truncated, 0);
    }

    #[tokio::test]
    async fn segments_roll_and_old_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), 1 << 20, 1, Durability::new(0), |_| {}).unwrap();
        let body = vec![7u8; 300 << 10];
        for _ in 0..8 {
            wal.append(&agent(), 1, &body).unwrap();
        }
        wal.durability().wait(8).await;
        let before = list_segments(dir.path()).unwrap();
        assert!(before.len() >= 2, "{before:?}");
        remove_segments_through(dir.path(), 8).unwrap();
        let after = list_segments(dir.path()).unwrap();
        assert_eq!(after.len(), 1, "the current segment stays");
        drop(wal);
        // What remains replays, and numbering continues.
        let (wal, _) = Wal::open(dir.path(), 1 << 20, 9, Durability::new(0), |_| {}).unwrap();
        assert_eq!(wal.next_seq(), 9);
    }
}
