//! Backpressure: when the indexer falls behind, ingest answers 429 with
//! `Retry-After` instead of queueing without end, the server's memory stays
//! bounded, and once the clients have retried everything every
//! acknowledged event is searchable exactly once.

use std::time::{Duration, Instant};

use loghound_tests::bench::usage;
use loghound_tests::load::{assert_acked_once, total_acked, total_statuses, Load, LoadOptions};
use loghound_tests::{temp_dir, token, wait_for_count, Server, ServerOptions};

const TAG: &str = "bpq";
const CLIENTS: u64 = 12;
const BATCHES_PER_CLIENT: u64 = 24;
const EVENTS_PER_BATCH: u64 = 250;
/// Lines of about 1 KiB, so the queue bound is crossed quickly.
const PAD_BYTES: usize = 900;
const QUEUE_MAX_BYTES: u64 = 1 << 20;
const WRITER_HEAP_BYTES: u64 = 16 << 20;

/// A `kB` line of `/proc/PID/status`, in bytes.
fn status_bytes(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"));
    kib * 1024
}

#[test]
fn overloaded_ingest_answers_429_and_memory_stays_bounded() {
    let tmp = temp_dir();
    let config = tmp.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "index_queue_max_bytes = {QUEUE_MAX_BYTES}\n\
             index_writer_heap_bytes = {WRITER_HEAP_BYTES}\n\
             index_writer_threads = 1\n"
        ),
    )
    .expect("write server.toml");
    let mut server = Server::start_with(
        &tmp.path().join("server"),
        ServerOptions {
            config: Some(config),
            env: Vec::new(),
        },
    );
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let pid = server.pid();
    // Anonymous memory (heap, stacks): what the bound is about. File
    // pages the index maps for reading count in VmRSS too, but the kernel
    // drops them whenever it needs the room.
    let anon_at_start = status_bytes(pid, "RssAnon:");
    let mut peak_anon = anon_at_start;

    let load = Load::start(&LoadOptions {
        url: url.clone(),
        token: ingest_token,
        tag: TAG.into(),
        clients: CLIENTS,
        events_per_batch: EVENTS_PER_BATCH,
        pad_bytes: PAD_BYTES,
        batches_per_client: Some(BATCHES_PER_CLIENT),
        max_retry_pause: Duration::from_secs(1),
    });
    let deadline = Instant::now() + Duration::from_secs(600);
    while !load.is_finished() {
        assert!(
            Instant::now() < deadline,
            "clients not done within 10 minutes"
        );
        server.assert_running();
        peak_anon = peak_anon.max(status_bytes(pid, "RssAnon:"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let reports = load.join();
    let statuses = total_statuses(&reports);
    let (_, peak_rss) = usage(pid).expect("server usage from /proc");
    eprintln!(
        "answers by status: {statuses:?}; anonymous memory at start {} MiB, peak {} MiB \
         (sampled every 50 ms); VmHWM {} MiB",
        anon_at_start >> 20,
        peak_anon >> 20,
        peak_rss >> 20
    );

    let total = CLIENTS * BATCHES_PER_CLIENT * EVENTS_PER_BATCH;
    assert_eq!(
        total_acked(&reports),
        total,
        "every batch is acked in the end"
    );
    let refused = statuses.get(&429).copied().unwrap_or(0);
    assert!(
        refused > 0,
        "{CLIENTS} clients pushing {} KiB batches past a {QUEUE_MAX_BYTES}-byte queue \
         got no 429: {statuses:?}",
        (EVENTS_PER_BATCH * (PAD_BYTES as u64 + 60)) >> 10
    );
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        vec![200, 429],
        "only acks and 429s"
    );
    let missing: u64 = reports.iter().map(|r| r.missing_retry_after).sum();
    assert_eq!(missing, 0, "every 429 carries Retry-After");
    let sample = reports
        .iter()
        .find_map(|r| r.samples.get(&429))
        .expect("a 429 body");
    let body: serde_json::Value = serde_json::from_str(sample).expect("429 body is JSON");
    assert_eq!(body["limit"], "index_queue_max_bytes", "{sample}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("indexer is behind")),
        "{sample}"
    );

    // Memory: what the server held at start, the writer's heap, the queue
    // bound (with the events' second copy while tantivy indexes them), per
    // client one request in flight (the compressed body, the decoded
    // events and their NDJSON: about 3 × the batch's line bytes), and
    // 160 MiB that do not grow with the load: tantivy's segment
    // serialisation and merges (debug build), thread stacks and what the
    // per-thread malloc arenas keep, which varies with scheduling on a
    // loaded machine. (Measured: 109–137 MiB peaks with batches of 250
    // events, 118 MiB with batches of 1,000.)
    let batch_line_bytes = EVENTS_PER_BATCH * (PAD_BYTES as u64 + 60);
    let bound = anon_at_start
        + WRITER_HEAP_BYTES
        + 4 * QUEUE_MAX_BYTES
        + CLIENTS * 3 * batch_line_bytes
        + (160 << 20);
    assert!(
        peak_anon <= bound,
        "server anonymous memory peaked at {} MiB, over the bound {} MiB",
        peak_anon >> 20,
        bound >> 20
    );

    wait_for_count(&url, &read_token, TAG, total, Duration::from_secs(300));
    assert_acked_once(&url, &read_token, TAG, &reports);
    server.assert_running();
}
