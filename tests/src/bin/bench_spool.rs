//! `bench_spool`: recovery after a server outage, with the agent's disk
//! spool.
//!
//! ```text
//! cargo build --release -p loghound-server -p loghound-agent -p loghound-tests --bin bench_spool
//! target/release/bench_spool [--mib 1024] [--outage-secs 120]
//! ```
//!
//! 1. Starts the release `loghound serve` and `loghound-agent`, then kills
//!    the server (SIGKILL): the outage begins.
//! 2. Writes `--mib` MiB of lines from ../shared/corpus (each prefixed with
//!    its number, so every line is distinct) into the watched file as fast
//!    as it can, and waits until the agent has spooled all of it (its
//!    checkpoint reaches the end of the file), sampling the spool's size.
//! 3. Keeps the server down until `--outage-secs` have passed since the
//!    outage began, then restarts it on the same address, and times from
//!    the server's ready line until the server's count equals the number
//!    of lines, sampling the agent's and the server's CPU.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use loghound_tests::bench::{corpus_lines, usage};
use loghound_tests::http::search_page;
use loghound_tests::{token, Agent, Server};

struct Args {
    mib: u64,
    outage_secs: u64,
}

fn parse_args() -> Args {
    let mut args = Args {
        mib: 1024,
        outage_secs: 120,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--mib" => args.mib = value.parse().unwrap_or(args.mib),
            "--outage-secs" => args.outage_secs = value.parse().unwrap_or(args.outage_secs),
            other => {
                eprintln!("unknown flag {other}; usage: bench_spool [--mib N] [--outage-secs N]");
                std::process::exit(2);
            }
        }
    }
    args
}

/// Appends numbered corpus lines to `path` until `target_bytes`.
fn write_lines(path: &Path, target_bytes: u64) -> (u64, u64) {
    let lines = corpus_lines();
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create log file"));
    let (mut bytes, mut count) = (0u64, 0u64);
    'outer: loop {
        for line in &lines {
            let written = format!("{count} {line}\n");
            out.write_all(written.as_bytes()).expect("write log file");
            bytes += written.len() as u64;
            count += 1;
            if bytes >= target_bytes {
                break 'outer;
            }
        }
    }
    out.flush().expect("flush log file");
    (bytes, count)
}

fn count(url: &str, token: &str) -> u64 {
    search_page(url, token, "", 0, None)
        .map(|p| p.count)
        .unwrap_or(0)
}

