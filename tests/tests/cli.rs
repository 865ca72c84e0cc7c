//! `loghound search` prints matching lines newest first, one per line,
//! each ending with the message.

use std::time::Duration;

use loghound_tests::data::{event, now_ms, rfc3339_utc};
use loghound_tests::http::ingest;
use loghound_tests::process::run_loghound;
use loghound_tests::{temp_dir, token, wait_for_count, Server};

/// Runs `loghound search QUERY --server URL --token T --from -1h --to now
/// [extra…]` and returns its stdout lines; panics on a failed exit.
fn cli_search(url: &str, token: &str, query: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "search", query, "--server", url, "--token", token, "--from", "-1h", "--to", "now",
    ];
    args.extend_from_slice(extra);
    let output = run_loghound(&args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "`loghound {}` failed with {}\nstdout: {stdout}\nstderr: {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.lines().map(str::to_string).collect()
}

/// Asserts that `printed` are exactly the `expected` messages in order.
fn assert_lines_end_with(printed: &[String], expected: &[String]) {
    let matches = printed.len() == expected.len()
        && printed
            .iter()
            .zip(expected)
            .all(|(line, message)| line.ends_with(message.as_str()));
    assert!(
        matches,
        "expected lines ending with, in order:\n{}\n\nprinted:\n{}",
        expected.join("\n"),
        printed.join("\n")
    );
}

#[test]
fn search_prints_matching_lines_newest_first() {
    let tmp = temp_dir();
    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);

    // One batch per line, oldest first, both by read time and by arrival,
    // so newest first is unambiguous whichever time the server falls back to.
    let start_ms = now_ms() - 10_000;
    let mut offset = 0;
    let mut messages = Vec::new();
    for n in 0..6 {
        let message = format!("clisearch request {n} handled by worker{n}");
        let mut line = event("cli-f", offset, &message);
        line.read_at_ms = Some(start_ms + n * 1000);
        offset = line.end_offset.0;
        assert_eq!(ingest(&url, &ingest_token, "e2e-cli", &[line]).accepted, 1);
        messages.push(message);
        std::thread::sleep(Duration::from_millis(30));
    }
    let other = event("cli-f", offset, "unrelated line that must not be printed");
    ingest(&url, &ingest_token, "e2e-cli", &[other]);
    wait_for_count(&url, &read_token, "clisearch", 6, Duration::from_secs(30));

    let newest_first: Vec<String> = messages.iter().rev().cloned().collect();
    assert_lines_end_with(
        &cli_search(&url, &read_token, "clisearch", &[]),
        &newest_first,
    );
    assert_lines_end_with(
        &cli_search(&url, &read_token, "clisearch", &["--limit", "2"]),
        &newest_first[..2],
    );
    assert_lines_end_with(
        &cli_search(&url, &read_token, "clisearch worker3", &[]),
        &newest_first[2..3],
    );
    assert!(cli_search(&url, &read_token, "nosuchwordanywhere", &[]).is_empty());
}

#[test]
fn search_orders_by_the_lines_own_timestamps() {
    let tmp = temp_dir();
    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);

    // Sent in shuffled order in one batch: only the RFC 3339 timestamps
    // at the start of each line say which is newest.
    let now = now_ms();
    let ages_seconds = [30, 50, 10, 40, 20];
    let messages: Vec<String> = ages_seconds
        .iter()
        .map(|age| {
            format!(
                "{} clistamp line aged {age}s",
                rfc3339_utc(now - age * 1000)
            )
        })
        .collect();
    let batch = loghound_tests::data::events("cli-ts", 0, &messages);
    assert_eq!(
        ingest(&url, &ingest_token, "e2e-cli-ts", &batch).accepted,
        5
    );
    wait_for_count(&url, &read_token, "clistamp", 5, Duration::from_secs(30));

    let mut newest_first: Vec<(i64, String)> = ages_seconds.iter().copied().zip(messages).collect();
    newest_first.sort();
    let expected: Vec<String> = newest_first.into_iter().map(|(_, m)| m).collect();
    assert_lines_end_with(&cli_search(&url, &read_token, "clistamp", &[]), &expected);
}

