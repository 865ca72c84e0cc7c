//! The file source: log files found by glob, followed through rotation,
//! truncation, copies and deletion, their lines handed to the pipeline.
//!
//! One struct, [`FileSource`], driven by the scheduler's loop through the
//! [`Source`] trait, with its work split by concern:
//!
//! - [`discovery`]: globs → paths; [`watch`]: change notification;
//!   `scan.rs`: the periodic rescan and the release of vanished files;
//! - [`fingerprint`]: file identity; [`copies`]: copies of known streams;
//!   `follow.rs`: following a path as a known file, a new one or a copy;
//! - [`watcher`]: one followed file (position, truncation, closing);
//!   `read.rs`: change events and reading the ready files;
//! - [`open_files`] and `descriptors.rs`: the `max_open_files` budget;
//! - [`lines`], [`multiline`], [`container`] and `events.rs`: bytes →
//!   lines → events (multi-line joining, container log decoding);
//! - [`checkpoints`]: what the pipeline's checkpoints record of a file.
//!
//! Descriptors are bounded by `max_open_files`: when a file must be opened
//! and none is free, the longest idle drained files are closed; a closed
//! file is opened again when a rescan or a change event shows it changed.
//! When no file can be closed (all have unread bytes, or are deleted or
//! rotated away and not drained yet), new files wait for a descriptor
//! until one drains.

pub(crate) mod checkpoints;
pub(crate) mod container;
pub(crate) mod copies;
mod descriptors;
pub(crate) mod discovery;
mod events;
pub(crate) mod fingerprint;
mod follow;
pub mod lines;
#[cfg(test)]
mod model_tests;
pub mod multiline;
pub(crate) mod open_files;
mod read;
mod scan;
pub(crate) mod watch;
pub(crate) mod watcher;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use loghound_shared::FileId;

use self::checkpoints::FileCheckpoints;
use self::container::ContainerJoiner;
use self::copies::{Continuation, EndedStream, MAX_ENDED_STREAMS};
use self::discovery::{PathsProvider, Tags};
use self::fingerprint::DevInode;
use self::lines::RawLine;
use self::multiline::Joiner;
use self::open_files::RESERVED_DESCRIPTORS;
use self::watch::FsWatch;
use self::watcher::FileWatcher;
use super::{Source, SourceContext, SourceError};
use crate::config::{Input, Settings};
use crate::metrics::{ErrorNote, FileLag, Metrics};
use crate::pipeline::Pipeline;

/// Bytes read from one file before the others get their turn.
const READ_BUDGET_BYTES: usize = 256 << 10;
/// File-system events handled per turn of the loop before reading again,
/// so a burst of events cannot keep the files from being read.
const MAX_FS_EVENTS_PER_TURN: usize = 1024;
/// Rescans a file must be missing from the globs before it is released.
const RELEASE_AFTER_MISSING_RESCANS: u32 = 2;

/// What the file source is configured with.
#[derive(Debug, Clone)]
pub(crate) struct FileSourceSettings {
    pub(crate) inputs: Vec<Input>,
    pub(crate) exclude: Vec<String>,
    pub(crate) max_line_bytes: usize,
    pub(crate) rescan_interval_ms: u64,
    pub(crate) max_open_files: usize,
}

impl FileSourceSettings {
    /// The file source's part of the agent's settings, for `inputs`.
    pub(crate) fn from_settings(settings: &Settings, inputs: Vec<Input>) -> Self {
        Self {
            inputs,
            exclude: settings.exclude.clone(),
            max_line_bytes: settings.max_line_bytes,
            rescan_interval_ms: settings.rescan_interval_ms,
            max_open_files: settings.max_open_files,
        }
    }
}

/// See the module docs.
pub(crate) struct FileSource {
    settings: FileSourceSettings,
    host: String,
    provider: PathsProvider,
    watchers: HashMap<DevInode, FileWatcher>,
    by_path: HashMap<PathBuf, DevInode>,
    ready: HashSet<DevInode>,
    fs_watch: FsWatch,
    next_rescan: Instant,
    open_failures: HashSet<PathBuf>,
    lines: Vec<RawLine>,
    /// Streams that ended recently, newest last: a copy may continue one.
    ended: VecDeque<EndedStream>,
    /// Apparent copies of live files: not read while they agree with the
    /// live file, waiting for its truncation (`copies.rs`).
    shadowed: HashSet<PathBuf>,
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
}