/// Bytes and segment files of the spool.
fn spool_size(state_dir: &Path) -> (u64, usize) {
    let Ok(entries) = fs::read_dir(state_dir.join("spool")) else {
        return (0, 0);
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .filter_map(|e| e.metadata().ok())
        .fold((0, 0), |(bytes, n), m| (bytes + m.len(), n + 1))
}

/// The acked offset of the one followed file, from `checkpoints.json`.
fn checkpoint_offset(state_dir: &Path) -> u64 {
    let Ok(text) = fs::read_to_string(state_dir.join("checkpoints.json")) else {
        return 0;
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
        return 0;
    };
    value["files"]
        .as_array()
        .and_then(|files| files.iter().filter_map(|f| f["offset"].as_u64()).max())
        .unwrap_or(0)
}

fn main() {
    let args = parse_args();
    let work = tempfile::Builder::new()
        .prefix("loghound-bench-spool-")
        .tempdir()
        .expect("create a work directory");
    let logs = work.path().join("logs");
    fs::create_dir_all(&logs).expect("create logs dir");
    let log = logs.join("app.log");

    let data = work.path().join("data");
    let mut server = Server::start(&data);
    let url = server.url();
    let ingest = token(&data, &["ingest"]);
    let read = token(&data, &["read"]);
    let agent_dir = work.path().join("agent");
    let glob = format!("{}/*.log", logs.display());
    let agent = Agent::start(&url, &ingest, &agent_dir, &[glob]);
    let agent_pid = agent.pid();

    server.kill9();
    let outage_started = Instant::now();
    eprintln!("server down; writing {} MiB", args.mib);
    let (bytes, lines) = write_lines(&log, args.mib << 20);
    let written_in = outage_started.elapsed().as_secs_f64();
    eprintln!("wrote {lines} lines, {bytes} bytes in {written_in:.1} s");

    let deadline = outage_started + Duration::from_secs(3600);
    while checkpoint_offset(&agent_dir) < bytes {
        assert!(Instant::now() < deadline, "agent did not spool everything");
        std::thread::sleep(Duration::from_millis(200));
    }
    let spooled_in = outage_started.elapsed().as_secs_f64();
    let (spool_bytes, spool_segments) = spool_size(&agent_dir);
    let (agent_cpu_spooling, _) = usage(agent_pid).unwrap_or_default();
    eprintln!(
        "spooled in {spooled_in:.1} s: {spool_bytes} bytes in {spool_segments} segments; \
         agent CPU {agent_cpu_spooling:.1} s"
    );

    let outage = Duration::from_secs(args.outage_secs);
    if let Some(left) = outage.checked_sub(outage_started.elapsed()) {
        eprintln!("outage goes on for {:.0} s", left.as_secs_f64());
        std::thread::sleep(left);
    }
    let (agent_cpu_at_restart, _) = usage(agent_pid).unwrap_or_default();
    let outage_secs = outage_started.elapsed().as_secs_f64();
    server.restart();
    let t0 = Instant::now();
    let server_pid = server.pid();
    let mut peak_rss = 0u64;
    let deadline = t0 + Duration::from_secs(3600);
    loop {
        let seen = count(&url, &read);
        if seen >= lines || Instant::now() > deadline {
            break;
        }
        if let Some((_, rss)) = usage(agent_pid) {
            peak_rss = peak_rss.max(rss);
        }
        eprintln!(
            "{:>6.1}s {seen} events, spool {} bytes",
            t0.elapsed().as_secs_f64(),
            spool_size(&agent_dir).0
        );
        std::thread::sleep(Duration::from_millis(1000));
    }
    let recovery = t0.elapsed().as_secs_f64();
    let seen = count(&url, &read);
    let (agent_cpu_end, agent_rss) = usage(agent_pid).unwrap_or_default();
    let (server_cpu, _) = usage(server_pid).unwrap_or_default();
    let replay_cpu = agent_cpu_end - agent_cpu_at_restart;

    println!(
        "## spool recovery: {} MiB, {lines} lines, outage {outage_secs:.0} s",
        args.mib
    );
    println!("| metric | value |\n|---|---|");
    println!("| lines written during the outage | {lines} ({bytes} bytes) in {written_in:.1} s |");
    println!(
        "| spooled (checkpoint at the end of the file) | {spooled_in:.1} s after the outage began |"
    );
    println!(
        "| spool on disk | {:.1} MiB in {spool_segments} segments ({:.2} of the raw bytes) |",
        spool_bytes as f64 / 1048576.0,
        spool_bytes as f64 / bytes as f64
    );
    println!(
        "| agent CPU from start to all spooled | {:.1} s ({:.1} MB/s per CPU-second) |",
        agent_cpu_spooling,
        bytes as f64 / agent_cpu_spooling / 1e6
    );
    println!("| server ready → all {lines} lines searchable | {recovery:.1} s (count {seen}) |");
    println!(
        "| replay throughput | {:.0} lines/s, {:.1} MB/s raw |",
        lines as f64 / recovery,
        bytes as f64 / recovery / 1e6
    );
    println!(
        "| agent CPU during replay | {replay_cpu:.1} s ({:.0}% of one core) |",
        replay_cpu / recovery * 100.0
    );
    println!(
        "| server CPU during replay | {server_cpu:.1} s ({:.0}% of one core) |",
        server_cpu / recovery * 100.0
    );
    println!(
        "| agent peak RSS | {:.1} MiB |",
        peak_rss.max(agent_rss) as f64 / 1048576.0
    );
    drop(agent);
    drop(server);
}
