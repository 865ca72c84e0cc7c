//! `bench_agent`: the agent alone, at scale, on this machine.
//!
//! ```text
//! cargo build --release -p loghound-agent -p loghound-tests --bins
//! target/release/bench_agent throughput --files 1 --mib 512
//! target/release/bench_agent throughput --files 100 --mib 512
//! target/release/bench_agent rss --files 2000
//! target/release/bench_agent idle --files 1000 --seconds 60
//! target/release/bench_agent idle --files 10000 --seconds 60
//! ```
//!
//! The release agent ships to a stub ingest endpoint inside this process
//! (tiny_http, four threads) that decodes each zstd batch, counts its lines
//! and acks them; there is no index, so the agent's cost is what is
//! measured, not the server's. CPU is user + system time of the agent from
//! `/proc/<pid>/stat`; RSS is `VmRSS`/`VmHWM` from `/proc/<pid>/status`.
//!
//! - `throughput`: `--mib` MiB of corpus lines spread evenly over `--files`
//!   files written before the agent starts; timed from the agent's start to
//!   the last line acked. MB/s and MB per agent CPU-second.
//! - `rss`: `--files` files of 10 lines each, all shipped; RSS after 10 s.
//! - `idle`: `--files` files of one line each in one directory (one `*.log`
//!   glob), all shipped; then the agent's CPU over `--seconds` of quiet, at
//!   the default settings (rescan every 2 s, `max_open_files` 512, so
//!   beyond 512 files most are closed and only stat'ed).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loghound_tests::bench::{corpus_lines, usage};
use loghound_tests::Agent;

struct Args {
    mode: String,
    files: usize,
    mib: u64,
    seconds: u64,
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_default();
    let mut args = Args {
        mode,
        files: 1,
        mib: 512,
        seconds: 60,
    };
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        let parsed = value.parse::<u64>().ok();
        match (flag.as_str(), parsed) {
            ("--files", Some(v)) => args.files = v as usize,
            ("--mib", Some(v)) => args.mib = v,
            ("--seconds", Some(v)) => args.seconds = v,
            _ => usage_exit(&format!("bad flag {flag} {value}")),
        }
    }
    if !["throughput", "rss", "idle"].contains(&args.mode.as_str()) {
        usage_exit("mode must be throughput, rss or idle");
    }
    args
}

fn usage_exit(why: &str) -> ! {
    eprintln!("{why}\nusage: bench_agent throughput|rss|idle [--files N] [--mib N] [--seconds N]");
    std::process::exit(2);
}

/// The stub ingest endpoint: acks every batch, counting its lines.
struct Stub {
    url: String,
    lines: Arc<AtomicU64>,
}

fn start_stub() -> Stub {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind the stub"));
    let url = format!(
        "http://{}",
        server.server_addr().to_ip().expect("an IP address")
    );
    let lines = Arc::new(AtomicU64::new(0));
    for _ in 0..4 {
        let (server, lines) = (Arc::clone(&server), Arc::clone(&lines));
        std::thread::spawn(move || {
            while let Ok(mut request) = server.recv() {
                let mut body = Vec::new();
                let _ = request.as_reader().read_to_end(&mut body);
                let decoded = zstd::decode_all(&body[..]).unwrap_or_default();
                let count = decoded.iter().filter(|&&b| b == b'\n').count() as u64;
                lines.fetch_add(count, Ordering::Relaxed);
                let answer = format!("{{\"accepted\":{count},\"duplicates\":0}}");
                let _ = request.respond(tiny_http::Response::from_string(answer));
            }
        });
    }
    Stub { url, lines }
}

