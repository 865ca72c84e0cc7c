//! The journald source: one `journalctl --follow --output=json` child per
//! input (`child.rs`), its entries mapped to events (`entry.rs`) and
//! checkpointed by cursor once the pipeline settled them.
//!
//! Streams and positions: the journal numbers its entries per
//! *sequence-number space* (one journald's files; the `s=` of a cursor),
//! so each space of an input is one stream, with the entry's seqnum as
//! its position (`offset = seqnum`, `end_offset = seqnum + 1`). The server
//! dedups on that, whatever order journalctl merges spaces in, and a stream
//! checkpoint says the settled seqnum of its space.
//!
//! Resuming: journalctl takes one cursor to start after. The source keeps,
//! in the order entries were emitted, the runs of entries not yet settled;
//! the newest cursor before the first unsettled entry is the input's
//! *resume cursor*, kept in a checkpoint record of its own (the `resume`
//! record, which never carries events). After a restart journalctl starts
//! after it, and entries whose seqnum is below their stream's settled
//! position are skipped, so nothing is shipped twice and nothing acked is
//! read again for long.
//!
//! What is gone: when the resume entry is no longer in the journal
//! (vacuumed or rotated away while the agent was stopped), journalctl's own
//! seek is unreliable, so reading starts at the oldest entry; known streams
//! skip what they shipped, and entries of unknown streams older than the
//! resume point are taken as shipped before. The loss is reported (log and
//! `status`), and so is a seqnum gap at the first entry of a stream after
//! a start when the input has no filter (with `units` or `match` gaps are
//! normal).

mod child;
pub(crate) mod entry;
mod resume;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, TryRecvError};
use loghound_shared::{ByteOffset, Event, FileId};

use self::child::{Query, Reader, Report, Start};
use self::entry::{parse_cursor, Entry};
pub(crate) use self::resume::is_resume_record;
use self::resume::{digest_id, State, Unsettled, STATE_VERSION};
use super::{Source, SourceContext, SourceError, Waker};
use crate::config::{Input, JournaldInput};
use crate::metrics::{ErrorNote, Metrics};
use crate::pipeline::checkpoints::StreamCheckpoint;
use crate::pipeline::Pipeline;

/// The name journald checkpoints are kept under.
pub(crate) const SOURCE_NAME: &str = "journald";
/// A stream of one sequence-number space.
#[derive(Debug)]
struct Stream {
    file_id: FileId,
    /// Entries before this seqnum are shipped (settled at start, emitted
    /// since).
    next: u64,
    /// Whether the first entry since the start was checked for a gap.
    checked: bool,
    /// Whether a checkpoint was kept for it at start.
    known: bool,
}

/// One journald input; see the module docs.
pub(crate) struct JournaldSource {
    /// `journald`, `journald:<directory>`, with `?<filters>`: the input's
    /// name in ids, labels and `status`.
    name: String,
    query: Query,
    since_now: bool,
    filtered: bool,
    tags: BTreeMap<String, String>,
    max_message_bytes: usize,
    host: String,
    waker: Waker,
    metrics: Arc<Metrics>,
    resume_id: FileId,
    resume_cursor: Option<String>,
    /// After a lost resume entry: entries of unknown streams at or before
    /// this realtime (µs) count as shipped.
    skip_unknown_until_us: Option<u64>,
    streams: HashMap<String, Stream>,
    unsettled: Unsettled,
    reader: Option<Reader>,
    reports: Option<Receiver<Report>>,
    errors: BTreeMap<PathBuf, ErrorNote>,
}

