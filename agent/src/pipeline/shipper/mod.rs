//! Sends batches to the server over HTTP and retries until each is settled.
//!
//! A pool of `max_in_flight` threads takes batches from a channel. Each
//! batch is POSTed until the server answers 200 (acked) or a 4xx that says
//! the batch itself is unacceptable (413 over a server limit, 400 for an
//! event it cannot take). Such a batch is split in halves and each half
//! sent on its own, down to single events, so a server configured with
//! limits below the agent's batch size still gets every line, and one bad
//! event costs only itself: a single event the server still refuses is
//! logged with its file and offset and counted, never dropped silently.
//! Everything else — connection errors, 5xx, 408, 429, and 401/403 (the
//! operator must fix the token; nothing is dropped) — is retried with the
//! SAME body after an exponential backoff with full jitter, honouring
//! `Retry-After`. On failure the next server in the list is tried; while
//! a later server is in use, the first is tried again every
//! [`PRIMARY_PROBE_INTERVAL`], and used again as soon as it answers.
//!
//! With the disk spool on, a sender gives a batch up after
//! [`SPOOL_AFTER_ATTEMPTS`] failed attempts (and at least one on every
//! server) and hands it back as [`Outcome::Unreachable`]; the scheduler
//! spools it, and the replay threads ([`super::spool::replay`]) send it with
//! [`Patience::forever`] once a server answers again.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use loghound_shared::api::IngestResponse;
use loghound_shared::{AgentId, FileId};
use rand::Rng;

use super::batcher::Batch;
use super::checkpoints::BatchSeq;
use crate::metrics::Metrics;

mod client;

pub(crate) use client::Client;

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// Failed attempts after which a batch goes to the spool (when it is on).
pub(crate) const SPOOL_AFTER_ATTEMPTS: u32 = 3;
/// A server asking for a longer pause than this is not believed.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);
/// While a later server is in use, how often the first one is tried again.
pub(crate) const PRIMARY_PROBE_INTERVAL: Duration = Duration::from_secs(30);
/// zstd level of the halves of a split batch.
const SPLIT_ZSTD_LEVEL: i32 = 3;

/// Where and how to send.
#[derive(Debug, Clone)]
pub(crate) struct ShipperConfig {
    pub(crate) servers: Vec<String>,
    pub(crate) token: String,
    pub(crate) agent_id: AgentId,
    /// Roots to verify the servers' certificates with; `None`: the
    /// built-in public roots (webpki-roots).
    pub(crate) tls_roots: Option<Vec<ureq::tls::Certificate<'static>>>,
}

/// How a batch was settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Acked(IngestResponse),
    /// The server refused the batch itself (4xx other than 401/403/408/429).
    Rejected {
        status: u16,
        error: String,
    },
    /// No server took it within the sender's [`Patience`]: for the spool.
    Unreachable,
}

/// How long a sender keeps trying one batch, and how long it pauses at
/// most between tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Patience {
    /// Give the batch up after this many failed attempts; `None`: never.
    pub(crate) give_up_after: Option<u32>,
    pub(crate) backoff_cap: Duration,
}

impl Patience {
    /// Retry until the batch is settled.
    pub(crate) const fn forever(backoff_cap: Duration) -> Self {
        Self {
            give_up_after: None,
            backoff_cap,
        }
    }

    /// What the live senders use: forever without a spool; with one, a few
    /// attempts and at least one on every server.
    pub(crate) fn for_senders(spool: bool, num_servers: usize) -> Self {
        Self {
            give_up_after: spool.then(|| SPOOL_AFTER_ATTEMPTS.max(num_servers as u32)),
            backoff_cap: BACKOFF_CAP,
        }
    }
}

/// A settled batch, reported back to the scheduler.
#[derive(Debug)]
pub(crate) struct Settled {
    pub(crate) seq: BatchSeq,
    pub(crate) stream_ids: Vec<FileId>,
    pub(crate) outcome: Outcome,
    /// The batch itself, when it is [`Outcome::Unreachable`].
    pub(crate) unsent: Option<Batch>,
}

/// Result of one POST.
#[derive(Debug)]
enum Attempt {
    Settled(Outcome),
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
}

/// Exponential backoff with full jitter.
#[derive(Debug)]
pub(crate) struct Backoff {
    failures: u32,
    cap: Duration,
}

impl Backoff {
    pub(crate) fn with_cap(cap: Duration) -> Self {
        Self { failures: 0, cap }
    }

    /// The pause before the next try; `retry_after` (from the server) wins.
    pub(crate) fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let ceiling = BACKOFF_START
            .saturating_mul(1u32 << self.failures.min(20))
            .min(self.cap);
        self.failures = self.failures.saturating_add(1);
        match retry_after {
            Some(pause) => pause.min(RETRY_AFTER_CAP),
            None => {
                let millis = rand::rng().random_range(0..=ceiling.as_millis() as u64);
                Duration::from_millis(millis)
            }
        }
    }
}

/// Starts `num_threads` senders. Batches go in through the returned
/// channel; each settled batch comes out on `settled`. The threads end when
/// the batch channel is closed (or with the process). The client is
/// returned for the replay threads to share.
pub(crate) fn start(
    config: ShipperConfig,
    num_threads: usize,
    patience: Patience,
    settled: Sender<Settled>,
    metrics: Arc<Metrics>,
) -> (Sender<Batch>, Arc<Client>) {
    let (batches, queue) = crossbeam_channel::unbounded::<Batch>();
    let client = Arc::new(Client::new(config, metrics));
    for index in 0..num_threads {
        let (client, queue, settled) = (client.clone(), queue.clone(), settled.clone());
        let spawned = thread::Builder::new()
            .name(format!("sender-{index}"))
            .spawn(move || sender_loop(&client, patience, &queue, &settled));
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start a sender thread");
        }
    }
    (batches, client)
}

fn sender_loop(
    client: &Client,
    patience: Patience,
    queue: &Receiver<Batch>,
    settled: &Sender<Settled>,
) {
    while let Ok(batch) = queue.recv() {
        let outcome = client.deliver(&batch, patience);
        let stream_ids = batch.stream_ids();
        let seq = batch.seq;
        let unsent = (outcome == Outcome::Unreachable).then_some(batch);
        if settled
            .send(Settled {
                seq,
                stream_ids,
                outcome,
                unsent,
            })
            .is_err()
        {
            return;
        }
    }
}
