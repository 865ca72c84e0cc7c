//! The scheduler: one thread that turns file-system events and periodic
//! rescans into reads, reads into batches, and acks into checkpoints.
//!
//! It waits on one `select!` over signals, settled batches and watcher
//! events, with a timeout at the next deadline (rescan, batch age,
//! checkpoint write), so an idle agent sleeps. Reading pauses while
//! `2 × max_in_flight` batches are unsettled, or the disk spool is full:
//! the files are the buffer. A batch counts as settled once it is acked
//! or durably spooled; while the spool holds anything, new batches are
//! spooled behind it, so delivery stays oldest first.
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
use loghound_shared::{Event, FileId};
use notify::event::{AccessKind, AccessMode, EventKind};

use crate::batcher::Batcher;
use crate::checkpoint_file::CheckpointRecord;
use crate::checkpointer::Checkpointer;
use crate::config::Settings;
use crate::copies::{self, EndedStream, MAX_ENDED_STREAMS};
use crate::discovery::{PathsProvider, Tags};
use crate::file_watcher::{FileWatcher, ReadStatus};
use crate::fingerprint::{self, DevInode};
use crate::lines::RawLine;
use crate::metrics::{ErrorNote, FileLag, Metrics};
use crate::multiline::{Joined, Joiner, SPLIT_TAG};
use crate::open_files::{self, RESERVED_DESCRIPTORS};
use crate::shipper::{Outcome, Settled};
use crate::spool::Spool;
use crate::watch::FsWatch;

/// Bytes read from one file before the others get their turn.
const READ_BUDGET_BYTES: usize = 256 << 10;
/// Checkpoints are written at most this often while acks arrive.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);
/// File-system events handled per turn of the loop before reading again,
/// so a burst of events cannot keep the files from being read.
const MAX_FS_EVENTS_PER_TURN: usize = 1024;
/// How long an apparent copy of a live file waits for that file's
/// truncation (copytruncate) before it is read as a file of its own.
const COPY_GRACE: Duration = Duration::from_secs(5);
/// Rescans a file must be missing from the globs before it is released.
const RELEASE_AFTER_MISSING_RESCANS: u32 = 2;
/// While reading waits for room in the spool, how often room is looked for.
const SPOOL_ROOM_POLL: Duration = Duration::from_millis(100);

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
    /// The disk spool, unless `spool_max_bytes` is 0.
    spool: Option<Arc<Spool>>,
    /// Whether reading is paused because the spool is full (logged once
    /// per episode).
    spool_full: bool,
    /// Streams with an open multi-line group, by stream: a group outlives
    /// its watcher's identity (truncation) and is flushed by its timeout.
    joiners: HashMap<FileId, OpenGroup>,
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