/// A stream's joiner and what its events are labelled with.
struct OpenGroup {
    joiner: Grouper,
    source: String,
    tags: Tags,
}

/// What joins a stream's lines into events: multi-line groups, or a
/// container log's partial lines.
enum Grouper {
    Multiline(Joiner),
    Container(ContainerJoiner),
}

impl Grouper {
    fn push(&mut self, line: RawLine, now: Instant, out: &mut Vec<multiline::Joined>) {
        match self {
            Grouper::Multiline(joiner) => joiner.push(line, now, out),
            Grouper::Container(joiner) => joiner.push(line, now, out),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            Grouper::Multiline(joiner) => joiner.deadline(),
            Grouper::Container(joiner) => joiner.deadline(),
        }
    }

    fn flush_if_due(&mut self, now: Instant, out: &mut Vec<multiline::Joined>) {
        match self {
            Grouper::Multiline(joiner) => joiner.flush_if_due(now, out),
            Grouper::Container(joiner) => joiner.flush_if_due(now, out),
        }
    }

    fn flush(&mut self, out: &mut Vec<multiline::Joined>) {
        match self {
            Grouper::Multiline(joiner) => joiner.flush(out),
            Grouper::Container(joiner) => joiner.flush(out),
        }
    }

    fn is_idle(&self) -> bool {
        match self {
            Grouper::Multiline(joiner) => joiner.is_idle(),
            Grouper::Container(joiner) => joiner.is_idle(),
        }
    }
}

/// What a file without a checkpoint of its own turned out to be.
enum Origin {
    New,
    CopyOfLive,
    Continues(EndedStream, Continuation),
}

impl FileSource {
    pub(crate) fn new(
        settings: FileSourceSettings,
        context: &SourceContext,
    ) -> Result<Self, SourceError> {
        let provider =
            PathsProvider::new(&settings.inputs, &settings.exclude).map_err(|reason| {
                SourceError::Setup {
                    source_name: checkpoints::SOURCE_NAME,
                    reason,
                }
            })?;
        let max_watchers_open = settings
            .max_open_files
            .saturating_sub(RESERVED_DESCRIPTORS)
            .max(1);
        Ok(Self {
            settings,
            host: context.host.clone(),
            provider,
            watchers: HashMap::new(),
            by_path: HashMap::new(),
            ready: HashSet::new(),
            fs_watch: FsWatch::new(context.waker.clone()),
            next_rescan: Instant::now(),
            open_failures: HashSet::new(),
            lines: Vec::new(),
            ended: VecDeque::new(),
            shadowed: HashSet::new(),
            joiners: HashMap::new(),
            metrics: context.metrics.clone(),
            max_watchers_open,
            num_open: 0,
            waiting: HashMap::new(),
            waiting_reopen: HashSet::new(),
            room_exhausted: false,
            file_errors: BTreeMap::new(),
        })
    }

    /// A generation above 0 comes from what this agent remembers of the
    /// inode's earlier streams; a restart that did not find it on disk
    /// would give the same lines another file id and ship them twice. So
    /// it is written before any of its lines is shipped (truncations and
    /// reused inodes are rare; the write is cheap).
    fn persist_new_generation(&mut self, pipeline: &mut Pipeline) {
        pipeline.persist();
        self.publish_files(pipeline);
    }

    /// Records an error met on `path`, for `status` and `/metrics`.
    pub(super) fn note_file_error(&mut self, path: &Path, message: String) {
        self.metrics
            .note_error(format!("{}: {message}", path.display()));
        self.file_errors
            .insert(path.to_path_buf(), ErrorNote::now(message));
    }

