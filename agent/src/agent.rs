//! Wires the parts together: state directory, agent id, checkpoints,
//! signal handling, the spool, the sender and replay threads, the sources
//! and the scheduler.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::agent_id::AgentIdError;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::pipeline::checkpoint_file::CheckpointError;
use crate::pipeline::checkpoints::Checkpoints;
use crate::pipeline::shipper::{self, Patience, ShipperConfig};
use crate::pipeline::spool::Spool;
use crate::pipeline::{BatchLimits, Pipeline};
use crate::scheduler::{Channels, Scheduler, SchedulerError};
use crate::sources::{self, SourceContext, SourceError, Waker};

/// Why the agent could not start, or stopped other than by a signal.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Signal handlers or a thread could not be set up.
    #[error("{what}: {source}")]
    Setup {
        /// What could not be set up.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state directory is unusable.
    #[error("cannot create state directory {path}: {source}")]
    StateDir {
        /// The state directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The agent id cannot be read or stored.
    #[error(transparent)]
    AgentId(#[from] AgentIdError),
    /// The checkpoints cannot be read.
    #[error(transparent)]
    Checkpoints(#[from] CheckpointError),
    /// A source cannot start.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The scheduler stopped.
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
}

fn setup(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AgentError {
    let what = what.into();
    move |source| AgentError::Setup { what, source }
}

/// Runs the agent until SIGTERM or SIGINT.
pub fn run(settings: Settings) -> Result<(), AgentError> {
    // First, so that a SIGTERM during start-up is a clean stop, not a kill.
    let (signal_sender, signals) = crossbeam_channel::bounded(4);
    let mut os_signals =
        Signals::new([SIGTERM, SIGINT]).map_err(setup("cannot install signal handlers"))?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in os_signals.forever() {
                if signal_sender.send(signal).is_err() {
                    return;
                }
            }
        })
        .map_err(setup("cannot start the signal thread"))?;

    let state_dir = settings.state_dir.clone();
    std::fs::create_dir_all(&state_dir).map_err(|source| AgentError::StateDir {
        path: state_dir.clone(),
        source,
    })?;
    let agent_id = crate::agent_id::load_or_create(&state_dir)?;
    let checkpoints = Checkpoints::load(&state_dir)?;
    let host = match &settings.host {
        Some(host) => host.clone(),
        None => gethostname::gethostname().to_string_lossy().into_owned(),
    };
    tracing::info!(%agent_id, %host, servers = ?settings.servers, state_dir = %state_dir.display(), "starting");

    let spool = match settings.spool_max_bytes {
        0 => None,
        max_bytes => Some(Arc::new(Spool::open(&state_dir, max_bytes).map_err(
            setup(format!("cannot open the spool in {}", state_dir.display())),
        )?)),
    };
    let metrics = Arc::new(Metrics::default());
    if let Some(address) = settings.metrics_listen {
        let listener = std::net::TcpListener::bind(address)
            .map_err(setup(format!("metrics_listen: cannot listen on {address}")))?;
        let bound = listener.local_addr().unwrap_or(address);
        crate::metrics_http::start(listener, metrics.clone())
            .map_err(setup("cannot start the metrics thread"))?;
        tracing::info!(address = %bound, "serving /metrics");
    }

    let (settled_sender, settled) = crossbeam_channel::unbounded();
    let (batches, client) = shipper::start(
        ShipperConfig {
            servers: settings.servers.clone(),
            token: settings.token.clone(),
            agent_id,
            tls_roots: settings.tls_roots.clone(),
        },
        settings.max_in_flight,
        Patience::for_senders(spool.is_some(), settings.servers.len()),
        settled_sender,
        metrics.clone(),
    );
    if let Some(spool) = &spool {
        crate::pipeline::spool::replay::start(spool.clone(), client, settings.max_in_flight);
    }
    let (waker, wake) = Waker::new();
    let sources = sources::build(
        &settings,
        &SourceContext {
            host,
            waker: waker.clone(),
            metrics: metrics.clone(),
        },
    )?;
    let pipeline = Pipeline::new(
        BatchLimits {
            max_bytes: settings.batch_max_bytes,
            max_age: Duration::from_millis(settings.batch_max_age_ms),
            zstd_level: settings.zstd_level,
            max_in_flight: settings.max_in_flight,
        },
        checkpoints,
        batches,
        spool,
        metrics,
    );
    Scheduler::new(
        pipeline,
        sources,
        Channels {
            settled,
            signals,
            wake,
            _waker: waker,
        },
        state_dir,
        Duration::from_millis(settings.shutdown_timeout_ms),
    )
    .run()?;
    Ok(())
}
