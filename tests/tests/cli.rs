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
