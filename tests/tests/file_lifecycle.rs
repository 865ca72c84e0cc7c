//! Guarantees 1 and 2 through the end of a file's life: deleted while still
//! being read, its inode reused by a new file that starts alike, and
//! renamed out of the globs while the agent was stopped.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use loghound_tests::data::{append, numbered_line, numbered_lines};
use loghound_tests::fds::{deleted_files_under, open_files};
use loghound_tests::{
    assert_count_stays, assert_each_number_once, search, temp_dir, token, wait_for_count,
    wait_until_count_at_least, Agent, Server,
};

/// Probe files created to get a freed inode back.
const MAX_PROBES: usize = 2_000;

/// Polls until the agent holds no descriptor on a deleted file under `dir`.
fn wait_until_no_deleted_fds(agent: &Agent, dir: &Path, timeout: Duration) {
    let start = Instant::now();
    loop {
        let held = deleted_files_under(agent.pid(), dir);
        if held.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "agent still holds {} deleted file(s) after {timeout:?}: {held:?}",
            held.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A big file deleted while the agent is in the middle of it is read to its
/// end, including a last line without `\n` (shipped as it is), and its
/// descriptor is closed afterwards.
#[test]
fn file_deleted_while_being_read_is_drained_then_closed() {
    const TAG: &str = "deletedmid";
    const TOTAL: u64 = 150_000;
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let file = logs.join("big.log");
    append(&file, &numbered_lines(TAG, 0..TOTAL));
    // The partial last line: no `\n`, ever.
    append(&file, numbered_line(TAG, TOTAL).as_bytes());

    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    // Small batches, one at a time: reading the file takes many round trips.
    let mut agent = Agent::start_with(
        &url,
        &ingest_token,
        &tmp.path().join("agent"),
        &[format!("{}/*.log", logs.display())],
        &[
            "--batch-max-bytes",
            "32768",
            "--max-in-flight",
            "1",
            "--rescan-interval-ms",
            "300",
        ],
    );
    let at_delete = wait_until_count_at_least(&url, &read_token, TAG, 1, Duration::from_secs(30));
    std::fs::remove_file(&file).unwrap();
    eprintln!("deleted with {at_delete} of {} lines searchable", TOTAL + 1);

    wait_for_count(&url, &read_token, TAG, TOTAL + 1, Duration::from_secs(120));
    assert_count_stays(&url, &read_token, TAG, TOTAL + 1, Duration::from_secs(2));
    assert_each_number_once(&url, &read_token, TAG, TOTAL + 1);
    let (count, _) = search(&url, &read_token, &format!("n{TOTAL:07}"));
    assert_eq!(count, 1, "the partial last line is shipped as it is");
    wait_until_no_deleted_fds(&agent, &logs, Duration::from_secs(20));
    agent.assert_running();
}

/// Regression: a deleted file's inode reused by a new file with the same
/// first line got the same file id, and the server dropped the new lines
/// as duplicates of the old ones' byte ranges.
#[test]
fn reused_inode_with_the_same_first_line_is_shipped_fully() {
    const TAG: &str = "inodereuse";
    const HEADER: &[u8] = b"# service log started\n";
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let file = logs.join("app.log");
    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let mut agent = Agent::start_with(
        &url,
        &ingest_token,
        &tmp.path().join("agent"),
        &[format!("{}/*.log", logs.display())],
        &["--rescan-interval-ms", "300"],
    );

    let mut first = HEADER.to_vec();
    first.extend(numbered_lines(TAG, 0..200));
    append(&file, &first);
    wait_for_count(&url, &read_token, TAG, 200, Duration::from_secs(30));
    let old_inode = std::fs::metadata(&file).unwrap().ino();
    std::fs::remove_file(&file).unwrap();
    // The inode is free only once the agent lets go of the deleted file.
    wait_until_no_deleted_fds(&agent, &logs, Duration::from_secs(20));

    let mut second = HEADER.to_vec();
    second.extend(numbered_lines(TAG, 200..300));
    // File systems do not hand a freed inode back at once: create probe
    // files (outside the glob) until one gets it, and rename that one into
    // place (a rename keeps the inode).
    for attempt in 0..MAX_PROBES {
        let probe = logs.join(format!("probe-{attempt}.tmp"));
        append(&probe, &second);
        if std::fs::metadata(&probe).unwrap().ino() == old_inode || attempt + 1 == MAX_PROBES {
            std::fs::rename(&probe, &file).unwrap();
            break;
        }
    }
    let new_inode = std::fs::metadata(&file).unwrap().ino();
    if new_inode != old_inode {
        eprintln!("note: the file system gave inode {new_inode}, not the freed {old_inode}");
    }
    wait_for_count(&url, &read_token, TAG, 300, Duration::from_secs(30));
    assert_count_stays(&url, &read_token, TAG, 300, Duration::from_secs(2));
    assert_each_number_once(&url, &read_token, TAG, 300);
    agent.assert_running();
}

/// Regression: two different files holding the same lines (two services
/// logging the same start-up lines) were taken for a file and its
/// copytruncate copy, and the second was never read while the first lived.
#[test]
fn identical_files_are_both_shipped() {
    const TAG: &str = "twins";
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let lines = numbered_lines(TAG, 0..50);
    append(&logs.join("first.log"), &lines);
    append(&logs.join("second.log"), &lines);
    let _agent = Agent::start(
        &url,
        &ingest_token,
        &tmp.path().join("agent"),
        &[format!("{}/*.log", logs.display())],
    );
    wait_for_count(&url, &read_token, TAG, 100, Duration::from_secs(60));
    // And both keep being followed.
    append(&logs.join("second.log"), &numbered_lines(TAG, 50..60));
    wait_for_count(&url, &read_token, TAG, 110, Duration::from_secs(60));
    assert_count_stays(&url, &read_token, TAG, 110, Duration::from_secs(2));
}

/// logrotate renames `app.log` to `app.log.1`, outside a `*.log` glob,
/// while the agent is stopped, after the application wrote lines the agent
/// had not shipped. The restarted agent finds the renamed file by its
/// inode next to where it was, ships the rest of it and lets it go; the
/// new `app.log` is shipped from its start.
#[test]
fn file_renamed_out_of_the_globs_while_the_agent_was_stopped_is_drained() {
    const TAG: &str = "renamedaway";
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let live = logs.join("app.log");
    append(&live, &numbered_lines(TAG, 0..100));
    let mut agent = Agent::start(
        &url,
        &ingest_token,
        &tmp.path().join("agent"),
        &[format!("{}/*.log", logs.display())],
    );
    wait_for_count(&url, &read_token, TAG, 100, Duration::from_secs(30));
    let status = agent.terminate(Duration::from_secs(30));
    assert!(status.success(), "agent exited with {status}");

    append(&live, &numbered_lines(TAG, 100..250));
    std::fs::rename(&live, logs.join("app.log.1")).unwrap();
    append(&live, &numbered_lines(TAG, 250..300));
    agent.start_again();

    wait_for_count(&url, &read_token, TAG, 300, Duration::from_secs(30));
    assert_count_stays(&url, &read_token, TAG, 300, Duration::from_secs(2));
    assert_each_number_once(&url, &read_token, TAG, 300);
    let path = logs.join("app.log.1");
    let deadline = Instant::now() + Duration::from_secs(30);
    while open_files(agent.pid()).contains(&path) {
        assert!(
            Instant::now() < deadline,
            "the agent still holds {} open after shipping it",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    agent.assert_running();
}
