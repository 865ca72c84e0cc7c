//! Guarantees 6 and 7 at the ingest endpoint: each kind of bad request gets
//! its precise status and a JSON error, tokens and scopes are enforced, and
//! the server keeps serving good batches afterwards.

use std::io::Write;
use std::time::Duration;

use loghound_shared::api::{IngestResponse, HEADER_PROTOCOL};
use loghound_shared::encode_batch;
use loghound_tests::data::{event, events, numbered_line};
use loghound_tests::http::{get_search, ingest, ingest_headers, post_ingest, Answer};
use loghound_tests::{assert_count_stays, search, temp_dir, token, wait_for_count, Server};

fn post(url: &str, token: &str, body: &[u8]) -> Answer {
    post_ingest(url, &ingest_headers(token, "e2e-bad"), body)
        .unwrap_or_else(|error| panic!("request failed without an answer: {error}"))
}

/// Asserts the status, that the body is a JSON error, and returns it.
fn expect_error(case: &str, answer: &Answer, status: u16) -> loghound_shared::api::ErrorBody {
    assert_eq!(answer.status, status, "{case}: body {:?}", answer.body);
    let body = answer.error_body();
    assert!(!body.error.trim().is_empty(), "{case}: empty error message");
    body
}

fn expect_limit(case: &str, answer: &Answer, limit: &str) {
    let body = expect_error(case, answer, 413);
    assert_eq!(
        body.limit.as_deref(),
        Some(limit),
        "{case}: {:?}",
        answer.body
    );
}

fn zstd(raw: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(raw, 3).unwrap()
}

