//! The web UI in a real browser: a real `loghound serve` fed by a real
//! `loghound-agent` following a log file written here, and
//! `tests/browser/ui.mjs` driving Debian's Chromium through playwright-core
//! (sign-in, search, histogram, paging, chips, query errors, tables and
//! charts of queries with pipes, context, live tail, the fields panel, saved
//! searches, alerts, a read-only session). The script reads its
//! expectations from the log file, not from the server, except for pipe
//! tables, which it compares cell by cell with the stats API's answer, and
//! the fields panel, which it compares with the fields API's answer for
//! the JSON lines it appends. Alerts made in the
//! browser deliver to a real webhook receiver here; the script asks this
//! test to write the line an alert waits for and for the link that
//! notification carried, and this test checks what the receiver got.
//!
//! Screenshots go to the test's temporary directory, or to
//! `LOGHOUND_SCREENSHOTS` (relative to the workspace root) when set:
//! `LOGHOUND_SCREENSHOTS=docs/screenshots` regenerates the README's.
//!
//! Needs Node.js 20, `npm ci --prefix tests/browser` and `chromium`
//! (`apt-get install -y chromium`); `.ci/run` installs them. Missing, the
//! test fails and says what to install.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use loghound_tests::data::{append, now_ms, rfc3339_utc};
use loghound_tests::paths::workspace_root;
use loghound_tests::receiver::{Received, Receiver};
use loghound_tests::{temp_dir, token, wait_for_count, Pipeline};
use serde_json::{json, Value};
use sha2::Sha256;

/// How long the whole browser script may run before it is killed.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);
const WAIT: Duration = Duration::from_secs(60);
const NUM_LINES: i64 = 640;
/// Longest wait for a notification: the agent's batching, an index commit
/// and a delivery, with room for a loaded machine.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(60);
/// The receiver's paths for the two webhooks made in the browser.
const HOOK_PATH: &str = "/hook";
const SLACK_PATH: &str = "/slack";
const HOOK_SECRET: &str = "hook-s3cret";
/// The saved search the browser makes an alert from, and the word only
/// the line that alert waits for has.
const ALERT_SEARCH: &str = "Card processor errors";
const ALERT_WORD: &str = "alertneedle";

/// The log the agent follows: `NUM_LINES` lines over the last ten minutes,
/// of several severities, some with multi-byte characters before the
/// matched word, and one unique line in the middle for the context check.
fn log_lines(now_ms: i64) -> Vec<String> {
    let start_ms = now_ms - 10 * 60 * 1000;
    (0..NUM_LINES)
        .map(|i| {
            let time = rfc3339_utc(start_ms + i * 900);
            match i {
                320 => format!("{time} INFO api contextneedle checkpoint reached at request {i}"),
                _ if i % 40 == 7 => format!(
                    "{time} ERROR payments café ☕ charge failed: upstream timeout after 3000ms \
                     (order {i}), timeout again"
                ),
                _ if i % 40 == 23 => {
                    format!("{time} WARN api naïve retry 😀 for request {i}: connect timeout")
                }
                _ if i % 10 == 3 => format!("{time} DEBUG cache hit key=item:{i}"),
                _ => format!("{time} INFO api GET /api/v1/items/{i} 200 {}ms", i % 97),
            }
        })
        .collect()
}

/// Fails with what to install when the browser test's tools are missing.
fn require_browser_tools(browser_dir: &Path, chromium: &Path) {
    let node = Command::new("node").arg("--version").output();
    assert!(
        matches!(&node, Ok(output) if output.status.success()),
        "the web UI test needs Node.js 20 or later on PATH (`node --version` failed: {node:?})"
    );
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "the web UI test needs playwright-core: run `npm ci --prefix tests/browser`"
    );
    assert!(
        chromium.is_file(),
        "the web UI test needs Chromium at {}: run `apt-get install -y chromium` \
         (or set LOGHOUND_CHROMIUM to a Chromium binary)",
        chromium.display()
    );
}

