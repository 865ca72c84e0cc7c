//! Syslog listeners (`[[syslog]]`): RFC 5424 and RFC 3164 messages over
//! UDP, TCP and TLS, each listener an input of its own (origin
//! `input:<name>`) that hands its messages to [`Ingest::submit`].
//!
//! - [`frame`]: a TCP stream cut into messages (octet counting or lines,
//!   told per connection);
//! - [`message`]: a message as an event;
//! - `tcp`: TCP and TLS connections;
//! - `udp`: datagrams.
//!
//! What the protocol allows, and what it does not:
//! - TCP and TLS: what one read brings is logged and made durable before
//!   the connection is read again. When the indexer is behind or the disk
//!   is full the same messages are retried and the connection is not read
//!   meanwhile, so the sender is held back by TCP itself; nothing read is
//!   dropped. Syslog over TCP has no acknowledgement, though: what sat in
//!   the sockets' buffers when a server died is lost, and a sender may
//!   send again a message it had sent just before a connection broke.
//!   Those copies are not told apart from a message sent twice on purpose
//!   (there is no position to key them by), so they are kept.
//! - UDP: a datagram is a message. Datagrams that arrive faster than they
//!   can be logged wait in a bounded queue; past it they are dropped and
//!   counted (`dropped` in the listener's counters, and a warning).

pub mod frame;
pub mod message;
mod tcp;
mod udp;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{SyslogConfig, SyslogProtocol};
use crate::ingest::{InEvent, Ingest, IngestError, Origin, Submission};

/// What a listener has seen since the server started.
#[derive(Debug, Default)]
pub struct SyslogStats {
    /// Messages logged.
    pub messages: AtomicU64,
    /// Bytes of those messages as received.
    pub bytes: AtomicU64,
    /// Messages cut at `max_message_bytes`.
    pub truncated: AtomicU64,
    /// UDP: messages dropped because the queue was full or the log could
    /// not take them.
    pub dropped: AtomicU64,
    /// Connections or datagrams from peers outside `allow`.
    pub refused_peers: AtomicU64,
    /// Connections closed at once because `max_connections` were open.
    pub refused_connections: AtomicU64,
    /// Connections ended by a broken octet count.
    pub framing_errors: AtomicU64,
    /// TLS handshakes that failed or timed out.
    pub handshake_failures: AtomicU64,
    /// Connections open now.
    pub connections: AtomicU64,
}

impl SyslogStats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A listener bound to its address.
pub struct Bound {
    /// The listener's name.
    pub name: String,
    /// The address it listens on (the port chosen, for port 0).
    pub address: SocketAddr,
    /// Its counters.
    pub stats: Arc<SyslogStats>,
    task: tokio::task::JoinHandle<()>,
}

impl Bound {
    /// Completes once the listener has stopped: after `stopping` turned
    /// true, each connection has logged what it read.
    pub async fn join(self) {
        let _ = self.task.await;
        let stats = &self.stats;
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        info!(
            listener = %self.name,
            messages = n(&stats.messages),
            truncated = n(&stats.truncated),
            dropped = n(&stats.dropped),
            refused_peers = n(&stats.refused_peers),
            refused_connections = n(&stats.refused_connections),
            framing_errors = n(&stats.framing_errors),
            handshake_failures = n(&stats.handshake_failures),
            "syslog listener stopped"
        );
    }
}

/// What every connection or datagram of one listener shares.
struct Listener {
    config: SyslogConfig,
    origin: Origin,
    defaults: message::Defaults,
    ingest: Arc<Ingest>,
    stats: Arc<SyslogStats>,
}

/// Pause before a batch the log could not take is tried again; doubles up
/// to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// How long a connection keeps retrying its batch once shutdown began.
const RETRY_AT_SHUTDOWN: Duration = Duration::from_secs(5);

impl Listener {
    fn allowed(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.config.allow.is_empty() || self.config.allow.iter().any(|net| net.contains(&peer))
    }

    /// The events of `frames`, each with the peer it came from.
    fn events(
        &self,
        frames: impl IntoIterator<Item = (frame::Frame, IpAddr)>,
        received_at_ms: i64,
    ) -> Vec<InEvent> {
        let mut bytes = 0u64;
        let mut truncated = 0u64;
        let events: Vec<InEvent> = frames
            .into_iter()
            .map(|(frame, peer)| {
                bytes += frame.bytes.len() as u64;
                truncated += u64::from(frame.truncated);
                message::to_event(frame, peer.to_canonical(), &self.defaults, received_at_ms)
            })
            .collect();
        SyslogStats::add(&self.stats.bytes, bytes);
        SyslogStats::add(&self.stats.truncated, truncated);
        events
    }

