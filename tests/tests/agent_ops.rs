//! The agent's operations at scale: a bounded number of open descriptors
//! over many files, the fallback to polling when inotify is out of
//! watches, `/metrics` and `loghound-agent status`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loghound_tests::data::{append, numbered_line, numbered_lines};
use loghound_tests::fds::open_files;
use loghound_tests::process::{agent_status, log_tail};
use loghound_tests::{assert_each_number_once, temp_dir, token, wait_for_count, Agent, Server};

const SETTLE: Duration = Duration::from_secs(120);

/// Samples the agent's descriptors on files under `dir` every few
/// milliseconds until [`FdSampler::finish`].
struct FdSampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<(usize, usize)>>,
}

impl FdSampler {
    fn start(pid: u32, dir: &Path) -> FdSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, dir) = (Arc::clone(&stop), dir.to_path_buf());
        let thread = std::thread::spawn(move || {
            let (mut max, mut samples) = (0, 0);
            while !flag.load(Ordering::Relaxed) {
                let held = open_files(pid)
                    .iter()
                    .filter(|target| target.starts_with(&dir))
                    .count();
                max = max.max(held);
                samples += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            (max, samples)
        });
        FdSampler {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the most descriptors seen at once and the number of
    /// samples.
    fn finish(mut self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().expect("sampler thread"))
            .unwrap_or_default()
    }
}

/// 300 files followed with `max_open_files = 50`, appended to in rounds:
/// every line arrives exactly once, files deleted and recreated at the same
/// path while closed are read as the new files they are, and the agent
/// never holds more than 50 descriptors on them.
#[test]
fn three_hundred_files_with_fifty_descriptors() {
    const TAG: &str = "manyfiles";
    const FILES: u64 = 300;
    const LIMIT: usize = 50;
    const LINES_PER_ROUND: u64 = 4;
    const ROUNDS: u64 = 4;
    let root = temp_dir();
    let logs = root.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let server = Server::start(&root.path().join("server"));
    let ingest = token(server.data_dir(), &["ingest"]);
    let read = token(server.data_dir(), &["read"]);
    let path_of = |file: u64| logs.join(format!("f{file:03}.log"));
    // Every line is numbered once across files and rounds.
    let number = |round: u64, file: u64, line: u64| (round * FILES + file) * LINES_PER_ROUND + line;
    let write_round = |round: u64| {
        for file in 0..FILES {
            let first = number(round, file, 0);
            append(
                &path_of(file),
                &numbered_lines(TAG, first..first + LINES_PER_ROUND),
            );
        }
    };
    write_round(0);
    let agent = Agent::start_with(
        &server.url(),
        &ingest,
        &root.path().join("agent"),
        &[format!("{}/*.log", logs.display())],
        &["--max-open-files", &LIMIT.to_string()],
    );
    let sampler = FdSampler::start(agent.pid(), &logs);
    wait_for_count(&server.url(), &read, TAG, FILES * LINES_PER_ROUND, SETTLE);
    for round in 1..ROUNDS {
        if round == 2 {
            // Ten files are replaced while the agent has them closed: the
            // path now names another inode (or the same inode number in a
            // new life), which must be read from its start.
            for file in (0..FILES).step_by(30) {
                std::fs::remove_file(path_of(file)).unwrap();
            }
        }
        write_round(round);
        wait_for_count(
            &server.url(),
            &read,
            TAG,
            (round + 1) * FILES * LINES_PER_ROUND,
            SETTLE,
        );
    }
    let (max_open, samples) = sampler.finish();
    assert_each_number_once(&server.url(), &read, TAG, ROUNDS * FILES * LINES_PER_ROUND);
    assert!(samples > 100, "only {samples} samples of /proc/PID/fd");
    assert!(
        max_open <= LIMIT,
        "the agent held {max_open} descriptors on followed files, more than max_open_files = {LIMIT}"
    );
    let log = std::fs::read_to_string(agent.log_path()).unwrap();
    assert!(
        !log.contains("cannot open file"),
        "{}",
        log_tail(agent.log_path())
    );
}

