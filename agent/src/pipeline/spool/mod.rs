//! The disk spool: batches the server could not take, kept durably in the
//! state directory (`<state-dir>/spool/`) until they are delivered.
//!
//! The scheduler appends a batch once its sender gave up on it (every
//! server failed it a few times), and, while the spool holds anything,
//! every new batch too, so batches are delivered oldest first. An append
//! is `fdatasync`ed before it returns: only then does the batch count as
//! settled and may the checkpoint pass it. Replay threads ([`replay`])
//! take records oldest first, send them (retrying until the server takes
//! them) and report them done; a segment is deleted once every record in
//! it is done. The spool is bounded by `spool_max_bytes` on disk: when it
//! is full the scheduler stops reading (the log files are the buffer), so
//! it never holds more than the bound plus one batch.
//!
//! After a crash the spool is scanned again ([`segment::scan`]): intact
//! records are replayed, records that were done but not yet deleted are
//! sent again (the server drops them as duplicates), and damage is
//! reported precisely; see `segment.rs`, which also says how segments of
//! the previous format are read.

pub(crate) mod replay;
pub(crate) mod segment;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use segment::{Damage, RecordHeader, SegmentFormat, SEGMENT_EXTENSION, SEGMENT_MAGIC};

use super::batcher::Batch;

/// Name of the spool directory inside the state directory.
pub(crate) const SPOOL_DIR: &str = "spool";
/// Largest segment file, beyond one record.
const MAX_SEGMENT_BYTES: u64 = 16 << 20;
/// Smallest segment file, beyond one record.
const MIN_SEGMENT_BYTES: u64 = 64 << 10;

/// A record handed to a replay thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claim {
    segment: u64,
    index: usize,
    path: PathBuf,
    format: SegmentFormat,
    position: u64,
    len: u64,
}

#[derive(Debug)]
struct Record {
    position: u64,
    len: u64,
}

#[derive(Debug)]
struct Segment {
    number: u64,
    path: PathBuf,
    format: SegmentFormat,
    bytes: u64,
    records: Vec<Record>,
    /// Records before this index have been handed out.
    next_claim: usize,
    num_done: usize,
    /// No more appends: deleted once every record is done.
    sealed: bool,
}

impl Segment {
    fn finished(&self) -> bool {
        self.sealed && self.num_done == self.records.len()
    }
}

#[derive(Debug)]
struct Inner {
    segments: VecDeque<Segment>,
    /// The segment being appended to (always the last one).
    writer: Option<File>,
    next_segment: u64,
    bytes: u64,
    num_unsent: usize,
}

/// See the module docs. Shared by the scheduler and the replay threads.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    inner: Mutex<Inner>,
    wake: Condvar,
}

/// How much the spool holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SpoolStats {
    /// Bytes of the segment files.
    pub(crate) bytes: u64,
    /// Batches in them not yet delivered.
    pub(crate) num_unsent: usize,
}

