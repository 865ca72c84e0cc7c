//! The scheduler: one thread that turns file-system events and periodic
//! rescans into reads, reads into batches, and acks into checkpoints.
//!
//! It waits on one `select!` over signals, settled batches and watcher
//! events, with a timeout at the next deadline (rescan, batch age,
//! checkpoint write), so an idle agent sleeps. Reading pauses while
//! `2 × max_in_flight` batches are unsettled: the files are the buffer.
//!
//! Descriptors are bounded by `max_open_files`: when a file must be opened
//! and none is free, the longest idle drained files are closed
//! (`open_files.rs`); a closed file is opened again when a rescan or a
//! change event shows it changed. When no file can be closed (all have
//! unread bytes, or are deleted or rotated away and not drained yet), new
//! files wait for a descriptor until one drains.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use crossbeam_channel::{select, Receiver, Sender};
use loghound_shared::Event;
use notify::event::{AccessKind, AccessMode, EventKind};

use crate::batcher::Batcher;
use crate::checkpointer::Checkpointer;
use crate::config::Settings;
use crate::copies::{self, EndedStream, MAX_ENDED_STREAMS};
use crate::discovery::{PathsProvider, Tags};
use crate::file_watcher::{FileWatcher, ReadStatus};
use crate::fingerprint::{self, DevInode};
use crate::lines::RawLine;
use crate::metrics::{ErrorNote, FileLag, Metrics};
use crate::open_files::{self, RESERVED_DESCRIPTORS};
use crate::shipper::{Outcome, Settled};
use crate::watch::FsWatch;

/// Bytes read from one file before the others get their turn.
const READ_BUDGET_BYTES: usize = 256 << 10;
/// Checkpoints are written at most this often while acks arrive.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);
/// How long an apparent copy of a live file waits for that file's
/// truncation (copytruncate) before it is read as a file of its own.
const COPY_GRACE: Duration = Duration::from_secs(5);
/// Rescans a file must be missing from the globs before it is released.
const RELEASE_AFTER_MISSING_RESCANS: u32 = 2;

/// Channels the scheduler listens to and sends on.
pub(crate) struct Channels {
    pub(crate) batches: Sender<crate::batcher::Batch>,
    pub(crate) settled: Receiver<Settled>,
    pub(crate) signals: Receiver<i32>,
}

/// See the module docs.
pub(crate) struct FileServer {
    settings: Settings,
    host: String,
    provider: PathsProvider,
    checkpointer: Checkpointer,
    watchers: HashMap<DevInode, FileWatcher>,
    by_path: HashMap<PathBuf, DevInode>,
    ready: HashSet<DevInode>,
    batcher: Batcher,
    num_unsettled: usize,
    channels: Channels,
    fs_watch: FsWatch,
    next_rescan: Instant,
    open_failures: HashSet<PathBuf>,
    lines: Vec<RawLine>,
    /// Streams that ended recently, newest last: a copy may continue one.
    ended: VecDeque<EndedStream>,
    /// Apparent copies of live files and when each was first seen: not read
    /// for [`COPY_GRACE`], waiting for the original's truncation.
    shadowed: HashMap<PathBuf, Instant>,
    metrics: Arc<Metrics>,
    /// Descriptors followed files may hold (`max_open_files` less the
    /// reserve for identifying new files).
    max_watchers_open: usize,
    /// Watchers holding a descriptor.
    num_open: usize,
    /// New files waiting for a descriptor.
    waiting: HashMap<PathBuf, Tags>,
    /// Closed files with bytes to read, waiting for a descriptor.
    waiting_reopen: HashSet<DevInode>,
    /// No file could be closed since the last drain, release or rescan:
    /// don't look for one again until then.
    room_exhausted: bool,
    /// The last error met on each path, for `status`.
    file_errors: BTreeMap<PathBuf, ErrorNote>,
    /// [`Metrics::error_generation`] when `status.json` was last written.
    errors_written: u64,
}

/// What a file without a checkpoint of its own turned out to be.
enum Origin {
    New,
    CopyOfLive,
    Continues(EndedStream),
}

