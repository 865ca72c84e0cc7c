//! Syslog over TCP and TLS: one task per connection, which reads, logs
//! what the read completed, waits for it to be durable, and only then
//! reads again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{watch, Semaphore};
use tracing::{debug, warn};

use super::frame::Decoder;
use super::{Listener, SyslogStats};

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 << 10;
/// Pause after a failed `accept` (such as too many open files).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

type Tls = (tokio_rustls::TlsAcceptor, Duration);

pub(super) async fn serve(
    socket: tokio::net::TcpListener,
    tls: Option<Tls>,
    listener: Arc<Listener>,
    mut stopping: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(listener.config.max_connections));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = super::stopped(&mut stopping) => break,
            accepted = socket.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    warn!(listener = %listener.config.name, %error, "cannot accept a syslog connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        // Finished connections' results, so the set does not grow.
        while connections.try_join_next().is_some() {}
        if !listener.allowed(peer.ip()) {
            SyslogStats::add(&listener.stats.refused_peers, 1);
            debug!(listener = %listener.config.name, %peer, "syslog peer not in `allow`; closed");
            continue;
        }
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            SyslogStats::add(&listener.stats.refused_connections, 1);
            warn!(
                listener = %listener.config.name, %peer,
                max_connections = listener.config.max_connections,
                "too many syslog connections; closed"
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let listener = Arc::clone(&listener);
        let stopping = stopping.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let _slot = slot;
            let stats = Arc::clone(&listener.stats);
            SyslogStats::add(&stats.connections, 1);
            match tls {
                None => read_connection(stream, peer, &listener, stopping).await,
                Some((acceptor, timeout)) => {
                    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => read_connection(stream, peer, &listener, stopping).await,
                        Ok(Err(error)) => {
                            SyslogStats::add(&stats.handshake_failures, 1);
                            debug!(%peer, %error, "syslog tls handshake failed");
                        }
                        Err(_) => {
                            SyslogStats::add(&stats.handshake_failures, 1);
                            debug!(%peer, "syslog tls handshake timed out");
                        }
                    }
                }
            }
            stats
                .connections
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        });
    }
    drop(socket);
    while connections.join_next().await.is_some() {}
}

/// Reads one connection until it ends, is idle too long, breaks its
/// framing or the server stops.
async fn read_connection<S: AsyncRead + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    listener: &Listener,
    mut stopping: watch::Receiver<bool>,
) {
    let config = &listener.config;
    let idle = Duration::from_millis(config.idle_timeout_ms);
    let mut decoder = Decoder::new(config.max_message_bytes);
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut frames = Vec::new();
    loop {
        let read = tokio::select! {
            () = super::stopped(&mut stopping) => None,
            read = tokio::time::timeout(idle, stream.read(&mut chunk)) => Some(read),
        };
        let mut ended = true;
        match read {
            None => debug!(%peer, "server stopping; syslog connection closed"),
            Some(Err(_)) => {
                debug!(%peer, idle_ms = config.idle_timeout_ms, "syslog connection idle; closed")
            }
            Some(Ok(Ok(0))) => {}
            Some(Ok(Err(error))) => debug!(%peer, %error, "syslog connection failed"),
            Some(Ok(Ok(n))) => {
                ended = false;
                if let Err(error) = decoder.push(&chunk[..n], &mut frames) {
                    SyslogStats::add(&listener.stats.framing_errors, 1);
                    warn!(listener = %config.name, %peer, %error, "syslog connection closed");
                    ended = true;
                }
            }
        }
        if ended {
            frames.extend(decoder.finish());
        }
        if !frames.is_empty() {
            let received_at_ms = crate::timeparse::now_ms();
            let events = listener.events(
                frames.drain(..).map(|frame| (frame, peer.ip())),
                received_at_ms,
            );
            let count = events.len() as u64;
            if let Err(error) = listener
                .log_durably(events, received_at_ms, true, &stopping)
                .await
            {
                // Only at shutdown, or for a batch the log refuses as such.
                super::warn_dropped(listener, count, &error);
                return;
            }
        }
        if ended {
            return;
        }
    }
}
