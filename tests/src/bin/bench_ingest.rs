//! `bench_ingest`: the server alone, end to end: HTTP decode, dedup, WAL
//! fsync, parsing, indexing and commits, from the first batch sent until
//! the last line is searchable.
//!
//! ```text
//! cargo build --release --workspace --bins
//! target/release/bench_ingest [--set corpus|json] [--mib 1024] [--clients 2] [--config FILE]
//! ```
//!
//! `corpus`: the lines of ../shared/corpus (loghub samples and the Apache
//! access log), each prefixed with its number so none is a duplicate of
//! another. `json`: JSON request lines (`bench::RequestLines`) over the last
//! hour. Every batch is encoded (NDJSON, zstd level 1, 2,000 events)
//! before the clock starts, so the figures are the server's: CPU is its
//! user + system time over the run, RSS its peak (`VmHWM`, which counts
//! mapped index pages too) and its sampled peak of anonymous memory. The index is
//! measured when the last line is searchable and again once its merges
//! have settled, and `loghound disk-usage` shows where its bytes go.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loghound_shared::api::INGEST_PATH;
use loghound_shared::{encode_batch, Event};
use loghound_tests::bench::{anon_rss, corpus_lines, dir_size, usage, Flags, RequestLines};
use loghound_tests::data::{events, now_ms};
use loghound_tests::http::{client, get_search, ingest_headers};
use loghound_tests::paths::loghound_bin;
use loghound_tests::{token, Server, ServerOptions};

const USAGE: &str =
    "bench_ingest [--set corpus|json] [--mib 1024] [--clients 2] [--config FILE] [--batch 2000]";

/// Encoded batches and what they hold.
struct Load {
    bodies: Vec<(String, Vec<u8>)>,
    lines: u64,
    bytes: u64,
}

fn corpus_messages(target: u64) -> impl Iterator<Item = String> {
    let corpus = corpus_lines();
    let mut bytes = 0u64;
    (0u64..)
        .map(move |n| format!("{n} {}", corpus[(n % corpus.len() as u64) as usize]))
        .take_while(move |line| {
            let more = bytes < target;
            bytes += line.len() as u64 + 1;
            more
        })
}

fn json_messages(target: u64) -> impl Iterator<Item = String> {
    let mut requests = RequestLines::default();
    let now = now_ms();
    let mut bytes = 0u64;
    // A line every 0.1 ms going back from now: an hour per 36 M lines.
    (0i64..)
        .map(move |n| requests.line(now - 3_600_000 + n / 10 % 3_600_000))
        .take_while(move |line| {
            let more = bytes < target;
            bytes += line.len() as u64 + 1;
            more
        })
}

fn encode(messages: impl Iterator<Item = String>, clients: usize, batch: usize) -> Load {
    let mut load = Load {
        bodies: Vec::new(),
        lines: 0,
        bytes: 0,
    };
    let mut offsets = vec![0u64; clients];
    let mut pending: Vec<String> = Vec::with_capacity(batch);
    let mut flush = |pending: &mut Vec<String>, load: &mut Load| {
        if pending.is_empty() {
            return;
        }
        let stream = load.bodies.len() % clients;
        let file_id = format!("bench-{stream}");
        let batch_events: Vec<Event> = events(&file_id, offsets[stream], pending);
        offsets[stream] = batch_events.last().map_or(0, |e| e.end_offset.0);
        load.lines += pending.len() as u64;
        load.bytes += pending.iter().map(|m| m.len() as u64 + 1).sum::<u64>();
        let body = encode_batch(&batch_events, 1).expect("encode a batch");
        load.bodies.push((format!("bench-agent-{stream}"), body));
        pending.clear();
    };
    for message in messages {
        pending.push(message);
        if pending.len() == batch {
            flush(&mut pending, &mut load);
        }
    }
    flush(&mut pending, &mut load);
    load
}

/// Sends every batch, `clients` at a time; each client sends the batches
/// of its own stream in order and retries one until it is acknowledged.
fn send(url: &str, token: &str, load: &Arc<Load>, clients: usize) -> BTreeMap<u16, u64> {
    let threads: Vec<_> = (0..clients)
        .map(|me| {
            let (url, token, load) = (
                format!("{url}{INGEST_PATH}"),
                token.to_string(),
                Arc::clone(load),
            );
            std::thread::spawn(move || {
                let http = client();
                let mut statuses = BTreeMap::new();
                for (agent, body) in load.bodies.iter().skip(me).step_by(clients) {
                    loop {
                        let mut request = http.post(&url);
                        for (name, value) in ingest_headers(&token, agent) {
                            request = request.header(name, value);
                        }
                        let status = match request.send(&body[..]) {
                            Ok(response) => response.status().as_u16(),
                            Err(_) => 0,
                        };
                        *statuses.entry(status).or_insert(0u64) += 1;
                        match status {
                            200 => break,
                            0 | 429 | 503 => std::thread::sleep(Duration::from_millis(50)),
                            other => panic!("ingest answered {other}"),
                        }
                    }
                }
                statuses
            })
        })
        .collect();
    let mut statuses = BTreeMap::new();
    for thread in threads {
        for (status, n) in thread.join().expect("client thread") {
            *statuses.entry(status).or_insert(0) += n;
        }
    }
    statuses
}

