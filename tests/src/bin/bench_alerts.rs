//! `bench_alerts`: how fast an alert arrives, and what many rules cost.
//!
//! ```text
//! cargo build --release --workspace --bins
//! target/release/bench_alerts [--events 200] [--rules 1000] [--lines 10000000] [--measure-secs 60]
//! ```
//!
//! Latency: `--events` `any` rules, each on its own word, with a webhook to
//! a real HTTP receiver, all at default settings. One line per rule is
//! appended to a file the real agent follows, 100 ms apart; the latency of
//! each is from the append to the webhook's arrival.
//!
//! Cost: `--lines` corpus lines go through the agent into the server; then
//! the server's CPU time is measured over `--measure-secs` with no rules,
//! with `--rules` `threshold` rules (10 s interval, 1 h window, so each
//! counts over every line), and with `--rules` `any` rules while 200 lines
//! a second arrive (against the same trickle without rules).

use std::io::Write;
use std::time::{Duration, Instant};

use loghound_tests::bench::{corpus_lines, percentile, usage};
use loghound_tests::data::{append, now_ms, rfc3339_utc, words};
use loghound_tests::http::{api, api_expect, get_search};
use loghound_tests::receiver::Receiver;
use loghound_tests::{token, Agent, Server};
use serde_json::json;

struct Args {
    events: usize,
    rules: usize,
    lines: u64,
    measure_secs: u64,
}

fn parse_args() -> Args {
    let mut args = Args {
        events: 200,
        rules: 1000,
        lines: 10_000_000,
        measure_secs: 60,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--events" => args.events = value.parse().unwrap_or(args.events),
            "--rules" => args.rules = value.parse().unwrap_or(args.rules),
            "--lines" => args.lines = value.parse().unwrap_or(args.lines),
            "--measure-secs" => args.measure_secs = value.parse().unwrap_or(args.measure_secs),
            other => {
                eprintln!("unknown flag {other}; usage: bench_alerts [--events N] [--rules N] [--lines N] [--measure-secs N]");
                std::process::exit(2);
            }
        }
    }
    args
}

fn rule(url: &str, admin: &str, name: &str, query: &str, rule: serde_json::Value) {
    let search = api_expect(
        "POST",
        url,
        "/api/v1/searches",
        admin,
        Some(&json!({ "name": name, "query": query })),
        201,
    );
    let mut rule = rule;
    rule["search_id"] = search["id"].clone();
    api_expect("POST", url, "/api/v1/alerts", admin, Some(&rule), 201);
}

fn delete_all_rules(url: &str, admin: &str) {
    let rules = api_expect("GET", url, "/api/v1/alerts", admin, None, 200);
    for rule in rules["alerts"].as_array().cloned().unwrap_or_default() {
        let id = rule["id"].as_i64().unwrap_or_default();
        api("DELETE", url, &format!("/api/v1/alerts/{id}"), admin, None);
    }
}

fn cpu_over(pid: u32, secs: u64, during: impl Fn()) -> f64 {
    let before = usage(pid).map_or(0.0, |u| u.0);
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        during();
    }
    usage(pid).map_or(0.0, |u| u.0) - before
}

fn count(url: &str, read: &str) -> u64 {
    get_search(url, Some(read), &[("q", ""), ("limit", "0")])
        .ok()
        .and_then(|a| serde_json::from_str::<serde_json::Value>(&a.body).ok())
        .and_then(|v| v["count"].as_u64())
        .unwrap_or(0)
}

