//! `bench_stats`: query pipes over millions of JSON request lines spread
//! over a day, next to the naive pipeline (`awk`, `sort`, `uniq -c`) on the
//! same raw file.
//!
//! ```text
//! cargo build --release --workspace --bins
//! target/release/bench_stats [--lines 10000000] [--runs 10]
//! ```
//!
//! Each line is `{"time": …, "status": …, "path": …, "client_ip": …,
//! "duration_ms": …, "msg": …}`: 7 statuses, 100 paths, 100,000 client
//! addresses, durations spread over four orders of magnitude. The lines go
//! through the real agent into the real server; each pipe then runs
//! `--runs` times over HTTP after two warm-up runs, and the naive pipeline
//! computing the same table runs three times (median). The tables are
//! compared, so a fast wrong answer shows.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use loghound_tests::bench::{dir_size, percentile, RequestLines};
use loghound_tests::data::rfc3339_utc;
use loghound_tests::http::get_with_params;
use loghound_tests::{token, Agent, Server};

fn write_lines(path: &Path, n: u64, start_ms: i64, span_ms: i64) -> u64 {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create raw file"));
    let mut requests = RequestLines::default();
    let mut bytes = 0u64;
    for i in 0..n {
        let time = start_ms + (i as i128 * span_ms as i128 / n as i128) as i64;
        let mut line = requests.line(time);
        line.push('\n');
        out.write_all(line.as_bytes()).expect("write raw file");
        bytes += line.len() as u64;
    }
    out.flush().expect("flush raw file");
    bytes
}

/// Runs `q` `runs` times after two warm-ups; latencies (sorted) and the
/// last answer.
fn timed(
    url: &str,
    token: &str,
    q: &str,
    from: &str,
    to: &str,
    runs: usize,
) -> (Vec<f64>, serde_json::Value) {
    let mut latencies = Vec::new();
    let mut last = serde_json::Value::Null;
    for run in 0..runs + 2 {
        let started = Instant::now();
        let answer = get_with_params(
            url,
            "/api/v1/stats",
            Some(token),
            &[("q", q), ("from", from), ("to", to)],
        )
        .unwrap_or_else(|e| panic!("{q}: {e}"));
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(answer.status, 200, "{q}: {}", answer.body);
        last = answer.json();
        if run >= 2 {
            latencies.push(elapsed);
        }
    }
    latencies.sort_by(f64::total_cmp);
    (latencies, last)
}

/// Runs a shell pipeline three times; the median ms and its output.
fn naive(script: &str) -> (f64, String) {
    let mut times = Vec::new();
    let mut output = String::new();
    for _ in 0..3 {
        let started = Instant::now();
        let out = Command::new("sh")
            .args(["-c", script])
            .env("LC_ALL", "C")
            .output()
            .expect("run sh");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        output = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    times.sort_by(f64::total_cmp);
    (times[1], output)
}

fn count_indexed(url: &str, token: &str) -> u64 {
    get_with_params(
        url,
        "/api/v1/search",
        Some(token),
        &[("q", ""), ("limit", "0")],
    )
    .ok()
    .and_then(|a| serde_json::from_str::<serde_json::Value>(&a.body).ok())
    .and_then(|v| v["count"].as_u64())
    .unwrap_or(0)
}

fn rows(answer: &serde_json::Value) -> Vec<Vec<serde_json::Value>> {
    answer["rows"]
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r.as_array().cloned()).collect())
        .unwrap_or_default()
}

fn cell(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `KEY VALUE` lines as a map, values as text.
fn pairs(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
        })
        .collect()
}

