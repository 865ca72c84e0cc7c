//! The write-ahead log: every accepted batch is appended here and fsynced
//! before the server acknowledges it.
//!
//! Records go into numbered segment files (`wal/<first seq>.wal`). A single
//! sync thread does group commit: writers append under a short lock and then
//! wait on [`Wal::wait_durable`]; the sync thread `fdatasync`s whatever has
//! been written since its last pass and publishes the durable sequence
//! number, so one fsync covers every request that arrived meanwhile.
//! Segments are deleted once the index has committed past them.
//!
//! This is the single-node backend of [`Log`]: ingest and the indexer only
//! see the trait.

mod record;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

pub use record::{Record, RecordError, MAX_ORIGIN_BYTES};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::log::{BodyFormat, DurableFuture, Log, LogError, LogPosition, LogRecord, ReadReport};

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

impl From<WalError> for LogError {
    fn from(error: WalError) -> Self {
        match error {
            WalError::Io(io) => LogError::from_io(io),
            WalError::Poisoned => LogError::Poisoned,
        }
    }
}

/// What opening the log found.
#[derive(Debug, Default)]
pub struct OpenReport {
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
    dir: PathBuf,
    writer: Mutex<Writer>,
    written: Condvar,
    durability: Durability,
}

/// The highest sequence number known to be on disk, and a way to wait for
/// a given one. Cloned to whoever must not run ahead of the disk (ingest
/// answers, index commits).
#[derive(Clone)]
struct Durability(Arc<watch::Sender<u64>>);

impl Durability {
    /// Starts at `seq` (what is already on disk).
    fn new(seq: u64) -> Self {
        Durability(Arc::new(watch::channel(seq).0))
    }

    /// The highest durable sequence number.
    fn durable_seq(&self) -> u64 {
        *self.0.borrow()
    }

    /// Waits until every record up to `seq` is on disk.
    async fn wait(&self, seq: u64) {
        let mut rx = self.0.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = rx.wait_for(|durable| *durable >= seq).await;
    }

