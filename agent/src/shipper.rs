//! Sends batches to the server over HTTP and retries until each is settled.
//!
//! A pool of `max_in_flight` threads takes batches from a channel. Each
//! batch is POSTed until the server answers 200 (acked) or a 4xx that says
//! the batch itself is bad (rejected: an agent or server bug, logged and
//! counted, then treated as settled so the pipeline moves on). Everything
//! else — connection errors, 5xx, 408, 429, and 401/403 (the operator must
//! fix the token; nothing is dropped) — is retried with the SAME body after
//! an exponential backoff with full jitter, honouring `Retry-After`. On
//! failure the next server in the list is tried.

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

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// A server asking for a longer pause than this is not believed.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);

/// Where and how to send.
#[derive(Debug, Clone)]
pub(crate) struct ShipperConfig {
    pub(crate) servers: Vec<String>,
    pub(crate) token: String,
    pub(crate) agent_id: AgentId,
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
}

/// A settled batch, reported back to the scheduler.
#[derive(Debug)]
pub(crate) struct Settled {
    pub(crate) seq: BatchSeq,
    pub(crate) file_ids: Vec<FileId>,
    pub(crate) outcome: Outcome,
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
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self { failures: 0 }
    }

    /// The pause before the next try; `retry_after` (from the server) wins.
    pub(crate) fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let ceiling = BACKOFF_START
            .saturating_mul(1u32 << self.failures.min(20))
            .min(BACKOFF_CAP);
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

/// The HTTP side, shared by the sender threads.
#[derive(Debug)]
struct Client {
    http: ureq::Agent,
    config: ShipperConfig,
    /// Index into `config.servers` of the server to use now.
    current_server: AtomicUsize,
    num_rejected: AtomicU64,
}

impl Client {
    fn new(config: ShipperConfig) -> Self {
        let http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Self {
            http,
            config,
            current_server: AtomicUsize::new(0),
            num_rejected: AtomicU64::new(0),
        }
    }

    /// Sends `batch` until it is settled.
    fn deliver(&self, batch: &Batch) -> Outcome {
        let mut backoff = Backoff::new();
        loop {
            let server_index = self.current_server.load(Ordering::Relaxed);
            let server = &self.config.servers[server_index % self.config.servers.len()];
            match self.attempt(server, &batch.body) {
                Attempt::Settled(outcome) => {
                    if let Outcome::Rejected { status, error } = &outcome {
                        let num_rejected = self.num_rejected.fetch_add(1, Ordering::Relaxed) + 1;
                        tracing::error!(status, %error, seq = batch.seq.0, num_events = batch.num_events, num_rejected, "server rejected a batch as malformed; this is an agent or server bug; skipping the batch");
                    }
                    return outcome;
                }
                Attempt::Retry {
                    reason,
                    retry_after,
                } => {
                    let delay = backoff.next_delay(retry_after);
                    tracing::warn!(server = %server, %reason, seq = batch.seq.0, retry_in_ms = delay.as_millis() as u64, "batch not delivered; will retry");
                    // Fail over: the next server gets the next try.
                    let _ = self.current_server.compare_exchange(
                        server_index,
                        (server_index + 1) % self.config.servers.len(),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
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
                return Attempt::Retry {
                    reason: error.to_string(),
                    retry_after: None,
                }
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
/// the batch channel is closed (or with the process).
pub(crate) fn start(
    config: ShipperConfig,
    num_threads: usize,
    settled: Sender<Settled>,
) -> Sender<Batch> {
    let (batches, queue) = crossbeam_channel::unbounded::<Batch>();
    let client = Arc::new(Client::new(config));
    for index in 0..num_threads {
        let (client, queue, settled) = (client.clone(), queue.clone(), settled.clone());
        let spawned = thread::Builder::new()
            .name(format!("sender-{index}"))
            .spawn(move || sender_loop(&client, &queue, &settled));
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start a sender thread");
        }
    }
    batches
}

fn sender_loop(client: &Client, queue: &Receiver<Batch>, settled: &Sender<Settled>) {
    while let Ok(batch) = queue.recv() {
        let outcome = client.deliver(&batch);
        let file_ids = batch.file_ends.iter().map(|(id, _)| id.clone()).collect();
        if settled
            .send(Settled {
                seq: batch.seq,
                file_ids,
                outcome,
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

    fn client(servers: Vec<String>) -> Client {
        Client::new(ShipperConfig {
            servers,
            token: "s3cret".into(),
            agent_id: AgentId::new("agent1").unwrap(),
        })
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
        let outcome = client(vec![address]).deliver(&batch());
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
        let outcome = client(vec![address]).deliver(&batch());
        assert_eq!(
            outcome,
            Outcome::Rejected {
                status: 400,
                error: "line 1: broken".into()
            }
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
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
        let mut backoff = Backoff::new();
        for _ in 0..40 {
            assert!(backoff.next_delay(None) <= BACKOFF_CAP);
        }
        assert_eq!(
            backoff.next_delay(Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        let mut first = Backoff::new();
        assert!(first.next_delay(None) <= BACKOFF_START);
    }
}