fn main() {
    let args = parse_args();
    let work = tempfile::Builder::new()
        .prefix("loghound-bench-alerts-")
        .tempdir()
        .expect("work dir");
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let data = work.path().join("data");
    let server = Server::start(&data);
    let url = server.url();
    let ingest = token(&data, &["ingest"]);
    let read = token(&data, &["read"]);
    let admin = token(&data, &["admin"]);
    let agent = Agent::start(
        &url,
        &ingest,
        &work.path().join("agent"),
        &[format!("{}/*.log", logs.display())],
    );

    // ---- latency ----
    let receiver = Receiver::start();
    for i in 0..args.events {
        rule(
            &url,
            &admin,
            &format!("latency {i}"),
            &format!("alertbench{i:05}"),
            json!({"kind": "any", "channels": [{"type": "webhook", "url": receiver.url(&format!("/r/{i}"))}]}),
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    let live = logs.join("live.log");
    let mut appended = Vec::with_capacity(args.events);
    for i in 0..args.events {
        let line = format!(
            "{} ERROR alertbench{i:05} job failed\n",
            rfc3339_utc(now_ms())
        );
        append(&live, line.as_bytes());
        appended.push(Instant::now());
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = receiver.wait_until("every alert", Duration::from_secs(300), |r| {
        r.len() >= args.events
    });
    let mut latencies: Vec<f64> = got
        .iter()
        .filter_map(|r| {
            let i: usize = r.url.strip_prefix("/r/")?.parse().ok()?;
            Some(r.at.saturating_duration_since(appended[i]).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    println!(
        "## alerts: latency, line appended → webhook received ({} events, default settings)",
        latencies.len()
    );
    println!(
        "p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    delete_all_rules(&url, &admin);

    // ---- cost ----
    let corpus = corpus_lines();
    let bulk = logs.join("bulk.log");
    {
        let mut out = std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&bulk).expect("create bulk file"),
        );
        let now = rfc3339_utc(now_ms());
        for i in 0..args.lines {
            let line = &corpus[(i % corpus.len() as u64) as usize];
            writeln!(out, "{now} {line}").expect("write bulk file");
        }
        out.flush().expect("flush bulk file");
    }
    let target = args.lines + args.events as u64;
    let began = Instant::now();
    while count(&url, &read) < target && began.elapsed() < Duration::from_secs(3600) {
        std::thread::sleep(Duration::from_secs(5));
    }
    eprintln!(
        "{} lines indexed in {:.0} s",
        target,
        began.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(5));

    // Words spread over the frequency range, one rule each.
    let mut frequency: std::collections::HashMap<String, u64> = Default::default();
    for line in &corpus {
        for word in words(line) {
            if word.len() >= 4 && word.chars().all(|c| c.is_ascii_alphabetic()) {
                *frequency.entry(word).or_default() += 1;
            }
        }
    }
    let mut by_frequency: Vec<(String, u64)> = frequency.into_iter().collect();
    by_frequency.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let step = (by_frequency.len() / args.rules.max(1)).max(1);
    let chosen: Vec<String> = by_frequency
        .iter()
        .step_by(step)
        .take(args.rules)
        .map(|(w, _)| w.clone())
        .collect();

    let pid = server.pid();
    let idle = cpu_over(pid, args.measure_secs, || {
        std::thread::sleep(Duration::from_millis(200))
    });
    for (i, word) in chosen.iter().enumerate() {
        rule(
            &url,
            &admin,
            &format!("threshold {i}"),
            word,
            json!({"kind": "threshold", "threshold": 1_000_000_000u64, "window_secs": 3600, "interval_secs": 10}),
        );
    }
    std::thread::sleep(Duration::from_secs(12));
    let thresholds = cpu_over(pid, args.measure_secs, || {
        std::thread::sleep(Duration::from_millis(200))
    });
    delete_all_rules(&url, &admin);

    let trickle = logs.join("trickle.log");
    let feed = || {
        // 200 lines a second, in batches of 20.
        let now = rfc3339_utc(now_ms());
        let text: String = (0..20)
            .map(|k| format!("{now} {}\n", corpus[(k * 7919) % corpus.len()]))
            .collect();
        append(&trickle, text.as_bytes());
        std::thread::sleep(Duration::from_millis(100));
    };
    let trickle_only = cpu_over(pid, args.measure_secs, feed);
    for (i, word) in chosen.iter().enumerate() {
        rule(
            &url,
            &admin,
            &format!("any {i}"),
            word,
            json!({"kind": "any", "interval_secs": 10}),
        );
    }
    std::thread::sleep(Duration::from_secs(5));
    let any_rules = cpu_over(pid, args.measure_secs, feed);

    let secs = args.measure_secs as f64;
    println!(
        "\n## alerts: CPU of {} rules over {} indexed lines (server process, {} s each)",
        chosen.len(),
        target,
        args.measure_secs
    );
    println!("| load | server CPU s | CPU % of one core |\n|---|---|---|");
    println!(
        "| idle, no rules | {idle:.2} | {:.1} |",
        100.0 * idle / secs
    );
    println!("| {} threshold rules, 10 s interval, 1 h window (every line in the window) | {thresholds:.2} | {:.1} |", chosen.len(), 100.0 * thresholds / secs);
    println!(
        "| 200 lines/s, no rules | {trickle_only:.2} | {:.1} |",
        100.0 * trickle_only / secs
    );
    println!(
        "| 200 lines/s, {} any rules | {any_rules:.2} | {:.1} |",
        chosen.len(),
        100.0 * any_rules / secs
    );
    drop(agent);
    drop(server);
}
