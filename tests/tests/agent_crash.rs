//! Guarantees 1 and 2 across agent crashes: an agent killed with SIGKILL in
//! the middle of a large file and restarted with the same state directory
//! ships every line, and none twice.

use std::time::Duration;

use loghound_tests::data::{append, numbered_lines, numbered_term, parse_numbered};
use loghound_tests::http::hit_message;
use loghound_tests::{
    assert_count_stays, search, search_all, temp_dir, token, wait_for_count,
    wait_until_count_at_least, Agent, Server,
};

const TAG: &str = "agentcrash";
const FIRST_HALF: u64 = 80_000;
const TOTAL: u64 = 160_000;

#[test]
fn agent_kill9_mid_file_loses_and_duplicates_nothing() {
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log_file = logs.join("big.log");
    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);

    append(&log_file, &numbered_lines(TAG, 0..FIRST_HALF));
    // Small batches: many acks and checkpoints while the file is read.
    let mut agent = Agent::start_with(
        &url,
        &ingest_token,
        &tmp.path().join("agent"),
        &[format!("{}/*.log", logs.display())],
        &["--batch-max-bytes", "65536"],
    );

    // First kill: as soon as anything is searchable, mid-way through the
    // first half.
    let at_first_kill =
        wait_until_count_at_least(&url, &read_token, TAG, 1, Duration::from_secs(30));
    agent.kill9();
    eprintln!("first kill with {at_first_kill} of {FIRST_HALF} lines searchable");

    // Lines written while the agent is down.
    append(
        &log_file,
        &numbered_lines(TAG, FIRST_HALF..FIRST_HALF + 20_000),
    );
    agent.restart();

    // Second kill: once the restarted agent made progress, while the file
    // still grows.
    let progress = wait_until_count_at_least(
        &url,
        &read_token,
        TAG,
        at_first_kill + 1,
        Duration::from_secs(30),
    );
    agent.kill9();
    eprintln!("second kill with {progress} lines searchable");
    append(&log_file, &numbered_lines(TAG, FIRST_HALF + 20_000..TOTAL));
    agent.restart();

    wait_for_count(&url, &read_token, TAG, TOTAL, Duration::from_secs(90));
    assert_count_stays(&url, &read_token, TAG, TOTAL, Duration::from_secs(3));
    agent.assert_running();

    for number in [
        0,
        1,
        at_first_kill,
        progress,
        FIRST_HALF - 1,
        FIRST_HALF,
        TOTAL - 1,
    ] {
        let number = number.min(TOTAL - 1);
        let term = numbered_term(number);
        let (count, hits) = search(&url, &read_token, &term);
        assert_eq!(
            count, 1,
            "line {number} ({term}) must be there exactly once"
        );
        assert_eq!(parse_numbered(TAG, hit_message(&hits[0])), Some(number));
    }

    // Every number exactly once.
    let mut seen = vec![0u32; TOTAL as usize];
    for hit in search_all(&url, &read_token, TAG) {
        let message = hit_message(&hit);
        let number = parse_numbered(TAG, message)
            .unwrap_or_else(|| panic!("unexpected message {message:?}"));
        seen[number as usize] += 1;
    }
    let wrong: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, copies)| **copies != 1)
        .take(10)
        .map(|(number, copies)| format!("line {number}: {copies} copies"))
        .collect();
    assert!(
        wrong.is_empty(),
        "lines not present exactly once:\n{}",
        wrong.join("\n")
    );
}
