//! `bench_agent`: the agent alone, at scale, on this machine.
//!
//! ```text
//! cargo build --release -p loghound-agent -p loghound-tests --bins
//! target/release/bench_agent throughput --files 1 --mib 512
//! target/release/bench_agent throughput --files 100 --mib 512
//! target/release/bench_agent rss --files 2000
//! target/release/bench_agent idle --files 1000 --seconds 60
//! target/release/bench_agent idle --files 10000 --seconds 60
//! target/release/bench_agent journald --entries 1000000
//! target/release/bench_agent containers --format cri --mib 512
//! target/release/bench_agent containers --format docker --mib 512
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
//! - `journald`: `--entries` corpus lines as journal entries (with
//!   `PRIORITY`, `SYSLOG_IDENTIFIER`, `_HOSTNAME`, `_PID`) written by
//!   `systemd-journal-remote` into a journal directory before the agent
//!   starts; timed to the last entry acked. Entries/s, and the CPU of the
//!   agent and of its journalctl child per 100,000 entries.
//! - `containers`: `--mib` MiB of corpus lines in one container log of
//!   `--format` `cri` or `docker` (every 7th line cut into three partial
//!   parts, as runtimes cut long lines), under a kubelet-style
//!   `var/log/pods/<ns>_<pod>_<uid>/<container>/0.log`; lines/s and MB of
//!   file per agent CPU-second, to compare with `throughput`.

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
    entries: u64,
    format: String,
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_default();
    let mut args = Args {
        mode,
        files: 1,
        mib: 512,
        seconds: 60,
        entries: 1_000_000,
        format: "cri".into(),
    };
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        let parsed = value.parse::<u64>().ok();
        if flag == "--format" && ["cri", "docker"].contains(&value.as_str()) {
            args.format = value;
            continue;
        }
        match (flag.as_str(), parsed) {
            ("--entries", Some(v)) => args.entries = v,
            ("--files", Some(v)) => args.files = v as usize,
            ("--mib", Some(v)) => args.mib = v,
            ("--seconds", Some(v)) => args.seconds = v,
            _ => usage_exit(&format!("bad flag {flag} {value}")),
        }
    }
    if !["throughput", "rss", "idle", "journald", "containers"].contains(&args.mode.as_str()) {
        usage_exit("mode must be throughput, rss, idle, journald or containers");
    }
    args
}

fn usage_exit(why: &str) -> ! {
    eprintln!("{why}\nusage: bench_agent throughput|rss|idle|journald|containers [--files N] [--mib N] [--seconds N] [--entries N] [--format cri|docker]");
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

/// CPU-seconds of the agent's `journalctl` children, summed.
fn journalctl_cpu(agent_pid: u32) -> f64 {
    let mut total = 0.0;
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((name, rest)) = stat.split_once(") ") else {
            continue;
        };
        let parent = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if name.ends_with("(journalctl") && parent == Some(agent_pid) {
            total += usage(pid).map_or(0.0, |(cpu, _)| cpu);
        }
    }
    total
}

/// Writes `count` corpus lines as journal entries into `dir`.
fn write_journal(dir: &Path, count: u64) {
    use loghound_tests::journal::{append_entries, now_us, JournalEntry};
    let corpus = corpus_lines();
    let start = now_us() - count;
    let mut batch = Vec::with_capacity(100_000);
    let file = dir.join("bench.journal");
    for n in 0..count {
        let priority = (n % 8).to_string();
        let pid = (1000 + n % 300).to_string();
        let ident = ["sshd", "cron", "nginx", "kernel"][(n % 4) as usize];
        batch.push(JournalEntry::new(
            start + n,
            format!("{n} {}", corpus[n as usize % corpus.len()]),
            &[
                ("PRIORITY", &priority),
                ("SYSLOG_IDENTIFIER", ident),
                ("_HOSTNAME", "bench-host"),
                ("_PID", &pid),
                ("_TRANSPORT", "syslog"),
            ],
        ));
        if batch.len() == 100_000 {
            append_entries(&file, &batch);
            batch.clear();
        }
    }
    append_entries(&file, &batch);
}

