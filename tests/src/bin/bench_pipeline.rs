//! `bench-pipeline`: throughput, cost and freshness of agent → server on
//! this machine, with corpus-derived lines.
//!
//! ```text
//! cargo build --release --workspace --bins
//! target/release/bench-pipeline [--mib 1024] [--probes 200]
//! ```
//!
//! 1. Writes `--mib` MiB of lines from ../shared/corpus (CR removed, each
//!    line prefixed with its number so every line is distinct) into one file.
//! 2. Starts the release `loghound serve` and `loghound-agent` on it, and
//!    times until the server's count equals the number of lines
//!    (lines/s, MB/s), while sampling CPU seconds and peak RSS of both.
//! 3. Freshness: appends probe lines with unique words to a second watched
//!    file, during the bulk load and then on an idle pipeline, and times each
//!    until a search finds it (p50, p99).

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loghound_tests::bench::{corpus_lines, dir_size, percentile, usage};
use loghound_tests::http::search_page;
use loghound_tests::{token, Agent, Server};

struct Args {
    mib: u64,
    probes: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        mib: 1024,
        probes: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--mib" => args.mib = value.parse().unwrap_or(args.mib),
            "--probes" => args.probes = value.parse().unwrap_or(args.probes),
            other => {
                eprintln!("unknown flag {other}; usage: bench-pipeline [--mib N] [--probes N]");
                std::process::exit(2);
            }
        }
    }
    args
}

fn write_bulk(path: &Path, target_bytes: u64) -> (u64, u64) {
    let lines = corpus_lines();
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create bulk file"));
    let (mut bytes, mut count) = (0u64, 0u64);
    'outer: loop {
        for line in &lines {
            let written = format!("{count} {line}\n");
            out.write_all(written.as_bytes()).expect("write bulk file");
            bytes += written.len() as u64;
            count += 1;
            if bytes >= target_bytes {
                break 'outer;
            }
        }
    }
    out.flush().expect("flush bulk file");
    (bytes, count)
}

fn count(url: &str, token: &str, q: &str) -> u64 {
    search_page(url, token, q, 0, None)
        .map(|p| p.count)
        .unwrap_or(0)
}

/// Appends probe lines one by one and measures until each is searchable.
fn run_probes(
    url: &str,
    token: &str,
    probe_file: &Path,
    label: &str,
    n: usize,
    stop: &AtomicBool,
) -> Vec<f64> {
    let mut latencies = Vec::new();
    for i in 0..n {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let word = format!("probe{label}x{i}z{}", std::process::id());
        let started = Instant::now();
        {
            let mut file = OpenOptions::new()
                .append(true)
                .open(probe_file)
                .expect("open probe file");
            writeln!(file, "freshness {word}").expect("write probe");
        }
        let deadline = started + Duration::from_secs(120);
        while count(url, token, &word) == 0 {
            if Instant::now() > deadline {
                eprintln!("probe {word} not found within 120 s");
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        latencies.push(started.elapsed().as_secs_f64());
        std::thread::sleep(Duration::from_millis(100));
    }
    latencies.sort_by(f64::total_cmp);
    latencies
}

fn main() {
    let args = parse_args();
    let work = tempfile::Builder::new()
        .prefix("loghound-bench-")
        .tempdir()
        .expect("create a work directory");
    let logs = work.path().join("logs");
    fs::create_dir_all(&logs).expect("create logs dir");
    let bulk = logs.join("bulk.log");
    let probe_file = logs.join("probe.log");
    File::create(&probe_file).expect("create probe file");

    let started = Instant::now();
    let (bytes, lines) = write_bulk(&bulk, args.mib << 20);
    eprintln!(
        "wrote {lines} lines, {bytes} bytes in {:.1?}",
        started.elapsed()
    );

    let data = work.path().join("data");
    let server = Server::start(&data);
    let url = server.url();
    let ingest = token(&data, &["ingest"]);
    let read = token(&data, &["read"]);
    let glob = format!("{}/*.log", logs.display());
    let agent = Agent::start(&url, &ingest, &work.path().join("agent"), &[glob]);
    let (server_pid, agent_pid) = (server.pid(), agent.pid());
    let t0 = Instant::now();

    // Freshness under load, in parallel with the bulk load.
    let stop = Arc::new(AtomicBool::new(false));
    let loaded: Arc<Mutex<Vec<f64>>> = Arc::default();
    let prober = {
        let (url, read, probe_file, stop, loaded) = (
            url.clone(),
            read.clone(),
            probe_file.clone(),
            Arc::clone(&stop),
            Arc::clone(&loaded),
        );
        let n = args.probes / 2;
        std::thread::spawn(move || {
            *loaded.lock().expect("probe results") =
                run_probes(&url, &read, &probe_file, "load", n, &stop);
        })
    };

    let mut peak = (0u64, 0u64);
    let deadline = t0 + Duration::from_secs(3600);
    loop {
        let seen = count(&url, &read, "");
        // Probe lines count too; the bulk is done when its own lines are in.
        if seen.saturating_sub(count(&url, &read, "freshness")) >= lines
            || Instant::now() > deadline
        {
            break;
        }
        if let (Some((_, s)), Some((_, a))) = (usage(server_pid), usage(agent_pid)) {
            peak = (peak.0.max(s), peak.1.max(a));
        }
        eprintln!("{:>6.1}s {seen} events", t0.elapsed().as_secs_f64());
        std::thread::sleep(Duration::from_millis(1000));
    }
    let elapsed = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = prober.join();
    let (server_cpu, server_rss) = usage(server_pid).unwrap_or_default();
    let (agent_cpu, agent_rss) = usage(agent_pid).unwrap_or_default();

    let idle = run_probes(
        &url,
        &read,
        &probe_file,
        "idle",
        args.probes - args.probes / 2,
        &AtomicBool::new(false),
    );
    let loaded = loaded.lock().expect("probe results").clone();
    let index_bytes: u64 = dir_size(&data.join("indexes"));

    println!("## pipeline: {} MiB, {lines} lines, one file", args.mib);
    println!("| metric | value |\n|---|---|");
    println!("| end to end (first byte read → last line searchable) | {elapsed:.1} s |");
    println!("| lines/s | {:.0} |", lines as f64 / elapsed);
    println!("| MB/s (raw) | {:.1} |", bytes as f64 / elapsed / 1e6);
    println!(
        "| agent CPU | {agent_cpu:.1} s ({:.1} MB/s per CPU-second) |",
        bytes as f64 / agent_cpu / 1e6
    );
    println!(
        "| server CPU | {server_cpu:.1} s ({:.1} MB/s per CPU-second) |",
        bytes as f64 / server_cpu / 1e6
    );
    println!(
        "| agent peak RSS | {:.1} MiB |",
        peak.1.max(agent_rss) as f64 / 1048576.0
    );
    println!(
        "| server peak RSS | {:.1} MiB |",
        peak.0.max(server_rss) as f64 / 1048576.0
    );
    println!(
        "| index size / raw | {:.2} |",
        index_bytes as f64 / bytes as f64
    );
    for (name, l) in [("during bulk load", &loaded), ("idle", &idle)] {
        println!(
            "| freshness {name} ({} probes) | p50 {:.3} s, p99 {:.3} s, max {:.3} s |",
            l.len(),
            percentile(l, 50.0),
            percentile(l, 99.0),
            l.last().copied().unwrap_or(f64::NAN)
        );
    }
    drop(agent);
    drop(server);
}