impl FileServer {
    pub(crate) fn new(
        settings: Settings,
        host: String,
        checkpointer: Checkpointer,
        channels: Channels,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let provider =
            PathsProvider::new(&settings.inputs, &settings.exclude).map_err(anyhow::Error::msg)?;
        let batcher = Batcher::new(
            settings.batch_max_bytes,
            Duration::from_millis(settings.batch_max_age_ms),
            settings.zstd_level,
        );
        let max_watchers_open = settings
            .max_open_files
            .saturating_sub(RESERVED_DESCRIPTORS)
            .max(1);
        Ok(Self {
            settings,
            host,
            provider,
            checkpointer,
            watchers: HashMap::new(),
            by_path: HashMap::new(),
            ready: HashSet::new(),
            batcher,
            num_unsettled: 0,
            channels,
            fs_watch: FsWatch::new(),
            next_rescan: Instant::now(),
            open_failures: HashSet::new(),
            lines: Vec::new(),
            ended: VecDeque::new(),
            shadowed: HashMap::new(),
            metrics,
            max_watchers_open,
            num_open: 0,
            waiting: HashMap::new(),
            waiting_reopen: HashSet::new(),
            room_exhausted: false,
            file_errors: BTreeMap::new(),
            errors_written: 0,
        })
    }

    fn backpressured(&self) -> bool {
        self.num_unsettled >= 2 * self.settings.max_in_flight
    }

    /// Runs until SIGTERM/SIGINT, then drains and writes checkpoints.
    pub(crate) fn run(mut self) -> anyhow::Result<()> {
        loop {
            let now = Instant::now();
            if now >= self.next_rescan {
                self.rescan()?;
            }
            self.read_ready()?;
            if self.ready.is_empty() {
                self.admit_waiting();
            }
            if let Some(batch) = self.batcher.poll(Instant::now())? {
                self.submit(batch)?;
            }
            if self
                .checkpointer
                .write_due(CHECKPOINT_INTERVAL)
                .is_some_and(|due| due <= Instant::now())
            {
                self.persist();
            }
            let timeout = self.next_wakeup().saturating_duration_since(Instant::now());
            let events = self.fs_watch.events().clone();
            select! {
                recv(self.channels.signals) -> signal => {
                    tracing::info!(signal = signal.unwrap_or_default(), "shutting down");
                    break;
                }
                recv(self.channels.settled) -> settled => match settled {
                    Ok(settled) => self.on_settled(settled),
                    Err(_) => anyhow::bail!("every sender thread has stopped"),
                },
                recv(events) -> event => {
                    if let Ok(event) = event {
                        self.on_fs_event(event);
                    }
                }
                default(timeout) => {}
            }
            while let Ok(settled) = self.channels.settled.try_recv() {
                self.on_settled(settled);
            }
            while let Ok(event) = events.try_recv() {
                self.on_fs_event(event);
            }
        }
        self.shutdown()
    }

    fn next_wakeup(&self) -> Instant {
        let now = Instant::now();
        if !self.ready.is_empty() && !self.backpressured() {
            return now;
        }
        [
            Some(self.next_rescan),
            self.batcher.deadline(),
            self.checkpointer.write_due(CHECKPOINT_INTERVAL),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(self.next_rescan)
    }

    /// Re-globs, re-stats every known file and releases vanished ones.
    fn rescan(&mut self) -> anyhow::Result<()> {
        self.room_exhausted = false;
        self.fs_watch.watch_roots(&self.provider.roots());
        let mut seen = HashSet::new();
        let mut by_path = HashMap::new();
        for found in self.provider.discover() {
            if let Some(location) = self.follow(&found.path, found.tags) {
                seen.insert(location);
                by_path.insert(found.path, location);
            }
        }
        self.by_path = by_path;
        let mut released = Vec::new();
        let mut errors = Vec::new();
        for (location, watcher) in &mut self.watchers {
            if seen.contains(location) {
                watcher.missing_rescans = 0;
            } else {
                watcher.missing_rescans += 1;
            }
            match watcher.check_truncated() {
                Ok(Some(old)) => {
                    self.checkpointer.retire(&old.identity.file_id);
                    remember_ended(&mut self.ended, old);
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, path = %watcher.path().display(), "cannot check file");
                    errors.push((
                        watcher.path().to_path_buf(),
                        format!("cannot check: {error}"),
                    ));
                }
            }
            let gone = watcher.missing_rescans >= RELEASE_AFTER_MISSING_RESCANS;
            if gone && !self.ready.contains(location) && watcher.at_end().unwrap_or(true) {
                released.push(*location);
            }
        }
        for (path, message) in errors {
            self.note_file_error(&path, message);
        }
        let any_released = !released.is_empty();
        for location in released {
            self.release(location)?;
        }
        // Closed files were marked ready by `follow` if they changed.
        self.ready.extend(
            self.watchers
                .iter()
                .filter(|(_, watcher)| watcher.is_open())
                .map(|(location, _)| *location),
        );
        debug_assert_eq!(
            self.num_open,
            self.watchers.values().filter(|w| w.is_open()).count()
        );
        self.publish_files();
        self.write_status_if_new_errors();
        self.next_rescan = Instant::now() + Duration::from_millis(self.settings.rescan_interval_ms);
        if any_released && !self.shadowed.is_empty() {
            // A shadowed copy may continue a released file.
            self.next_rescan = Instant::now();
        }
        Ok(())
    }