impl Spool {
    /// Opens (creating if needed) the spool in `<state_dir>/spool`,
    /// reporting any damage a crash or the disk left behind.
    pub(crate) fn open(state_dir: &Path, max_bytes: u64) -> io::Result<Self> {
        let dir = state_dir.join(SPOOL_DIR);
        fs::create_dir_all(&dir)?;
        let mut found: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            match segment_number(&path) {
                Some(number) => found.push((number, path)),
                None if path.extension().is_some_and(|e| e == "corrupt") => {}
                None => {
                    tracing::warn!(path = %path.display(), "file in the spool directory is not a spool segment; ignored")
                }
            }
        }
        found.sort();
        let mut segments = VecDeque::new();
        let mut bytes = 0;
        let mut num_unsent = 0;
        for (number, path) in &found {
            let Some(segment) = recover(*number, path)? else {
                continue;
            };
            bytes += segment.bytes;
            num_unsent += segment.records.len();
            segments.push_back(segment);
        }
        if num_unsent > 0 {
            tracing::info!(num_batches = num_unsent, bytes, dir = %dir.display(), "spool holds batches from an earlier run; replaying them");
        }
        let next_segment = found.last().map_or(1, |(number, _)| number + 1);
        Ok(Self {
            segment_bytes: (max_bytes / 16).clamp(MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES),
            dir,
            max_bytes,
            inner: Mutex::new(Inner {
                segments,
                writer: None,
                next_segment,
                bytes,
                num_unsent,
            }),
            wake: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A replay thread that panicked cannot leave the index half-changed
        // in a way that loses data: at worst a record is sent again.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the spool holds anything: new batches then go behind it.
    pub(crate) fn is_active(&self) -> bool {
        !self.lock().segments.is_empty()
    }

    /// Whether another batch may be appended.
    pub(crate) fn has_room(&self) -> bool {
        self.lock().bytes < self.max_bytes
    }

    pub(crate) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    pub(crate) fn stats(&self) -> SpoolStats {
        let inner = self.lock();
        SpoolStats {
            bytes: inner.bytes,
            num_unsent: inner.num_unsent,
        }
    }

    /// Appends `batch` durably. When this returns `Ok` the batch is on disk
    /// and will be delivered, even after a crash.
    pub(crate) fn append(&self, batch: &Batch) -> io::Result<()> {
        let record = segment::encode_record(
            &RecordHeader {
                num_events: batch.num_events,
                streams: batch
                    .stream_ends
                    .iter()
                    .map(|(id, position)| (id.clone(), position.offset))
                    .collect(),
            },
            &batch.body,
        )?;
        let mut inner = self.lock();
        let was_empty = inner.segments.is_empty();
        let current_full = inner
            .segments
            .back()
            .is_none_or(|segment| segment.sealed || segment.bytes >= self.segment_bytes);
        if inner.writer.is_none() || current_full {
            self.seal_current(&mut inner);
            self.start_segment(&mut inner)?;
        }
        let appended = {
            let Inner {
                writer, segments, ..
            } = &mut *inner;
            match (writer.as_mut(), segments.back_mut()) {
                (Some(file), Some(segment)) => {
                    let position = segment.bytes;
                    match file.write_all(&record).and_then(|()| file.sync_data()) {
                        Ok(()) => {
                            segment.records.push(Record {
                                position,
                                len: record.len() as u64,
                            });
                            segment.bytes += record.len() as u64;
                            Ok(())
                        }
                        Err(error) => {
                            // Never append behind a record that may be half
                            // written.
                            let _ = file.set_len(position);
                            Err(error)
                        }
                    }
                }
                _ => Err(io::Error::other("spool has no open segment")),
            }
        };
        if let Err(error) = appended {
            self.seal_current(&mut inner);
            return Err(error);
        }
        inner.bytes += record.len() as u64;
        inner.num_unsent += 1;
        if was_empty {
            tracing::warn!(dir = %self.dir.display(), "server unreachable; spooling batches to disk");
        }
        drop(inner);
        self.wake.notify_one();
        Ok(())
    }

    fn start_segment(&self, inner: &mut Inner) -> io::Result<()> {
        let number = inner.next_segment;
        let path = self.dir.join(format!("{number:020}.{SEGMENT_EXTENSION}"));
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        file.write_all(SEGMENT_MAGIC)?;
        file.sync_all()?;
        File::open(&self.dir)?.sync_all()?;
        inner.next_segment += 1;
        inner.bytes += SEGMENT_MAGIC.len() as u64;
        inner.segments.push_back(Segment {
            number,
            path,
            format: SegmentFormat::V2,
            bytes: SEGMENT_MAGIC.len() as u64,
            records: Vec::new(),
            next_claim: 0,
            num_done: 0,
            sealed: false,
        });
        inner.writer = Some(file);
        Ok(())
    }

    /// Closes the segment being appended to; deletes it if it is done.
    fn seal_current(&self, inner: &mut Inner) {
        inner.writer = None;
        if let Some(segment) = inner.segments.back_mut() {
            segment.sealed = true;
        }
        self.delete_finished(inner);
    }

    fn delete_finished(&self, inner: &mut Inner) {
        while inner.segments.front().is_some_and(Segment::finished) {
            let Some(segment) = inner.segments.pop_front() else {
                break;
            };
            if let Err(error) = fs::remove_file(&segment.path) {
                // Sent again after a restart, and dropped by the server.
                tracing::error!(%error, path = %segment.path.display(), "cannot delete a delivered spool segment");
            }
            inner.bytes = inner.bytes.saturating_sub(segment.bytes);
        }
        if inner.segments.is_empty() {
            inner.bytes = 0;
        }
    }

    /// The oldest record not handed out yet, waiting up to `timeout` for
    /// one.
    pub(crate) fn claim(&self, timeout: Duration) -> Option<Claim> {
        let mut inner = self.lock();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            for segment in inner.segments.iter_mut() {
                if let Some(record) = segment.records.get(segment.next_claim) {
                    let claim = Claim {
                        segment: segment.number,
                        index: segment.next_claim,
                        path: segment.path.clone(),
                        format: segment.format,
                        position: record.position,
                        len: record.len,
                    };
                    segment.next_claim += 1;
                    return Some(claim);
                }
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            inner = self
                .wake
                .wait_timeout(inner, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Reads a claimed record: its header and body. An error means the
    /// record is unreadable (reported by the caller, then [`Spool::done`]).
    pub(crate) fn read(&self, claim: &Claim) -> Result<(RecordHeader, Vec<u8>), String> {
        let file = File::open(&claim.path).map_err(|error| error.to_string())?;
        let mut bytes = vec![0; claim.len as usize];
        file.read_exact_at(&mut bytes, claim.position)
            .map_err(|error| error.to_string())?;
        let (header, body, _) =
            segment::decode_record(claim.format, &bytes).map_err(|error| error.to_string())?;
        let body = bytes[body].to_vec();
        Ok((header, body))
    }

    /// The claimed record is delivered (or given up, and reported).
    pub(crate) fn done(&self, claim: &Claim) {
        let mut inner = self.lock();
        let Some(segment) = inner
            .segments
            .iter_mut()
            .find(|s| s.number == claim.segment)
        else {
            return;
        };
        debug_assert!(claim.index < segment.records.len());
        segment.num_done += 1;
        inner.num_unsent = inner.num_unsent.saturating_sub(1);
        let drained =
            inner.num_unsent == 0 && inner.segments.iter().all(|s| s.num_done == s.records.len());
        if drained {
            self.seal_current(&mut inner);
            tracing::info!("spool drained; sending batches directly again");
        } else {
            self.delete_finished(&mut inner);
        }
    }
}

/// The number in a segment file name, `00000000000000000042.seg`.
fn segment_number(path: &Path) -> Option<u64> {
    if path.extension()? != SEGMENT_EXTENSION {
        return None;
    }
    path.file_stem()?.to_str()?.parse().ok()
}

/// Reads a segment left by an earlier run. Damage is reported; a file that
/// is not a segment at all is renamed to `*.corrupt` and kept for the
/// operator; an empty segment is deleted.
fn recover(number: u64, path: &Path) -> io::Result<Option<Segment>> {
    let bytes = fs::read(path)?;
    let scan = segment::scan(&bytes);
    for damage in &scan.damage {
        match damage {
            Damage::NotASegment => {
                let aside = path.with_extension("corrupt");
                tracing::error!(path = %path.display(), kept_as = %aside.display(), "spool file is not a spool segment; nothing in it can be sent");
                fs::rename(path, &aside)?;
                return Ok(None);
            }
            Damage::TornTail { position, len } => {
                tracing::warn!(path = %path.display(), position, len, "spool segment ends with a torn record (a crash interrupted its write; it was never counted as spooled, so its lines are read again from the log file)");
            }
            Damage::Corrupt {
                position,
                len,
                error,
            } => {
                tracing::error!(path = %path.display(), position, len, %error, "spool segment holds a corrupt record; skipped, the intact records around it are sent");
            }
        }
    }
    let Some(format) = scan.format.filter(|_| !scan.records.is_empty()) else {
        fs::remove_file(path)?;
        return Ok(None);
    };
    let records = scan
        .records
        .iter()
        .map(|record| Record {
            position: record.position,
            len: record.len,
        })
        .collect();
    Ok(Some(Segment {
        number,
        path: path.to_path_buf(),
        format,
        bytes: bytes.len() as u64,
        records,
        next_claim: 0,
        num_done: 0,
        sealed: true,
    }))
}

/// What `loghound-agent status` shows: bytes of the segment files and the
/// intact batches in them (including any already delivered in a segment
/// that is not finished yet).
pub(crate) fn on_disk(state_dir: &Path) -> io::Result<SpoolStats> {
    let dir = state_dir.join(SPOOL_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(SpoolStats::default()),
        Err(error) => return Err(error),
    };
    let mut stats = SpoolStats::default();
    for entry in entries {
        let path = entry?.path();
        if segment_number(&path).is_none() {
            continue;
        }
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            // Deleted by the running agent meanwhile.
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        stats.bytes += bytes.len() as u64;
        stats.num_unsent += segment::scan(&bytes).records.len();
    }
    Ok(stats)
}
