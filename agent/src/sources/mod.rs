//! Where events come from. A [`Source`] finds its streams, reads them and
//! hands the [`Pipeline`] events with an ordered position per stream; the
//! pipeline does the rest (batch, ship or spool, settle, checkpoint).
//!
//! What a source must give every event, since the server dedups per
//! (agent, stream id, byte range): a stream id (`file_id` on the wire; a
//! file's is a digest of its identity and truncation generation) and an
//! `offset..end_offset` range that only grows within the stream (a file's
//! byte offsets; any monotonic numbering does). What it resumes from is
//! its own business: the pipeline keeps, per stream, the settled wire
//! position, an optional cursor given with each event (a journal cursor)
//! and an opaque state the source versions and interprets
//! ([`crate::pipeline::checkpoints::StreamCheckpoint`]); a checkpoint never
//! passes an unsettled batch.
//!
//! Sources run on the scheduler's thread, one turn each per loop. One that
//! learns of new data from elsewhere (a notification thread, a child
//! process's pipe) keeps that in a channel of its own and calls its
//! [`Waker`], so the scheduler's sleep ends and [`Source::on_wake`] runs.
//!
//! - [`file`]: log files by glob (discovery, identity, rotation, copies,
//!   the descriptor budget, multi-line joining);
//! - [`journald`]: the systemd journal, through a journalctl child per
//!   input, checkpointed by cursor.

pub mod file;
pub mod journald;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use crate::config::{InputKind, Settings};
use crate::metrics::{ErrorNote, Metrics};
use crate::pipeline::Pipeline;
pub use crate::pipeline::PipelineError;

/// Why a source cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The pipeline refused an event.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The source's configuration cannot be used.
    #[error("{source_name}: {reason}")]
    Setup {
        /// The source (`file`, …).
        source_name: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// A producer of events for the pipeline; see the module docs.
pub(crate) trait Source {
    /// The name its checkpoints are kept under (`file`, …).
    fn name(&self) -> &'static str;

    /// Called once before the loop: find the streams and resume them from
    /// the checkpoints in `pipeline`.
    fn start(&mut self, pipeline: &mut Pipeline) -> Result<(), SourceError>;

    /// One turn of the loop: read what is ready while the pipeline is not
    /// [`Pipeline::backpressured`], and hand over what is due.
    fn poll(&mut self, pipeline: &mut Pipeline) -> Result<(), SourceError>;

    /// Takes what its notifications delivered since the last turn.
    fn on_wake(&mut self, pipeline: &mut Pipeline) -> Result<(), SourceError>;

    /// When the source next needs a turn without being woken; `now` when
    /// it has something to read and `backpressured` is false.
    fn next_wakeup(&self, now: Instant, backpressured: bool) -> Option<Instant>;

    /// The pipeline wrote its checkpoints: publish what they now say.
    fn on_checkpoints_written(&mut self, pipeline: &Pipeline);

    /// The last error met on each of its streams (by path or name), for
    /// `loghound-agent status`.
    fn stream_errors(&self) -> &BTreeMap<PathBuf, ErrorNote>;

    /// At shutdown: hand the pipeline every event the source still holds.
    fn stop(&mut self, pipeline: &mut Pipeline) -> Result<(), SourceError>;
}

/// Ends the scheduler's sleep; cloned into whatever learns of new data.
#[derive(Debug, Clone)]
pub(crate) struct Waker(Sender<()>);

impl Waker {
    /// A waker and the end the scheduler waits on.
    pub(crate) fn new() -> (Self, Receiver<()>) {
        let (sender, receiver) = crossbeam_channel::bounded(1);
        (Self(sender), receiver)
    }

    /// Wakes the scheduler (once, however often it is called meanwhile).
    pub(crate) fn wake(&self) {
        let _ = self.0.try_send(());
    }
}

/// What every source is built with.
pub(crate) struct SourceContext {
    /// The host name sent with every event.
    pub(crate) host: String,
    pub(crate) waker: Waker,
    pub(crate) metrics: Arc<Metrics>,
}

/// The configured sources.
pub(crate) fn build(
    settings: &Settings,
    context: &SourceContext,
) -> Result<Vec<Box<dyn Source>>, SourceError> {
    let mut sources: Vec<Box<dyn Source>> = Vec::new();
    let file_inputs: Vec<_> = settings
        .inputs
        .iter()
        .filter(|input| input.kind == InputKind::File)
        .cloned()
        .collect();
    if !file_inputs.is_empty() {
        sources.push(Box::new(file::FileSource::new(
            file::FileSourceSettings::from_settings(settings, file_inputs),
            context,
        )?));
    }
    for input in &settings.inputs {
        if let Some(journald) = &input.journald {
            sources.push(Box::new(journald::JournaldSource::new(
                input,
                journald,
                settings.max_line_bytes,
                context,
            )));
        }
    }
    Ok(sources)
}