    /// Publishes the followed files and their acked offsets to `/metrics`.
    pub(super) fn publish_files(&mut self, pipeline: &Pipeline) {
        let files = self
            .watchers
            .values()
            .filter_map(|watcher| {
                let identity = watcher.identity()?;
                Some(FileLag {
                    path: watcher.path().to_path_buf(),
                    dev: identity.location.dev,
                    inode: identity.location.inode,
                    acked: pipeline
                        .checkpoints()
                        .settled_offset(&identity.file_id)
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
}

impl Source for FileSource {
    fn name(&self) -> &'static str {
        checkpoints::SOURCE_NAME
    }

    fn start(&mut self, pipeline: &mut Pipeline) -> Result<(), SourceError> {
        self.rescan(pipeline)?;
        self.find_renamed_away(pipeline);
        Ok(())
    }

    fn poll(&mut self, pipeline: &mut Pipeline) -> Result<(), SourceError> {
        if Instant::now() >= self.next_rescan {
            self.rescan(pipeline)?;
        }
        self.read_ready(pipeline)?;
        self.flush_groups(pipeline, None)?;
        if self.ready.is_empty() {
            self.admit_waiting(pipeline);
        }
        Ok(())
    }

    fn on_wake(&mut self, pipeline: &mut Pipeline) -> Result<(), SourceError> {
        let events = self.fs_watch.events().clone();
        for event in events.try_iter().take(MAX_FS_EVENTS_PER_TURN) {
            self.on_fs_event(pipeline, event);
        }
        Ok(())
    }

    fn next_wakeup(&self, now: Instant, backpressured: bool) -> Option<Instant> {
        if !self.ready.is_empty() && !backpressured {
            return Some(now);
        }
        let groups = self
            .joiners
            .values()
            .filter_map(|open| open.joiner.deadline())
            .min();
        Some(groups.map_or(self.next_rescan, |due| due.min(self.next_rescan)))
    }

    fn on_checkpoints_written(&mut self, pipeline: &Pipeline) {
        self.publish_files(pipeline);
    }

    fn stream_errors(&self) -> &BTreeMap<PathBuf, ErrorNote> {
        &self.file_errors
    }

    fn stop(&mut self, pipeline: &mut Pipeline) -> Result<(), SourceError> {
        let open: Vec<FileId> = self.joiners.keys().cloned().collect();
        self.flush_groups(pipeline, Some(&open))?;
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

/// Remembers a stream that was released, forgetting the oldest beyond the
/// bound: a copy of it found later continues it.
fn remember_ended(ended: &mut VecDeque<EndedStream>, stream: EndedStream) {
    ended.retain(|known| known.identity.file_id != stream.identity.file_id);
    if ended.len() >= MAX_ENDED_STREAMS {
        ended.pop_front();
    }
    ended.push_back(stream);
}

/// A stream whose file was truncated: remembered in memory and ended in the
/// checkpoints (kept, with its marks, for a copy found later, after a
/// restart too).
fn stream_truncated(
    ended: &mut VecDeque<EndedStream>,
    pipeline: &mut Pipeline,
    stream: EndedStream,
) {
    pipeline
        .checkpoints_mut()
        .end_stream(&stream.identity.file_id, &stream.marks);
    remember_ended(ended, stream);
}

/// The seam for the model test of the file state machine
/// (`model_tests.rs`): the source's own steps, driven synchronously, with
/// the test acking every batch in place of a server.
#[cfg(test)]
impl FileSource {
    /// One "agent reads" step: a rescan, then reads until every followed
    /// file is drained; every batch is acked as soon as it is built, and
    /// the events it held are returned in sending order.
    pub(crate) fn drain_for_test(
        &mut self,
        pipeline: &mut Pipeline,
        batches: &crossbeam_channel::Receiver<crate::pipeline::batcher::Batch>,
    ) -> Result<Vec<loghound_shared::Event>, Box<dyn std::error::Error>> {
        use crate::pipeline::shipper::{Outcome, Settled};

        self.rescan(pipeline)?;
        let mut events = Vec::new();
        for _ in 0..100_000 {
            self.read_ready(pipeline)?;
            self.flush_groups(pipeline, None)?;
            pipeline.flush()?;
            let mut acked_any = false;
            while let Ok(batch) = batches.try_recv() {
                acked_any = true;
                let decoded = loghound_shared::codec::decode_batch(
                    &batch.body,
                    &loghound_shared::codec::Limits::default(),
                )?;
                pipeline.on_settled(Settled {
                    seq: batch.seq,
                    stream_ids: batch.stream_ids(),
                    outcome: Outcome::Acked(loghound_shared::api::IngestResponse {
                        accepted: decoded.len() as u64,
                        duplicates: 0,
                    }),
                    unsent: None,
                });
                events.extend(decoded);
            }
            if !acked_any && (self.ready.is_empty() || pipeline.backpressured()) {
                return Ok(events);
            }
        }
        Err("reading did not settle".into())
    }
}