/// How the script ended and what it printed.
struct ScriptRun {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs the script to its end or `SCRIPT_TIMEOUT`, answering each line
/// `ask: <question>` it prints with `answer(question)` as one line of JSON
/// on its stdin.
fn run_script(
    script: &Path,
    envs: &[(&str, String)],
    mut answer: impl FnMut(&str) -> Value,
) -> ScriptRun {
    let mut command = Command::new("node");
    command
        .arg(script)
        .current_dir(script.parent().expect("script has a directory"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in envs {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("spawn node");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let (line_tx, line_rx) = mpsc::channel();
    let stdout_pipe = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout_pipe).lines() {
            let Ok(line) = line else { break };
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr_pipe = child.stderr.take().expect("piped stderr");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });

    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let mut stdout = String::new();
    let mut timed_out = false;
    loop {
        match line_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if let Some(question) = line.strip_prefix("ask: ") {
                    let reply = answer(question.trim());
                    // A script that died meanwhile shows in its exit status.
                    let _ = writeln!(stdin, "{reply}").and_then(|()| stdin.flush());
                }
                stdout.push_str(&line);
                stdout.push('\n');
            }
            Err(RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    drop(stdin);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll node") {
            break Some(status);
        }
        if timed_out || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = stderr.join().expect("stderr reader");
    if status.is_none() {
        stderr.push_str(&format!("\n(killed after {SCRIPT_TIMEOUT:?})"));
    }
    ScriptRun {
        success: status.is_some_and(|s| s.success()),
        stdout,
        stderr,
    }
}

/// Where the screenshots go: `LOGHOUND_SCREENSHOTS` (relative to the
/// workspace root, such as `docs/screenshots`) when set, otherwise the
/// test's temporary directory, so a run changes no tracked file.
fn screenshot_dir(root: &Path, tmp: &Path) -> PathBuf {
    match std::env::var_os("LOGHOUND_SCREENSHOTS") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => tmp.join("screenshots"),
    }
}

/// The body of a webhook request as JSON, if it is JSON.
fn body_json(request: &Received) -> Option<Value> {
    serde_json::from_slice(&request.body).ok()
}

fn event_of(request: &Received) -> Option<String> {
    body_json(request).and_then(|body| body["event"].as_str().map(str::to_string))
}

/// Waits up to `NOTIFY_TIMEOUT` for the `fire` notification at `HOOK_PATH`
/// and returns its link's path and query (the link's origin is the
/// server's configured public URL, which a server on port 0 cannot know).
fn notification_link_path(receiver: &Receiver) -> Result<String, String> {
    let deadline = Instant::now() + NOTIFY_TIMEOUT;
    loop {
        let fire = receiver
            .requests_to(HOOK_PATH)
            .iter()
            .filter(|r| event_of(r).as_deref() == Some("fire"))
            .find_map(body_json);
        if let Some(body) = fire {
            let link = body["link"].as_str().unwrap_or_default().to_string();
            let after_scheme = link.split_once("://").map_or("", |(_, rest)| rest);
            return match after_scheme.find('/') {
                Some(at) => Ok(after_scheme[at..].to_string()),
                None => Err(format!("the notification's link has no path: {link:?}")),
            };
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no fire notification at {HOOK_PATH} within {NOTIFY_TIMEOUT:?}; received {}",
                receiver.requests().len()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn the_web_ui_works_in_a_real_browser() {
    let root = workspace_root();
    let browser_dir = root.join("tests").join("browser");
    let chromium = std::env::var_os("LOGHOUND_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    require_browser_tools(&browser_dir, &chromium);

    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log_file = logs.join("app.log");
    let lines = log_lines(now_ms());
    std::fs::write(&log_file, lines.join("\n") + "\n").unwrap();

    let pipeline = Pipeline::start(tmp.path(), &format!("{}/*.log", logs.display()));
    let ui_token = token(pipeline.server.data_dir(), &["read", "admin"]);
    let receiver = Receiver::start();
    wait_for_count(
        &pipeline.url,
        &pipeline.read_token,
        "",
        lines.len() as u64,
        WAIT,
    );

    let envs = [
        ("LOGHOUND_URL", pipeline.url.clone()),
        ("LOGHOUND_TOKEN", ui_token),
        ("LOGHOUND_READ_TOKEN", pipeline.read_token.clone()),
        ("LOGHOUND_LOG_FILE", log_file.display().to_string()),
        ("LOGHOUND_HOOK_URL", receiver.url(HOOK_PATH)),
        ("LOGHOUND_HOOK_SECRET", HOOK_SECRET.to_string()),
        ("LOGHOUND_SLACK_URL", receiver.url(SLACK_PATH)),
        ("LOGHOUND_ALERT_SEARCH", ALERT_SEARCH.to_string()),
        ("LOGHOUND_ALERT_WORD", ALERT_WORD.to_string()),
        ("LOGHOUND_CHROMIUM", chromium.display().to_string()),
        (
            "LOGHOUND_SCREENSHOTS",
            screenshot_dir(&root, tmp.path()).display().to_string(),
        ),
    ];
    let mut appended: Option<String> = None;
    let run = run_script(
        &browser_dir.join("ui.mjs"),
        &envs,
        |question| match question {
            "append-alert-line" => {
                let line = format!(
                    "{} ERROR billing {ALERT_WORD}: card processor unreachable for order 9001",
                    rfc3339_utc(now_ms())
                );
                append(&log_file, format!("{line}\n").as_bytes());
                appended = Some(line.clone());
                json!({ "line": line })
            }
            "notification-link" => match notification_link_path(&receiver) {
                Ok(path) => json!({ "path": path }),
                Err(error) => json!({ "error": error }),
            },
            other => json!({ "error": format!("unknown question {other:?}") }),
        },
    );
    let stdout = &run.stdout;
    println!("{stdout}");
    assert!(
        run.success && stdout.lines().last() == Some("PASS"),
        "browser checks failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        run.stderr
    );
    for wanted in [
        "ok: sign in",
        "ok: a query shows the right count and lines",
        "ok: the histogram total equals the count",
        "ok: a bad query shows the server's error at its position",
        "ok: a query with pipes shows the table the stats API answers",
        "ok: a timechart draws one line per series",
        "ok: a bad pipe shows the server's error at its position",
        "ok: live tail refuses a query with pipes",
        "ok: the fields panel shows what the fields API answers",
        "ok: clicking a line opens its context",
        "ok: live tail shows appended lines",
        "ok: save a search and see it in the list",
        "ok: an alert from the current search",
        "ok: a rule shows its state",
        "ok: a webhook alert on a saved search reports a new line",
        "ok: send test from the UI reaches the receiver",
        "ok: a notification's link opens its search as a custom range",
        "ok: a read-only token",
    ] {
        assert!(
            stdout.lines().any(|line| line.starts_with(wanted)),
            "check {wanted:?} did not pass\n{stdout}"
        );
    }

    // The webhook made in the browser: one notification of the appended
    // line for the saved search, signed with the secret typed there, and
    // one test.
    let line = appended.expect("the script asked for the alert's line");
    let hook = receiver.requests_to(HOOK_PATH);
    let bodies: Vec<Value> = hook
        .iter()
        .map(|r| body_json(r).unwrap_or_else(|| panic!("webhook body is not JSON: {r:?}")))
        .collect();
    let events: Vec<&str> = bodies
        .iter()
        .map(|b| b["event"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(events, ["fire", "test"], "requests to {HOOK_PATH}");
    for request in &hook {
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.header("x-loghound-signature"),
            Some(format!("sha256={}", hmac_hex(HOOK_SECRET, &request.body)).as_str()),
            "signature of {}",
            String::from_utf8_lossy(&request.body)
        );
    }
    let reporting: Vec<&Value> = bodies
        .iter()
        .filter(|b| {
            b["search"]["name"] == ALERT_SEARCH
                && b["events"]
                    .as_array()
                    .is_some_and(|events| events.iter().any(|e| e["message"] == line.as_str()))
        })
        .collect();
    assert_eq!(
        reporting.len(),
        1,
        "one notification of {line:?} for {ALERT_SEARCH:?}: {bodies:#?}"
    );
    let fire = reporting[0];
    assert_eq!(fire["event"], "fire");
    assert_eq!(fire["count"], 1);
    assert_eq!(
        fire["search"]["query"],
        format!("{ALERT_WORD} severity:error")
    );
    assert_eq!(bodies[1]["search"]["name"], ALERT_SEARCH);

    // The threshold rule made in the browser, in Slack's format.
    let timeouts = lines
        .iter()
        .filter(|l| l.contains(" ERROR ") && l.contains("timeout"))
        .count();
    let slack = receiver.requests_to(SLACK_PATH);
    let first = slack
        .first()
        .and_then(body_json)
        .unwrap_or_else(|| panic!("a JSON request at {SLACK_PATH}, got {slack:?}"));
    let text = first["text"].as_str().unwrap_or_default();
    assert!(
        text.starts_with(&format!(
            "*Payment timeouts: {timeouts} matches in the last 1 h (threshold 3)*"
        )),
        "Slack text: {text:?}"
    );
}
