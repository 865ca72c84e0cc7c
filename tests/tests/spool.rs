//! The agent's disk spool (guarantees 1 and 2 through a server outage):
//! while the server is down the agent spools batches to
//! `<state-dir>/spool/`, bounded by `--spool-max-bytes`; lines survive
//! their log file being rotated away and deleted meanwhile; a full spool
//! pauses reading instead of dropping; kill -9 of the agent while spooling
//! or replaying neither loses nor duplicates a line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use loghound_tests::data::{append, numbered_lines};
use loghound_tests::paths::agent_bin;
use loghound_tests::process::log_tail;
use loghound_tests::{
    assert_count_stays, assert_each_number_once, temp_dir, token, wait_for_count, Agent, Server,
};

/// Generous bound for everything that normally takes a second or two.
const DEADLINE: Duration = Duration::from_secs(120);

struct Setup {
    _tmp: tempfile::TempDir,
    logs: PathBuf,
    server: Server,
    url: String,
    read_token: String,
    agent: Agent,
}

/// A server and an agent following `logs/*.log` with `extra_args`.
fn setup(extra_args: &[&str]) -> Setup {
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let mut args = vec!["--rescan-interval-ms", "300"];
    args.extend_from_slice(extra_args);
    let agent = Agent::start_with(
        &url,
        &ingest_token,
        &tmp.path().join("agent"),
        &[format!("{}/*.log", logs.display())],
        &args,
    );
    Setup {
        _tmp: tmp,
        logs,
        server,
        url,
        read_token,
        agent,
    }
}

/// Bytes and number of the segment files in the agent's spool, as seen
/// from outside.
fn spool_on_disk(state_dir: &Path) -> (u64, usize) {
    let Ok(entries) = std::fs::read_dir(state_dir.join("spool")) else {
        return (0, 0);
    };
    let mut total = (0, 0);
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "seg") {
            if let Ok(metadata) = std::fs::metadata(&path) {
                total.0 += metadata.len();
                total.1 += 1;
            }
        }
    }
    total
}

