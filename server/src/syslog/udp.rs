//! Syslog over UDP: one task receives datagrams into a queue bounded in
//! bytes, another logs what the queue holds in batches. A datagram that
//! finds the queue full is dropped and counted.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use super::frame::Frame;
use super::{Listener, SyslogStats};
use crate::config::SyslogConfig;

/// Most bytes of datagrams waiting to be logged.
const QUEUE_MAX_BYTES: usize = 32 << 20;
/// Most messages per log record.
const BATCH_MAX_MESSAGES: usize = 10_000;

/// The socket for `config`, with its receive buffer enlarged.
pub(super) fn bind(config: &SyslogConfig) -> std::io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(config.listen);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if config.listen.is_ipv6() {
        let _ = socket.set_only_v6(false);
    }
    if let Err(error) = socket.set_recv_buffer_size(config.recv_buffer_bytes) {
        tracing::warn!(%error, "cannot set the syslog UDP socket's receive buffer");
    }
    socket.bind(&config.listen.into())?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

struct Datagram {
    frame: Frame,
    peer: SocketAddr,
}

pub(super) async fn serve(
    socket: UdpSocket,
    listener: Arc<Listener>,
    mut stopping: watch::Receiver<bool>,
) {
    let queued = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    let logger = tokio::spawn(log_batches(
        rx,
        Arc::clone(&queued),
        Arc::clone(&listener),
        stopping.clone(),
    ));
    let max = listener.config.max_message_bytes;
    let mut buf = vec![0u8; max + 1];
    loop {
        let (n, peer) = tokio::select! {
            () = super::stopped(&mut stopping) => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(error) => {
                    // ICMP errors and the like; the socket goes on.
                    tracing::debug!(%error, "syslog UDP receive failed");
                    continue;
                }
            },
        };
        if !listener.allowed(peer.ip()) {
            SyslogStats::add(&listener.stats.refused_peers, 1);
            continue;
        }
        let mut bytes = &buf[..n.min(max)];
        while let Some(rest) = bytes
            .strip_suffix(b"\n")
            .or_else(|| bytes.strip_suffix(b"\r"))
        {
            bytes = rest;
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if queued.load(Ordering::Relaxed) + bytes.len() > QUEUE_MAX_BYTES {
            SyslogStats::add(&listener.stats.dropped, 1);
            continue;
        }
        queued.fetch_add(bytes.len(), Ordering::Relaxed);
        let frame = Frame {
            bytes: bytes.to_vec(),
            truncated: n > max,
        };
        if tx.send(Datagram { frame, peer }).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = logger.await;
}

/// Logs what the queue holds, a batch at a time, until the receiver is
/// gone and the queue is empty.
async fn log_batches(
    mut rx: mpsc::UnboundedReceiver<Datagram>,
    queued: Arc<AtomicUsize>,
    listener: Arc<Listener>,
    stopping: watch::Receiver<bool>,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, BATCH_MAX_MESSAGES).await > 0 {
        let received_at_ms = crate::timeparse::now_ms();
        let bytes: usize = batch.iter().map(|d| d.frame.bytes.len()).sum();
        let events = listener.events(
            batch.drain(..).map(|d| (d.frame, d.peer.ip())),
            received_at_ms,
        );
        let count = events.len() as u64;
        let result = listener
            .log_durably(events, received_at_ms, false, &stopping)
            .await;
        queued.fetch_sub(bytes, Ordering::Relaxed);
        if let Err(error) = result {
            super::warn_dropped(&listener, count, &error);
        }
    }
}