impl JournaldSource {
    pub(crate) fn new(
        input: &Input,
        journald: &JournaldInput,
        max_message_bytes: usize,
        context: &SourceContext,
    ) -> Self {
        let mut name = String::from("journald");
        if let Some(directory) = &journald.directory {
            name.push(':');
            name.push_str(&directory.display().to_string());
        }
        let filters: Vec<String> = journald
            .units
            .iter()
            .map(|unit| format!("unit={unit}"))
            .chain(journald.matches.iter().cloned())
            .collect();
        if !filters.is_empty() {
            name.push('?');
            name.push_str(&filters.join(","));
        }
        Self {
            resume_id: digest_id(&[SOURCE_NAME, &name, "resume"]),
            name,
            query: Query {
                journalctl: journald.journalctl.clone(),
                directory: journald.directory.clone(),
                units: journald.units.clone(),
                matches: journald.matches.clone(),
            },
            since_now: journald.since_now,
            filtered: !filters.is_empty(),
            tags: input.tags.clone(),
            max_message_bytes,
            host: context.host.clone(),
            waker: context.waker.clone(),
            metrics: context.metrics.clone(),
            resume_cursor: None,
            skip_unknown_until_us: None,
            streams: HashMap::new(),
            unsettled: Unsettled::default(),
            reader: None,
            reports: None,
            errors: BTreeMap::new(),
        }
    }

    fn setup_error(&self, reason: String) -> SourceError {
        SourceError::Setup {
            source_name: SOURCE_NAME,
            reason: format!("input {}: {reason}", self.name),
        }
    }

    fn note(&mut self, message: String) {
        tracing::warn!(input = %self.name, "{message}");
        self.metrics.note_error(format!("{}: {message}", self.name));
        self.errors
            .insert(PathBuf::from(&self.name), ErrorNote::now(message));
    }

    fn resume_record(&self) -> StreamCheckpoint {
        StreamCheckpoint {
            source: SOURCE_NAME.into(),
            stream_id: self.resume_id.clone(),
            label: self.name.clone(),
            offset: ByteOffset(0),
            cursor: None,
            state: self.resume_state(),
        }
    }

    fn resume_state(&self) -> serde_json::Value {
        State::Resume {
            version: STATE_VERSION,
            input: self.name.clone(),
            after_cursor: self.resume_cursor.clone(),
        }
        .to_value()
    }

    /// Where journalctl starts, from the checkpoints (see the module docs).
    fn choose_start(&mut self, pipeline: &mut Pipeline) -> Result<Start, SourceError> {
        let Some(cursor) = self.resume_cursor.clone() else {
            if !self.since_now {
                return Ok(Start::Head);
            }
            let last = self
                .query
                .first_entry(&["--lines=1".to_string()])
                .map_err(|reason| self.setup_error(reason))?;
            let Some(last) = last else {
                return Ok(Start::Head);
            };
            // Kept at once: a restart must not move "now" past entries
            // written meanwhile.
            self.resume_cursor = Some(last.cursor.clone());
            let label = self.name.clone();
            let state = self.resume_state();
            pipeline
                .checkpoints_mut()
                .update(&self.resume_id, label, state);
            pipeline.persist();
            return Ok(Start::AfterCursor(last.cursor));
        };
        let Some(place) = parse_cursor(&cursor) else {
            self.note(format!(
                "the checkpointed cursor {cursor:?} cannot be read; reading the journal from its oldest entry, skipping what was shipped"
            ));
            return Ok(Start::Head);
        };
        let found = self
            .query
            .first_entry(&[format!("--cursor={cursor}")])
            .map_err(|reason| self.setup_error(reason))?;
        let present = found.is_some_and(|entry| {
            entry.place.seqnum_id == place.seqnum_id && entry.place.seqnum == place.seqnum
        });
        if present {
            return Ok(Start::AfterCursor(cursor));
        }
        self.note(format!(
            "the journal no longer holds the last entry shipped (seqnum {} of {}): it was vacuumed or rotated away while the agent was stopped, and entries written after it and removed with it cannot be shipped; reading from the oldest entry left, skipping what was shipped",
            place.seqnum, place.seqnum_id
        ));
        self.skip_unknown_until_us = Some(place.realtime_us);
        Ok(Start::Head)
    }