/// Waits until the spool holds more than `bytes`; returns what it holds.
fn wait_for_spool_above(agent: &Agent, bytes: u64) -> u64 {
    let start = Instant::now();
    loop {
        let (now, _) = spool_on_disk(agent.state_dir());
        if now > bytes {
            return now;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "spool did not grow above {bytes} bytes within {DEADLINE:?} (holds {now})\n{}",
            log_tail(agent.log_path())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the agent's log contains `needle` at least `times` times.
fn wait_for_log(agent: &Agent, needle: &str, times: usize) {
    let start = Instant::now();
    while occurrences(agent, needle) < times {
        assert!(
            start.elapsed() < DEADLINE,
            "agent log did not say {needle:?} {times} times within {DEADLINE:?}\n{}",
            log_tail(agent.log_path())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn occurrences(agent: &Agent, needle: &str) -> usize {
    std::fs::read_to_string(agent.log_path())
        .unwrap_or_default()
        .matches(needle)
        .count()
}

/// `loghound-agent status` for the agent's state directory.
fn status(agent: &Agent) -> String {
    let output = Command::new(agent_bin())
        .arg("status")
        .arg("--state-dir")
        .arg(agent.state_dir())
        .output()
        .expect("run loghound-agent status");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("status is UTF-8")
}

/// The `spool: N bytes, M batches` line of the status.
fn status_spool(agent: &Agent) -> (u64, u64) {
    let text = status(agent);
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("spool: "))
        .unwrap_or_else(|| panic!("no spool line in the status:\n{text}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|word| word.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 2, "spool line {line:?}");
    (numbers[0], numbers[1])
}

#[test]
fn lines_spooled_during_an_outage_survive_their_file_being_deleted() {
    const TAG: &str = "spoolrot";
    let mut s = setup(&["--batch-max-bytes", "16384"]);
    let log = s.logs.join("app.log");
    append(&log, &numbered_lines(TAG, 0..2_000));
    wait_for_count(&s.url, &s.read_token, TAG, 2_000, DEADLINE);
    assert_eq!(spool_on_disk(s.agent.state_dir()).0, 0, "nothing spooled");

    s.server.kill9();
    append(&log, &numbered_lines(TAG, 2_000..10_000));
    let first = wait_for_spool_above(&s.agent, 0);
    wait_for_log(&s.agent, "server unreachable; spooling batches to disk", 1);
    append(&log, &numbered_lines(TAG, 10_000..20_000));
    let grown = wait_for_spool_above(&s.agent, first);
    eprintln!("spool grew from {first} to {grown} bytes");
    let (_, num_batches) = status_spool(&s.agent);
    assert!(num_batches > 0, "status counts the spooled batches");

    // Rotation during the outage: app.log moves out of the glob and is
    // deleted; the application writes a new app.log.
    let rotated = s.logs.join("app.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    append(&log, &numbered_lines(TAG, 20_000..25_000));
    std::fs::remove_file(&rotated).unwrap();
    // The agent reads the deleted file to its end, spools it, and lets go.
    wait_for_log(&s.agent, "deleted=true", 1);
    wait_for_log(&s.agent, "released file", 1);
    std::thread::sleep(Duration::from_secs(1));

    s.server.restart();
    wait_for_count(&s.url, &s.read_token, TAG, 25_000, DEADLINE);
    assert_count_stays(&s.url, &s.read_token, TAG, 25_000, Duration::from_secs(3));
    assert_each_number_once(&s.url, &s.read_token, TAG, 25_000);
    wait_for_log(&s.agent, "spool drained", 1);
    assert_eq!(spool_on_disk(s.agent.state_dir()), (0, 0), "spool emptied");
    assert_eq!(status_spool(&s.agent), (0, 0));
    s.agent.assert_running();
}

#[test]
fn a_full_spool_pauses_reading_and_loses_nothing() {
    const TAG: &str = "spoolfull";
    const TOTAL: u64 = 60_000;
    const MAX_BYTES: u64 = 256 << 10;
    const BATCH_BYTES: u64 = 16 << 10;
    let max_bytes = MAX_BYTES.to_string();
    let batch_bytes = BATCH_BYTES.to_string();
    let mut s = setup(&[
        "--spool-max-bytes",
        &max_bytes,
        "--batch-max-bytes",
        &batch_bytes,
    ]);
    s.server.kill9();
    let log = s.logs.join("app.log");
    let size = {
        let lines = numbered_lines(TAG, 0..TOTAL);
        append(&log, &lines);
        lines.len() as u64
    };

    wait_for_log(&s.agent, "spool is full; reading paused", 1);
    // While paused, the spool stays within its bound plus one batch (a
    // batch's compressed body is below its uncompressed size, plus a
    // record header), and the agent says so once.
    for _ in 0..20 {
        let (bytes, _) = spool_on_disk(s.agent.state_dir());
        assert!(
            bytes <= MAX_BYTES + BATCH_BYTES + 1024,
            "spool holds {bytes} bytes, bound {MAX_BYTES} + one batch"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(occurrences(&s.agent, "spool is full; reading paused"), 1);
    // Reading really stopped: the checkpoints lag behind the file.
    let status_text = status(&s.agent);
    let acked: u64 = status_text
        .lines()
        .find(|line| line.contains("app.log"))
        .and_then(|line| line.split_whitespace().nth(2))
        .and_then(|word| word.parse().ok())
        .unwrap_or_else(|| panic!("no app.log line in the status:\n{status_text}"));
    assert!(acked < size, "checkpoint {acked} of {size}: reading paused");

    s.server.restart();
    wait_for_count(&s.url, &s.read_token, TAG, TOTAL, DEADLINE);
    assert_count_stays(&s.url, &s.read_token, TAG, TOTAL, Duration::from_secs(3));
    assert_each_number_once(&s.url, &s.read_token, TAG, TOTAL);
    wait_for_log(&s.agent, "spool has room again; reading resumes", 1);
    s.agent.assert_running();
}

#[test]
fn agent_kill9_while_spooling_and_while_replaying_is_exactly_once() {
    const TAG: &str = "spoolcrash";
    let mut s = setup(&["--batch-max-bytes", "16384", "--spool-max-bytes", "4194304"]);
    let log = s.logs.join("app.log");
    s.server.kill9();

    // Kill while spooling: as soon as the first batches are on disk, with
    // most of the file still to read.
    append(&log, &numbered_lines(TAG, 0..80_000));
    wait_for_spool_above(&s.agent, 4096);
    s.agent.kill9();
    let (at_kill, _) = spool_on_disk(s.agent.state_dir());
    eprintln!("agent killed while spooling, {at_kill} bytes spooled");
    append(&log, &numbered_lines(TAG, 80_000..100_000));
    s.agent.restart();
    wait_for_log(&s.agent, "spool holds batches from an earlier run", 1);
    // Spooling goes on after the restart.
    wait_for_spool_above(&s.agent, at_kill);

    // Let it spool everything, then bring the server back and kill the
    // agent while it replays: once the first segment is delivered and
    // deleted, with others still waiting.
    let mut stable = (0, Instant::now());
    loop {
        let (bytes, _) = spool_on_disk(s.agent.state_dir());
        if bytes != stable.0 {
            stable = (bytes, Instant::now());
        } else if stable.1.elapsed() > Duration::from_secs(2) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, segments) = spool_on_disk(s.agent.state_dir());
    assert!(segments >= 3, "{segments} segments spooled");
    s.server.restart();
    let start = Instant::now();
    loop {
        let (_, now) = spool_on_disk(s.agent.state_dir());
        if now < segments {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "replay did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    s.agent.kill9();
    let (left, left_segments) = spool_on_disk(s.agent.state_dir());
    eprintln!(
        "agent killed while replaying: {left_segments} of {segments} segments ({left} bytes) left"
    );
    assert!(
        left_segments > 0,
        "the kill came after the replay ended; the test did not test replay"
    );
    append(&log, &numbered_lines(TAG, 100_000..105_000));
    s.agent.restart();

    wait_for_count(&s.url, &s.read_token, TAG, 105_000, DEADLINE);
    assert_count_stays(&s.url, &s.read_token, TAG, 105_000, Duration::from_secs(3));
    assert_each_number_once(&s.url, &s.read_token, TAG, 105_000);
    s.agent.assert_running();
}