#[test]
fn search_with_a_bad_token_fails_loudly() {
    let tmp = temp_dir();
    let server = Server::start(&tmp.path().join("server"));
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let url = server.url();
    for (what, bad_token) in [
        ("an ingest token", ingest_token.as_str()),
        ("a wrong token", "nope"),
    ] {
        let output = run_loghound(&["search", "x", "--server", &url, "--token", bad_token]);
        assert!(
            !output.status.success(),
            "search with {what} must fail, exited {} with stdout {:?}",
            output.status,
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(
            !output.stderr.is_empty(),
            "search with {what} must say why on stderr"
        );
    }
}

/// The figures of `loghound disk-usage`'s line for `label` (a day or
/// `all`): docs, segments, bytes.
fn usage_line(report: &str, label: &str) -> Option<(u64, u64, u64)> {
    let line = report
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label))?;
    let numbers: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(3)
        .filter_map(|n| n.parse().ok())
        .collect();
    match numbers[..] {
        [docs, segments, bytes] => Some((docs, segments, bytes)),
        _ => None,
    }
}

/// The bytes `loghound disk-usage` gives a part or field line.
fn usage_bytes(report: &str, section: &str, name: &str) -> Option<u64> {
    report
        .split("\n\n")
        .find(|block| block.starts_with(section))?
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn disk_usage_accounts_for_every_line_and_every_byte_of_the_index() {
    let tmp = temp_dir();
    let mut server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let messages: Vec<String> = (0..3000)
        .map(|n| {
            format!(
                "diskusage request {n} from 10.0.{}.{} took {}ms",
                n % 7,
                n % 250,
                n % 97
            )
        })
        .collect();
    for (i, chunk) in messages.chunks(1000).enumerate() {
        let batch = loghound_tests::data::events("du-f", i as u64 * 1_000_000, chunk);
        assert_eq!(ingest(&url, &ingest_token, "e2e-du", &batch).accepted, 1000);
    }
    wait_for_count(
        &url,
        &read_token,
        "diskusage",
        3000,
        Duration::from_secs(30),
    );
    // Stopped, so the files listed are the files measured.
    server.kill9();

    let data_dir = tmp.path().join("server");
    let output = run_loghound(&["disk-usage", "--data-dir", &data_dir.to_string_lossy()]);
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let (docs, segments, bytes) = usage_line(&report, "all").expect("an `all` line");
    assert_eq!(docs, 3000, "{report}");
    assert!(segments >= 1, "{report}");
    let mut on_disk = 0;
    for day in std::fs::read_dir(data_dir.join("indexes")).expect("list indexes") {
        for file in std::fs::read_dir(day.expect("day").path()).expect("list a day") {
            let metadata = file.expect("file").metadata().expect("metadata");
            if metadata.is_file() {
                on_disk += metadata.len();
            }
        }
    }
    assert_eq!(bytes, on_disk, "{report}");
    // Parts and fields add up to no more than the files hold, and the
    // message's terms, postings and positions are there.
    let parts: u64 = [
        "terms",
        "postings",
        "positions",
        "fast",
        "fieldnorms",
        "store",
        "other",
    ]
    .iter()
    .map(|p| usage_bytes(&report, "part", p).unwrap_or_else(|| panic!("part {p}: {report}")))
    .sum();
    assert!(parts > 0 && parts <= bytes, "{report}");
    assert!(
        usage_bytes(&report, "part", "positions").unwrap_or(0) > 0,
        "{report}"
    );
    assert!(
        usage_bytes(&report, "field", "message").unwrap_or(0) > 0,
        "{report}"
    );
    let fields_sum: u64 = report
        .split("\n\n")
        .find(|block| block.starts_with("field"))
        .map(|block| {
            block
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(fields_sum, parts, "{report}");

    let missing = run_loghound(&[
        "disk-usage",
        "--data-dir",
        &tmp.path().join("nothing").to_string_lossy(),
    ]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("has no index directory"), "{stderr}");
}
