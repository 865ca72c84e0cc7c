//! The HTTP API in process (router without a socket): ingest, dedup,
//! search order, paging, errors, and recovery from the WAL.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use loghound_server::config::ServerConfig;
use loghound_server::http::app;
use loghound_server::serve::{recover, Recovered};
use loghound_server::tokens::{create, Scope};
use loghound_shared::{encode_batch, ByteOffset, Event, FileId};
use serde_json::Value;
use tower::ServiceExt;

fn config(dir: &std::path::Path) -> ServerConfig {
    ServerConfig {
        data_dir: dir.to_path_buf(),
        commit_interval_ms: 100,
        index_writer_heap_bytes: 16 << 20,
        index_writer_threads: 1,
        ..ServerConfig::default()
    }
}

fn lines(file: &str, messages: &[&str], read_at_ms: i64) -> Vec<Event> {
    let mut offset = 0;
    messages
        .iter()
        .map(|m| {
            let start = offset;
            offset += m.len() as u64 + 1;
            Event {
                file_id: FileId::new(file).unwrap(),
                offset: ByteOffset(start),
                end_offset: ByteOffset(offset),
                host: "web3".into(),
                source: "/var/log/app.log".into(),
                message: m.to_string(),
                read_at_ms: Some(read_at_ms),
                tags: BTreeMap::from([("app".to_string(), "api".to_string())]),
                truncated: false,
                invalid_utf8: false,
                format: None,
                fields: Default::default(),
                severity: None,
                time_ms: None,
            }
        })
        .collect()
}

async fn call(server: &Recovered, request: Request<Body>) -> (StatusCode, Value) {
    let response = app(server.state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn ingest_request(token: &str, body: Vec<u8>) -> Request<Body> {
    Request::post("/api/v1/ingest")
        .header("authorization", format!("Bearer {token}"))
        .header("x-loghound-protocol", "1")
        .header("x-loghound-agent", "agent-1")
        .header("content-encoding", "zstd")
        .body(Body::from(body))
        .unwrap()
}

fn search_request(token: &str, query: &str) -> Request<Body> {
    Request::get(format!("/api/v1/search?{query}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

async fn wait_for_count(server: &Recovered, token: &str, query: &str, expected: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = call(server, search_request(token, query)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["count"] == expected || Instant::now() > deadline {
            assert_eq!(body["count"], expected, "query {query}: {body}");
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_search_page_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = create(dir.path(), &[Scope::Ingest]).unwrap();
    let read = create(dir.path(), &[Scope::Read]).unwrap();
    let server = recover(&config(dir.path())).unwrap();

    let t0 = 1_764_000_000_000;
    let mut events = lines(
        "f1",
        &[
            "GET /a 200",
            "GET /b 503 Timeout",
            "POST /c 200",
            "timeout again",
        ],
        t0,
    );
    events[3].read_at_ms = Some(t0 - 86_400_000); // the day before: another index
    let body = encode_batch(&events, 3).unwrap();
    let (status, answer) = call(&server, ingest_request(&ingest, body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, serde_json::json!({"accepted": 4, "duplicates": 0}));
    let (_, again) = call(&server, ingest_request(&ingest, body)).await;
    assert_eq!(again, serde_json::json!({"accepted": 0, "duplicates": 4}));

    // Case-insensitive words, AND by default, across two day indexes.
    let found = wait_for_count(&server, &read, "q=TIMEOUT", 2).await;
    assert_eq!(
        found["hits"][0]["message"], "GET /b 503 Timeout",
        "newest first"
    );
    assert_eq!(found["hits"][1]["message"], "timeout again");
    assert_eq!(found["hits"][0]["app"], "api");
    wait_for_count(&server, &read, "q=get%20200", 1).await;

    // Same timestamp: ties go to arrival order, newest first; pages by cursor.
    let page = wait_for_count(&server, &read, "q=&limit=2", 4).await;
    let messages: Vec<_> = page["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["message"].clone())
        .collect();
    assert_eq!(messages, vec!["POST /c 200", "GET /b 503 Timeout"]);
    let cursor = page["cursor"].as_str().unwrap().to_string();
    let next = wait_for_count(&server, &read, &format!("limit=2&cursor={cursor}"), 4).await;
    let messages: Vec<_> = next["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["message"].clone())
        .collect();
    assert_eq!(messages, vec!["GET /a 200", "timeout again"]);

    // Time range.
    let from = "2025-11-24T00:00:00Z";
    let day_before = wait_for_count(&server, &read, &format!("q=&to={from}"), 1).await;
    assert_eq!(day_before["hits"][0]["message"], "timeout again");

    // Errors are JSON with precise messages.
    let (status, error) = call(&server, search_request(&read, "q=%22unclosed")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (status, error) = call(&server, search_request(&read, "from=yesterday")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["error"].as_str().unwrap().contains("yesterday"),
        "{error}"
    );
    let (status, _) = call(&server, search_request(&ingest, "q=")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &server,
        ingest_request(&read, encode_batch(&events, 3).unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Restart: the WAL replays, nothing is indexed twice, dedup survives.
    tokio::task::spawn_blocking(move || server.shutdown())
        .await
        .unwrap();
    let server = recover(&config(dir.path())).unwrap();
    wait_for_count(&server, &read, "q=", 4).await;
    let (_, again) = call(
        &server,
        ingest_request(&ingest, encode_batch(&events, 3).unwrap()),
    )
    .await;
    assert_eq!(again["duplicates"], 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_for_count(&server, &read, "q=", 4).await;
    tokio::task::spawn_blocking(move || server.shutdown())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_tokens_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = create(dir.path(), &[Scope::Ingest]).unwrap();
    let read = create(dir.path(), &[Scope::Read]).unwrap();
    let server = recover(&config(dir.path())).unwrap();
    let trace = "a".repeat(30) + &"0123456789abcdef".repeat(4);
    let message = format!("request failed trace={trace}");
    let events = lines("f2", &[&message], 1_764_000_000_000);
    let (status, _) = call(
        &server,
        ingest_request(&ingest, encode_batch(&events, 3).unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    wait_for_count(&server, &read, &format!("q={}", trace.to_uppercase()), 1).await;
    tokio::task::spawn_blocking(move || server.shutdown())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_408_instead_of_holding_the_request() {
    use futures_util::StreamExt;

    let dir = tempfile::tempdir().unwrap();
    let ingest = create(dir.path(), &[Scope::Ingest]).unwrap();
    let server = recover(&ServerConfig {
        body_idle_timeout_ms: 200,
        ..config(dir.path())
    })
    .unwrap();
    // A slow client: a first piece, then nothing, ever.
    let stalled = futures_util::stream::once(async {
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"(\xb5/\xfd"))
    })
    .chain(futures_util::stream::pending());
    let request = Request::post("/api/v1/ingest")
        .header("authorization", format!("Bearer {ingest}"))
        .header("x-loghound-protocol", "1")
        .header("x-loghound-agent", "agent-1")
        .body(Body::from_stream(stalled))
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(30), call(&server, request))
        .await
        .expect("the server answers a stalled body instead of waiting forever");
    assert_eq!(answer.0, StatusCode::REQUEST_TIMEOUT, "{}", answer.1);
    assert!(
        answer.1["error"].as_str().unwrap().contains("stalled"),
        "{}",
        answer.1
    );
    tokio::task::spawn_blocking(move || server.shutdown())
        .await
        .unwrap();
}
