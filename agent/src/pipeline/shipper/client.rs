//! The HTTP side of shipping, shared by the sender and replay threads:
//! one POST per attempt, failover across the configured servers, the
//! return to the first one, and splitting a batch the server refuses whole.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use loghound_shared::api::{self, ErrorBody, IngestResponse};
use loghound_shared::PROTOCOL_VERSION;

use super::{
    Attempt, Backoff, Outcome, Patience, ShipperConfig, PRIMARY_PROBE_INTERVAL, SPLIT_ZSTD_LEVEL,
};
use crate::metrics::Metrics;
use crate::pipeline::batcher::Batch;
use crate::pipeline::checkpoints::BatchSeq;

/// What the parts of a split batch added up to.
#[derive(Debug, Default)]
struct Split {
    accepted: u64,
    duplicates: u64,
    delivered_any: bool,
}

/// The HTTP side, shared by the sender and replay threads.
#[derive(Debug)]
pub(crate) struct Client {
    http: ureq::Agent,
    config: ShipperConfig,
    /// Index into `config.servers` of the server to use now.
    current_server: AtomicUsize,
    /// When the first server is next tried while a later one is in use,
    /// in ms since `started`.
    next_primary_probe_ms: AtomicU64,
    started: std::time::Instant,
    probe_interval: Duration,
    /// Single events the server refused, given up on.
    num_rejected: AtomicU64,
    /// Counts the answers that settled a batch; a thread pausing between
    /// tries wakes when it moves, so a returning server gets every waiting
    /// batch at once rather than each at the end of its own backoff.
    answers: Mutex<u64>,
    answered: Condvar,
    metrics: Arc<Metrics>,
}

