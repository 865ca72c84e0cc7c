//! Bounded polling: indexed data becomes searchable about a second after
//! the ack, so tests poll until the server holds what they expect, then
//! check that nothing more arrives late.

use std::time::{Duration, Instant};

use crate::data::parse_numbered;
use crate::http::{hit_message, search_all, search_page};

const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The count of `q`, or why it could not be read.
fn count(base_url: &str, token: &str, q: &str) -> Result<u64, String> {
    search_page(base_url, token, q, 1, None).map(|page| page.count)
}

/// Polls until the count of `q` equals `expected`. Fails at once when the
/// count exceeds `expected` (duplicates, or lines that should not be there)
/// and after `timeout` with the expected and last seen counts.
pub fn wait_for_count(base_url: &str, token: &str, q: &str, expected: u64, timeout: Duration) {
    let start = Instant::now();
    let mut last = String::from("no answer yet");
    while start.elapsed() < timeout {
        match count(base_url, token, q) {
            Ok(seen) if seen == expected => return,
            Ok(seen) if seen > expected => panic!(
                "search {q:?}: count {seen} exceeds the expected {expected} after {:.1?} \
                 (duplicates or foreign lines)",
                start.elapsed()
            ),
            Ok(seen) => last = format!("count {seen}"),
            Err(error) => last = format!("error: {error}"),
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    panic!("search {q:?}: expected count {expected} within {timeout:?}, last seen {last}");
}

/// Polls until the count of `q` is at least `min`; returns the count seen.
pub fn wait_until_count_at_least(
    base_url: &str,
    token: &str,
    q: &str,
    min: u64,
    timeout: Duration,
) -> u64 {
    let start = Instant::now();
    let mut last = String::from("no answer yet");
    while start.elapsed() < timeout {
        match count(base_url, token, q) {
            Ok(seen) if seen >= min => return seen,
            Ok(seen) => last = format!("count {seen}"),
            Err(error) => last = format!("error: {error}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("search {q:?}: expected a count of at least {min} within {timeout:?}, last seen {last}");
}

/// Checks, for `duration`, that the count of `q` stays `expected`: no
/// re-sent line shows up late.
pub fn assert_count_stays(base_url: &str, token: &str, q: &str, expected: u64, duration: Duration) {
    let start = Instant::now();
    loop {
        let seen = count(base_url, token, q).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            seen,
            expected,
            "search {q:?}: count moved from {expected} to {seen} after {:.1?} of waiting",
            start.elapsed()
        );
        if start.elapsed() >= duration {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// How many times each [`crate::data::numbered_line`] `0..total` with `tag`
/// is searchable, and the hits with that tag that are none of them.
pub fn number_counts(
    base_url: &str,
    token: &str,
    tag: &str,
    total: u64,
) -> (Vec<u32>, Vec<String>) {
    let mut seen = vec![0u32; total as usize];
    let mut foreign = Vec::new();
    for hit in search_all(base_url, token, tag) {
        let message = hit_message(&hit);
        match parse_numbered(tag, message) {
            Some(number) if number < total => seen[number as usize] += 1,
            _ => foreign.push(message.to_string()),
        }
    }
    (seen, foreign)
}

/// Checks that every [`crate::data::numbered_line`] `0..total` with `tag` is
/// searchable exactly once, and nothing else with that tag is: the count of
/// each number over all pages of the search for `tag`.
pub fn assert_each_number_once(base_url: &str, token: &str, tag: &str, total: u64) {
    let (seen, foreign) = number_counts(base_url, token, tag, total);
    let wrong: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, copies)| **copies != 1)
        .map(|(number, copies)| format!("line {number}: {copies} copies"))
        .collect();
    assert!(
        wrong.is_empty() && foreign.is_empty(),
        "{} of {total} lines not present exactly once (first: {:?}); {} foreign hits (first: {:?})",
        wrong.len(),
        &wrong[..wrong.len().min(10)],
        foreign.len(),
        &foreign[..foreign.len().min(5)],
    );
}

/// Which of the [`crate::data::numbered_line`]s `0..total` with `tag` are
/// missing or present more than once, as ranges, for a failure message.
pub fn describe_numbers(base_url: &str, token: &str, tag: &str, total: u64) -> String {
    let (seen, foreign) = number_counts(base_url, token, tag, total);
    let mut ranges: Vec<String> = Vec::new();
    let mut start = 0usize;
    for end in 1..=seen.len() {
        if end == seen.len() || seen[end] != seen[start] {
            if seen[start] != 1 {
                ranges.push(format!("{}..{} ×{}", start, end, seen[start]));
            }
            start = end;
        }
    }
    format!(
        "{} ranges not present exactly once: {:?}; {} foreign hits",
        ranges.len(),
        &ranges[..ranges.len().min(20)],
        foreign.len()
    )
}