fn count(url: &str, token: &str) -> u64 {
    get_search(url, Some(token), &[("q", ""), ("limit", "0")])
        .ok()
        .and_then(|a| serde_json::from_str::<serde_json::Value>(&a.body).ok())
        .and_then(|v| v["count"].as_u64())
        .unwrap_or(0)
}

fn main() {
    let flags = Flags::parse(
        USAGE,
        &["--set", "--mib", "--clients", "--config", "--batch"],
    );
    let set: String = flags.get("--set", "corpus".to_string());
    let mib: u64 = flags.get("--mib", 1024);
    let clients: usize = flags.get("--clients", 2).max(1);
    let batch: usize = flags.get("--batch", 2000).max(1);
    let config: String = flags.get("--config", String::new());

    let started = Instant::now();
    let messages: Box<dyn Iterator<Item = String>> = match set.as_str() {
        "corpus" => Box::new(corpus_messages(mib << 20)),
        "json" => Box::new(json_messages(mib << 20)),
        other => {
            eprintln!("unknown set {other:?}; usage: {USAGE}");
            std::process::exit(2);
        }
    };
    let load = Arc::new(encode(messages, clients, batch));
    eprintln!(
        "encoded {} lines, {} bytes in {} batches in {:.1?}",
        load.lines,
        load.bytes,
        load.bodies.len(),
        started.elapsed()
    );

    let work = tempfile::Builder::new()
        .prefix("loghound-bench-ingest-")
        .tempdir()
        .expect("create a work directory");
    let data = work.path().join("data");
    let options = ServerOptions {
        config: (!config.is_empty()).then(|| config.clone().into()),
        ..ServerOptions::default()
    };
    let server = Server::start_with(&data, options);
    let url = server.url();
    let ingest = token(&data, &["ingest"]);
    let read = token(&data, &["read"]);
    let pid = server.pid();
    let (cpu_before, _) = usage(pid).unwrap_or_default();

    let t0 = Instant::now();
    let sender = {
        let (url, ingest, load) = (url.clone(), ingest.clone(), Arc::clone(&load));
        std::thread::spawn(move || send(&url, &ingest, &load, clients))
    };
    let mut peak_rss = 0u64;
    let mut peak_anon = 0u64;
    let mut acked_at = None;
    let deadline = t0 + Duration::from_secs(3600);
    loop {
        if let Some((_, rss)) = usage(pid) {
            peak_rss = peak_rss.max(rss);
        }
        peak_anon = peak_anon.max(anon_rss(pid).unwrap_or(0));
        if acked_at.is_none() && sender.is_finished() {
            acked_at = Some(t0.elapsed().as_secs_f64());
        }
        let seen = count(&url, &read);
        if seen >= load.lines || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let searchable = t0.elapsed().as_secs_f64();
    let (cpu_after, rss_at_searchable) = usage(pid).unwrap_or_default();
    let statuses = sender.join().expect("sender");
    let acked = acked_at.unwrap_or(searchable);
    let cpu = cpu_after - cpu_before;
    let index_at_searchable = dir_size(&data.join("indexes"));

    // Merges that follow the load.
    let mut last = (index_at_searchable, Instant::now());
    let settle_deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < settle_deadline && last.1.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_secs(1));
        let size = dir_size(&data.join("indexes"));
        if size != last.0 {
            last = (size, Instant::now());
        }
    }
    let (cpu_settled, rss_settled) = usage(pid).unwrap_or_default();
    let index_settled = last.0;
    let breakdown = std::process::Command::new(loghound_bin())
        .arg("disk-usage")
        .arg("--data-dir")
        .arg(&data)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();

    let mb = load.bytes as f64 / 1e6;
    println!(
        "## ingest: set {set}, {} lines, {:.1} MB, {clients} clients, batches of {batch}",
        load.lines, mb
    );
    println!("| metric | value |\n|---|---|");
    println!("| all batches acknowledged | {acked:.1} s |");
    println!("| last line searchable | {searchable:.1} s |");
    println!("| lines/s | {:.0} |", load.lines as f64 / searchable);
    println!(
        "| server CPU to searchable | {cpu:.1} s → **{:.1} MB per CPU-second** |",
        mb / cpu
    );
    println!(
        "| server CPU incl. merges after | {:.1} s → {:.1} MB per CPU-second |",
        cpu_settled - cpu_before,
        mb / (cpu_settled - cpu_before)
    );
    println!(
        "| server peak RSS (sampled / VmHWM at searchable / after merges) | {:.0} / {:.0} / {:.0} MiB |",
        peak_rss as f64 / 1048576.0,
        rss_at_searchable as f64 / 1048576.0,
        rss_settled as f64 / 1048576.0
    );
    println!(
        "| server peak anonymous RSS (sampled; without mapped index files) | {:.0} MiB |",
        peak_anon as f64 / 1048576.0
    );
    println!(
        "| index / raw bytes, at searchable | {:.3} |",
        index_at_searchable as f64 / load.bytes as f64
    );
    println!(
        "| index / raw bytes, merges settled | **{:.3}** |",
        index_settled as f64 / load.bytes as f64
    );
    println!("| answers by status | {statuses:?} |");
    println!("\n```\n{breakdown}```");
}