    /// Takes what the reader reported, while the pipeline has room.
    fn drain(&mut self, pipeline: &mut Pipeline) -> Result<(), SourceError> {
        self.advance_resume(pipeline);
        let Some(reports) = self.reports.clone() else {
            return Ok(());
        };
        while !pipeline.backpressured() {
            let report = match reports.try_recv() {
                Ok(report) => report,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.reports = None;
                    self.note("the journalctl reader thread stopped".into());
                    break;
                }
            };
            match report {
                Report::Entry(entry) => self.take(pipeline, *entry)?,
                Report::Unreadable(error) => {
                    self.metrics
                        .journal_entries_skipped
                        .fetch_add(1, Ordering::Relaxed);
                    self.note(format!("skipped a line of journalctl's output: {error}"));
                }
                Report::Started => {
                    tracing::info!(input = %self.name, "journalctl is running");
                }
                Report::Ended { why, restart_in } => {
                    self.metrics
                        .journalctl_restarts
                        .fetch_add(1, Ordering::Relaxed);
                    self.note(format!(
                        "{why}; starting it again in {} ms",
                        restart_in.as_millis()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The stream of `seqnum_id`, opened in the checkpoints if new.
    fn stream(&mut self, pipeline: &mut Pipeline, seqnum_id: &str) -> &mut Stream {
        let name = &self.name;
        self.streams
            .entry(seqnum_id.to_string())
            .or_insert_with(|| {
                let file_id = digest_id(&[SOURCE_NAME, name, seqnum_id]);
                pipeline.checkpoints_mut().open(StreamCheckpoint {
                    source: SOURCE_NAME.into(),
                    stream_id: file_id.clone(),
                    label: format!("{name}/{seqnum_id}"),
                    offset: ByteOffset(0),
                    cursor: None,
                    state: State::Stream {
                        version: STATE_VERSION,
                        input: name.clone(),
                        seqnum_id: seqnum_id.to_string(),
                    }
                    .to_value(),
                });
                Stream {
                    file_id,
                    next: 0,
                    checked: true,
                    known: false,
                }
            })
    }

    fn take(&mut self, pipeline: &mut Pipeline, entry: Entry) -> Result<(), SourceError> {
        let skip_unknown = self
            .skip_unknown_until_us
            .is_some_and(|until| entry.place.realtime_us <= until);
        let filtered = self.filtered;
        let stream = self.stream(pipeline, &entry.place.seqnum_id);
        let seqnum = entry.place.seqnum;
        let shipped = seqnum < stream.next || (!stream.known && skip_unknown);
        let mut gap = None;
        if !stream.checked {
            stream.checked = true;
            if !filtered && seqnum > stream.next {
                gap = Some((stream.next, seqnum));
            }
        }
        let file_id = stream.file_id.clone();
        if !shipped {
            stream.next = seqnum + 1;
        }
        if let Some((from, to)) = gap {
            self.note(format!(
                "entries {from}..{to} of journal {} are gone (removed before they were read, or not readable by this user): {} entries not shipped",
                entry.place.seqnum_id,
                to - from
            ));
        }
        self.unsettled
            .remember(&file_id, ByteOffset(seqnum + 1), &entry.cursor);
        if shipped {
            return Ok(());
        }
        self.metrics.lines_read.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .bytes_read
            .fetch_add(entry.message.len() as u64, Ordering::Relaxed);
        let (event, cursor) = self.event(file_id, entry);
        pipeline.emit(event, Some(cursor))?;
        Ok(())
    }

    fn event(&self, file_id: FileId, entry: Entry) -> (Event, String) {
        let mut tags = self.tags.clone();
        if let Some(app) = &entry.app {
            tags.entry("app".to_string()).or_insert_with(|| app.clone());
        }
        let source = match (&entry.unit, &entry.app) {
            (Some(unit), _) => format!("journal:{unit}"),
            (None, Some(app)) => format!("journal:{app}"),
            (None, None) => "journal".to_string(),
        };
        let read_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .ok();
        let event = Event {
            file_id,
            offset: ByteOffset(entry.place.seqnum),
            end_offset: ByteOffset(entry.place.seqnum + 1),
            host: entry.host.unwrap_or_else(|| self.host.clone()),
            source,
            message: entry.message,
            read_at_ms,
            tags,
            truncated: entry.truncated,
            invalid_utf8: entry.invalid_utf8,
            format: None,
            time_ms: entry.time_ms,
            severity: entry.severity.map(str::to_string),
            fields: entry.fields,
        };
        (event, entry.cursor)
    }

    /// Moves the resume cursor over the settled runs.
    fn advance_resume(&mut self, pipeline: &mut Pipeline) {
        let checkpoints = pipeline.checkpoints();
        let newest = self
            .unsettled
            .take_settled(|stream| checkpoints.settled_offset(stream));
        if let Some(cursor) = newest {
            self.resume_cursor = Some(cursor);
            let label = self.name.clone();
            let state = self.resume_state();
            pipeline
                .checkpoints_mut()
                .update(&self.resume_id, label, state);
        }
    }
}

impl Source for JournaldSource {
    fn name(&self) -> &'static str {
        SOURCE_NAME
    }

    fn start(&mut self, pipeline: &mut Pipeline) -> Result<(), SourceError> {
        // A precise error now rather than a restart loop later.
        if let Err(error) = std::process::Command::new(&self.query.journalctl)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
        {
            return Err(self.setup_error(format!(
                "cannot run {}: {error} (a journald input needs systemd's journalctl; set `journalctl` to its path)",
                self.query.journalctl.display()
            )));
        }
        let mut known = Vec::new();
        for checkpoint in pipeline.checkpoints().of_source(SOURCE_NAME, true) {
            match serde_json::from_value::<State>(checkpoint.state.clone()) {
                Ok(State::Resume {
                    input,
                    after_cursor,
                    ..
                }) if input == self.name => self.resume_cursor = after_cursor,
                Ok(State::Stream {
                    input, seqnum_id, ..
                }) if input == self.name => {
                    known.push((seqnum_id, checkpoint.stream_id.clone(), checkpoint.offset));
                }
                _ => {}
            }
        }
        for (seqnum_id, file_id, offset) in known {
            self.streams.insert(
                seqnum_id,
                Stream {
                    file_id,
                    next: offset.0,
                    checked: false,
                    known: true,
                },
            );
        }
        pipeline.checkpoints_mut().open(self.resume_record());
        let start = self.choose_start(pipeline)?;
        tracing::info!(input = %self.name, ?start, "reading the journal");
        let (reader, reports) = Reader::start(
            self.query.clone(),
            start,
            self.max_message_bytes,
            self.waker.clone(),
            &self.name,
        )
        .map_err(|error| self.setup_error(format!("cannot start its reader thread: {error}")))?;
        self.reader = Some(reader);
        self.reports = Some(reports);
        Ok(())
    }

    fn poll(&mut self, pipeline: &mut Pipeline) -> Result<(), SourceError> {
        self.drain(pipeline)
    }

    fn on_wake(&mut self, pipeline: &mut Pipeline) -> Result<(), SourceError> {
        self.drain(pipeline)
    }

    fn next_wakeup(&self, now: Instant, backpressured: bool) -> Option<Instant> {
        let waiting = self
            .reports
            .as_ref()
            .is_some_and(|reports| !reports.is_empty());
        (waiting && !backpressured).then_some(now)
    }

    fn on_checkpoints_written(&mut self, _pipeline: &Pipeline) {}

    fn stream_errors(&self) -> &BTreeMap<PathBuf, ErrorNote> {
        &self.errors
    }

    fn stop(&mut self, pipeline: &mut Pipeline) -> Result<(), SourceError> {
        // Entries still in the channel were never emitted: the next start
        // reads them again after the resume cursor.
        self.advance_resume(pipeline);
        self.reader = None;
        Ok(())
    }
}