/// `unshare -U -r sh -c 'echo 0 > /proc/sys/user/<limit>; exec agent …'`:
/// the agent runs in a user namespace of its own whose inotify limit is 0.
fn agent_with_inotify_limit(
    limit: &str,
    server: &Server,
    ingest: &str,
    state_dir: &Path,
    glob: &str,
) -> Agent {
    let script = format!("echo 0 > /proc/sys/user/{limit} && exec \"$0\" \"$@\"");
    Agent::start_wrapped(
        &["unshare", "-U", "-r", "sh", "-c", &script],
        &server.url(),
        ingest,
        state_dir,
        &[glob],
        &["--rescan-interval-ms", "300"],
    )
}

fn wait_for_log(agent: &Agent, needle: &str, timeout: Duration) {
    let start = Instant::now();
    loop {
        let log = std::fs::read_to_string(agent.log_path()).unwrap_or_default();
        if log.contains(needle) {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "agent did not log {needle:?} within {timeout:?}\n{}",
            log_tail(agent.log_path())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// With no inotify watch to be had (`max_inotify_watches = 0` in the
/// agent's user namespace) the agent says so and finds every line by
/// polling; the same with no inotify instance at all.
#[test]
fn inotify_limits_fall_back_to_polling() {
    let root = temp_dir();
    let server = Server::start(&root.path().join("server"));
    let ingest = token(server.data_dir(), &["ingest"]);
    let read = token(server.data_dir(), &["read"]);
    for (tag, limit, message) in [
        (
            "nowatches",
            "max_inotify_watches",
            "cannot watch directory; relying on the periodic rescan",
        ),
        (
            "noinstances",
            "max_inotify_instances",
            "cannot watch files for changes; relying on the periodic rescan",
        ),
    ] {
        let logs = root.path().join(tag);
        std::fs::create_dir_all(&logs).unwrap();
        append(&logs.join("a.log"), &numbered_lines(tag, 0..100));
        let mut agent = agent_with_inotify_limit(
            limit,
            &server,
            &ingest,
            &root.path().join(format!("agent-{tag}")),
            &format!("{}/*.log", logs.display()),
        );
        wait_for_log(&agent, message, Duration::from_secs(30));
        // Appends and a new file, found by the rescan alone.
        append(&logs.join("a.log"), &numbered_lines(tag, 100..150));
        append(&logs.join("b.log"), &numbered_lines(tag, 150..230));
        wait_for_count(&server.url(), &read, tag, 230, SETTLE);
        assert_each_number_once(&server.url(), &read, tag, 230);
        agent.assert_running();
    }
}

/// Starts an agent serving `/metrics` on a port of its choosing; returns it
/// with the address it logged.
fn agent_with_metrics(
    server: &Server,
    ingest: &str,
    state_dir: &Path,
    glob: &str,
) -> (Agent, String) {
    let agent = Agent::start_with(
        &server.url(),
        ingest,
        state_dir,
        &[glob],
        // No spool: lines not acked while the server is down stay lag.
        &["--metrics-listen", "127.0.0.1:0", "--spool-max-bytes", "0"],
    );
    let needle = "serving /metrics address=";
    wait_for_log(&agent, needle, Duration::from_secs(30));
    let log = std::fs::read_to_string(agent.log_path()).unwrap();
    let address = log
        .split(needle)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|a| a.trim_matches('"').to_string())
        .expect("address after the log message");
    (agent, address)
}

/// The samples of a scrape, by name with labels (`name{label="…"}`).
fn scrape(address: &str) -> BTreeMap<String, f64> {
    let body = ureq::get(&format!("http://{address}/metrics"))
        .call()
        .unwrap_or_else(|error| panic!("GET /metrics: {error}"))
        .body_mut()
        .read_to_string()
        .expect("metrics body");
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').expect("sample line");
            let value = value
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("value in {line:?}"));
            (name.to_string(), value)
        })
        .collect()
}

