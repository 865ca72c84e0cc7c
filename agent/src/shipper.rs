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
//! spools it, and the replay threads ([`crate::replay`]) send it with
//! [`Patience::forever`] once a server answers again.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use loghound_shared::api::{self, ErrorBody, IngestResponse};
use loghound_shared::{AgentId, FileId, PROTOCOL_VERSION};
use rand::Rng;

use crate::batcher::Batch;
use crate::checkpointer::BatchSeq;
use crate::metrics::Metrics;

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
    pub(crate) file_ids: Vec<FileId>,
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
    metrics: Arc<Metrics>,
}

impl Client {
    fn new(config: ShipperConfig, metrics: Arc<Metrics>) -> Self {
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
            metrics,
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
            let current = self.current_server.load(Ordering::Relaxed);
            if self.probe_primary(current) {
                if let Attempt::Settled(outcome) = self.attempt(&self.config.servers[0], body) {
                    tracing::info!(server = %self.config.servers[0], "first server answers again; using it");
                    self.current_server.store(0, Ordering::Relaxed);
                    return outcome;
                }
            }
            let server_index = current % self.config.servers.len();
            let server = &self.config.servers[server_index];
            match self.attempt(server, body) {
                Attempt::Settled(outcome) => return outcome,
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
                    thread::sleep(delay);
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
        let file_ids = batch.file_ends.iter().map(|(id, _)| id.clone()).collect();
        let seq = batch.seq;
        let unsent = (outcome == Outcome::Unreachable).then_some(batch);
        if settled
            .send(Settled {
                seq,
                file_ids,
                outcome,
                unsent,
            })
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::Mutex;

    use super::*;

    struct Request {
        head: String,
        body: Vec<u8>,
    }

    /// Answers each connection with the next canned response and records
    /// the requests.
    fn serve(responses: Vec<(&'static str, &'static str)>) -> (String, Arc<Mutex<Vec<Request>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = seen.clone();
        thread::spawn(move || {
            for response in responses {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    head.push_str(&line.to_ascii_lowercase());
                }
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                recorded.lock().unwrap().push(Request { head, body });
                let mut stream = reader.into_inner();
                let (head, body) = response;
                let answer = format!(
                    "{head}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(answer.as_bytes()).unwrap();
            }
        });
        (address, seen)
    }

    fn batch() -> Batch {
        Batch {
            seq: BatchSeq(7),
            body: b"pretend zstd".to_vec(),
            num_events: 1,
            file_ends: vec![(FileId::new("f1").unwrap(), loghound_shared::ByteOffset(10))],
        }
    }

    const FOREVER: Patience = Patience::forever(BACKOFF_CAP);

    fn client(servers: Vec<String>) -> Client {
        Client::new(
            ShipperConfig {
                servers,
                token: "s3cret".into(),
                agent_id: AgentId::new("agent1").unwrap(),
                tls_roots: None,
            },
            Arc::new(Metrics::default()),
        )
    }

    #[test]
    fn retries_the_same_body_after_503_with_retry_after() {
        let (address, seen) = serve(vec![
            (
                "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1",
                r#"{"error":"indexer behind"}"#,
            ),
            ("HTTP/1.1 200 OK", r#"{"accepted":1,"duplicates":0}"#),
        ]);
        let started = std::time::Instant::now();
        let client = client(vec![address]);
        let outcome = client.deliver(&batch(), FOREVER);
        assert_eq!(
            outcome,
            Outcome::Acked(IngestResponse {
                accepted: 1,
                duplicates: 0
            })
        );
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "Retry-After was honoured"
        );
        assert_eq!(client.metrics.retries.load(Ordering::Relaxed), 1);
        let error = client.metrics.last_error().unwrap().message;
        assert!(error.contains("503: indexer behind"), "{error}");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].body, seen[1].body);
        assert_eq!(seen[0].body, b"pretend zstd");
        let head = &seen[0].head;
        assert!(head.starts_with("post /api/v1/ingest "), "{head}");
        assert!(head.contains("authorization: bearer s3cret"), "{head}");
        assert!(head.contains("content-encoding: zstd"), "{head}");
        assert!(
            head.contains("content-type: application/x-ndjson"),
            "{head}"
        );
        assert!(head.contains("x-loghound-protocol: 1"), "{head}");
        assert!(head.contains("x-loghound-agent: agent1"), "{head}");
    }

    #[test]
    fn malformed_batch_is_rejected_not_retried() {
        let (address, seen) = serve(vec![(
            "HTTP/1.1 400 Bad Request",
            r#"{"error":"line 1: broken"}"#,
        )]);
        let outcome = client(vec![address]).deliver(&batch(), FOREVER);
        assert_eq!(
            outcome,
            Outcome::Rejected {
                status: 400,
                error: "line 1: broken".into()
            }
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    /// Answers every connection with `handler(body)` until dropped.
    fn serve_with(
        handler: fn(&[u8]) -> (&'static str, String),
        listener: TcpListener,
    ) -> Arc<Mutex<Vec<Vec<u8>>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = seen.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut reader = BufReader::new(stream);
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let (head, answer) = handler(&body);
                recorded.lock().unwrap().push(body);
                let mut stream = reader.into_inner();
                let text = format!(
                    "{head}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = stream.write_all(text.as_bytes());
            }
        });
        seen
    }

    fn events(messages: &[&str]) -> Vec<loghound_shared::Event> {
        messages
            .iter()
            .enumerate()
            .map(|(i, m)| loghound_shared::Event {
                file_id: FileId::new("f1").unwrap(),
                offset: loghound_shared::ByteOffset(i as u64 * 10),
                end_offset: loghound_shared::ByteOffset(i as u64 * 10 + 10),
                host: "h".into(),
                source: "/var/log/f1.log".into(),
                message: m.to_string(),
                read_at_ms: None,
                tags: Default::default(),
                truncated: false,
                invalid_utf8: false,
                format: None,
            })
            .collect()
    }

