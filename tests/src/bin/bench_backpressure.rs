//! `bench_backpressure`: sustained ingest at the backpressure point.
//!
//! ```text
//! cargo build --release -p loghound-server --bin loghound
//! cargo build --release -p loghound-tests --bin bench_backpressure
//! target/release/bench_backpressure [--secs 60] [--clients 16] [--events 2000] [--pad 100]
//! ```
//!
//! Starts the release `loghound serve` with default settings (so the
//! default `index_queue_max_bytes`), then `--clients` threads POST batches
//! of `--events` numbered lines (each padded by `--pad` bytes) as fast as
//! the server takes them, each retrying a refused batch after the
//! `Retry-After` it was given, for `--secs` seconds. Reports accepted
//! events/s and MB/s (line bytes), the share of 429 answers, the server's
//! CPU and peak RSS (`VmHWM`), and how long the index took to catch up
//! once the clients stopped.

use std::time::{Duration, Instant};

use loghound_tests::bench::{usage, Flags};
use loghound_tests::http::search_page;
use loghound_tests::load::{total_acked, total_statuses, Load, LoadOptions};
use loghound_tests::{token, Server};

struct Args {
    secs: u64,
    clients: u64,
    events: u64,
    pad: usize,
}

fn parse_args() -> Args {
    let flags = Flags::parse(
        "bench_backpressure [--secs N] [--clients N] [--events N] [--pad N]",
        &["--secs", "--clients", "--events", "--pad"],
    );
    Args {
        secs: flags.get("--secs", 60),
        clients: flags.get("--clients", 16),
        events: flags.get("--events", 2000),
        pad: flags.get("--pad", 100),
    }
}

fn main() {
    let args = parse_args();
    let work = tempfile::Builder::new()
        .prefix("loghound-bench-")
        .tempdir()
        .expect("create a work directory");
    let data = work.path().join("data");
    let server = Server::start(&data);
    let url = server.url();
    let ingest = token(&data, &["ingest"]);
    let read = token(&data, &["read"]);
    let pid = server.pid();
    const TAG: &str = "bpbench";

    let started = Instant::now();
    let load = Load::start(&LoadOptions {
        url: url.clone(),
        token: ingest,
        tag: TAG.into(),
        clients: args.clients,
        events_per_batch: args.events,
        pad_bytes: args.pad,
        batches_per_client: None,
        max_retry_pause: Duration::from_secs(60),
    });
    let mut peak_rss = 0;
    while started.elapsed() < Duration::from_secs(args.secs) {
        std::thread::sleep(Duration::from_millis(500));
        if let Some((_, rss)) = usage(pid) {
            peak_rss = peak_rss.max(rss);
        }
    }
    let reports = load.stop();
    let elapsed = started.elapsed().as_secs_f64();
    let stopped = Instant::now();

    let acked = total_acked(&reports);
    let line_bytes: u64 = reports.iter().map(|r| r.acked_line_bytes).sum();
    let statuses = total_statuses(&reports);
    let answers: u64 = statuses.values().sum();
    let refused = statuses.get(&429).copied().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut searchable = 0;
    while Instant::now() < deadline {
        searchable = search_page(&url, &read, TAG, 0, None).map_or(0, |p| p.count);
        if searchable >= acked {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let catch_up = stopped.elapsed().as_secs_f64();
    let (cpu, hwm) = usage(pid).unwrap_or((f64::NAN, 0));
    peak_rss = peak_rss.max(hwm);

    println!(
        "clients {} × {} events of ~{} bytes, {elapsed:.1} s",
        args.clients,
        args.events,
        line_bytes.checked_div(acked).unwrap_or(0)
    );
    println!("answers: {statuses:?}");
    println!(
        "accepted: {acked} events, {:.0} events/s, {:.1} MB/s of lines",
        acked as f64 / elapsed,
        line_bytes as f64 / elapsed / 1e6
    );
    println!(
        "429 share: {:.1}% ({refused} of {answers} answers)",
        100.0 * refused as f64 / answers.max(1) as f64
    );
    println!(
        "server: peak RSS {:.1} MiB, CPU {cpu:.1} s",
        peak_rss as f64 / (1 << 20) as f64
    );
    println!(
        "index caught up {catch_up:.1} s after the clients stopped ({searchable} of {acked} searchable)"
    );
}