fn main() {
    let mut lines = 10_000_000u64;
    let mut runs = 10usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        match flag.as_str() {
            "--lines" => lines = value.parse().unwrap_or(lines),
            "--runs" => runs = value.parse().unwrap_or(runs),
            other => {
                eprintln!("unknown flag {other}; usage: bench_stats [--lines N] [--runs N]");
                std::process::exit(2);
            }
        }
    }
    let work = tempfile::Builder::new()
        .prefix("loghound-bench-stats-")
        .tempdir()
        .expect("work dir");
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let raw = logs.join("requests.log");
    let now = loghound_tests::data::now_ms();
    let span = 86_400_000 - 120_000;
    let start = now - span;
    let bytes = write_lines(&raw, lines, start, span);
    eprintln!("wrote {lines} lines, {bytes} bytes");

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
    while count_indexed(&url, &read) < lines && began.elapsed() < Duration::from_secs(3600) {
        std::thread::sleep(Duration::from_secs(5));
    }
    let ingest_secs = began.elapsed().as_secs_f64();
    drop(agent);
    std::thread::sleep(Duration::from_secs(3));

    let (from, to) = (rfc3339_utc(start - 1000), rfc3339_utc(now + 1000));
    let file = raw.display().to_string();
    println!(
        "## stats: {lines} JSON lines over a day, {:.2} GB raw",
        bytes as f64 / 1e9
    );
    println!(
        "ingest until searchable: {ingest_secs:.0} s; index size / raw: {:.2}",
        dir_size(&data.join("indexes")) as f64 / bytes as f64
    );
    println!("\n| pipe | rows | p50 ms | p99 ms | naive ms | speed-up | tables agree |\n|---|---|---|---|---|---|---|");
    let field = |name: &str| {
        format!("awk -F'\"{name}\":' '{{split($2, a, /[,}}]/); gsub(/\"/, \"\", a[1]); print a[1]}}' {file}")
    };
    let cases: Vec<(&str, String, String)> = vec![
        (
            "count by status",
            "| stats count() by (status)".into(),
            format!("{} | sort | uniq -c | awk '{{print $2, $1}}'", field("status")),
        ),
        (
            "p99 by path (100 paths)",
            "| stats p99(duration_ms) by (path)".into(),
            format!(
                "awk -F'\"' '{{d=$0; sub(/.*\"duration_ms\":/, \"\", d); sub(/,.*/, \"\", d); print $10, d}}' {file} \
                 | sort -k1,1 -k2,2g | awk '{{v[$1, n[$1]++] = $2}} END {{for (p in n) print p, v[p, int(0.99 * (n[p] - 1))]}}'"
            ),
        ),
        (
            "top 10 by client_ip (100k)",
            "| top 10 by client_ip".into(),
            format!("{} | sort | uniq -c | sort -k1,1nr -k2,2 | head -10 | awk '{{print $2, $1}}'", field("client_ip")),
        ),
        (
            "timechart span=1m over a day",
            "| timechart span=1m count()".into(),
            format!("cut -c10-25 {file} | uniq -c | awk '{{print $2, $1}}'"),
        ),
    ];
    let mut results = Vec::new();
    for (name, q, script) in &cases {
        let (latencies, answer) = timed(&url, &read, q, &from, &to, runs);
        let (naive_ms, naive_out) = naive(script);
        let table = rows(&answer);
        let ours: BTreeMap<String, String> = table
            .iter()
            .filter(|r| r.len() >= 2)
            .map(|r| {
                let key = cell(&r[0]);
                // Timechart keys are bucket starts; the naive side prints minutes.
                let key = if key.len() > 16 && key.as_bytes().get(10) == Some(&b'T') {
                    key[..16].to_owned()
                } else {
                    key
                };
                (key, cell(&r[r.len() - 1]))
            })
            .filter(|(_, v)| v != "0")
            .collect();
        let theirs = pairs(&naive_out);
        // Estimated percentiles (DDSketch) agree within their 1 % bound.
        let estimated = answer["estimated"]
            .as_array()
            .is_some_and(|e| !e.is_empty());
        let same = |a: &String, b: &String| match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) if estimated => (x - y).abs() <= 0.01 * y.abs(),
            _ => a == b,
        };
        let agree = ours.len() == theirs.len()
            && ours
                .iter()
                .all(|(k, v)| theirs.get(k).is_some_and(|t| same(v, t)));
        if !agree {
            let differing: Vec<_> = ours
                .iter()
                .filter(|(k, v)| theirs.get(*k) != Some(v))
                .take(3)
                .collect();
            eprintln!(
                "{name}: tables differ, e.g. {differing:?} (naive has {} rows, ours {})",
                theirs.len(),
                ours.len()
            );
        }
        let p50 = percentile(&latencies, 50.0);
        println!(
            "| {name} | {} | {p50:.1} | {:.1} | {naive_ms:.0} | {:.0}× | {} |",
            table.len(),
            percentile(&latencies, 99.0),
            naive_ms / p50,
            match (agree, estimated) {
                (true, true) => "yes, within 1 % (estimated)",
                (true, false) => "yes",
                (false, _) => "no",
            }
        );
        results.push((name, q.clone()));
    }
    println!(
        "\nqueries: {}",
        results
            .iter()
            .map(|(n, q)| format!("{n}: `{q}`"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    drop(server);
}
