//! Ingest load: clients that POST batches of numbered lines straight to
//! the server as fast as it takes them, and record exactly which batches
//! were acknowledged.
//!
//! A client sends its batches in order and retries a batch until it is
//! acknowledged: after a 429, 503 or 507 it waits what `Retry-After` says
//! (at most [`LoadOptions::max_retry_pause`]), after a transport error
//! (server killed, restarting) a moment. Asked to stop, it gives up the
//! batch in hand, which is then *unacknowledged*: it may or may not be
//! stored, but never twice. [`assert_acked_once`] checks the server against
//! what the clients recorded.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loghound_shared::api::{IngestResponse, INGEST_PATH};
use loghound_shared::encode_batch;

use crate::data::{events, numbered_line, parse_numbered};
use crate::http::{hit_message, ingest_headers, search_all};

/// Numbers available to each client: client `c` sends `c * STRIDE ..`.
pub const NUMBERS_PER_CLIENT: u64 = 400_000;

/// What the clients send.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Base URL of the server.
    pub url: String,
    /// A token with the `ingest` scope.
    pub token: String,
    /// The tag every line starts with (see [`numbered_line`]).
    pub tag: String,
    /// Concurrent clients, each with its own file stream.
    pub clients: u64,
    /// Events per batch.
    pub events_per_batch: u64,
    /// Bytes of padding appended to each line, to make batches big.
    pub pad_bytes: usize,
    /// Batches per client; `None`: until stopped.
    pub batches_per_client: Option<u64>,
    /// Longest pause a `Retry-After` may impose.
    pub max_retry_pause: Duration,
}

/// What one client saw.
#[derive(Debug, Default, Clone)]
pub struct ClientReport {
    /// Numbers of the acknowledged batches.
    pub acked: Vec<Range<u64>>,
    /// The batch given up when the client was stopped.
    pub unacked: Option<Range<u64>>,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// 429/503/507 answers without a `Retry-After` header.
    pub missing_retry_after: u64,
    /// Bodies of the first few non-200 answers, by status.
    pub samples: BTreeMap<u16, String>,
    /// Requests that got no HTTP answer (connection refused or reset).
    pub transport_errors: u64,
    /// Bytes of the lines of acknowledged batches (their messages).
    pub acked_line_bytes: u64,
}

/// Running clients.
pub struct Load {
    stop: Arc<AtomicBool>,
    acked_events: Arc<AtomicU64>,
    statuses_507: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<ClientReport>>,
}

impl Load {
    /// Starts `options.clients` client threads.
    pub fn start(options: &LoadOptions) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked_events = Arc::new(AtomicU64::new(0));
        let statuses_507 = Arc::new(AtomicU64::new(0));
        let threads = (0..options.clients)
            .map(|client| {
                let options = options.clone();
                let (stop, acked, full) = (
                    Arc::clone(&stop),
                    Arc::clone(&acked_events),
                    Arc::clone(&statuses_507),
                );
                std::thread::Builder::new()
                    .name(format!("load-{client}"))
                    .spawn(move || run_client(&options, client, &stop, &acked, &full))
                    .expect("spawn a load client")
            })
            .collect();
        Load {
            stop,
            acked_events,
            statuses_507,
            threads,
        }
    }

    /// Events acknowledged so far, over all clients.
    pub fn acked_events(&self) -> u64 {
        self.acked_events.load(Ordering::SeqCst)
    }

    /// 507 answers so far, over all clients.
    pub fn insufficient_storage_answers(&self) -> u64 {
        self.statuses_507.load(Ordering::SeqCst)
    }

    /// Whether every client has finished its batches.
    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }

    /// Tells the clients to stop and waits for them.
    pub fn stop(self) -> Vec<ClientReport> {
        self.stop.store(true, Ordering::SeqCst);
        self.join()
    }

    /// Waits for the clients to finish their batches.
    pub fn join(self) -> Vec<ClientReport> {
        self.threads
            .into_iter()
            .map(|t| t.join().expect("load client thread panicked"))
            .collect()
    }
}

/// The padded numbered line `number`.
pub fn load_line(tag: &str, number: u64, pad_bytes: usize) -> String {
    let mut line = numbered_line(tag, number);
    if pad_bytes > 0 {
        line.push(' ');
        line.extend(std::iter::repeat_n('p', pad_bytes));
    }
    line
}