impl Client {
    pub(super) fn new(config: ShipperConfig, metrics: Arc<Metrics>) -> Self {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(roots) = &config.tls_roots {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(roots));
        }
        let http = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Self {
            http,
            config,
            current_server: AtomicUsize::new(0),
            next_primary_probe_ms: AtomicU64::new(0),
            started: std::time::Instant::now(),
            probe_interval: PRIMARY_PROBE_INTERVAL,
            num_rejected: AtomicU64::new(0),
            answers: Mutex::new(0),
            answered: Condvar::new(),
            metrics,
        }
    }

    fn num_answers(&self) -> u64 {
        *self.answers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn note_answer(&self) {
        *self.answers.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.answered.notify_all();
    }

    /// Sleeps `delay`, or less if some server settles a batch after
    /// `seen` answers (a server is back: no reason to wait out a backoff).
    fn pause(&self, delay: Duration, seen: u64) {
        let deadline = Instant::now() + delay;
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        while *answers == seen {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            answers = self
                .answered
                .wait_timeout(answers, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Sends `batch` until it is settled or `patience` runs out, splitting
    /// it if the server refuses it whole (see the module docs).
    pub(crate) fn deliver(&self, batch: &Batch, patience: Patience) -> Outcome {
        let outcome = self.deliver_body(&batch.body, batch.seq, patience);
        let Outcome::Rejected { status, error } = &outcome else {
            return outcome;
        };
        let events = match decode_own_batch(&batch.body) {
            Ok(events) if events.len() > 1 => events,
            Ok(events) => {
                self.give_up(&events, *status, error, batch.seq);
                return outcome;
            }
            Err(decode_error) => {
                tracing::error!(status, %error, %decode_error, seq = batch.seq.0, "server refused a batch the agent cannot split");
                return outcome;
            }
        };
        tracing::warn!(status, %error, seq = batch.seq.0, num_events = events.len(), "server refused a batch whole; sending it in halves");
        // The server answers; the parts are sent until each is settled.
        let patience = Patience::forever(patience.backoff_cap);
        let mut split = Split::default();
        let half = events.len() / 2;
        self.send_part(&events[..half], batch.seq, patience, &mut split);
        self.send_part(&events[half..], batch.seq, patience, &mut split);
        if split.delivered_any {
            Outcome::Acked(IngestResponse {
                accepted: split.accepted,
                duplicates: split.duplicates,
            })
        } else {
            outcome
        }
    }

    /// Sends part of a split batch, in halves again if it is refused.
    fn send_part(
        &self,
        part: &[loghound_shared::Event],
        seq: BatchSeq,
        patience: Patience,
        split: &mut Split,
    ) {
        if part.is_empty() {
            return;
        }
        let body = match loghound_shared::encode_batch(part, SPLIT_ZSTD_LEVEL) {
            Ok(body) => body,
            Err(encode_error) => {
                tracing::error!(%encode_error, "cannot encode part of a split batch");
                self.give_up(part, 0, "cannot encode", seq);
                return;
            }
        };
        match self.deliver_body(&body, seq, patience) {
            Outcome::Acked(answer) => {
                split.accepted += answer.accepted;
                split.duplicates += answer.duplicates;
                split.delivered_any = true;
            }
            Outcome::Rejected { .. } if part.len() > 1 => {
                let half = part.len() / 2;
                self.send_part(&part[..half], seq, patience, split);
                self.send_part(&part[half..], seq, patience, split);
            }
            Outcome::Rejected { status, error } => self.give_up(part, status, &error, seq),
            Outcome::Unreachable => {
                debug_assert!(
                    false,
                    "parts of a split batch are sent with endless patience"
                );
            }
        }
    }

    /// Logs and counts events the server refuses even on their own.
    fn give_up(&self, events: &[loghound_shared::Event], status: u16, error: &str, seq: BatchSeq) {
        self.metrics
            .refused_events
            .fetch_add(events.len().max(1) as u64, Ordering::Relaxed);
        self.metrics
            .note_error(format!("server refused a line ({status}): {error}"));
        for event in events {
            let num_rejected = self.num_rejected.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(status, %error, seq = seq.0, file_id = %event.file_id, offset = event.offset.0, source = %event.source, num_rejected, "server refused a line on its own; giving it up");
        }
        if events.is_empty() {
            self.num_rejected.fetch_add(1, Ordering::Relaxed);
            tracing::error!(status, %error, seq = seq.0, "server refused an empty batch");
        }
    }

    /// Whether to try the first server now instead of the later one in use.
    fn probe_primary(&self, server_index: usize) -> bool {
        if server_index.is_multiple_of(self.config.servers.len()) {
            return false;
        }
        let now = self.started.elapsed().as_millis() as u64;
        let due = self.next_primary_probe_ms.load(Ordering::Relaxed);
        now >= due
            && self
                .next_primary_probe_ms
                .compare_exchange(
                    due,
                    now + self.probe_interval.as_millis() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// POSTs `body` until it is acked or refused, or `patience` runs out.
    fn deliver_body(&self, body: &[u8], seq: BatchSeq, patience: Patience) -> Outcome {
        let mut backoff = Backoff::with_cap(patience.backoff_cap);
        let mut num_failures = 0u32;
        loop {
            let seen = self.num_answers();
            let current = self.current_server.load(Ordering::Relaxed);
            if self.probe_primary(current) {
                if let Attempt::Settled(outcome) = self.attempt(&self.config.servers[0], body) {
                    tracing::info!(server = %self.config.servers[0], "first server answers again; using it");
                    self.current_server.store(0, Ordering::Relaxed);
                    self.note_answer();
                    return outcome;
                }
            }
            let server_index = current % self.config.servers.len();
            let server = &self.config.servers[server_index];
            match self.attempt(server, body) {
                Attempt::Settled(outcome) => {
                    self.note_answer();
                    return outcome;
                }
                Attempt::Retry {
                    reason,
                    retry_after,
                } => {
                    num_failures += 1;
                    self.metrics.retries.fetch_add(1, Ordering::Relaxed);
                    self.metrics
                        .note_error(format!("batch not delivered to {server}: {reason}"));
                    // Fail over: the next server gets the next try.
                    let next = (server_index + 1) % self.config.servers.len();
                    if next != 0 && self.current_server.load(Ordering::Relaxed) == current {
                        // The first server is tried again after a while.
                        let now = self.started.elapsed().as_millis() as u64;
                        self.next_primary_probe_ms.store(
                            now + self.probe_interval.as_millis() as u64,
                            Ordering::Relaxed,
                        );
                    }
                    let _ = self.current_server.compare_exchange(
                        current,
                        next,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    if patience
                        .give_up_after
                        .is_some_and(|limit| num_failures >= limit)
                    {
                        tracing::warn!(server = %server, %reason, seq = seq.0, num_failures, "batch not delivered; handing it to the spool");
                        return Outcome::Unreachable;
                    }
                    let delay = backoff.next_delay(retry_after);
                    tracing::warn!(server = %server, %reason, seq = seq.0, retry_in_ms = delay.as_millis() as u64, "batch not delivered; will retry");
                    if retry_after.is_some() {
                        // The server said how long to wait.
                        std::thread::sleep(delay);
                    } else {
                        self.pause(delay, seen);
                    }
                }
            }
        }
    }

    fn attempt(&self, server: &str, body: &[u8]) -> Attempt {
        let url = format!("{}{}", server.trim_end_matches('/'), api::INGEST_PATH);
        let result = self
            .http
            .post(&url)
            .header("authorization", format!("Bearer {}", self.config.token))
            .header("content-type", api::BATCH_CONTENT_TYPE)
            .header("content-encoding", api::BATCH_CONTENT_ENCODING)
            .header(api::HEADER_PROTOCOL, PROTOCOL_VERSION.to_string())
            .header(api::HEADER_AGENT, self.config.agent_id.as_str())
            .send(body);
        let mut response = match result {
            Ok(response) => response,
            Err(error) => {
                let reason = error.to_string();
                if reason.contains("certificate") {
                    // Retried like any failure (nothing is dropped), but
                    // said plainly: only the operator can fix it.
                    tracing::error!(server = %server, %reason, "server certificate refused; set tls_ca (--tls-ca) to the CA that signed it; batches are kept and retried");
                }
                return Attempt::Retry {
                    reason,
                    retry_after: None,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.body_mut().read_to_string().unwrap_or_default();
        classify(status, &text, retry_after)
    }
}

/// Decodes a batch this agent encoded, to split it.
fn decode_own_batch(
    body: &[u8],
) -> Result<Vec<loghound_shared::Event>, loghound_shared::DecodeError> {
    // Generous bounds: the agent made this batch from its own bounded
    // batches.
    let limits = loghound_shared::Limits {
        max_compressed_bytes: 1 << 30,
        max_decompressed_bytes: 1 << 32,
        max_line_bytes: 1 << 30,
        max_events: 1 << 30,
    };
    loghound_shared::decode_batch(body, &limits)
}

/// Decides what an HTTP answer means for the batch.
fn classify(status: u16, body: &str, retry_after: Option<Duration>) -> Attempt {
    let error_message = || {
        serde_json::from_str::<ErrorBody>(body)
            .map(|parsed| parsed.error)
            .unwrap_or_else(|_| body.chars().take(300).collect())
    };
    match status {
        200..=299 => {
            let answer = serde_json::from_str::<IngestResponse>(body).unwrap_or_else(|error| {
                tracing::warn!(%error, "server acked a batch with an unexpected body");
                IngestResponse {
                    accepted: 0,
                    duplicates: 0,
                }
            });
            Attempt::Settled(Outcome::Acked(answer))
        }
        401 | 403 => {
            let error = error_message();
            tracing::error!(status, %error, "server refused the agent's token; fix the token, batches are kept and retried");
            Attempt::Retry {
                reason: format!("{status}: {error}"),
                retry_after: None,
            }
        }
        408 | 429 => Attempt::Retry {
            reason: format!("{status}: {}", error_message()),
            retry_after,
        },
        400..=499 => Attempt::Settled(Outcome::Rejected {
            status,
            error: error_message(),
        }),
        503 => Attempt::Retry {
            reason: format!("{status}: {}", error_message()),
            retry_after,
        },
        _ => Attempt::Retry {
            reason: format!("{status}: {}", error_message()),
            retry_after: None,
        },
    }
}

#[cfg(test)]
mod tests;
