//! Multi-line events end to end: a real agent with a `[multiline]` rule and
//! a real server. Java and Python stack traces interleaved with ordinary
//! lines become one event each, holding all their lines; the last trace of
//! the file is shipped by the flush timeout with no later line written; a
//! trace longer than `max_lines` is split into tagged parts; and an agent
//! killed with SIGKILL in the middle of a trace still ships every event
//! exactly once.

use std::time::Duration;

use loghound_tests::data::{append, now_ms, rfc3339_utc};
use loghound_tests::http::{hit_message, hit_str};
use loghound_tests::{
    assert_count_stays, search_all, temp_dir, token, wait_for_count, Agent, Hit, Server,
};

const MARK: &str = "mltrace";
/// Long enough that the agent is killed before it ships half a trace.
const FLUSH_MS: u64 = 3000;
const MAX_LINES: usize = 20;

fn java_time() -> String {
    // `2026-12-01 10:00:01.250`: the Java/log4j layout, space-separated.
    rfc3339_utc(now_ms())
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

fn ordinary(number: u32) -> String {
    format!(
        "{} INFO  [main] org.example.Server - {MARK} ordinary {number} served /health in 3 ms\n",
        java_time()
    )
}

/// A log4j error line followed by a trace with a cause.
fn java_trace(name: &str) -> String {
    format!(
        "{} ERROR [pool-1-thread-3] org.example.Handler - {MARK} {name} request failed\n\
java.lang.IllegalStateException: connection pool exhausted\n\
\tat org.example.db.Pool.acquire(Pool.java:88)\n\
\tat org.example.db.Repository.find(Repository.java:120)\n\
\tat org.example.Handler.handle(Handler.java:41)\n\
\tat java.base/java.lang.Thread.run(Thread.java:1583)\n\
Caused by: java.net.SocketTimeoutException: Connect timed out\n\
\tat java.base/sun.nio.ch.NioSocketImpl.timedFinishConnect(NioSocketImpl.java:546)\n\
\tat java.base/java.net.Socket.connect(Socket.java:751)\n\
\t... 12 more\n",
        java_time()
    )
}

/// What the JVM prints for an uncaught exception: no timestamp.
fn uncaught(name: &str) -> String {
    format!(
        "Exception in thread \"main\" java.lang.NullPointerException: {MARK} {name} \
Cannot invoke \"String.length()\" because \"s\" is null\n\
\tat org.example.Main.run(Main.java:14)\n\
\tat org.example.Main.main(Main.java:5)\n"
    )
}

/// A timestamped error line followed by a Python traceback.
fn python_trace(name: &str) -> String {
    format!(
        "{} ERROR worker {MARK} {name} job crashed\n\
Traceback (most recent call last):\n\
  File \"/srv/app/worker.py\", line 42, in run\n\
    result = handler(job)\n\
  File \"/srv/app/jobs.py\", line 7, in handler\n\
    return int(job.payload)\n\
ValueError: invalid literal for int() with base 10: 'abc'\n",
        rfc3339_utc(now_ms())
    )
}

/// The event a block of lines must become: its text without the last `\n`.
fn event(block: &str) -> String {
    block.strip_suffix('\n').unwrap_or(block).to_string()
}

fn messages(hits: &[Hit]) -> Vec<String> {
    let mut messages: Vec<String> = hits.iter().map(|h| hit_message(h).to_string()).collect();
    messages.sort();
    messages
}

#[test]
fn stack_traces_are_joined_shipped_on_timeout_and_survive_kill9() {
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log_file = logs.join("app.log");
    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[multiline]\n\
             start = '^(\\d{{4}}-\\d{{2}}-\\d{{2}}[T ]\\d{{2}}:\\d{{2}}|Exception in thread )'\n\
             max_lines = {MAX_LINES}\n\
             flush_ms = {FLUSH_MS}\n"
        ),
    )
    .unwrap();
    let mut agent = Agent::start_with(
        &url,
        &ingest_token,
        &tmp.path().join("agent"),
        &[format!("{}/*.log", logs.display())],
        &["--config", &config.display().to_string()],
    );

    // Interleaved, and the file ends with a trace: its last line has no
    // later line to end it, only the flush timeout.
    let long_frames: String = (0..MAX_LINES + 4)
        .map(|i| format!("\tat org.example.Deep.level{i}(Deep.java:{i})\n"))
        .collect();
    let long_trace = format!(
        "{} ERROR [main] org.example.Deep - {MARK} deep recursion failed\n\
java.lang.StackOverflowError\n{long_frames}",
        java_time()
    );
    let blocks = [
        ordinary(1),
        java_trace("java-one"),
        ordinary(2),
        python_trace("python-one"),
        uncaught("uncaught-one"),
        ordinary(3),
        java_trace("java-two"),
        long_trace.clone(),
        ordinary(4),
        python_trace("python-last"),
    ];
    append(&log_file, blocks.concat().as_bytes());

    // The long trace has MAX_LINES + 6 lines: two parts, both tagged; the
    // second part holds no MARK, so it is counted by its tag.
    let long_lines: Vec<&str> = long_trace.lines().collect();
    let long_parts = [
        long_lines[..MAX_LINES].join("\n"),
        long_lines[MAX_LINES..].join("\n"),
    ];
    let mut expected: Vec<String> = blocks
        .iter()
        .filter(|block| **block != long_trace)
        .map(|block| event(block))
        .collect();
    expected.push(long_parts[0].clone());
    expected.sort();
    let everything = format!("{MARK} OR tags.multiline:max_lines");
    let total = expected.len() as u64 + 1;
    wait_for_count(
        &url,
        &read_token,
        &everything,
        total,
        Duration::from_secs(60),
    );
    let hits = search_all(&url, &read_token, MARK);
    assert_eq!(messages(&hits), expected);
    let parts = search_all(&url, &read_token, "tags.multiline:max_lines");
    let mut expected_parts = long_parts.to_vec();
    expected_parts.sort();
    assert_eq!(messages(&parts), expected_parts);
    let python_last = hits
        .iter()
        .find(|hit| hit_message(hit).contains("python-last"))
        .expect("the last trace is searchable");
    assert!(
        hit_message(python_last)
            .ends_with("\nValueError: invalid literal for int() with base 10: 'abc'"),
        "the last trace ends with its last line: {python_last}"
    );
    assert_eq!(
        hit_str(python_last, "source"),
        Some(&*log_file.display().to_string())
    );

    // Kill -9 in the middle of writing a trace; the rest is written while
    // the agent is down. The restarted agent reads the trace again from its
    // first line: one event, and nothing shipped before is shipped again.
    let killed_trace = java_trace("java-killed");
    let (first_half, second_half) = killed_trace.split_at(killed_trace.find("Caused by").unwrap());
    append(&log_file, first_half.as_bytes());
    std::thread::sleep(Duration::from_millis(300));
    agent.kill9();
    append(&log_file, second_half.as_bytes());
    let after = ordinary(5);
    append(&log_file, after.as_bytes());
    agent.restart();

    expected.push(event(&killed_trace));
    expected.push(event(&after));
    expected.sort();
    let total = total + 2;
    wait_for_count(
        &url,
        &read_token,
        &everything,
        total,
        Duration::from_secs(60),
    );
    assert_count_stays(
        &url,
        &read_token,
        &everything,
        total,
        Duration::from_secs(2),
    );
    assert_eq!(messages(&search_all(&url, &read_token, MARK)), expected);
    agent.assert_running();
}