    /// Stops following a drained file that no glob finds any more: its
    /// partial last line is shipped as it is, its descriptor closed.
    fn release(&mut self, location: DevInode) -> anyhow::Result<()> {
        if let Some(watcher) = self.watchers.get_mut(&location) {
            self.lines.clear();
            if watcher.flush_partial(&mut self.lines) {
                self.emit(location)?;
            }
        }
        let Some(watcher) = self.watchers.remove(&location) else {
            return Ok(());
        };
        if watcher.is_open() {
            self.num_open -= 1;
        }
        self.room_exhausted = false;
        if let Some(ended) = watcher.ended() {
            remember_ended(&mut self.ended, ended);
        }
        let deleted = watcher.is_deleted().unwrap_or(true);
        if let Some(identity) = watcher.identity() {
            if deleted {
                self.checkpointer.retire(&identity.file_id);
            }
        }
        tracing::info!(path = %watcher.path().display(), deleted, "released file");
        Ok(())
    }

    /// Makes sure the file at `path` is followed; returns its location.
    fn follow(&mut self, path: &Path, tags: Tags) -> Option<DevInode> {
        let metadata = std::fs::metadata(path).ok()?;
        let location = DevInode::of(&metadata);
        if let Some(watcher) = self.watchers.get_mut(&location) {
            if watcher.changed_since_close(&metadata) {
                self.ready.insert(location);
            }
            if watcher.path() != path {
                tracing::info!(from = %watcher.path().display(), to = %path.display(), "file renamed");
                watcher.set_path(path, tags);
                if let Some(identity) = watcher.identity() {
                    self.checkpointer.set_path(&identity.file_id, path);
                }
            }
            return Some(location);
        }
        if !self.make_room(1) {
            self.waiting.insert(path.to_path_buf(), tags);
            return None;
        }
        let opened = match self.origin(path, location) {
            Ok(Some((file, Origin::Continues(ended)))) => {
                let watcher = FileWatcher::continuing(
                    path,
                    file,
                    location,
                    &ended,
                    tags,
                    self.settings.max_line_bytes,
                );
                if let Some(identity) = watcher.identity() {
                    tracing::info!(path = %path.display(), file_id = %identity.file_id, offset = %watcher.position(), "file is a copy of a stream that ended; carrying it on");
                    self.checkpointer.adopt(identity, path, watcher.position());
                }
                self.shadowed.remove(path);
                let location = watcher.location();
                self.watchers.insert(location, watcher);
                self.num_open += 1;
                self.ready.insert(location);
                return Some(location);
            }
            Ok(Some((_, Origin::CopyOfLive)))
                if self
                    .shadowed
                    .get(path)
                    .is_none_or(|seen| seen.elapsed() < COPY_GRACE) =>
            {
                if let Entry::Vacant(slot) = self.shadowed.entry(path.to_path_buf()) {
                    slot.insert(Instant::now());
                    tracing::info!(path = %path.display(), "file looks like a copy of a followed file; waiting for that one's truncation");
                }
                return None;
            }
            Ok(Some((file, _))) => {
                // A file that still looks like a copy after the grace period
                // is read as a file of its own: two files may simply hold
                // the same lines, and reading twice beats never reading.
                self.shadowed.remove(path);
                FileWatcher::open_file(
                    path,
                    file,
                    tags,
                    self.settings.max_line_bytes,
                    &self.checkpointer,
                )
            }
            Ok(None) => Ok(None),
            Err(error) => Err(error),
        };
        match opened {
            Ok(Some(watcher)) => {
                self.open_failures.remove(path);
                if let Some(identity) = watcher.identity() {
                    self.checkpointer.track(identity, path, watcher.position());
                    tracing::info!(path = %path.display(), file_id = %identity.file_id, offset = %watcher.position(), "following file");
                }
                let location = watcher.location();
                self.watchers.insert(location, watcher);
                self.num_open += 1;
                self.ready.insert(location);
                Some(location)
            }
            Ok(None) => None,
            Err(error) => {
                if self.open_failures.insert(path.to_path_buf()) {
                    tracing::warn!(%error, path = %path.display(), "cannot open file");
                    self.note_file_error(path, format!("cannot open: {error}"));
                }
                None
            }
        }
    }

