//! `bench_search`: query latency over millions of corpus-derived lines whose
//! timestamps are spread over days, next to `rg` counting the same words in
//! the same raw file.
//!
//! ```text
//! cargo build --release --workspace --bins
//! target/release/bench_search [--lines 10000000] [--days 10] [--runs 20]
//! ```
//!
//! Lines are the corpus's lines, each prefixed with an RFC 3339 time that
//! advances evenly over `--days` days up to now. They go through the real
//! agent into the real server; then each query runs `--runs` times over
//! HTTP (after two warm-up runs) and its p50/p99 latency is reported.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use loghound_tests::bench::{corpus_lines, dir_size, percentile};
use loghound_tests::data::{rfc3339_utc, words};
use loghound_tests::http::{client, get_search};
use loghound_tests::{token, Agent, Server};

struct Args {
    lines: u64,
    days: i64,
    runs: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        lines: 10_000_000,
        days: 10,
        runs: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--lines" => args.lines = value.parse().unwrap_or(args.lines),
            "--days" => args.days = value.parse().unwrap_or(args.days),
            "--runs" => args.runs = value.parse().unwrap_or(args.runs),
            other => {
                eprintln!(
                    "unknown flag {other}; usage: bench_search [--lines N] [--days N] [--runs N]"
                );
                std::process::exit(2);
            }
        }
    }
    args
}

fn write_lines(path: &Path, corpus: &[String], n: u64, start_ms: i64, span_ms: i64) -> u64 {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create raw file"));
    let mut bytes = 0u64;
    for i in 0..n {
        let time = start_ms + (i as i128 * span_ms as i128 / n as i128) as i64;
        let line = &corpus[(i % corpus.len() as u64) as usize];
        let text = match access_log_time(line) {
            // Access-log lines keep their shape (so their fields are parsed)
            // with the spread time in their own bracket.
            Some((before, after)) => format!("{before}[{}]{after}\n", clf_time(time)),
            None => format!("{} {line}\n", rfc3339_utc(time)),
        };
        out.write_all(text.as_bytes()).expect("write raw file");
        bytes += text.len() as u64;
    }
    out.flush().expect("flush raw file");
    bytes
}

/// Splits an access-log line around its `[dd/Mon/yyyy:HH:MM:SS +zzzz]`.
fn access_log_time(line: &str) -> Option<(&str, &str)> {
    line.find(" - ")?;
    let open = line.find('[')?;
    let close = open + line[open..].find(']')?;
    (close - open == 27).then(|| (&line[..open], &line[close + 1..]))
}

/// Common log format time: `25/Nov/2026:03:12:00 +0000`.
fn clf_time(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let iso = rfc3339_utc(ms); // 2026-11-25T03:12:00.000Z
    let month: usize = iso[5..7].parse().unwrap_or(1);
    format!(
        "{}/{}/{}:{} +0000",
        &iso[8..10],
        MONTHS[month.clamp(1, 12) - 1],
        &iso[0..4],
        &iso[11..19]
    )
}

/// A word in exactly one corpus line (selective) and the word in most lines
/// (common), both at least 6 characters and not only digits.
fn pick_words(corpus: &[String]) -> (String, String) {
    let mut lines_with: HashMap<String, usize> = HashMap::new();
    for line in corpus {
        let mut seen: Vec<String> = words(line).collect();
        seen.sort();
        seen.dedup();
        for word in seen {
            *lines_with.entry(word).or_default() += 1;
        }
    }
    let mut candidates: Vec<(&String, &usize)> = lines_with
        .iter()
        .filter(|(w, _)| w.len() >= 6 && w.chars().any(|c| c.is_ascii_alphabetic()) && w.is_ascii())
        .collect();
    candidates.sort();
    let selective = candidates
        .iter()
        .find(|(_, &n)| n == 1)
        .map(|(w, _)| (*w).clone())
        .expect("a word in exactly one line");
    let common = candidates
        .iter()
        .max_by_key(|(_, &n)| n)
        .map(|(w, _)| (*w).clone())
        .expect("a most common word");
    (selective, common)
}

fn timed(
    url: &str,
    token: &str,
    path: &str,
    params: &[(&str, &str)],
    runs: usize,
) -> (Vec<f64>, u64) {
    let mut latencies = Vec::new();
    let mut count = 0;
    for run in 0..runs + 2 {
        let started = Instant::now();
        let answer = if path == "search" {
            get_search(url, Some(token), params).map(|a| a.body)
        } else {
            let mut request = client().get(format!("{url}/api/v1/{path}"));
            for (k, v) in params {
                request = request.query(k, v);
            }
            request
                .header("Authorization", format!("Bearer {token}"))
                .call()
                .and_then(|mut r| r.body_mut().read_to_string())
        };
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        let body = answer.unwrap_or_else(|e| panic!("{path} {params:?}: {e}"));
        let value: serde_json::Value = serde_json::from_str(&body).expect("JSON answer");
        count = value["count"]
            .as_u64()
            .unwrap_or_else(|| panic!("no count in {body}"));
        if run >= 2 {
            latencies.push(elapsed);
        }
    }
    latencies.sort_by(f64::total_cmp);
    (latencies, count)
}