/// Writes about `total_bytes` of corpus lines as one container log in
/// `format`; returns (bytes, lines).
fn write_container_log(path: &Path, format: &str, total_bytes: u64) -> (u64, u64) {
    let corpus = corpus_lines();
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create the log"));
    let (mut bytes, mut count) = (0u64, 0u64);
    let time = "2026-12-03T10:00:00.123456789Z";
    while bytes < total_bytes {
        let line = format!("{count} {}", corpus[count as usize % corpus.len()]);
        let cut = [line.len() / 3, 2 * line.len() / 3];
        let parts: Vec<&str> =
            if count % 7 == 0 && line.is_char_boundary(cut[0]) && line.is_char_boundary(cut[1]) {
                vec![&line[..cut[0]], &line[cut[0]..cut[1]], &line[cut[1]..]]
            } else {
                vec![&line]
            };
        for (index, part) in parts.iter().enumerate() {
            let last = index + 1 == parts.len();
            let text = if format == "docker" {
                let log = if last {
                    format!("{part}\n")
                } else {
                    part.to_string()
                };
                format!(
                    "{}\n",
                    serde_json::json!({"log": log, "stream": "stdout", "time": time})
                )
            } else {
                format!("{time} stdout {} {part}\n", if last { "F" } else { "P" })
            };
            out.write_all(text.as_bytes()).expect("write the log");
            bytes += text.len() as u64;
        }
        count += 1;
    }
    out.flush().expect("flush the log");
    (bytes, count)
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
        "journald" => {
            let journal = work.path().join("journal");
            fs::create_dir_all(&journal).expect("create the journal directory");
            write_journal(&journal, args.entries);
            let config = work.path().join("agent.toml");
            fs::write(
                &config,
                format!(
                    "[[inputs]]\ntype = \"journald\"\ndirectory = \"{}\"\n",
                    journal.display()
                ),
            )
            .expect("write agent.toml");
            let agent = Agent::start_with(
                &stub.url,
                "lh_bench",
                &work.path().join("agent"),
                &[] as &[&str],
                &["--config".to_string(), config.display().to_string()],
            );
            let started = Instant::now();
            let deadline = started + Duration::from_secs(3600);
            let mut journalctl = 0.0f64;
            while stub.lines.load(Ordering::Relaxed) < args.entries {
                if Instant::now() > deadline {
                    eprintln!("not all entries acked within an hour");
                    std::process::exit(1);
                }
                journalctl = journalctl.max(journalctl_cpu(agent.pid()));
                std::thread::sleep(Duration::from_millis(50));
            }
            let elapsed = started.elapsed().as_secs_f64();
            journalctl = journalctl.max(journalctl_cpu(agent.pid()));
            let (cpu, peak) = usage(agent.pid()).unwrap_or_default();
            let per_100k = |cpu: f64| cpu / args.entries as f64 * 100_000.0;
            println!(
                "| journald, {} entries | {:.0} entries/s | agent {:.2} CPU-s per 100k entries ({cpu:.2} CPU-s), journalctl {:.2} CPU-s per 100k ({journalctl:.2} CPU-s) | peak RSS {:.1} MiB |",
                args.entries,
                args.entries as f64 / elapsed,
                per_100k(cpu),
                per_100k(journalctl),
                peak as f64 / 1048576.0
            );
        }
        "containers" => {
            let dir = logs.join("var/log/pods/bench_pod-1_0000-1111/app");
            fs::create_dir_all(&dir).expect("create the pod directory");
            let (bytes, lines) =
                write_container_log(&dir.join("0.log"), &args.format, args.mib << 20);
            let agent = Agent::start(
                &stub.url,
                "lh_bench",
                &work.path().join("agent"),
                &[format!("{}/var/log/pods/*/*/*.log", logs.display())],
            );
            let started = Instant::now();
            wait_for_lines(&stub, lines, Duration::from_secs(3600));
            let elapsed = started.elapsed().as_secs_f64();
            let (cpu, peak) = usage(agent.pid()).unwrap_or_default();
            println!(
                "| containers, {}, {} MiB, {lines} lines | {:.0} lines/s, {:.1} MB/s | {:.0} lines and {:.1} MB of file per agent CPU-second ({cpu:.2} CPU-s in {elapsed:.1} s) | peak RSS {:.1} MiB |",
                args.format,
                args.mib,
                lines as f64 / elapsed,
                bytes as f64 / elapsed / 1e6,
                lines as f64 / cpu,
                bytes as f64 / cpu / 1e6,
                peak as f64 / 1048576.0
            );
        }
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
