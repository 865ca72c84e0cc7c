//! Many small commits into one day leave a bounded number of segments:
//! the merge policy (`server/src/index/indexer/merge.rs`, `merge_policy`) keeps
//! at most `MERGE_MIN_SEGMENTS - 1` = 11 segments per size level once its
//! merges are done, and a small day has one level.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use loghound_tests::data::events;
use loghound_tests::http::ingest;
use loghound_tests::{temp_dir, token, wait_for_count, Server, ServerOptions};

/// `MERGE_MIN_SEGMENTS - 1`: the most segments one level keeps.
const MAX_SEGMENTS_PER_LEVEL: usize = 11;
const BATCHES: u64 = 240;
const EVENTS_PER_BATCH: u64 = 5;
const DEADLINE: Duration = Duration::from_secs(90);

/// Each day index's committed segments (`meta.json`) and their documents.
fn segments_per_day(data_dir: &Path, ids: &mut HashSet<String>) -> Vec<(String, usize, u64)> {
    let mut days = Vec::new();
    let Ok(entries) = std::fs::read_dir(data_dir.join("indexes")) else {
        return days;
    };
    for entry in entries.flatten() {
        let meta = entry.path().join("meta.json");
        let Ok(text) = std::fs::read_to_string(&meta) else {
            continue;
        };
        let json: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{}: not JSON: {error}", meta.display()));
        let segments = json["segments"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no `segments` array", meta.display()));
        for segment in segments {
            if let Some(id) = segment["segment_id"].as_str() {
                ids.insert(id.to_string());
            }
        }
        let docs = segments
            .iter()
            .map(|segment| {
                let max_doc = segment["max_doc"].as_u64().unwrap_or(0);
                let deleted = segment["deletes"]["num_deleted_docs"].as_u64().unwrap_or(0);
                max_doc - deleted
            })
            .sum();
        days.push((
            entry.file_name().to_string_lossy().into_owned(),
            segments.len(),
            docs,
        ));
    }
    days
}

#[test]
fn many_small_commits_into_one_day_keep_its_segments_bounded() {
    let root = temp_dir();
    let config = root.path().join("server.toml");
    // A commit every 20 ms: each small batch below becomes its own commit.
    std::fs::write(&config, "commit_interval_ms = 20\n").unwrap();
    let server = Server::start_with(
        &root.path().join("server"),
        ServerOptions {
            config: Some(config),
            ..ServerOptions::default()
        },
    );
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);

    let mut ids_seen = HashSet::new();
    for batch in 0..BATCHES {
        let messages: Vec<String> = (0..EVENTS_PER_BATCH)
            .map(|i| format!("segbound line {}", batch * EVENTS_PER_BATCH + i))
            .collect();
        let offset = batch * EVENTS_PER_BATCH * 100;
        let answer = ingest(
            &server.url(),
            &ingest_token,
            "segment-agent",
            &events("segment-file", offset, &messages),
        );
        assert_eq!(answer.accepted, EVENTS_PER_BATCH);
        std::thread::sleep(Duration::from_millis(40));
        segments_per_day(server.data_dir(), &mut ids_seen);
    }
    let total = BATCHES * EVENTS_PER_BATCH;
    wait_for_count(&server.url(), &read_token, "segbound", total, DEADLINE);

    // Once the last merges are done, every day is within the bound and
    // its segments hold exactly the lines sent.
    let start = Instant::now();
    let days = loop {
        let days = segments_per_day(server.data_dir(), &mut ids_seen);
        let docs: u64 = days.iter().map(|(_, _, docs)| docs).sum();
        let within = days
            .iter()
            .all(|(_, segments, _)| *segments <= MAX_SEGMENTS_PER_LEVEL);
        if within && docs == total {
            break days;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "segments per day {days:?} (day, segments, documents) did not come within \
             {MAX_SEGMENTS_PER_LEVEL} holding {total} documents"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // The bound held through merging, not for a lack of commits: many
    // more distinct segments were committed along the way.
    assert!(
        ids_seen.len() > 4 * MAX_SEGMENTS_PER_LEVEL,
        "only {} distinct segments seen: the test made too few commits to exercise \
         merging (days: {days:?})",
        ids_seen.len()
    );
    wait_for_count(&server.url(), &read_token, "segbound", total, DEADLINE);
}