fn rg_count(args: &[&str], file: &Path) -> Option<(f64, u64)> {
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let output = Command::new("rg").args(args).arg(file).output().ok()?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        count = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
    }
    times.sort_by(f64::total_cmp);
    Some((times[1], count))
}

fn main() {
    let args = parse_args();
    let corpus = corpus_lines();
    let (selective, common) = pick_words(&corpus);
    let work = tempfile::Builder::new()
        .prefix("loghound-bench-search-")
        .tempdir()
        .expect("work dir");
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let raw = logs.join("fleet.log");
    let now = loghound_tests::data::now_ms();
    let span = args.days * 86_400_000;
    let start = now - span;
    let bytes = write_lines(&raw, &corpus, args.lines, start, span);
    eprintln!("wrote {} lines, {bytes} bytes", args.lines);

    let data = work.path().join("data");
    let server = Server::start(&data);
    let url = server.url();
    let ingest = token(&data, &["ingest"]);
    let read = token(&data, &["read"]);
    let agent = Agent::start(
        &url,
        &ingest,
        &work.path().join("agent"),
        &[format!("{}/*.log", logs.display())],
    );
    let began = Instant::now();
    loop {
        let (_, count) = timed(&url, &read, "search", &[("q", ""), ("limit", "0")], 0);
        if count >= args.lines || began.elapsed() > Duration::from_secs(3600) {
            break;
        }
        eprintln!(
            "{:>6.0}s {count} lines indexed",
            began.elapsed().as_secs_f64()
        );
        std::thread::sleep(Duration::from_secs(5));
    }
    let ingest_secs = began.elapsed().as_secs_f64();
    drop(agent);
    std::thread::sleep(Duration::from_secs(3)); // let merges settle

    let (from, to) = (rfc3339_utc(start - 1000), rfc3339_utc(now + 1000));
    let phrase = "\"authentication failure\"".to_string();
    let queries: Vec<(&str, String)> = vec![
        ("selective word", selective.clone()),
        ("common word", common.clone()),
        ("phrase", phrase.clone()),
        ("field filter", "severity:error".into()),
        ("numeric range", "status:>=500".into()),
        ("negation", "-info".into()),
        ("newest 100 of everything", String::new()),
    ];
    println!(
        "## search: {} lines over {} days, {:.1} GB raw",
        args.lines,
        args.days,
        bytes as f64 / 1e9
    );
    println!(
        "ingest until searchable: {ingest_secs:.0} s; index size / raw: {:.2}",
        dir_size(&data.join("indexes")) as f64 / bytes as f64
    );
    println!("\n| query | q | matches | p50 ms | p99 ms |\n|---|---|---|---|---|");
    let mut p50s = HashMap::new();
    for (name, q) in &queries {
        let (lat, count) = timed(
            &url,
            &read,
            "search",
            &[("q", q), ("from", &from), ("to", &to), ("limit", "100")],
            args.runs,
        );
        p50s.insert(*name, percentile(&lat, 50.0));
        println!(
            "| {name} | `{q}` | {count} | {:.1} | {:.1} |",
            percentile(&lat, 50.0),
            percentile(&lat, 99.0)
        );
    }
    let (lat, count) = timed(
        &url,
        &read,
        "histogram",
        &[("q", ""), ("from", &from), ("to", &to), ("buckets", "60")],
        args.runs,
    );
    println!(
        "| histogram, whole range, 60 buckets | `` | {count} | {:.1} | {:.1} |",
        percentile(&lat, 50.0),
        percentile(&lat, 99.0)
    );

    println!("\n| rg over the raw file | command | lines | median ms | Loghound p50 ms | speed-up |\n|---|---|---|---|---|---|");
    for (name, rg_args) in [
        (
            "selective word",
            vec!["-c", "-i", "-w", "-F", selective.as_str()],
        ),
        ("common word", vec!["-c", "-i", "-w", "-F", common.as_str()]),
        ("phrase", vec!["-c", "-i", "-F", "authentication failure"]),
    ] {
        match rg_count(&rg_args, &raw) {
            Some((ms, lines)) => {
                let ours = p50s.get(name).copied().unwrap_or(f64::NAN);
                println!(
                    "| {name} | `rg {}` | {lines} | {ms:.0} | {ours:.1} | {:.0}× |",
                    rg_args.join(" "),
                    ms / ours
                );
            }
            None => println!("| {name} | rg not installed (apt-get install ripgrep) | | | | |"),
        }
    }
    drop(server);
}