    fn real_batch(messages: &[&str]) -> Batch {
        Batch {
            seq: BatchSeq(1),
            body: loghound_shared::encode_batch(&events(messages), 3).unwrap(),
            num_events: messages.len(),
            file_ends: vec![(FileId::new("f1").unwrap(), loghound_shared::ByteOffset(100))],
        }
    }

    /// More than two events: 413; an event saying BAD: 400; else 200.
    fn picky(body: &[u8]) -> (&'static str, String) {
        let events = decode_own_batch(body).unwrap();
        if events.len() > 2 {
            return (
                "HTTP/1.1 413 Payload Too Large",
                r#"{"error":"too many events","limit":"max_events"}"#.into(),
            );
        }
        if events.iter().any(|e| e.message == "BAD") {
            return (
                "HTTP/1.1 400 Bad Request",
                r#"{"error":"line 1: unacceptable"}"#.into(),
            );
        }
        (
            "HTTP/1.1 200 OK",
            format!(r#"{{"accepted":{},"duplicates":0}}"#, events.len()),
        )
    }

    #[test]
    fn a_refused_batch_is_split_down_to_the_one_bad_event() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let seen = serve_with(picky, listener);
        let client = client(vec![address]);
        let outcome = client.deliver(&real_batch(&["a", "b", "c", "BAD", "e", "f"]), FOREVER);
        assert_eq!(
            outcome,
            Outcome::Acked(IngestResponse {
                accepted: 5,
                duplicates: 0
            })
        );
        assert_eq!(client.num_rejected.load(Ordering::Relaxed), 1);
        assert_eq!(client.metrics.refused_events.load(Ordering::Relaxed), 1);
        assert_eq!(client.metrics.retries.load(Ordering::Relaxed), 0);
        // Every good line went through once, in file order.
        let delivered: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|body| decode_own_batch(body).unwrap())
            .filter(|events| events.len() <= 2 && events.iter().all(|e| e.message != "BAD"))
            .flatten()
            .map(|e| e.message)
            .collect();
        assert_eq!(delivered, ["a", "b", "c", "e", "f"]);
    }

    #[test]
    fn returns_to_the_first_server_once_it_answers_again() {
        // The first server's port, with nothing listening on it yet.
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let first_address = first.local_addr().unwrap();
        drop(first);
        let second = TcpListener::bind("127.0.0.1:0").unwrap();
        let second_url = format!("http://{}", second.local_addr().unwrap());
        let second_seen = serve_with(picky, second);
        let mut client = client(vec![format!("http://{first_address}"), second_url]);
        client.probe_interval = Duration::from_millis(100);

        let outcome = client.deliver(&real_batch(&["one"]), FOREVER);
        assert!(matches!(outcome, Outcome::Acked(_)), "{outcome:?}");
        assert_eq!(second_seen.lock().unwrap().len(), 1);
        assert_eq!(client.current_server.load(Ordering::Relaxed), 1);

        // The first server comes back; after the probe interval the next
        // batch goes to it, and so does the one after.
        let Ok(first) = TcpListener::bind(first_address) else {
            panic!("port {first_address} was taken meanwhile");
        };
        let first_seen = serve_with(picky, first);
        thread::sleep(Duration::from_millis(150));
        client.deliver(&real_batch(&["two"]), FOREVER);
        client.deliver(&real_batch(&["three"]), FOREVER);
        assert_eq!(first_seen.lock().unwrap().len(), 2);
        assert_eq!(second_seen.lock().unwrap().len(), 1);
        assert_eq!(client.current_server.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn with_a_spool_an_unreachable_batch_is_handed_back_after_every_server_failed() {
        // Two ports with nothing listening.
        let dead: Vec<String> = (0..2)
            .map(|_| {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                format!("http://{}", listener.local_addr().unwrap())
            })
            .collect();
        let patience = Patience::for_senders(true, dead.len());
        assert_eq!(patience.give_up_after, Some(SPOOL_AFTER_ATTEMPTS));
        assert_eq!(
            Patience::for_senders(true, 5).give_up_after,
            Some(5),
            "at least one attempt on every server"
        );
        assert_eq!(Patience::for_senders(false, 2).give_up_after, None);
        let client = client(dead);
        assert_eq!(
            client.deliver(&real_batch(&["one"]), patience),
            Outcome::Unreachable
        );
    }

    #[test]
    fn classification() {
        assert!(matches!(
            classify(401, "{\"error\":\"bad token\"}", None),
            Attempt::Retry { .. }
        ));
        assert!(matches!(classify(403, "", None), Attempt::Retry { .. }));
        assert!(matches!(classify(408, "", None), Attempt::Retry { .. }));
        assert!(matches!(classify(500, "", None), Attempt::Retry { .. }));
        let pause = Some(Duration::from_secs(3));
        assert!(matches!(
            classify(429, "", pause),
            Attempt::Retry {
                retry_after: Some(_),
                ..
            }
        ));
        assert!(matches!(
            classify(413, "{\"error\":\"too big\"}", None),
            Attempt::Settled(Outcome::Rejected { status: 413, .. })
        ));
    }

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap() {
        let mut backoff = Backoff::with_cap(BACKOFF_CAP);
        for _ in 0..40 {
            assert!(backoff.next_delay(None) <= BACKOFF_CAP);
        }
        assert_eq!(
            backoff.next_delay(Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        let mut first = Backoff::with_cap(BACKOFF_CAP);
        assert!(first.next_delay(None) <= BACKOFF_START);
    }
}