/// Scrapes until `check` is satisfied; panics with the last scrape.
fn scrape_until(
    address: &str,
    what: &str,
    check: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let start = Instant::now();
    loop {
        let samples = scrape(address);
        if check(&samples) {
            return samples;
        }
        assert!(
            start.elapsed() < SETTLE,
            "metrics never showed {what}; last scrape: {samples:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn lag_name(path: &Path) -> String {
    format!(
        "loghound_agent_file_lag_bytes{{path=\"{}\"}}",
        path.display()
    )
}

/// `/metrics` of a real agent against what the test wrote: exact line
/// counts, per-file lag 0 once acked, then the lag of lines written while
/// the server is down, retries and the last error, and the catch-up.
#[test]
fn metrics_count_what_was_written() {
    const TAG: &str = "metricslines";
    let root = temp_dir();
    let logs = root.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut server = Server::start(&root.path().join("server"));
    let ingest = token(server.data_dir(), &["ingest"]);
    let read = token(server.data_dir(), &["read"]);
    let files: Vec<PathBuf> = ["a.log", "b.log", "c.log"]
        .iter()
        .map(|name| logs.join(name))
        .collect();
    let mut next = 0;
    for (index, file) in files.iter().enumerate() {
        let count = 100 * (index as u64 + 1);
        append(file, &numbered_lines(TAG, next..next + count));
        next += count;
    }
    let (mut agent, address) = agent_with_metrics(
        &server,
        &ingest,
        &root.path().join("agent"),
        &format!("{}/*.log", logs.display()),
    );
    wait_for_count(&server.url(), &read, TAG, 600, SETTLE);
    let settled = scrape_until(&address, "600 acked lines and no lag", |m| {
        m.get("loghound_agent_lines_acked_total") == Some(&600.0)
            && files.iter().all(|f| m.get(&lag_name(f)) == Some(&0.0))
    });
    let expect = |name: &str, value: f64| {
        assert_eq!(settled.get(name), Some(&value), "{name} in {settled:#?}");
    };
    expect("loghound_agent_lines_read_total", 600.0);
    expect("loghound_agent_lines_shipped_total", 600.0);
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    expect("loghound_agent_bytes_read_total", bytes as f64);
    expect("loghound_agent_batches_in_flight", 0.0);
    expect("loghound_agent_retries_total", 0.0);
    expect("loghound_agent_refused_events_total", 0.0);
    expect("loghound_agent_files_followed", 3.0);
    expect("loghound_agent_files_open", 3.0);
    expect("loghound_agent_last_error_timestamp_seconds", 0.0);
    assert!(settled["loghound_agent_open_fds"] >= 3.0);
    assert_eq!(
        settled["loghound_agent_batches_acked_total"],
        settled["loghound_agent_batches_shipped_total"]
    );

    // Server down: 10 more lines are read but not acked.
    server.kill9();
    let appended = numbered_lines(TAG, 600..610);
    append(&files[0], &appended);
    let down = scrape_until(&address, "10 unacked lines, a retry and an error", |m| {
        m.get("loghound_agent_lines_read_total") == Some(&610.0)
            && m.get("loghound_agent_retries_total")
                .is_some_and(|r| *r >= 1.0)
            && m.get("loghound_agent_last_error_timestamp_seconds")
                .is_some_and(|t| *t > 0.0)
    });
    assert_eq!(down["loghound_agent_lines_acked_total"], 600.0);
    assert_eq!(down[&lag_name(&files[0])], appended.len() as f64);
    assert_eq!(down[&lag_name(&files[1])], 0.0);
    assert!(down["loghound_agent_batches_in_flight"] >= 1.0);

    server.restart();
    wait_for_count(&server.url(), &read, TAG, 610, SETTLE);
    scrape_until(&address, "everything acked after the restart", |m| {
        m.get("loghound_agent_lines_acked_total") == Some(&610.0)
            && m.get(&lag_name(&files[0])) == Some(&0.0)
            && m.get("loghound_agent_batches_in_flight") == Some(&0.0)
    });
    assert_each_number_once(&server.url(), &read, TAG, 610);
    agent.assert_running();
}

/// The row of `path` in a status table, split into columns.
fn status_row(text: &str, path: &Path) -> Option<Vec<String>> {
    let prefix = format!("{} ", path.display());
    text.lines()
        .find(|line| line.starts_with(&prefix))
        .map(|line| line.split_whitespace().map(str::to_string).collect())
}

/// `status` (a separate process) shows each file's acked offset, size and
/// lag; the lag of lines written while the server is down; the agent's last
/// error; and the error met on a file the agent may not read. The agent
/// runs as user and group 65534 (`setpriv`) so that a mode 0600 file of
/// root's really is unreadable to it.
#[test]
fn status_shows_offsets_lag_and_last_errors() {
    use std::os::unix::fs::PermissionsExt;
    const TAG: &str = "statuslines";
    let root = temp_dir();
    let mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    mode(root.path(), 0o755);
    let logs = root.path().join("logs");
    let state_dir = root.path().join("agent");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&state_dir).unwrap();
    mode(&logs, 0o755);
    mode(&state_dir, 0o777);
    let mut server = Server::start(&root.path().join("server"));
    let ingest = token(server.data_dir(), &["ingest"]);
    let read = token(server.data_dir(), &["read"]);
    let readable = logs.join("app.log");
    let secret = logs.join("secret.log");
    append(&readable, &numbered_lines(TAG, 0..50));
    append(&secret, format!("{}\n", numbered_line(TAG, 999)).as_bytes());
    mode(&readable, 0o644);
    mode(&secret, 0o600);
    let agent = Agent::start_wrapped(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ],
        &server.url(),
        &ingest,
        &state_dir,
        &[format!("{}/*.log", logs.display())],
        // Without the spool, lines not acked stay lag while the server is
        // down (a spooled batch counts as shipped; tests/tests/spool.rs).
        &["--spool-max-bytes", "0"],
    );
    wait_for_count(&server.url(), &read, TAG, 50, SETTLE);
    let size = std::fs::metadata(&readable).unwrap().len().to_string();
    let start = Instant::now();
    let text = loop {
        let text = agent_status(&state_dir);
        let row = status_row(&text, &readable);
        let secret_row = status_row(&text, &secret);
        if row.as_ref().is_some_and(|r| r[2] == size)
            && secret_row
                .as_ref()
                .is_some_and(|r| r.join(" ").contains("Permission denied"))
        {
            break text;
        }
        assert!(
            start.elapsed() < SETTLE,
            "status never showed the acked file and the error:\n{text}\n{}",
            log_tail(agent.log_path())
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let row = status_row(&text, &readable).unwrap();
    assert_eq!(
        &row[2..6],
        [size.as_str(), size.as_str(), "0", "-"],
        "{text}"
    );
    let secret_row = status_row(&text, &secret).unwrap();
    assert_eq!(&secret_row[1..5], ["-", "-", "-", "-"], "{text}");
    assert!(
        secret_row[6..]
            .join(" ")
            .starts_with("cannot open: Permission denied"),
        "{text}"
    );
    assert!(text.contains("last error: "), "{text}");

    // Server down: the lag is exactly the bytes appended, and the last
    // error says why.
    server.kill9();
    let appended = numbered_lines(TAG, 50..60);
    append(&readable, &appended);
    let start = Instant::now();
    loop {
        let text = agent_status(&state_dir);
        let row = status_row(&text, &readable).expect("row of app.log");
        let last_error = text
            .lines()
            .find(|l| l.starts_with("last error: "))
            .unwrap_or_default();
        if row[4] == appended.len().to_string() && last_error.contains("batch not delivered") {
            assert_eq!(row[2], size, "acked offset stays: {text}");
            break;
        }
        assert!(
            start.elapsed() < SETTLE,
            "status never showed the lag and the shipping error:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