/// Writes `total_bytes` of numbered corpus lines round-robin over `files`
/// files named `f00000.log`…; returns (bytes, lines).
fn write_files(dir: &Path, files: usize, total_bytes: u64) -> (u64, u64) {
    let corpus = corpus_lines();
    let mut outs: Vec<BufWriter<File>> = (0..files)
        .map(|i| {
            BufWriter::with_capacity(
                64 << 10,
                File::create(dir.join(format!("f{i:05}.log"))).expect("create a log file"),
            )
        })
        .collect();
    let (mut bytes, mut count) = (0u64, 0u64);
    'outer: loop {
        for line in &corpus {
            let text = format!("{count} {line}\n");
            outs[count as usize % files]
                .write_all(text.as_bytes())
                .expect("write a log file");
            bytes += text.len() as u64;
            count += 1;
            if bytes >= total_bytes {
                break 'outer;
            }
        }
    }
    for out in &mut outs {
        out.flush().expect("flush a log file");
    }
    (bytes, count)
}

fn start_agent(stub: &Stub, work: &Path, logs: &Path) -> Agent {
    Agent::start(
        &stub.url,
        "lh_bench",
        &work.join("agent"),
        &[format!("{}/*.log", logs.display())],
    )
}

fn wait_for_lines(stub: &Stub, lines: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while stub.lines.load(Ordering::Relaxed) < lines {
        if Instant::now() > deadline {
            eprintln!(
                "only {} of {lines} lines acked within {timeout:?}",
                stub.lines.load(Ordering::Relaxed)
            );
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args = parse_args();
    let work = tempfile::Builder::new()
        .prefix("loghound-bench-agent-")
        .tempdir()
        .expect("create a work directory");
    let logs = work.path().join("logs");
    fs::create_dir_all(&logs).expect("create the logs directory");
    let stub = start_stub();
    match args.mode.as_str() {
        "throughput" => {
            let (bytes, lines) = write_files(&logs, args.files, args.mib << 20);
            let agent = start_agent(&stub, work.path(), &logs);
            let started = Instant::now();
            wait_for_lines(&stub, lines, Duration::from_secs(3600));
            let elapsed = started.elapsed().as_secs_f64();
            let (cpu, peak) = usage(agent.pid()).unwrap_or_default();
            println!(
                "| throughput, {} file(s), {} MiB, {lines} lines | {:.1} MB/s | {:.1} MB per agent CPU-second ({cpu:.2} CPU-s in {elapsed:.1} s) | peak RSS {:.1} MiB |",
                args.files,
                args.mib,
                bytes as f64 / elapsed / 1e6,
                bytes as f64 / cpu / 1e6,
                peak as f64 / 1048576.0
            );
        }
        "rss" => {
            let (_, lines) = write_files(&logs, args.files, args.files as u64 * 10 * 120);
            let agent = start_agent(&stub, work.path(), &logs);
            wait_for_lines(&stub, lines, Duration::from_secs(600));
            std::thread::sleep(Duration::from_secs(10));
            let (_, peak) = usage(agent.pid()).unwrap_or_default();
            println!(
                "| RSS, {} watched files ({lines} lines shipped) | {:.1} MiB now, {:.1} MiB peak |",
                args.files,
                rss_kib(agent.pid()) as f64 / 1024.0,
                peak as f64 / 1048576.0
            );
        }
        _ => {
            let (_, lines) = write_files(&logs, args.files, 1);
            // One line per file: write_files stops after the first byte
            // target, so top up every file to exactly one line.
            for i in 1..args.files {
                fs::write(
                    logs.join(format!("f{i:05}.log")),
                    format!("quiet file {i}\n"),
                )
                .expect("write a quiet file");
            }
            let total = lines + args.files as u64 - 1;
            let agent = start_agent(&stub, work.path(), &logs);
            wait_for_lines(&stub, total, Duration::from_secs(600));
            // Let start-up settle (checkpoint writes, closing files).
            std::thread::sleep(Duration::from_secs(5));
            let (before, _) = usage(agent.pid()).unwrap_or_default();
            std::thread::sleep(Duration::from_secs(args.seconds));
            let (after, _) = usage(agent.pid()).unwrap_or_default();
            let cpu = after - before;
            println!(
                "| idle, {} quiet files in one glob, {} s | {cpu:.2} CPU-s = {:.2}% of a core | RSS {:.1} MiB |",
                args.files,
                args.seconds,
                cpu / args.seconds as f64 * 100.0,
                rss_kib(agent.pid()) as f64 / 1024.0
            );
        }
    }
}
