//! `bench_recovery`: how long a server takes to come back with a large
//! write-ahead log that was never indexed.
//!
//! ```text
//! cargo build --release -p loghound-server --bin loghound
//! cargo build --release -p loghound-tests --bin bench_recovery
//! target/release/bench_recovery [--mib 1024] [--clients 10] [--events 2000] [--pad 280]
//! ```
//!
//! 1. Starts the release `loghound serve` with indexing held back: a
//!    60 s commit interval (the longest allowed) and an index queue large
//!    enough for everything, so nothing is committed while the clients
//!    send.
//! 2. `--clients` threads POST batches of `--events` padded numbered lines
//!    until about `--mib` MiB of lines are acknowledged (durable in the
//!    WAL).
//! 3. Kills the server with SIGKILL right after the last acknowledgement,
//!    having checked that nothing was searchable yet.
//! 4. Restarts it on default settings and reports the time from the
//!    restart to its `listening` line (the WAL replayed into the indexer)
//!    and to every acknowledged line being searchable, with the server's
//!    CPU and peak RSS over the recovery.

use std::time::{Duration, Instant};

use loghound_tests::bench::{dir_size, usage, Flags};
use loghound_tests::http::search_page;
use loghound_tests::load::{load_line, total_acked, Load, LoadOptions};
use loghound_tests::{token, Server, ServerOptions};

struct Args {
    mib: u64,
    clients: u64,
    events: u64,
    pad: usize,
}

fn parse_args() -> Args {
    let flags = Flags::parse(
        "bench_recovery [--mib N] [--clients N] [--events N] [--pad N]",
        &["--mib", "--clients", "--events", "--pad"],
    );
    Args {
        mib: flags.get("--mib", 1024),
        clients: flags.get("--clients", 10),
        events: flags.get("--events", 2000),
        pad: flags.get("--pad", 280),
    }
}

const TAG: &str = "recoverybench";

fn main() {
    let args = parse_args();
    let work = tempfile::Builder::new()
        .prefix("loghound-bench-")
        .tempdir()
        .expect("create a work directory");
    let data = work.path().join("data");
    let config = work.path().join("held-back.toml");
    std::fs::write(
        &config,
        "commit_interval_ms = 60000\nindex_queue_max_bytes = 17179869184\n",
    )
    .expect("write the server config");
    let mut server = Server::start_with(
        &data,
        ServerOptions {
            config: Some(config),
            env: Vec::new(),
        },
    );
    let url = server.url();
    let ingest = token(&data, &["ingest"]);
    let read = token(&data, &["read"]);

    let line_bytes = load_line(TAG, 0, args.pad).len() as u64 + 1;
    let batches_per_client = ((args.mib << 20) / line_bytes / args.events / args.clients).max(1);
    let started = Instant::now();
    let reports = Load::start(&LoadOptions {
        url: url.clone(),
        token: ingest,
        tag: TAG.into(),
        clients: args.clients,
        events_per_batch: args.events,
        pad_bytes: args.pad,
        batches_per_client: Some(batches_per_client),
        max_retry_pause: Duration::from_secs(60),
    })
    .join();
    let sending = started.elapsed().as_secs_f64();
    let acked = total_acked(&reports);
    let acked_bytes: u64 = reports.iter().map(|r| r.acked_line_bytes).sum();
    let searchable_before = search_page(&url, &read, TAG, 0, None).map_or(0, |p| p.count);
    server.kill9();
    let wal_bytes = dir_size(&data.join("wal"));

    server.set_options(ServerOptions::default());
    server.set_ready_timeout(Duration::from_secs(3600));
    let restarted = Instant::now();
    server.restart();
    let ready = restarted.elapsed().as_secs_f64();
    let pid = server.pid();
    let deadline = Instant::now() + Duration::from_secs(3600);
    let mut searchable = 0;
    while Instant::now() < deadline {
        searchable = search_page(&url, &read, TAG, 0, None).map_or(0, |p| p.count);
        if searchable >= acked {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let all_searchable = restarted.elapsed().as_secs_f64();
    let (cpu, hwm) = usage(pid).unwrap_or((f64::NAN, 0));

    println!(
        "sent: {acked} events, {:.1} MiB of lines, acked in {sending:.1} s; \
         searchable before the kill: {searchable_before}",
        acked_bytes as f64 / (1 << 20) as f64
    );
    println!(
        "WAL on disk at the kill: {:.1} MiB",
        wal_bytes as f64 / (1 << 20) as f64
    );
    println!(
        "restart → listening: {ready:.1} s ({:.1} MB/s of lines replayed)",
        acked_bytes as f64 / ready / 1e6
    );
    println!("restart → all searchable: {all_searchable:.1} s ({searchable} of {acked})");
    println!(
        "server over the recovery: CPU {cpu:.1} s, peak RSS {:.1} MiB",
        hwm as f64 / (1 << 20) as f64
    );
}