fn run_client(
    options: &LoadOptions,
    client: u64,
    stop: &AtomicBool,
    acked_events: &AtomicU64,
    statuses_507: &AtomicU64,
) -> ClientReport {
    let http = crate::http::client();
    let headers = ingest_headers(&options.token, &format!("load-agent-{}", options.tag));
    let url = format!("{}{INGEST_PATH}", options.url);
    let file_id = format!("load-{}-{client}", options.tag);
    let mut report = ClientReport::default();
    let mut offset = 0u64;
    let first_number = client * NUMBERS_PER_CLIENT;
    let mut batch = 0u64;
    loop {
        if options.batches_per_client.is_some_and(|n| batch >= n) {
            return report;
        }
        let start = first_number + batch * options.events_per_batch;
        let numbers = start..start + options.events_per_batch;
        assert!(
            numbers.end <= first_number + NUMBERS_PER_CLIENT,
            "client {client} ran out of numbers"
        );
        let messages: Vec<String> = numbers
            .clone()
            .map(|n| load_line(&options.tag, n, options.pad_bytes))
            .collect();
        let line_bytes: u64 = messages.iter().map(|m| m.len() as u64).sum();
        let batch_events = events(&file_id, offset, &messages);
        let body = encode_batch(&batch_events, 1).expect("encode a batch");
        loop {
            if stop.load(Ordering::SeqCst) {
                report.unacked = Some(numbers);
                return report;
            }
            let mut request = http.post(&url);
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            let response = match request.send(&body[..]) {
                Ok(response) => response,
                Err(_) => {
                    report.transport_errors += 1;
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            let status = response.status().as_u16();
            *report.statuses.entry(status).or_default() += 1;
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let text = response.into_body().read_to_string().unwrap_or_default();
            match status {
                200 => {
                    let answer: IngestResponse = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("ingest 200 with a bad body ({e}): {text}"));
                    assert_eq!(
                        answer.accepted + answer.duplicates,
                        options.events_per_batch,
                        "ingest answer does not cover the batch: {text}"
                    );
                    acked_events.fetch_add(options.events_per_batch, Ordering::SeqCst);
                    report.acked_line_bytes += line_bytes;
                    report.acked.push(numbers);
                    break;
                }
                429 | 503 | 507 => {
                    if status == 507 {
                        statuses_507.fetch_add(1, Ordering::SeqCst);
                    }
                    report.samples.entry(status).or_insert(text);
                    let pause = match retry_after {
                        Some(secs) => Duration::from_secs(secs),
                        None => {
                            report.missing_retry_after += 1;
                            Duration::from_millis(100)
                        }
                    };
                    sleep_unless_stopped(pause.min(options.max_retry_pause), stop);
                }
                other => panic!("ingest answered {other}: {text}"),
            }
        }
        offset = batch_events.last().map_or(offset, |e| e.end_offset.0);
        batch += 1;
    }
}

fn sleep_unless_stopped(pause: Duration, stop: &AtomicBool) {
    let deadline = Instant::now() + pause;
    while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20).min(pause));
    }
}

/// Answers by status, summed over clients.
pub fn total_statuses(reports: &[ClientReport]) -> BTreeMap<u16, u64> {
    let mut total = BTreeMap::new();
    for report in reports {
        for (status, n) in &report.statuses {
            *total.entry(*status).or_default() += n;
        }
    }
    total
}

/// Events the clients had acknowledged.
pub fn total_acked(reports: &[ClientReport]) -> u64 {
    reports
        .iter()
        .flat_map(|r| &r.acked)
        .map(|range| range.end - range.start)
        .sum()
}

/// Checks every line with `tag` the server holds (over all pages of a
/// search): each acknowledged number exactly once, each given-up number
/// at most once, nothing else. Returns how many given-up lines are stored.
pub fn assert_acked_once(url: &str, token: &str, tag: &str, reports: &[ClientReport]) -> u64 {
    let mut copies: BTreeMap<u64, u32> = BTreeMap::new();
    let mut foreign = Vec::new();
    for hit in search_all(url, token, tag) {
        let message = hit_message(&hit);
        match parse_numbered(tag, message) {
            Some(number) => *copies.entry(number).or_default() += 1,
            None => foreign.push(message.to_string()),
        }
    }
    let mut problems = Vec::new();
    for range in reports.iter().flat_map(|r| &r.acked) {
        for number in range.clone() {
            match copies.remove(&number) {
                Some(1) => {}
                Some(n) => problems.push(format!("acked line {number}: {n} copies")),
                None => problems.push(format!("acked line {number}: missing")),
            }
        }
    }
    let mut unacked_stored = 0;
    for range in reports.iter().filter_map(|r| r.unacked.as_ref()) {
        for number in range.clone() {
            match copies.remove(&number) {
                None => {}
                Some(1) => unacked_stored += 1,
                Some(n) => problems.push(format!("unacked line {number}: {n} copies")),
            }
        }
    }
    for (number, n) in copies {
        problems.push(format!("line {number} was never sent: {n} copies"));
    }
    assert!(
        problems.is_empty() && foreign.is_empty(),
        "{} problems (first: {:?}); {} foreign hits (first: {:?})",
        problems.len(),
        &problems[..problems.len().min(10)],
        foreign.len(),
        &foreign[..foreign.len().min(5)]
    );
    unacked_stored
}