/// A stream's joiner and what its events are labelled with.
struct OpenGroup {
    joiner: Joiner,
    source: String,
    tags: Tags,
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
        spool: Option<Arc<Spool>>,
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
            spool,
            spool_full: false,
            joiners: HashMap::new(),
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
        self.num_unsettled >= 2 * self.settings.max_in_flight || self.spool_full
    }

    /// Pauses reading while the spool is full, and says so once.
    fn check_spool_room(&mut self) {
        let Some(spool) = &self.spool else {
            return;
        };
        let full = !spool.has_room();
        if full && !self.spool_full {
            let stats = spool.stats();
            tracing::warn!(
                spool_bytes = stats.bytes,
                spool_max_bytes = spool.max_bytes(),
                num_batches = stats.num_unsent,
                "spool is full; reading paused until the server takes spooled batches (the log files hold the rest)"
            );
        } else if !full && self.spool_full {
            tracing::info!("spool has room again; reading resumes");
        }
        self.spool_full = full;
    }

    /// Appends `batch` to the spool if the spool is on and has room;
    /// returns whether it is now durably spooled.
    fn spool_batch(&mut self, batch: &crate::batcher::Batch) -> bool {
        let Some(spool) = &self.spool else {
            return false;
        };
        if !spool.has_room() {
            return false;
        }
        match spool.append(batch) {
            Ok(()) => {
                let file_ids: Vec<_> = batch.file_ends.iter().map(|(id, _)| id.clone()).collect();
                self.checkpointer.on_batch_acked(batch.seq, &file_ids);
                true
            }
            Err(error) => {
                tracing::error!(%error, seq = batch.seq.0, "cannot write a batch to the spool; keeping it in memory and retrying");
                false
            }
        }
    }

    /// Runs until SIGTERM/SIGINT, then drains and writes checkpoints.
    pub(crate) fn run(mut self) -> anyhow::Result<()> {
        self.rescan()?;
        self.find_renamed_away();
        loop {
            self.check_spool_room();
            let now = Instant::now();
            if now >= self.next_rescan {
                self.rescan()?;
            }
            self.read_ready()?;
            self.flush_groups(None)?;
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
            for event in events.try_iter().take(MAX_FS_EVENTS_PER_TURN) {
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
            self.spool_full.then(|| now + SPOOL_ROOM_POLL),
            Some(self.next_rescan),
            self.batcher.deadline(),
            self.checkpointer.write_due(CHECKPOINT_INTERVAL),
            self.joiners
                .values()
                .filter_map(|open| open.joiner.deadline())
                .min(),
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

    /// At start: a file with a checkpoint that no glob finds any more may
    /// have been renamed out of the globs while the agent was stopped
    /// (logrotate's `app.log` → `app.log.1` under a `*.log` glob) with
    /// lines the server has not acked. Each such file is looked for by its
    /// inode (and first line) in the directory it was last seen in, and one
    /// found with unacked bytes is followed: read to its end and released,
    /// like any file that left the globs while followed.
    fn find_renamed_away(&mut self) {
        let mut wanted: HashMap<PathBuf, Vec<CheckpointRecord>> = HashMap::new();
        for record in self.checkpointer.records() {
            let followed = self
                .watchers
                .keys()
                .any(|location| location.same_file(record.dev, record.inode, record.birth_ns));
            if let (false, Some(dir)) = (followed, record.path.parent()) {
                wanted
                    .entry(dir.to_path_buf())
                    .or_default()
                    .push(record.clone());
            }
        }
        for (dir, records) in wanted {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(metadata) = entry.metadata() else {
                    continue;
                };
                if !metadata.is_file() {
                    continue;
                }
                let location = DevInode::of(&metadata);
                let Some(record) = records
                    .iter()
                    .find(|r| location.same_file(r.dev, r.inode, r.birth_ns))
                else {
                    continue;
                };
                let path = entry.path();
                let same_stream = std::fs::File::open(&path)
                    .and_then(|file| fingerprint::fingerprint(&file))
                    .is_ok_and(|print| print.is_some_and(|p| p.0 == record.fingerprint));
                if !same_stream || metadata.len() <= record.offset.0 {
                    continue;
                }
                let Some(tags) = self.provider.matches(&record.path) else {
                    continue;
                };
                tracing::info!(from = %record.path.display(), to = %path.display(), acked = %record.offset, size = metadata.len(), "file was renamed out of the globs while the agent was stopped; reading the rest of it");
                self.follow(&path, tags);
            }
        }
    }

    /// Stops following a drained file that no glob finds any more: its
    /// partial last line is shipped as it is, its descriptor closed.
    fn release(&mut self, location: DevInode) -> anyhow::Result<()> {
        if let Some(watcher) = self.watchers.get_mut(&location) {
            self.lines.clear();
            if watcher.flush_partial(&mut self.lines) {
                self.emit(location)?;
            }
            if let Some(identity) = watcher_identity(&self.watchers, location) {
                self.flush_groups(Some(&[identity]))?;
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
                    if identity.generation > 0 {
                        self.persist_new_generation();
                    }
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
        // Opening and reading a file are events too, our own among them:
        // following them would make every look at a file not identified
        // yet (an empty file just created by a rotation) cause another.
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
                        tracing::debug!(path = %watcher.path().display(), file_id = %identity.file_id, generation = identity.generation, "file identified");
                        self.checkpointer
                            .track(identity, watcher.path(), watcher.position());
                        if identity.generation > 0 {
                            self.persist_new_generation();
                        }
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

    /// Turns the lines just read from the file at `location` into events,
    /// through the stream's joiner when its input joins multi-line events.
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
        let lines = std::mem::take(&mut self.lines);
        let bytes: u64 = lines.iter().map(|l| l.end_offset.0 - l.offset.0).sum();
        self.metrics
            .lines_read
            .fetch_add(lines.len() as u64, Ordering::Relaxed);
        self.metrics.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        let Some(settings) = tags.multiline.clone() else {
            let joined = lines.into_iter().map(Joined::from).collect();
            return self.ship(&file_id, &source, &tags, joined);
        };
        let now = Instant::now();
        let stream = self
            .joiners
            .entry(file_id.clone())
            .or_insert_with(|| OpenGroup {
                joiner: Joiner::new(settings),
                source: source.clone(),
                tags: tags.clone(),
            });
        stream.source.clone_from(&source);
        let mut joined = Vec::new();
        for line in lines {
            stream.joiner.push(line, now, &mut joined);
        }
        if stream.joiner.is_idle() {
            self.joiners.remove(&file_id);
        }
        self.ship(&file_id, &source, &tags, joined)
    }

    /// Ships the open multi-line groups of `file_ids`, or of every stream
    /// whose flush timeout has passed when `file_ids` is `None`.
    fn flush_groups(&mut self, file_ids: Option<&[FileId]>) -> anyhow::Result<()> {
        let now = Instant::now();
        let mut flushed = Vec::new();
        for (file_id, open) in &mut self.joiners {
            let mut joined = Vec::new();
            match file_ids {
                Some(ids) if ids.contains(file_id) => open.joiner.flush(&mut joined),
                Some(_) => {}
                None => open.joiner.flush_if_due(now, &mut joined),
            }
            if !joined.is_empty() {
                flushed.push((file_id.clone(), joined));
            }
        }
        for (file_id, joined) in flushed {
            let Some(open) = self.joiners.remove(&file_id) else {
                continue;
            };
            self.ship(&file_id, &open.source, &open.tags, joined)?;
        }
        Ok(())
    }

    /// Hands events of one stream, in file order, to the batcher.
    fn ship(
        &mut self,
        file_id: &FileId,
        source: &str,
        tags: &Tags,
        joined: Vec<Joined>,
    ) -> anyhow::Result<()> {
        let read_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .ok();
        let now = Instant::now();
        for Joined { line, split } in joined {
            let (offset, end_offset, truncated) = (line.offset, line.end_offset, line.truncated);
            let text = line.into_text();
            let mut event_tags = tags.tags.clone();
            if let Some(split) = split {
                event_tags.insert(SPLIT_TAG.to_string(), split.tag_value().to_string());
            }
            let event = Event {
                file_id: file_id.clone(),
                offset,
                end_offset,
                host: self.host.clone(),
                source: source.to_string(),
                message: text.message,
                read_at_ms,
                tags: event_tags,
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
        if self.spool.as_ref().is_some_and(|spool| spool.is_active()) && self.spool_batch(&batch) {
            return Ok(());
        }
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
        if let Some(batch) = settled.unsent {
            if !self.spool_batch(&batch) {
                // The spool is full (reading is paused) or failed: the
                // senders keep it in memory and try again.
                let _ = self.channels.batches.send(batch);
                return;
            }
        }
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
        if settled.outcome != Outcome::Unreachable {
            self.checkpointer
                .on_batch_acked(settled.seq, &settled.file_ids);
        }
    }

    /// A generation above 0 comes from what this agent remembers of the
    /// inode's earlier streams; a restart that did not find it on disk
    /// would give the same lines another file id and ship them twice. So
    /// it is written before any of its lines is shipped (truncations and
    /// reused inodes are rare; the write is cheap).
    fn persist_new_generation(&mut self) {
        self.persist();
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
        let open: Vec<FileId> = self.joiners.keys().cloned().collect();
        self.flush_groups(Some(&open))?;
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

fn watcher_identity(
    watchers: &HashMap<DevInode, FileWatcher>,
    location: DevInode,
) -> Option<FileId> {
    watchers
        .get(&location)
        .and_then(|watcher| watcher.identity())
        .map(|identity| identity.file_id.clone())
}

/// The seam for the model test of the file state machine
/// (`file_model_tests.rs`): the scheduler's own steps, driven
/// synchronously, with the test acking every batch in place of a server.
#[cfg(test)]
impl FileServer {
    /// One "agent reads" step: a rescan, then reads until every followed
    /// file is drained; every batch is acked as soon as it is built, and
    /// the events it held are returned in sending order.
    pub(crate) fn drain_for_test(
        &mut self,
        batches: &Receiver<crate::batcher::Batch>,
    ) -> anyhow::Result<Vec<Event>> {
        self.rescan()?;
        let mut events = Vec::new();
        for _ in 0..100_000 {
            self.read_ready()?;
            self.flush_groups(None)?;
            if !self.batcher.is_empty() {
                let batch = self.batcher.flush()?;
                self.submit(batch)?;
            }
            let mut acked_any = false;
            while let Ok(batch) = batches.try_recv() {
                acked_any = true;
                let decoded = loghound_shared::codec::decode_batch(
                    &batch.body,
                    &loghound_shared::codec::Limits::default(),
                )?;
                self.on_settled(Settled {
                    seq: batch.seq,
                    file_ids: batch.file_ends.iter().map(|(id, _)| id.clone()).collect(),
                    outcome: Outcome::Acked(loghound_shared::api::IngestResponse {
                        accepted: decoded.len() as u64,
                        duplicates: 0,
                    }),
                    unsent: None,
                });
                events.extend(decoded);
            }
            if !acked_any && (self.ready.is_empty() || self.backpressured()) {
                return Ok(events);
            }
        }
        anyhow::bail!("reading did not settle")
    }

    /// Writes the checkpoints now (an agent stopped after this keeps them).
    pub(crate) fn persist_for_test(&mut self) -> anyhow::Result<()> {
        Ok(self.checkpointer.persist()?)
    }
}

/// Remembers a stream that ended, forgetting the oldest beyond the bound.
fn remember_ended(ended: &mut VecDeque<EndedStream>, stream: EndedStream) {
    if ended.len() >= MAX_ENDED_STREAMS {
        ended.pop_front();
    }
    ended.push_back(stream);
}
