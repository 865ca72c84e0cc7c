//! Wires the parts together: state directory, agent id, checkpoints,
//! signal handling, the spool, the sender and replay threads and the
//! scheduler.

use std::sync::Arc;
use std::thread;

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::checkpointer::Checkpointer;
use crate::config::Settings;
use crate::file_server::{Channels, FileServer};
use crate::metrics::Metrics;
use crate::shipper::{self, Patience, ShipperConfig};
use crate::spool::Spool;

/// Runs the agent until SIGTERM or SIGINT.
pub(crate) fn run(settings: Settings) -> anyhow::Result<()> {
    // First, so that a SIGTERM during start-up is a clean stop, not a kill.
    let (signal_sender, signals) = crossbeam_channel::bounded(4);
    let mut os_signals =
        Signals::new([SIGTERM, SIGINT]).context("cannot install signal handlers")?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in os_signals.forever() {
                if signal_sender.send(signal).is_err() {
                    return;
                }
            }
        })?;

    let state_dir = settings.state_dir.clone();
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create state directory {}", state_dir.display()))?;
    let agent_id = crate::agent_id::load_or_create(&state_dir)?;
    let checkpointer = Checkpointer::load(&state_dir)?;
    let host = match &settings.host {
        Some(host) => host.clone(),
        None => gethostname::gethostname().to_string_lossy().into_owned(),
    };
    tracing::info!(%agent_id, %host, servers = ?settings.servers, state_dir = %state_dir.display(), "starting");

    let spool = match settings.spool_max_bytes {
        0 => None,
        max_bytes => Some(Arc::new(Spool::open(&state_dir, max_bytes).with_context(
            || format!("cannot open the spool in {}", state_dir.display()),
        )?)),
    };
    let metrics = Arc::new(Metrics::default());
    if let Some(address) = settings.metrics_listen {
        let listener = std::net::TcpListener::bind(address)
            .with_context(|| format!("metrics_listen: cannot listen on {address}"))?;
        let bound = listener.local_addr().unwrap_or(address);
        crate::metrics_http::start(listener, metrics.clone())
            .context("cannot start the metrics thread")?;
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
        crate::replay::start(spool.clone(), client, settings.max_in_flight);
    }
    FileServer::new(
        settings,
        host,
        checkpointer,
        Channels {
            batches,
            settled,
            signals,
        },
        spool,
        metrics,
    )?
    .run()
}
