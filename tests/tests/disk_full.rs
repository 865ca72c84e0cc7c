//! A full data directory: ingest answers 507 with a precise JSON error and
//! acknowledges nothing that is not durable; the indexer waits instead of
//! stopping; once space is freed, the same server process takes and
//! indexes everything, without loss and without duplicates.
//!
//! The data directory is a small tmpfs mounted by the test (it runs as
//! root, here and on CI), filled with a filler file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use loghound_tests::http::api;
use loghound_tests::load::{assert_acked_once, total_acked, total_statuses, Load, LoadOptions};
use loghound_tests::process::log_tail;
use loghound_tests::{temp_dir, token, wait_until_count_at_least, Server, ServerOptions};

const TAG: &str = "dfull";
const TMPFS_SIZE: &str = "48m";

/// A tmpfs mounted for the test; unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).expect("create the mount point");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("cannot run `mount` for the disk-full test: {e}"));
        assert!(
            output.status.success(),
            "the disk-full test needs to mount a tmpfs (as root) at {}, and \
             `mount -t tmpfs -o size={size} tmpfs {}` failed with {}: {}",
            path.display(),
            path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Tmpfs {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Writes `path` until the file system is full; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).expect("create the filler file");
    let mut written = 0u64;
    for chunk in [1 << 20, 4096, 1] {
        let bytes = vec![0x5a_u8; chunk];
        loop {
            match file.write(&bytes) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    written
}

fn wait_for_log(server: &Server, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let log = std::fs::read_to_string(server.log_path()).unwrap_or_default();
        if log.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "server log has no {needle:?} within {timeout:?}\n{}",
            log_tail(server.log_path())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn full_disk_answers_507_and_resumes_without_restart() {
    let tmp = temp_dir();
    let data_dir = tmp.path().join("server");
    let tmpfs = Tmpfs::mount(&data_dir, TMPFS_SIZE);
    let config = tmp.path().join("server.toml");
    // A commit every 3 s: when the disk fills, acked events are waiting
    // for a commit, which then fails and must be retried.
    std::fs::write(
        &config,
        "commit_interval_ms = 3000\n\
         wal_segment_bytes = 1048576\n\
         index_writer_heap_bytes = 16777216\n\
         index_writer_threads = 1\n",
    )
    .expect("write server.toml");
    let mut server = Server::start_with(
        &data_dir,
        ServerOptions {
            config: Some(config),
            env: Vec::new(),
        },
    );
    let pid = server.pid();
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let admin_token = token(server.data_dir(), &["admin"]);

    let load = Load::start(&LoadOptions {
        url: url.clone(),
        token: ingest_token,
        tag: TAG.into(),
        clients: 4,
        events_per_batch: 200,
        pad_bytes: 200,
        batches_per_client: None,
        max_retry_pause: Duration::from_millis(500),
    });
    wait_until(
        "2,000 events acked before the disk fills",
        Duration::from_secs(60),
        || load.acked_events() >= 2_000,
    );

    let filler = tmpfs.path.join("filler");
    let filled = fill(&filler);
    eprintln!("filler took {} KiB", filled >> 10);
    wait_until(
        "eight 507 answers while the disk is full",
        Duration::from_secs(60),
        || load.insufficient_storage_answers() >= 8,
    );
    // The indexer's commit fails too, and waits.
    wait_for_log(
        &server,
        "indexing paused: the data directory is full",
        Duration::from_secs(30),
    );
    // A metadata write on the full disk is refused, not fatal.
    let saved = api(
        "POST",
        &url,
        "/api/v1/searches",
        &admin_token,
        Some(&serde_json::json!({"name": "while full", "query": "dfull"})),
    );
    assert!(
        saved.status == 201 || saved.status == 507,
        "saving a search on a full disk answered {}: {}",
        saved.status,
        saved.body
    );
    server.assert_running();

    std::fs::remove_file(&filler).expect("remove the filler file");
    let acked_at_free = load.acked_events();
    wait_until(
        "2,000 more events acked after space was freed",
        Duration::from_secs(90),
        || load.acked_events() >= acked_at_free + 2_000,
    );
    let reports = load.stop();
    server.assert_running();
    assert_eq!(server.pid(), pid, "the same server process throughout");
    wait_for_log(
        &server,
        "indexing resumed: the data directory has room again",
        Duration::from_secs(30),
    );

    let statuses = total_statuses(&reports);
    eprintln!("answers by status: {statuses:?}");
    let missing: u64 = reports.iter().map(|r| r.missing_retry_after).sum();
    assert_eq!(missing, 0, "every 507 carries Retry-After");
    let sample = reports
        .iter()
        .find_map(|r| r.samples.get(&507))
        .expect("a 507 body");
    let body: serde_json::Value = serde_json::from_str(sample).expect("507 body is JSON");
    assert_eq!(
        body["error"],
        "the server's data directory is full (no space left on device); \
         the batch was not stored, retry later",
        "{sample}"
    );

    let acked = total_acked(&reports);
    wait_until_count_at_least(&url, &read_token, TAG, acked, Duration::from_secs(120));
    // Let a given-up batch, if it was stored, reach the index too.
    std::thread::sleep(Duration::from_secs(7));
    let unacked_stored = assert_acked_once(&url, &read_token, TAG, &reports);
    eprintln!("{acked} acked events searchable once; {unacked_stored} given-up events stored");
    server.assert_running();

    // Every ack was for something on disk: after a SIGKILL and a restart
    // the same events are there, once.
    server.kill9();
    server.restart();
    wait_until_count_at_least(&url, &read_token, TAG, acked, Duration::from_secs(120));
    assert_eq!(
        assert_acked_once(&url, &read_token, TAG, &reports),
        unacked_stored,
        "the same given-up events after the restart"
    );
    drop(server);
    drop(tmpfs);
}
