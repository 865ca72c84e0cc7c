//! Guarantee 1 for new files: a file that appears after the agent started,
//! in a watched directory or in a new subdirectory under a `**` glob, is
//! picked up; files the globs do not match are not.

use std::time::Duration;

use loghound_tests::bench::usage;
use loghound_tests::data::{append, numbered_lines};
use loghound_tests::http::hit_str;
use loghound_tests::{assert_count_stays, search, temp_dir, token, wait_for_count, Agent, Server};

#[test]
fn files_created_after_start_are_picked_up() {
    let tmp = temp_dir();
    let flat = tmp.path().join("flat");
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(&flat).unwrap();
    std::fs::create_dir_all(&tree).unwrap();
    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);

    append(
        &flat.join("before.log"),
        &numbered_lines("pickbefore", 0..10),
    );
    let mut agent = Agent::start(
        &url,
        &ingest_token,
        &tmp.path().join("agent"),
        &[
            format!("{}/*.log", flat.display()),
            format!("{}/**/*.log", tree.display()),
        ],
    );
    wait_for_count(&url, &read_token, "pickbefore", 10, Duration::from_secs(30));

    // Give the agent time to settle into its idle state, so the new files
    // are found by watching or rescanning, not by the start-up scan.
    std::thread::sleep(Duration::from_millis(500));
    let new_flat = flat.join("new.log");
    append(&new_flat, &numbered_lines("pickflat", 0..25));
    append(
        &flat.join("ignored.txt"),
        &numbered_lines("pickignored", 0..5),
    );
    let deep_dir = tree.join("svc").join("deeper");
    std::fs::create_dir_all(&deep_dir).unwrap();
    let new_deep = deep_dir.join("app.log");
    append(&new_deep, &numbered_lines("pickdeep", 0..30));

    wait_for_count(&url, &read_token, "pickflat", 25, Duration::from_secs(30));
    wait_for_count(&url, &read_token, "pickdeep", 30, Duration::from_secs(30));
    // Lines appended to a picked-up file later are followed too.
    append(&new_deep, &numbered_lines("pickdeep", 30..40));
    wait_for_count(&url, &read_token, "pickdeep", 40, Duration::from_secs(30));

    assert_count_stays(&url, &read_token, "", 10 + 25 + 40, Duration::from_secs(3));
    assert_eq!(
        search(&url, &read_token, "pickignored").0,
        0,
        "ignored.txt matches no glob"
    );
    agent.assert_running();

    let (_, hits) = search(&url, &read_token, "pickdeep");
    let source = hit_str(&hits[0], "source").unwrap_or_default();
    assert!(
        source.ends_with("svc/deeper/app.log"),
        "source of a line from {} is {source:?}",
        new_deep.display()
    );
}

/// A file that matches the glob but has no complete first line yet (what
/// logrotate's `create` leaves for a quiet application) has no identity
/// and is looked at again on every change. The agent's own looks at it
/// must not count as changes: that loop kept the agent busy and starved
/// every other file.
#[test]
fn an_empty_file_neither_holds_up_the_others_nor_keeps_the_agent_busy() {
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let busy = logs.join("busy.log");
    append(&busy, &numbered_lines("emptybusy", 0..10));
    let mut agent = Agent::start(
        &url,
        &ingest_token,
        &tmp.path().join("agent"),
        &[format!("{}/*.log", logs.display())],
    );
    wait_for_count(&url, &read_token, "emptybusy", 10, Duration::from_secs(30));

    std::fs::File::create(logs.join("quiet.log")).unwrap();
    append(&logs.join("half.log"), b"a first line without its newline");
    for round in 1..=5 {
        std::thread::sleep(Duration::from_millis(200));
        append(
            &busy,
            &numbered_lines("emptybusy", round * 10..round * 10 + 10),
        );
    }
    wait_for_count(&url, &read_token, "emptybusy", 60, Duration::from_secs(30));

    let (cpu_before, _) = usage(agent.pid()).expect("agent's /proc stat");
    std::thread::sleep(Duration::from_secs(4));
    let (cpu_after, _) = usage(agent.pid()).expect("agent's /proc stat");
    assert!(
        cpu_after - cpu_before < 0.5,
        "an agent with nothing to read used {:.2} CPU-seconds in 4 s",
        cpu_after - cpu_before
    );
    agent.assert_running();
}