    /// Blocking form of [`Durability::wait`], for the indexer thread.
    fn wait_blocking(&self, seq: u64) {
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
fn remove_segments_through(dir: &Path, seq: u64) -> std::io::Result<usize> {
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
    /// Opens the log in `dir`: every segment is fsynced, a torn or corrupt
    /// tail of the last one is cut off and reported, and new records
    /// continue after the last one found, or at `start_at` when that is
    /// later (an empty log after a checkpoint). Records are read with
    /// [`Log::read_from`].
    pub fn open(
        dir: &Path,
        segment_max_bytes: u64,
        start_at: LogPosition,
    ) -> Result<(Arc<Wal>, OpenReport), LogError> {
        fs::create_dir_all(dir).map_err(LogError::from_io)?;
        let segments = list_segments(dir).map_err(LogError::from_io)?;
        let mut report = OpenReport::default();
        let mut last_seq = start_at.get().saturating_sub(1);
        for (index, (first, path)) in segments.iter().enumerate() {
            let file = File::open(path).map_err(LogError::from_io)?;
            file.sync_all().map_err(LogError::from_io)?;
            last_seq = last_seq.max(first.saturating_sub(1));
            if index + 1 < segments.len() {
                continue;
            }
            // The last segment may end in a record cut short by a crash.
            let (found, cut_at) = scan_segment(file).map_err(LogError::from_io)?;
            if let Some(seq) = found {
                last_seq = last_seq.max(seq);
            }
            if let Some((at, cut, problem)) = cut_at {
                report.bytes_truncated += cut;
                warn!(%problem, segment = %path.display(), offset = at, bytes_cut = cut,
                    "cutting off the damaged tail of the write-ahead log");
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(LogError::from_io)?;
                file.set_len(at).map_err(LogError::from_io)?;
                file.sync_all().map_err(LogError::from_io)?;
            }
        }
        let next_seq = last_seq + 1;
        let (file, segment_len) = match segments.last() {
            Some((_, path)) => {
                let mut file = OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map_err(LogError::from_io)?;
                file.sync_all().map_err(LogError::from_io)?;
                let len = file.seek(SeekFrom::End(0)).map_err(LogError::from_io)?;
                (file, len)
            }
            None => (
                Self::create_segment(dir, next_seq).map_err(LogError::from_io)?,
                0,
            ),
        };
        let wal = Arc::new(Wal {
            dir: dir.to_path_buf(),
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
            durability: Durability::new(last_seq),
        });
        let syncer = Arc::clone(&wal);
        std::thread::Builder::new()
            .name("wal-sync".into())
            .spawn(move || syncer.sync_loop())
            .map_err(LogError::Io)?;
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
    /// durable until the sync thread has fsynced it.
    fn append_record(
        &self,
        origin: &str,
        format: BodyFormat,
        received_at_ms: i64,
        body: &[u8],
    ) -> Result<u64, WalError> {
        if origin.len() > MAX_ORIGIN_BYTES {
            return Err(WalError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "origin of {} bytes, at most {MAX_ORIGIN_BYTES}",
                    origin.len()
                ),
            )));
        }
        let mut writer = self.lock();
        if writer.poisoned {
            return Err(WalError::Poisoned);
        }
        if writer.segment_len >= writer.segment_max_bytes {
            writer.roll()?;
        }
        let seq = writer.next_seq;
        let mut buffer = std::mem::take(&mut writer.encode_buffer);
        buffer.clear();
        record::encode_parts(seq, received_at_ms, origin, format, body, &mut buffer);
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

/// Reads a segment to its end: the last sequence number found, and where
/// the intact records stop when bytes follow them (offset, bytes after it,
/// what is wrong with them).
#[allow(clippy::type_complexity)]
fn scan_segment(file: File) -> std::io::Result<(Option<u64>, Option<(u64, u64, RecordError)>)> {
    let file_len = file.metadata()?.len();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut at = 0u64;
    let mut last = None;
    while at < file_len {
        match read_record(&mut reader, file_len - at)? {
            Ok((record, len)) => {
                at += len as u64;
                last = Some(record.seq);
            }
            Err(problem) => return Ok((last, Some((at, file_len - at, problem)))),
        }
    }
    Ok((last, None))
}

impl Log for Wal {
    fn append(
        &self,
        received_at_ms: i64,
        origin: &str,
        body: &[u8],
    ) -> Result<LogPosition, LogError> {
        Ok(LogPosition(self.append_record(
            origin,
            BodyFormat::Ingest,
            received_at_ms,
            body,
        )?))
    }

    fn last_appended(&self) -> LogPosition {
        LogPosition(self.lock().next_seq - 1)
    }

    fn wait_durable(&self, position: LogPosition) -> DurableFuture<'_> {
        Box::pin(self.durability.wait(position.get()))
    }

    fn wait_durable_blocking(&self, position: LogPosition) {
        self.durability.wait_blocking(position.get());
    }

    /// Reads segment by segment, one record at a time (never a whole
    /// segment). A damaged record inside an older segment (the last one's
    /// damaged tail was cut at open) is reported and the rest of that
    /// segment skipped.
    fn read_from(
        &self,
        from: LogPosition,
        each: &mut dyn FnMut(LogRecord),
    ) -> Result<ReadReport, LogError> {
        let through = self.last_appended();
        let segments = list_segments(&self.dir).map_err(LogError::from_io)?;
        let mut report = ReadReport::default();
        for (index, (first, path)) in segments.iter().enumerate() {
            let next_first = segments.get(index + 1).map(|(next, _)| *next);
            if next_first.is_some_and(|next| next <= from.get()) || *first > through.get() {
                continue;
            }
            let file = File::open(path).map_err(LogError::from_io)?;
            let file_len = file.metadata().map_err(LogError::from_io)?.len();
            let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
            let mut at = 0u64;
            while at < file_len {
                match read_record(&mut reader, file_len - at).map_err(LogError::from_io)? {
                    Ok((record, len)) => {
                        at += len as u64;
                        if record.seq > through.get() {
                            return Ok(report);
                        }
                        if record.seq >= from.get() {
                            report.records += 1;
                            each(LogRecord {
                                position: LogPosition(record.seq),
                                received_at_ms: record.received_at_ms,
                                origin: record.origin,
                                format: record.format,
                                body: record.body,
                            });
                        }
                    }
                    Err(problem) => {
                        let skipped = file_len - at;
                        report.bytes_skipped += skipped;
                        error!(%problem, segment = %path.display(), offset = at, bytes_skipped = skipped,
                            "damaged record inside the write-ahead log; skipping the rest of this segment");
                        break;
                    }
                }
            }
        }
        Ok(report)
    }

    fn release_through(&self, through: LogPosition) -> Result<usize, LogError> {
        remove_segments_through(&self.dir, through.get()).map_err(LogError::from_io)
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
mod tests;
