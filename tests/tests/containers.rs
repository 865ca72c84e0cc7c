//! Container log files end to end: the kubelet's CRI files under
//! `var/log/pods/<namespace>_<pod>_<uid>/<container>/0.log` (found by their
//! location, no format configured) and Docker's json-file logs
//! (`format = "docker"`), with long lines cut into partial parts by the
//! runtime, rotated the way each runtime rotates them, and the agent killed
//! with SIGKILL in the middle: every line exactly once, whole, with the
//! container's fields.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use loghound_tests::data::{numbered_line, parse_numbered, rfc3339_utc};
use loghound_tests::http::hit_message;
use loghound_tests::{
    assert_count_stays, assert_each_number_once, search, search_all, temp_dir, token,
    wait_for_count, wait_until_count_at_least, Agent, Server,
};

const TOTAL: u64 = 24_000;
const ROUNDS: u64 = 6;

/// How line `n` is written: its stream, and the parts a runtime cut it
/// into (every 7th line in three).
fn stream_of(n: u64) -> &'static str {
    if n.is_multiple_of(5) {
        "stderr"
    } else {
        "stdout"
    }
}

fn parts_of(line: &str, n: u64) -> Vec<&str> {
    if !n.is_multiple_of(7) {
        return vec![line];
    }
    let (a, b) = (line.len() / 3, 2 * line.len() / 3);
    vec![&line[..a], &line[a..b], &line[b..]]
}

/// Milliseconds of line `n`'s runtime timestamp.
fn time_ms(base_ms: i64, n: u64) -> i64 {
    base_ms + n as i64
}

fn cri_lines(tag: &str, base_ms: i64, range: std::ops::Range<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    for n in range {
        let line = numbered_line(tag, n);
        let parts = parts_of(&line, n);
        let last = parts.len() - 1;
        // Nanoseconds, as containerd writes them.
        let time = rfc3339_utc(time_ms(base_ms, n)).replace('Z', "000000Z");
        for (index, part) in parts.iter().enumerate() {
            let tag = if index == last { "F" } else { "P" };
            let _ = writeln!(out, "{time} {} {tag} {part}", stream_of(n));
        }
    }
    out
}

fn docker_lines(tag: &str, base_ms: i64, range: std::ops::Range<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    for n in range {
        let line = numbered_line(tag, n);
        let parts = parts_of(&line, n);
        let last = parts.len() - 1;
        let time = rfc3339_utc(time_ms(base_ms, n));
        for (index, part) in parts.iter().enumerate() {
            let log = if index == last {
                format!("{part}\n")
            } else {
                part.to_string()
            };
            let record = serde_json::json!({"log": log, "stream": stream_of(n), "time": time});
            let _ = writeln!(out, "{record}");
        }
    }
    out
}

fn append(path: &Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the container log");
    file.write_all(bytes).expect("append to the container log");
}

