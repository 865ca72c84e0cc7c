//! The web UI in a real browser: a real `loghound serve` fed by a real
//! `loghound-agent` following a log file written here, and
//! `tests/browser/ui.mjs` driving Debian's Chromium through playwright-core
//! (sign-in, search, histogram, paging, chips, query errors, context, live
//! tail, saved searches, alerts). The script reads its expectations from
//! the log file, not from the server.
//!
//! Needs Node.js 20, `npm ci --prefix tests/browser` and `chromium`
//! (`apt-get install -y chromium`); `.ci/run` installs them. Missing, the
//! test fails and says what to install.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use loghound_tests::data::rfc3339_utc;
use loghound_tests::paths::workspace_root;
use loghound_tests::{temp_dir, token, wait_for_count, Pipeline};

/// How long the whole browser script may run before it is killed.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);
const WAIT: Duration = Duration::from_secs(60);
const NUM_LINES: i64 = 640;

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

/// Runs the script to its end or `SCRIPT_TIMEOUT`; returns (success, stdout, stderr).
fn run_script(script: &Path, envs: &[(&str, String)]) -> (bool, String, String) {
    let mut command = Command::new("node");
    command
        .arg(script)
        .current_dir(script.parent().expect("script has a directory"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in envs {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("spawn node");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll node") {
            break Some(status);
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = stdout.join().expect("stdout reader");
    let mut stderr = stderr.join().expect("stderr reader");
    if status.is_none() {
        stderr.push_str(&format!("\n(killed after {SCRIPT_TIMEOUT:?})"));
    }
    (status.is_some_and(|s| s.success()), stdout, stderr)
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
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    let lines = log_lines(now_ms);
    std::fs::write(&log_file, lines.join("\n") + "\n").unwrap();

    let pipeline = Pipeline::start(tmp.path(), &format!("{}/*.log", logs.display()));
    let ui_token = token(pipeline.server.data_dir(), &["read", "admin"]);
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
        ("LOGHOUND_LOG_FILE", log_file.display().to_string()),
        ("LOGHOUND_CHROMIUM", chromium.display().to_string()),
        (
            "LOGHOUND_SCREENSHOTS",
            root.join("docs").join("screenshots").display().to_string(),
        ),
    ];
    let (success, stdout, stderr) = run_script(&browser_dir.join("ui.mjs"), &envs);
    println!("{stdout}");
    assert!(
        success && stdout.lines().last() == Some("PASS"),
        "browser checks failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    for wanted in [
        "ok: sign in",
        "ok: a query shows the right count and lines",
        "ok: the histogram total equals the count",
        "ok: a bad query shows the server's error at its position",
        "ok: clicking a line opens its context",
        "ok: live tail shows appended lines",
        "ok: save a search and see it in the list",
    ] {
        assert!(
            stdout.lines().any(|line| line.starts_with(wanted)),
            "check {wanted:?} did not pass\n{stdout}"
        );
    }
}
