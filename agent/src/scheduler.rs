//! The scheduler: one thread that gives the sources their turns, moves
//! batches through the pipeline and turns settlements into checkpoints.
//!
//! It waits on one `select!` over signals, settled batches and the
//! sources' [`Waker`](crate::sources::Waker), with a timeout at the next
//! deadline (a source's own, batch age, checkpoint write), so an idle agent
//! sleeps. On SIGTERM/SIGINT the sources hand over what they hold, the open
//! batch is sent, unsettled batches are waited for up to
//! `shutdown_timeout_ms`, and the checkpoints are written.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};

use crate::pipeline::checkpoint_file::CheckpointError;
use crate::pipeline::shipper::Settled;
use crate::pipeline::{Pipeline, PipelineError};
use crate::sources::{Source, SourceError, Waker};

/// Why the scheduler stopped other than by a signal.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// A source stopped.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The pipeline stopped.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The checkpoints could not be written at shutdown.
    #[error("cannot write checkpoints: {0}")]
    FinalCheckpoint(#[source] CheckpointError),
}

/// What the scheduler listens to besides the sources.
pub(crate) struct Channels {
    pub(crate) settled: Receiver<Settled>,
    pub(crate) signals: Receiver<i32>,
    /// Fires when a source's [`Waker`] was called.
    pub(crate) wake: Receiver<()>,
    /// Kept so that `wake` never disconnects when no source holds a waker
    /// (no inotify, for one): a disconnected channel would end every
    /// sleep at once.
    pub(crate) _waker: Waker,
}

/// See the module docs.
pub(crate) struct Scheduler {
    pipeline: Pipeline,
    sources: Vec<Box<dyn Source>>,
    channels: Channels,
    state_dir: std::path::PathBuf,
    shutdown_timeout: Duration,
    /// [`crate::metrics::Metrics::error_generation`] when `status.json` was
    /// last written.
    errors_written: u64,
}

impl Scheduler {
    pub(crate) fn new(
        pipeline: Pipeline,
        sources: Vec<Box<dyn Source>>,
        channels: Channels,
        state_dir: std::path::PathBuf,
        shutdown_timeout: Duration,
    ) -> Self {
        Self {
            pipeline,
            sources,
            channels,
            state_dir,
            shutdown_timeout,
            errors_written: 0,
        }
    }

    /// Runs until SIGTERM/SIGINT, then drains and writes checkpoints.
    pub(crate) fn run(mut self) -> Result<(), SchedulerError> {
        for source in &mut self.sources {
            source.start(&mut self.pipeline)?;
            tracing::debug!(source = source.name(), "source started");
        }
        self.write_status_if_new_errors();
        loop {
            self.pipeline.check_spool_room();
            for source in &mut self.sources {
                source.poll(&mut self.pipeline)?;
            }
            self.pipeline.poll(Instant::now())?;
            if self.pipeline.persist_due() {
                self.persist();
            }
            self.write_status_if_new_errors();
            let timeout = self.next_wakeup().saturating_duration_since(Instant::now());
            select! {
                recv(self.channels.signals) -> signal => {
                    tracing::info!(signal = signal.unwrap_or_default(), "shutting down");
                    break;
                }
                recv(self.channels.settled) -> settled => match settled {
                    Ok(settled) => self.pipeline.on_settled(settled),
                    Err(_) => return Err(PipelineError::SendersStopped.into()),
                },
                recv(self.channels.wake) -> _ => {}
                default(timeout) => {}
            }
            while let Ok(settled) = self.channels.settled.try_recv() {
                self.pipeline.on_settled(settled);
            }
            for source in &mut self.sources {
                source.on_wake(&mut self.pipeline)?;
            }
        }
        self.shutdown()
    }

    fn next_wakeup(&self) -> Instant {
        let now = Instant::now();
        let backpressured = self.pipeline.backpressured();
        self.sources
            .iter()
            .filter_map(|source| source.next_wakeup(now, backpressured))
            .chain(self.pipeline.next_wakeup(now))
            .min()
            // Nothing is due: look again now and then all the same.
            .unwrap_or(now + Duration::from_secs(60))
    }

    fn persist(&mut self) {
        self.pipeline.persist();
        for source in &mut self.sources {
            source.on_checkpoints_written(&self.pipeline);
        }
    }

    /// Writes `status.json` when an error was met since the last write.
    fn write_status_if_new_errors(&mut self) {
        let metrics = self.pipeline.metrics();
        let generation = metrics.error_generation.load(Ordering::Relaxed);
        if generation == self.errors_written {
            return;
        }
        let mut errors = std::collections::BTreeMap::new();
        for source in &self.sources {
            errors.extend(
                source
                    .stream_errors()
                    .iter()
                    .map(|(path, note)| (path.clone(), note.clone())),
            );
        }
        match crate::status_file::store(&self.state_dir, metrics.last_error(), errors) {
            Ok(()) => self.errors_written = generation,
            Err(error) => tracing::warn!(%error, "cannot write the status file"),
        }
    }

    /// Sends what is buffered, waits for in-flight batches up to the
    /// shutdown timeout, writes the checkpoints.
    fn shutdown(mut self) -> Result<(), SchedulerError> {
        for source in &mut self.sources {
            source.stop(&mut self.pipeline)?;
        }
        self.pipeline.flush()?;
        let deadline = Instant::now() + self.shutdown_timeout;
        while self.pipeline.num_unsettled() > 0 {
            let timeout = deadline.saturating_duration_since(Instant::now());
            select! {
                recv(self.channels.settled) -> settled => match settled {
                    Ok(settled) => self.pipeline.on_settled(settled),
                    Err(_) => break,
                },
                recv(self.channels.signals) -> _ => break,
                default(timeout) => break,
            }
        }
        if self.pipeline.num_unsettled() > 0 {
            tracing::warn!(
                num_unsettled = self.pipeline.num_unsettled(),
                "shutdown timeout; unacked lines will be sent again after restart"
            );
        }
        self.pipeline
            .persist_final()
            .map_err(SchedulerError::FinalCheckpoint)?;
        tracing::info!("stopped");
        Ok(())
    }
}
