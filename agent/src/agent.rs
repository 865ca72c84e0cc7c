//! Wires the parts together: state directory, agent id, checkpoints,
//! signal handling, the sender pool and the scheduler.

use std::thread;

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::checkpointer::Checkpointer;
use crate::config::Settings;
use crate::file_server::{Channels, FileServer};
use crate::shipper::{self, ShipperConfig};

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

    let (settled_sender, settled) = crossbeam_channel::unbounded();
    let batches = shipper::start(
        ShipperConfig {
            servers: settings.servers.clone(),
            token: settings.token.clone(),
            agent_id,
            tls_roots: settings.tls_roots.clone(),
        },
        settings.max_in_flight,
        settled_sender,
    );
    FileServer::new(
        settings,
        host,
        checkpointer,
        Channels {
            batches,
            settled,
            signals,
        },
    )?
    .run()
}