    /// Whether the file at `path` (not followed yet) is new, or a copy of a
    /// stream we follow or followed; see `copies.rs`. `None` while it has
    /// no first line, and for files with a checkpoint of their own.
    fn origin(
        &mut self,
        path: &Path,
        location: DevInode,
    ) -> std::io::Result<Option<(std::fs::File, Origin)>> {
        let file = std::fs::File::open(path)?;
        let Some(print) = fingerprint::fingerprint(&file)? else {
            return Ok(None);
        };
        if self.checkpointer.lookup(location, &print.0).acked.is_some() {
            return Ok(Some((file, Origin::New)));
        }
        let size = file.metadata()?.len();
        let same_start: Vec<DevInode> = self
            .watchers
            .iter()
            .filter(|(other, w)| {
                **other != location && w.identity().is_some_and(|i| i.fingerprint == print)
            })
            .map(|(other, _)| *other)
            .collect();
        for other in same_start {
            if !self.ensure_open(other) {
                continue;
            }
            let watcher = self.watchers.get_mut(&other).expect("listed above");
            // A copytruncate whose truncation we have not seen yet: end the
            // original's stream now, so the copy can continue it.
            if let Some(old) = watcher.check_truncated()? {
                watcher.raise_generation(self.checkpointer.next_generation(other));
                self.ready.insert(other);
                remember_ended(&mut self.ended, old);
                continue;
            }
            if copies::is_copy_of_live(&file, size, watcher.file()?)? {
                return Ok(Some((file, Origin::CopyOfLive)));
            }
        }
        for index in (0..self.ended.len()).rev() {
            let ended = &self.ended[index];
            if ended.identity.fingerprint == print && copies::continues(&file, size, ended)? {
                let ended = self.ended.remove(index).expect("index in range");
                return Ok(Some((file, Origin::Continues(ended))));
            }
        }
        Ok(Some((file, Origin::New)))
    }