    /// Logs `events` once, returning after they are durable. Retries while
    /// the log cannot take them (`persist`: until they fit; else once,
    /// with the wait `submit` itself allows); gives up when the server is
    /// shutting down and [`RETRY_AT_SHUTDOWN`] has passed.
    async fn log_durably(
        &self,
        events: Vec<InEvent>,
        received_at_ms: i64,
        persist: bool,
        stopping: &watch::Receiver<bool>,
    ) -> Result<(), IngestError> {
        let count = events.len() as u64;
        let mut pause = RETRY_FIRST;
        let mut shutdown_deadline = None;
        loop {
            let submission = Submission {
                origin: self.origin.clone(),
                received_at_ms,
                events: events.clone(),
                agent_body: None,
            };
            let ingest = Arc::clone(&self.ingest);
            let result = tokio::task::spawn_blocking(move || ingest.submit(submission))
                .await
                .map_err(|_| IngestError::ShuttingDown)?;
            let error = match result {
                Ok(receipt) => {
                    self.ingest.wait_durable(receipt.durable_at).await;
                    SyslogStats::add(&self.stats.messages, count);
                    return Ok(());
                }
                Err(error @ (IngestError::ShuttingDown | IngestError::Invalid(_))) => {
                    return Err(error)
                }
                Err(error) if !persist => return Err(error),
                Err(error) => error,
            };
            let is_stopping = *stopping.borrow();
            if is_stopping {
                let deadline = *shutdown_deadline
                    .get_or_insert_with(|| tokio::time::Instant::now() + RETRY_AT_SHUTDOWN);
                if tokio::time::Instant::now() >= deadline {
                    return Err(error);
                }
            }
            tracing::debug!(listener = %self.config.name, %error, "syslog batch waits for the log");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_MAX);
        }
    }
}

/// Binds every listener of `configs` and starts serving them, until
/// `stopping` turns true. Each prints `syslog <name> listening on
/// <protocol>://<address>` on stdout.
pub async fn start(
    configs: &[SyslogConfig],
    ingest: &Arc<Ingest>,
    stopping: &watch::Receiver<bool>,
) -> anyhow::Result<Vec<Bound>> {
    let mut bound = Vec::new();
    for config in configs {
        let stats = Arc::new(SyslogStats::default());
        let listener = Arc::new(Listener {
            origin: Origin::Input(config.name.clone()),
            defaults: message::Defaults {
                listener: config.name.clone(),
                host: config.default_host.clone(),
                app: config.default_app.clone(),
            },
            ingest: Arc::clone(ingest),
            stats: Arc::clone(&stats),
            config: config.clone(),
        });
        let what = || {
            format!(
                "syslog listener {:?} cannot listen on {}",
                config.name, config.listen
            )
        };
        let (address, task) = match config.protocol {
            SyslogProtocol::Udp => {
                let socket = udp::bind(config).with_context(what)?;
                let address = socket.local_addr()?;
                (
                    address,
                    tokio::spawn(udp::serve(socket, listener, stopping.clone())),
                )
            }
            SyslogProtocol::Tcp | SyslogProtocol::Tls => {
                let tls = match &config.tls {
                    Some(tls) => Some((
                        crate::tls::syslog_acceptor(tls)?,
                        Duration::from_millis(tls.handshake_timeout_ms),
                    )),
                    None => None,
                };
                let socket = tokio::net::TcpListener::bind(config.listen)
                    .await
                    .with_context(what)?;
                let address = socket.local_addr()?;
                (
                    address,
                    tokio::spawn(tcp::serve(socket, tls, listener, stopping.clone())),
                )
            }
        };
        info!(listener = %config.name, protocol = config.protocol.as_str(), %address, "syslog listener ready");
        println!(
            "syslog {} listening on {}://{address}",
            config.name,
            config.protocol.as_str()
        );
        bound.push(Bound {
            name: config.name.clone(),
            address,
            stats,
            task,
        });
    }
    Ok(bound)
}

/// Completes once `stopping` is true (or its sender is gone).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

fn warn_dropped(listener: &Listener, count: u64, why: &dyn std::fmt::Display) {
    SyslogStats::add(&listener.stats.dropped, count);
    warn!(listener = %listener.config.name, count, %why, "syslog messages dropped");
}

#[cfg(test)]
mod tests;