/// Bytes zstd cannot shrink (xorshift), so the body stays over the limit.
fn incompressible(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// 200 MiB of blank 1 KiB lines, compressed to a few hundred KiB.
fn decompression_bomb() -> Vec<u8> {
    let mut line = vec![b' '; 1023];
    line.push(b'\n');
    let block: Vec<u8> = line.repeat(1024);
    let mut encoder = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    for _ in 0..200 {
        encoder.write_all(&block).unwrap();
    }
    encoder.finish().unwrap()
}

#[test]
fn bad_bodies_get_precise_errors_and_the_server_keeps_serving() {
    let tmp = temp_dir();
    let mut server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let good = encode_batch(&[event("bad-f", 0, "a good line")], 3).unwrap();

    expect_error(
        "corrupt zstd",
        &post(&url, &ingest_token, b"definitely not zstd"),
        400,
    );
    let truncated = &good[..good.len() - 4];
    expect_error("truncated zstd", &post(&url, &ingest_token, truncated), 400);

    let not_ndjson = expect_error(
        "zstd of text",
        &post(&url, &ingest_token, &zstd(b"hello world\n")),
        400,
    );
    assert!(
        not_ndjson.error.contains("line 1"),
        "names the line: {not_ndjson:?}"
    );
    let good_line = serde_json::to_string(&event("bad-f", 0, "fine")).unwrap();
    let second_bad = format!("{good_line}\n{{\"not\": \"an event\"}}\n");
    let body = expect_error(
        "second line not an event",
        &post(&url, &ingest_token, &zstd(second_bad.as_bytes())),
        400,
    );
    assert!(body.error.contains("line 2"), "names the line: {body:?}");
    let mut backwards = event("bad-f", 100, "backwards");
    backwards.end_offset.0 = 50;
    let raw = serde_json::to_string(&backwards).unwrap();
    expect_error(
        "empty byte range",
        &post(&url, &ingest_token, &zstd(raw.as_bytes())),
        400,
    );
    let utf8 = [good_line.as_bytes(), b"\n\xff\xfe\n"].concat();
    expect_error(
        "invalid UTF-8",
        &post(&url, &ingest_token, &zstd(&utf8)),
        400,
    );
    expect_error("no event", &post(&url, &ingest_token, &zstd(b"\n\n")), 400);

    let mut headers = ingest_headers(&ingest_token, "e2e-bad");
    headers.retain(|(name, _)| name != HEADER_PROTOCOL);
    headers.push((HEADER_PROTOCOL.into(), "999".into()));
    let answer = post_ingest(&url, &headers, &good).unwrap();
    expect_error("protocol version 999", &answer, 400);

    let big = incompressible(17 << 20);
    match post_ingest(&url, &ingest_headers(&ingest_token, "e2e-bad"), &big) {
        Ok(answer) => expect_limit("17 MiB body", &answer, "max_compressed_bytes"),
        // Refusing before reading the whole body may reset the upload;
        // that is not a JSON answer, so it fails the contract too.
        Err(error) => panic!("17 MiB body: no answer, the request failed: {error}"),
    }
    let bomb = decompression_bomb();
    assert!(bomb.len() < 1 << 20, "bomb is small: {} bytes", bomb.len());
    expect_limit(
        "200 MiB bomb",
        &post(&url, &ingest_token, &bomb),
        "max_decompressed_bytes",
    );
    let long_line = encode_batch(&[event("bad-f", 0, &"x".repeat(3 << 20))], 3).unwrap();
    expect_limit(
        "3 MiB line",
        &post(&url, &ingest_token, &long_line),
        "max_line_bytes",
    );
    let messages: Vec<String> = (0..100_001).map(|n| format!("e{n}")).collect();
    let many = encode_batch(&events("bad-many", 0, &messages), 3).unwrap();
    expect_limit(
        "100001 events",
        &post(&url, &ingest_token, &many),
        "max_events",
    );

    // The server still works, and none of the rejected batches left a line.
    server.assert_running();
    let lines: Vec<String> = (0..20).map(|n| numbered_line("badafter", n)).collect();
    let accepted = ingest(&url, &ingest_token, "e2e-bad", &events("after", 0, &lines));
    assert_eq!(
        accepted,
        IngestResponse {
            accepted: 20,
            duplicates: 0
        }
    );
    wait_for_count(&url, &read_token, "badafter", 20, Duration::from_secs(30));
    assert_count_stays(&url, &read_token, "", 20, Duration::from_secs(2));
}

#[test]
fn tokens_and_scopes_are_enforced() {
    let tmp = temp_dir();
    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let messages = vec![numbered_line("authline", 1)];
    let good = encode_batch(&events("auth-f", 0, &messages), 3).unwrap();

    let mut no_auth = ingest_headers(&ingest_token, "e2e-auth");
    no_auth.retain(|(name, _)| name != "Authorization");
    expect_error(
        "ingest without token",
        &post_ingest(&url, &no_auth, &good).unwrap(),
        401,
    );
    let wrong = format!("{ingest_token}x");
    expect_error("ingest with a wrong token", &post(&url, &wrong, &good), 401);
    expect_error(
        "ingest with a read token",
        &post(&url, &read_token, &good),
        403,
    );

    let params = [("q", "")];
    expect_error(
        "search without token",
        &get_search(&url, None, &params).unwrap(),
        401,
    );
    let answer = get_search(&url, Some("not-a-token"), &params).unwrap();
    expect_error("search with a wrong token", &answer, 401);
    let answer = get_search(&url, Some(&ingest_token), &params).unwrap();
    expect_error("search with an ingest token", &answer, 403);

    // A token created while the server runs works at once.
    let late_read = token(server.data_dir(), &["read"]);
    assert_eq!(post(&url, &ingest_token, &good).status, 200);
    wait_for_count(&url, &late_read, "authline", 1, Duration::from_secs(30));
    assert_eq!(
        search(&url, &read_token, "authline").0,
        1,
        "nothing rejected was stored"
    );
}

#[test]
fn resent_batches_are_dropped_as_duplicates() {
    let tmp = temp_dir();
    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let lines: Vec<String> = (0..15).map(|n| numbered_line("dupline", n)).collect();
    let all = events("dup-f", 0, &lines);

    let first = ingest(&url, &ingest_token, "e2e-dup", &all[..10]);
    assert_eq!(
        first,
        IngestResponse {
            accepted: 10,
            duplicates: 0
        }
    );
    let again = ingest(&url, &ingest_token, "e2e-dup", &all[..10]);
    assert_eq!(
        again,
        IngestResponse {
            accepted: 0,
            duplicates: 10
        },
        "the same batch again"
    );
    let overlap = ingest(&url, &ingest_token, "e2e-dup", &all[5..]);
    assert_eq!(
        overlap,
        IngestResponse {
            accepted: 5,
            duplicates: 5
        },
        "a batch overlapping by 5"
    );

    wait_for_count(&url, &read_token, "dupline", 15, Duration::from_secs(30));
    assert_count_stays(&url, &read_token, "dupline", 15, Duration::from_secs(2));
}

/// `loghound token list|revoke` on a running server's data directory: a
/// revoked token is refused within the 10 s the server trusts a lookup,
/// the other tokens keep working, and the list shows what happened.
#[test]
fn revoked_tokens_are_refused_by_a_running_server() {
    let tmp = temp_dir();
    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let keep = token(server.data_dir(), &["read"]);
    let revoked = token(server.data_dir(), &["read"]);
    let status = |t: &str| {
        get_search(&url, Some(t), &[("q", "")])
            .expect("search request")
            .status
    };
    assert_eq!(status(&revoked), 200);

    let data_dir = server.data_dir().display().to_string();
    let list = loghound_tests::process::run_loghound(&["token", "list", "--data-dir", &data_dir]);
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(list.status.success(), "{listed}");
    assert_eq!(listed.matches("active").count(), 2, "{listed}");
    assert!(
        !listed.contains(&keep) && !listed.contains(&revoked),
        "list must not show secrets"
    );

    let revoke =
        loghound_tests::process::run_loghound(&["token", "revoke", "--data-dir", &data_dir, "2"]);
    assert!(
        revoke.status.success(),
        "{}",
        String::from_utf8_lossy(&revoke.stderr)
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while status(&revoked) != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "revoked token still accepted after 30 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(status(&keep), 200);
    let again =
        loghound_tests::process::run_loghound(&["token", "revoke", "--data-dir", &data_dir, "2"]);
    assert!(!again.status.success(), "revoking twice must fail");
    let list = loghound_tests::process::run_loghound(&["token", "list", "--data-dir", &data_dir]);
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    assert_eq!(listed.matches("revoked").count(), 1, "{listed}");
}

/// A server whose limits are below the agent's batch size answers 413; the
/// agent splits its batches until they fit, and every line arrives once.
#[test]
fn agent_splits_batches_a_server_refuses_as_too_large() {
    let dir = temp_dir();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "[limits]\nmax_events = 16\n").unwrap();
    let pipeline = loghound_tests::Pipeline::start_with(
        dir.path(),
        &format!("{}/*.log", logs.display()),
        loghound_tests::ServerOptions {
            config: Some(config),
            env: Vec::new(),
        },
    );
    let total = 3000;
    loghound_tests::data::append(
        &logs.join("app.log"),
        &loghound_tests::data::numbered_lines("splitme", 0..total),
    );
    wait_for_count(
        &pipeline.url,
        &pipeline.read_token,
        "splitme",
        total,
        Duration::from_secs(120),
    );
    loghound_tests::assert_each_number_once(&pipeline.url, &pipeline.read_token, "splitme", total);
    let log = std::fs::read_to_string(pipeline.agent.log_path()).unwrap_or_default();
    assert!(
        log.contains("sending it in halves"),
        "the agent never split a batch: the test did not exercise the limit"
    );
}