    fn on_fs_event(&mut self, event: notify::Result<notify::Event>) {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::debug!(%error, "file watcher error; rescanning");
                self.next_rescan = Instant::now();
                return;
            }
        };
        if event.need_rescan() {
            self.next_rescan = Instant::now();
        }
        // Opening and reading a file (ours included) changes nothing.
        if let EventKind::Access(kind) = event.kind {
            if kind != AccessKind::Close(AccessMode::Write) {
                return;
            }
        }
        for path in &event.paths {
            let known = self.by_path.get(path).copied();
            let metadata = std::fs::metadata(path).ok();
            let current = metadata.as_ref().map(DevInode::of);
            match (known, current, &metadata) {
                (Some(known), Some(current), Some(metadata)) if known == current => {
                    if self
                        .watchers
                        .get(&known)
                        .is_some_and(|w| w.is_open() || w.changed_since_close(metadata))
                    {
                        self.ready.insert(known);
                    }
                }
                (known, current, metadata) => {
                    // Gone, replaced or new: read what is left of the old
                    // file and pick up the new one.
                    if let Some(known) = known {
                        if self.watchers.get(&known).is_some_and(FileWatcher::is_open) {
                            self.ready.insert(known);
                        }
                    }
                    if let (Some(current), Some(metadata)) = (current, metadata) {
                        self.closed_file_renamed(current, path, metadata);
                    }
                    if let Some(tags) = self.provider.matches(path) {
                        if let Some(location) = self.follow(path, tags) {
                            self.by_path.insert(path.clone(), location);
                        }
                    }
                }
            }
        }
    }

    fn read_ready(&mut self) -> anyhow::Result<()> {
        // Open files first: read to their end, they can make room for the
        // closed ones that changed.
        let mut keys: Vec<DevInode> = self.ready.iter().copied().collect();
        keys.sort_by_key(|location| {
            !self
                .watchers
                .get(location)
                .is_some_and(FileWatcher::is_open)
        });
        for location in keys {
            if self.backpressured() {
                return Ok(());
            }
            // Closed meanwhile to make room for another.
            if !self.ready.contains(&location) {
                continue;
            }
            match self.watchers.get(&location).map(FileWatcher::is_open) {
                None => {
                    self.ready.remove(&location);
                    continue;
                }
                Some(false) if !self.ensure_open(location) => continue,
                Some(_) => {}
            }
            let Some(watcher) = self.watchers.get_mut(&location) else {
                continue;
            };
            self.lines.clear();
            match watcher.read(READ_BUDGET_BYTES, &mut self.lines) {
                Ok(ReadStatus::Lines { more }) => {
                    if !more {
                        self.ready.remove(&location);
                        self.room_exhausted = false;
                    }
                    self.emit(location)?;
                }
                Ok(ReadStatus::Truncated { old }) => {
                    // The old generation's checkpoint stays until the new one
                    // is tracked: it keeps the generation from being reused.
                    watcher.raise_generation(self.checkpointer.next_generation(location));
                    if let Some(old) = old {
                        remember_ended(&mut self.ended, old);
                        if !self.shadowed.is_empty() {
                            self.next_rescan = Instant::now();
                        }
                    }
                }
                Ok(ReadStatus::Identified) => {
                    if let Some(identity) = watcher.identity() {
                        self.checkpointer
                            .track(identity, watcher.path(), watcher.position());
                    }
                }
                Ok(ReadStatus::Waiting) => {
                    self.ready.remove(&location);
                }
                Err(error) => {
                    tracing::warn!(%error, path = %watcher.path().display(), "cannot read file");
                    let path = watcher.path().to_path_buf();
                    self.ready.remove(&location);
                    self.note_file_error(&path, format!("cannot read: {error}"));
                }
            }
        }
        Ok(())
    }

    /// Turns the lines just read from the file at `location` into events.
    fn emit(&mut self, location: DevInode) -> anyhow::Result<()> {
        let Some(watcher) = self.watchers.get(&location) else {
            return Ok(());
        };
        let Some(identity) = watcher.identity() else {
            return Ok(());
        };
        let (file_id, source, tags) = (
            identity.file_id.clone(),
            watcher.path().display().to_string(),
            watcher.tags().clone(),
        );
        let read_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .ok();
        let now = Instant::now();
        let lines = std::mem::take(&mut self.lines);
        let bytes: u64 = lines.iter().map(|l| l.end_offset.0 - l.offset.0).sum();
        self.metrics
            .lines_read
            .fetch_add(lines.len() as u64, Ordering::Relaxed);
        self.metrics.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        for raw in lines {
            let (offset, end_offset, truncated) = (raw.offset, raw.end_offset, raw.truncated);
            let text = raw.into_text();
            let event = Event {
                file_id: file_id.clone(),
                offset,
                end_offset,
                host: self.host.clone(),
                source: source.clone(),
                message: text.message,
                read_at_ms,
                tags: tags.tags.clone(),
                truncated,
                invalid_utf8: text.invalid_utf8,
                format: tags.format.clone(),
            };
            if let Some(batch) = self
                .batcher
                .push(event, now)
                .context("cannot encode a batch")?
            {
                self.submit(batch)?;
            }
        }
        Ok(())
    }

    fn submit(&mut self, batch: crate::batcher::Batch) -> anyhow::Result<()> {
        for (file_id, end_offset) in &batch.file_ends {
            self.checkpointer
                .on_batch_built(batch.seq, file_id, *end_offset);
        }
        tracing::debug!(
            seq = batch.seq.0,
            num_events = batch.num_events,
            compressed_bytes = batch.body.len(),
            "batch built"
        );
        self.num_unsettled += 1;
        let metrics = &self.metrics;
        metrics
            .lines_shipped
            .fetch_add(batch.num_events as u64, Ordering::Relaxed);
        metrics.batches_shipped.fetch_add(1, Ordering::Relaxed);
        metrics
            .bytes_shipped
            .fetch_add(batch.body.len() as u64, Ordering::Relaxed);
        metrics
            .batches_in_flight
            .store(self.num_unsettled as u64, Ordering::Relaxed);
        self.channels
            .batches
            .send(batch)
            .map_err(|_| anyhow::anyhow!("every sender thread has stopped"))
    }

    fn on_settled(&mut self, settled: Settled) {
        self.num_unsettled = self.num_unsettled.saturating_sub(1);
        self.metrics
            .batches_in_flight
            .store(self.num_unsettled as u64, Ordering::Relaxed);
        if let Outcome::Acked(answer) = &settled.outcome {
            self.metrics
                .lines_acked
                .fetch_add(answer.accepted + answer.duplicates, Ordering::Relaxed);
            self.metrics.batches_acked.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                seq = settled.seq.0,
                accepted = answer.accepted,
                duplicates = answer.duplicates,
                "batch acked"
            );
        }
        self.checkpointer
            .on_batch_acked(settled.seq, &settled.file_ids);
    }

    fn persist(&mut self) {
        if let Err(error) = self.checkpointer.persist() {
            tracing::error!(%error, "checkpoint write failed");
            self.metrics
                .note_error(format!("checkpoint write failed: {error}"));
        }
        self.publish_files();
        self.write_status_if_new_errors();
    }

    /// Makes room for `needed` more open descriptors under
    /// `max_open_files`, closing the longest idle drained files (a batch of
    /// them, so the search is not repeated for every file); false if not
    /// enough could be closed.
    fn make_room(&mut self, needed: usize) -> bool {
        if self.num_open + needed <= self.max_watchers_open {
            return true;
        }
        if self.room_exhausted {
            return false;
        }
        let excess = self.num_open + needed - self.max_watchers_open;
        let batch = excess.max(self.max_watchers_open / 8);
        for location in open_files::idle_to_close(&self.watchers, batch) {
            // A file written to since it was picked stays open.
            if self
                .watchers
                .get_mut(&location)
                .is_some_and(FileWatcher::close)
            {
                self.num_open -= 1;
                self.ready.remove(&location);
            }
        }
        if self.num_open + needed <= self.max_watchers_open {
            return true;
        }
        self.room_exhausted = true;
        false
    }

    /// Opens the watcher at `location` again if it was closed; false if
    /// it cannot be read now (no descriptor free: it waits; or its path
    /// names another file now).
    fn ensure_open(&mut self, location: DevInode) -> bool {
        match self.watchers.get(&location) {
            None => return false,
            Some(watcher) if watcher.is_open() => return true,
            Some(_) => {}
        }
        if !self.make_room(1) {
            self.ready.remove(&location);
            self.waiting_reopen.insert(location);
            return false;
        }
        let watcher = self.watchers.get_mut(&location).expect("present above");
        match watcher.reopen() {
            Ok(true) => {
                self.num_open += 1;
                match watcher.check_truncated() {
                    Ok(Some(old)) => {
                        self.checkpointer.retire(&old.identity.file_id);
                        remember_ended(&mut self.ended, old);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(%error, path = %watcher.path().display(), "cannot check file")
                    }
                }
                true
            }
            Ok(false) => {
                tracing::info!(path = %watcher.path().display(), "a closed file is no longer at its path; what was appended to it since it was closed cannot be read");
                self.ready.remove(&location);
                false
            }
            Err(error) => {
                tracing::warn!(%error, path = %watcher.path().display(), "cannot open file again");
                let path = watcher.path().to_path_buf();
                self.ready.remove(&location);
                self.note_file_error(&path, format!("cannot open again: {error}"));
                false
            }
        }
    }

    /// A change event found the closed file at `location` under `path`
    /// (renamed, maybe out of the globs): follow it there, so what is
    /// appended to it before it is released is still read.
    fn closed_file_renamed(
        &mut self,
        location: DevInode,
        path: &Path,
        metadata: &std::fs::Metadata,
    ) {
        let Some(watcher) = self.watchers.get_mut(&location) else {
            return;
        };
        if watcher.is_open() || watcher.path() == path {
            return;
        }
        tracing::info!(from = %watcher.path().display(), to = %path.display(), "closed file renamed");
        let tags = watcher.tags().clone();
        watcher.set_path(path, tags);
        if let Some(identity) = watcher.identity() {
            self.checkpointer.set_path(&identity.file_id, path);
        }
        if watcher.changed_since_close(metadata) {
            self.ready.insert(location);
        }
    }

    /// Gives files waiting for a descriptor their turn, when reading has
    /// nothing else to do.
    fn admit_waiting(&mut self) {
        if self.room_exhausted || (self.waiting.is_empty() && self.waiting_reopen.is_empty()) {
            return;
        }
        for location in std::mem::take(&mut self.waiting_reopen) {
            if self.watchers.contains_key(&location) {
                self.ready.insert(location);
            }
        }
        for (path, tags) in std::mem::take(&mut self.waiting) {
            if let Some(location) = self.follow(&path, tags) {
                self.by_path.insert(path, location);
            }
        }
    }

    /// Records an error met on `path`, for `status` and `/metrics`.
    fn note_file_error(&mut self, path: &Path, message: String) {
        self.metrics
            .note_error(format!("{}: {message}", path.display()));
        self.file_errors
            .insert(path.to_path_buf(), ErrorNote::now(message));
    }

    /// Publishes the followed files and their acked offsets to `/metrics`.
    fn publish_files(&mut self) {
        let files = self
            .watchers
            .values()
            .filter_map(|watcher| {
                let identity = watcher.identity()?;
                Some(FileLag {
                    path: watcher.path().to_path_buf(),
                    dev: identity.location.dev,
                    inode: identity.location.inode,
                    acked: self
                        .checkpointer
                        .acked_offset(&identity.file_id)
                        .map_or(0, |offset| offset.0),
                })
            })
            .collect();
        self.metrics.set_files(files);
        self.metrics
            .files_open
            .store(self.num_open as u64, Ordering::Relaxed);
        let num_waiting = (self.waiting.len() + self.waiting_reopen.len()) as u64;
        let before = self
            .metrics
            .files_waiting
            .swap(num_waiting, Ordering::Relaxed);
        if before == 0 && num_waiting > 0 {
            tracing::warn!(
                max_open_files = self.settings.max_open_files,
                num_waiting,
                "max_open_files reached and no file can be closed yet; files wait for a descriptor until others are read to their end"
            );
        }
    }

    /// Writes `status.json` when an error was met since the last write.
    fn write_status_if_new_errors(&mut self) {
        let generation = self.metrics.error_generation.load(Ordering::Relaxed);
        if generation == self.errors_written {
            return;
        }
        match crate::status_file::store(
            &self.settings.state_dir,
            self.metrics.last_error(),
            self.file_errors.clone(),
        ) {
            Ok(()) => self.errors_written = generation,
            Err(error) => tracing::warn!(%error, "cannot write the status file"),
        }
    }

    /// Sends what is buffered, waits for in-flight batches up to the
    /// shutdown timeout, writes the checkpoints.
    fn shutdown(mut self) -> anyhow::Result<()> {
        if !self.batcher.is_empty() {
            let batch = self.batcher.flush()?;
            self.submit(batch)?;
        }
        let deadline = Instant::now() + Duration::from_millis(self.settings.shutdown_timeout_ms);
        while self.num_unsettled > 0 {
            let timeout = deadline.saturating_duration_since(Instant::now());
            select! {
                recv(self.channels.settled) -> settled => match settled {
                    Ok(settled) => self.on_settled(settled),
                    Err(_) => break,
                },
                recv(self.channels.signals) -> _ => break,
                default(timeout) => break,
            }
        }
        if self.num_unsettled > 0 {
            tracing::warn!(
                num_unsettled = self.num_unsettled,
                "shutdown timeout; unacked lines will be sent again after restart"
            );
        }
        self.checkpointer
            .persist()
            .context("cannot write checkpoints")?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Remembers a stream that ended, forgetting the oldest beyond the bound.
fn remember_ended(ended: &mut VecDeque<EndedStream>, stream: EndedStream) {
    if ended.len() >= MAX_ENDED_STREAMS {
        ended.pop_front();
    }
    ended.push_back(stream);
}