/// Writes `TOTAL` lines in rounds into `live`, rotating it with `rotate`
/// after every round but the last and killing the agent with SIGKILL
/// before the third rotation (which happens while it is down); then checks
/// every line is there once and whole.
#[allow(clippy::too_many_arguments)]
fn write_rotate_and_check(
    tag: &str,
    live: &Path,
    encode: fn(&str, i64, std::ops::Range<u64>) -> Vec<u8>,
    rotate: &dyn Fn(u64),
    agent: &mut Agent,
    url: &str,
    read: &str,
    base_ms: i64,
) {
    let per_round = TOTAL / ROUNDS;
    for round in 0..ROUNDS {
        let range = round * per_round..(round + 1) * per_round;
        append(live, &encode(tag, base_ms, range.clone()));
        // Rotate once the agent reads this file, with the rest of it still
        // unread: a file renamed out of the globs before the agent ever
        // opened it is not followed (its name no longer matches).
        wait_until_count_at_least(url, read, tag, range.start + 1, Duration::from_secs(30));
        if round == 2 {
            agent.kill9();
        }
        if round + 1 < ROUNDS {
            rotate(round);
        }
        if round == 2 {
            agent.restart();
        }
    }
    wait_for_count(url, read, tag, TOTAL, Duration::from_secs(90));
    assert_each_number_once(url, read, tag, TOTAL);
    assert_count_stays(url, read, tag, TOTAL, Duration::from_secs(2));
    // Every line whole: its parts joined, nothing but the line.
    let mut wrong = Vec::new();
    for hit in search_all(url, read, tag) {
        let message = hit_message(&hit);
        let Some(n) = parse_numbered(tag, message) else {
            wrong.push(message.to_string());
            continue;
        };
        if message != numbered_line(tag, n) || hit["fields"]["stream"] != stream_of(n) {
            wrong.push(format!("{n}: {hit}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} hits wrong, first: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(3)]
    );
}

#[test]
fn kubelet_cri_logs_are_decoded_joined_and_rotated_exactly_once() {
    const TAG: &str = "cricontainer";
    let tmp = temp_dir();
    let container_dir = tmp
        .path()
        .join("var/log/pods/shop_web-7d9f_6b1e2f3a-1111/nginx");
    std::fs::create_dir_all(&container_dir).unwrap();
    let live = container_dir.join("0.log");
    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest = token(server.data_dir(), &["ingest"]);
    let read = token(server.data_dir(), &["read"]);
    let glob = format!("{}/var/log/pods/*/*/*.log", tmp.path().display());
    let mut agent = Agent::start(&url, &ingest, &tmp.path().join("agent"), &[glob]);
    let base_ms = loghound_tests::data::now_ms() - 60_000;

    // The kubelet renames N.log to N.log.<timestamp> and starts a new N.log.
    let rotate = |round: u64| {
        let rotated = container_dir.join(format!("0.log.20260102-03040{round}"));
        std::fs::rename(container_dir.join("0.log"), rotated).unwrap();
        std::fs::File::create(container_dir.join("0.log")).unwrap();
    };
    write_rotate_and_check(
        TAG, &live, cri_lines, &rotate, &mut agent, &url, &read, base_ms,
    );

    let count = |query: &str| search(&url, &read, &format!("{TAG} {query}")).0;
    let stderr = (0..TOTAL).filter(|n| n.is_multiple_of(5)).count() as u64;
    assert_eq!(count("stream:stderr"), stderr);
    assert_eq!(
        count("namespace:shop pod:web-7d9f container:nginx app:nginx"),
        TOTAL
    );
    assert_eq!(count("pod_uid:6b1e2f3a-1111"), TOTAL);
    let (_, hits) = search(&url, &read, &loghound_tests::data::numbered_term(7));
    let hit = hits.first().expect("line 7 is searchable");
    assert_eq!(hit_message(hit), numbered_line(TAG, 7));
    let expected = rfc3339_utc(time_ms(base_ms, 7));
    assert_eq!(
        hit["timestamp"].as_str().map(|t| t.get(..23)),
        Some(expected.get(..23)),
        "the event time is the runtime's: {hit}"
    );
}

#[test]
fn docker_json_logs_are_decoded_joined_and_rotated_exactly_once() {
    const TAG: &str = "dockercontainer";
    let tmp = temp_dir();
    let id = "3f4e5d6c7b8a9".repeat(5)[..64].to_string();
    let container_dir: PathBuf = tmp.path().join("docker-root/containers").join(&id);
    std::fs::create_dir_all(&container_dir).unwrap();
    let live = container_dir.join(format!("{id}-json.log"));
    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest = token(server.data_dir(), &["ingest"]);
    let read = token(server.data_dir(), &["read"]);
    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[[inputs]]\npaths = [\"{}/docker-root/containers/*/*-json.log\"]\nformat = \"docker\"\n",
            tmp.path().display()
        ),
    )
    .unwrap();
    let mut agent = Agent::start_with(
        &url,
        &ingest,
        &tmp.path().join("agent"),
        &[] as &[&str],
        &["--config".to_string(), config.display().to_string()],
    );
    let base_ms = loghound_tests::data::now_ms() - 60_000;

    // json-file's rotation: <id>-json.log.1 → .2 …, <id>-json.log → .1.
    let log = |suffix: u64| {
        let mut name = format!("{id}-json.log");
        if suffix > 0 {
            name.push_str(&format!(".{suffix}"));
        }
        container_dir.join(name)
    };
    let rotate = |round: u64| {
        for suffix in (1..=round + 1).rev() {
            let _ = std::fs::rename(log(suffix), log(suffix + 1));
        }
        std::fs::rename(log(0), log(1)).unwrap();
        std::fs::File::create(log(0)).unwrap();
    };
    write_rotate_and_check(
        TAG,
        &live,
        docker_lines,
        &rotate,
        &mut agent,
        &url,
        &read,
        base_ms,
    );
    assert_eq!(
        search(&url, &read, &format!("{TAG} container_id:{id}")).0,
        TOTAL
    );
}
