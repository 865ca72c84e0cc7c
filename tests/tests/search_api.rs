//! Histogram, context and live tail end to end, through the real agent and
//! the real `loghound` binary (server and CLI), checked against the raw file.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use loghound_tests::data::{append, complete_lines};
use loghound_tests::http::{client, hit_message, ALL_TIME_FROM, ALL_TIME_TO};
use loghound_tests::paths::{loghound_bin, loghub_file};
use loghound_tests::{temp_dir, token, wait_for_count, Agent, Pipeline, Server};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn get_json(url: &str, token: &str, path: &str, params: &[(&str, &str)]) -> Value {
    let mut request = client().get(format!("{url}/api/v1/{path}"));
    for (name, value) in params {
        request = request.query(name, value);
    }
    let mut response = request
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap_or_else(|e| panic!("{path} {params:?}: {e}"));
    let body = response.body_mut().read_to_string().expect("body");
    assert_eq!(response.status(), 200, "{path} {params:?}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

#[test]
fn histogram_context_and_tail_agree_with_the_file() {
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let path = logs.join("zookeeper.log");
    let mut contents = std::fs::read(loghub_file("Zookeeper")).unwrap();
    contents.push(b'\n');
    std::fs::write(&path, &contents).unwrap();
    let lines = complete_lines(&contents);

    let pipeline = Pipeline::start(tmp.path(), &format!("{}/*.log", logs.display()));
    let (url, read) = (pipeline.url.clone(), pipeline.read_token.clone());
    wait_for_count(&url, &read, "", lines.len() as u64, WAIT);

    // Histogram buckets sum to the search count, for several queries.
    for q in ["", "severity:warning", "notification", "-info"] {
        let range = [("q", q), ("from", ALL_TIME_FROM), ("to", ALL_TIME_TO)];
        let search: Value = get_json(
            &url,
            &read,
            "search",
            &[range[0], range[1], range[2], ("limit", "0")],
        );
        let histogram = get_json(
            &url,
            &read,
            "histogram",
            &[range[0], range[1], range[2], ("buckets", "50")],
        );
        let sum: u64 = histogram["buckets"]
            .as_array()
            .expect("buckets")
            .iter()
            .map(|b| b["count"].as_u64().expect("bucket count"))
            .sum();
        assert_eq!(
            sum,
            search["count"].as_u64().unwrap(),
            "histogram of {q:?}: {histogram}"
        );
        assert_eq!(histogram["count"], search["count"], "{q:?}");
        // Without bounds the histogram spans the matches themselves.
        let open = get_json(&url, &read, "histogram", &[("q", q)]);
        assert_eq!(open["count"], search["count"], "open histogram of {q:?}");
    }

    // Context: the neighbours of a line whose text is unique in the file
    // are the file's own neighbouring lines.
    let unique = (100..lines.len() - 100)
        .find(|&i| lines.iter().filter(|l| **l == lines[i]).count() == 1)
        .expect("a unique line");
    let all = loghound_tests::search_all(&url, &read, "");
    let hit = all
        .iter()
        .find(|h| hit_message(h) == lines[unique])
        .expect("the unique line is indexed");
    let id = hit["id"].as_str().expect("hit id").to_string();
    let context = get_json(
        &url,
        &read,
        "context",
        &[("id", &id), ("before", "3"), ("after", "4")],
    );
    let messages = |key: &str| -> Vec<String> {
        context[key]
            .as_array()
            .unwrap_or_else(|| panic!("context without {key}: {context}"))
            .iter()
            .map(|h| hit_message(h).to_string())
            .collect()
    };
    assert_eq!(hit_message(&context["event"]), lines[unique]);
    assert_eq!(messages("before"), lines[unique - 3..unique].to_vec());
    assert_eq!(messages("after"), lines[unique + 1..unique + 5].to_vec());

    // Live tail through the CLI: a matching line appended after the
    // subscription arrives; a non-matching one does not.
    let mut tail = Command::new(loghound_bin())
        .args(["tail", "tailprobe", "--server", &url, "--token", &read])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn loghound tail");
    let stdout = tail.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The tail starts at "now": give it a moment to subscribe, then write.
    std::thread::sleep(Duration::from_secs(2));
    append(&path, b"an unrelated line after subscribing\n");
    append(&path, b"tailprobe 42 arrived live\n");
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while Instant::now() < deadline && !seen.iter().any(|l: &String| l.contains("tailprobe 42")) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(line);
        }
    }
    let _ = tail.kill();
    let _ = tail.wait();
    assert!(
        seen.iter()
            .any(|l| l.ends_with("tailprobe 42 arrived live")),
        "tail printed {seen:?}"
    );
    assert!(
        !seen.iter().any(|l| l.contains("unrelated")),
        "tail printed a non-matching line: {seen:?}"
    );
    let (count, _) = loghound_tests::search(&url, &read, "tailprobe");
    assert_eq!(count, 1);
}

/// The per-input `format` of agent.toml travels with the lines: the same
/// JSON line yields fields when parsed automatically, none as `plain`.
#[test]
fn format_hint_from_the_agent_config_reaches_the_parser() {
    let tmp = temp_dir();
    let (plain, auto) = (tmp.path().join("plain"), tmp.path().join("auto"));
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::create_dir_all(&auto).unwrap();
    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "format = \"plain\"\n[[inputs]]\npaths = [\"{}/*.log\"]\n",
            auto.display()
        ),
    )
    .unwrap();
    let line =
        b"{\"time\": \"2026-01-02T03:04:05Z\", \"status\": 503, \"msg\": \"upstream timeout\"}\n";
    append(&plain.join("a.log"), line);
    append(&auto.join("a.log"), line);

    let server = Server::start(&tmp.path().join("server"));
    let (ingest, read) = (
        token(server.data_dir(), &["ingest"]),
        token(server.data_dir(), &["read"]),
    );
    let _agent = Agent::start_with(
        &server.url(),
        &ingest,
        &tmp.path().join("agent"),
        &[format!("{}/*.log", plain.display())],
        &["--config", config.to_str().unwrap()],
    );
    let url = server.url();
    wait_for_count(&url, &read, "timeout", 2, WAIT);
    let (count, hits) = loghound_tests::search(&url, &read, "status:503");
    assert_eq!(count, 1, "only the auto-parsed line has fields: {hits:?}");
    assert!(
        hits[0]["source"].as_str().unwrap().contains("/auto/"),
        "{hits:?}"
    );
    // Both lines still carry their own time: `plain` keeps timestamps.
    let (in_2026_jan, _) = loghound_tests::search(&url, &read, "timeout");
    assert_eq!(in_2026_jan, 2);
    let january = get_json(
        &url,
        &read,
        "search",
        &[
            ("q", "timeout"),
            ("from", "2026-01-02T00:00:00Z"),
            ("to", "2026-01-03T00:00:00Z"),
        ],
    );
    assert_eq!(january["count"], 2, "{january}");
}
