//! The read API beyond plain search, in process: histogram counts that
//! agree with search, context lines in file order, and highlights. Batches
//! go straight to the ingest backend with a chosen receive time, so that
//! they land in several day indexes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use loghound_server::config::ServerConfig;
use loghound_server::http::app;
use loghound_server::serve::{recover, Recovered};
use loghound_server::tokens::{create, Scope};
use loghound_shared::{encode_batch, AgentId, ByteOffset, Event, FileId};
use serde_json::{json, Value};
use tower::ServiceExt;

/// 2025-11-20T00:00:00Z.
const DAY0_MS: i64 = 1_763_596_800_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

fn config(dir: &std::path::Path) -> ServerConfig {
    ServerConfig {
        data_dir: dir.to_path_buf(),
        commit_interval_ms: 100,
        index_writer_heap_bytes: 16 << 20,
        index_writer_threads: 1,
        ..ServerConfig::default()
    }
}

/// A line of `file` on `host` at `offset`, timed `time_ms` (it has no
/// timestamp of its own, so the read time is its time).
fn line(host: &str, file: &str, offset: u64, time_ms: i64, message: &str) -> Event {
    Event {
        file_id: FileId::new(file).unwrap(),
        offset: ByteOffset(offset),
        end_offset: ByteOffset(offset + message.len() as u64 + 1),
        host: host.into(),
        source: format!("/var/log/{file}.log"),
        message: message.to_string(),
        read_at_ms: Some(time_ms),
        tags: BTreeMap::new(),
        truncated: false,
        invalid_utf8: false,
        format: None,
        fields: Default::default(),
        severity: None,
        time_ms: None,
    }
}

/// Ingests `events` as one batch from `agent`, received at `received_at_ms`
/// (which picks the day index).
async fn ingest_at(server: &Recovered, agent: &str, received_at_ms: i64, events: Vec<Event>) {
    let backend = server.state.ingest.clone();
    let agent = AgentId::new(agent).unwrap();
    let num_events = events.len() as u64;
    let (answer, _seq) = tokio::task::spawn_blocking(move || {
        let body = encode_batch(&events, 3).unwrap();
        backend.ingest(&agent, received_at_ms, &body).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(answer.accepted, num_events);
}

async fn get(server: &Recovered, token: &str, path_and_query: &str) -> (StatusCode, Value) {
    let request = Request::get(path_and_query)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app(server.state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn wait_for_count(server: &Recovered, token: &str, query: &str, expected: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get(server, token, &format!("/api/v1/search?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["count"] == expected || Instant::now() > deadline {
            assert_eq!(body["count"], expected, "query {query}: {body}");
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rfc3339(ms: i64) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time.format(&format).unwrap()
}

/// Checks that the histogram of `query` sums to the count of a search
/// with the same parameters (less `buckets`) and returns its answer.
async fn histogram_agrees_with_search(server: &Recovered, token: &str, query: &str) -> Value {
    let (status, histogram) = get(server, token, &format!("/api/v1/histogram?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{histogram}");
    let search_query: Vec<&str> = query
        .split('&')
        .filter(|p| !p.starts_with("buckets="))
        .collect();
    let search_query = search_query.join("&");
    let (status, search) = get(server, token, &format!("/api/v1/search?{search_query}")).await;
    assert_eq!(status, StatusCode::OK, "{search}");
    let sum: u64 = histogram["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(
        sum,
        search["count"].as_u64().unwrap(),
        "{query}: {histogram}"
    );
    assert_eq!(histogram["count"], search["count"], "{query}");
    histogram
}

fn counts(histogram: &Value) -> Vec<u64> {
    histogram["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histogram_sums_to_search_count_across_days_and_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let read = create(dir.path(), &[Scope::Read]).unwrap();
    let ingest = create(dir.path(), &[Scope::Ingest]).unwrap();
    let server = recover(&config(dir.path())).unwrap();

    // Three days of receipt, three day indexes; events sit exactly on the
    // day boundaries, a millisecond either side of them, and on `to`.
    let d = DAY0_MS;
    let day_batches = [
        (
            d + HOUR_MS,
            vec![
                (d - 1, true),
                (d, true),
                (d + 5 * HOUR_MS, false),
                (d + DAY_MS - 1, true),
            ],
        ),
        (
            d + DAY_MS + HOUR_MS,
            vec![
                (d + DAY_MS, true),
                (d + DAY_MS + 1, false),
                (d + 2 * DAY_MS - 1, false),
            ],
        ),
        (
            d + 2 * DAY_MS + HOUR_MS,
            vec![
                (d + 2 * DAY_MS, false),
                (d + 3 * DAY_MS - 1, false),
                (d + 3 * DAY_MS, true),
            ],
        ),
    ];
    let mut offset = 0;
    for (received_at_ms, times) in day_batches {
        let events = times
            .iter()
            .map(|(time_ms, alpha)| {
                offset += 100;
                let word = if *alpha { "alpha" } else { "bravo" };
                line(
                    "web3",
                    "f1",
                    offset,
                    *time_ms,
                    &format!("request {word} {offset}"),
                )
            })
            .collect();
        ingest_at(&server, "agent-1", received_at_ms, events).await;
    }
    wait_for_count(&server, &read, "q=", 10).await;

    let (from, to) = (rfc3339(d), rfc3339(d + 3 * DAY_MS));
    let range = format!("from={from}&to={to}");
    let exact =
        histogram_agrees_with_search(&server, &read, &format!("q=&{range}&buckets=3")).await;
    assert_eq!(
        exact,
        json!({
            "buckets": [
                {"start": rfc3339(d), "end": rfc3339(d + DAY_MS), "count": 3},
                {"start": rfc3339(d + DAY_MS), "end": rfc3339(d + 2 * DAY_MS), "count": 3},
                {"start": rfc3339(d + 2 * DAY_MS), "end": rfc3339(d + 3 * DAY_MS), "count": 2},
            ],
            "count": 8,
            "interval_ms": DAY_MS,
            "from": from,
            "to": to,
        })
    );

    let alpha =
        histogram_agrees_with_search(&server, &read, &format!("q=ALPHA&{range}&buckets=3")).await;
    assert_eq!(counts(&alpha), [2, 1, 0]);

    // Default 60 buckets: 72 minutes each, rounded up to 2 hours.
    let default = histogram_agrees_with_search(&server, &read, &format!("q=&{range}")).await;
    assert_eq!(default["interval_ms"], 2 * HOUR_MS);
    assert_eq!(default["buckets"].as_array().unwrap().len(), 36);

    // A range that starts inside a bucket: the first bucket is clipped.
    let late_from = rfc3339(d + HOUR_MS / 2);
    let clipped = histogram_agrees_with_search(
        &server,
        &read,
        &format!("q=&from={late_from}&to={to}&buckets=3"),
    )
    .await;
    assert_eq!(counts(&clipped), [2, 3, 2]);
    assert_eq!(clipped["buckets"][0]["start"], late_from);
    assert_eq!(clipped["buckets"][0]["end"], rfc3339(d + DAY_MS));

    // Open bounds: the matches' own span, every match counted.
    let open = histogram_agrees_with_search(&server, &read, "q=&buckets=1000").await;
    assert_eq!(open["count"], 10);
    assert_eq!(open["from"], rfc3339(d - 1));
    assert_eq!(open["to"], rfc3339(d + 3 * DAY_MS + 1));
    let only_from =
        histogram_agrees_with_search(&server, &read, &format!("q=alpha&from={from}")).await;
    assert_eq!(only_from["count"], 4);
    assert_eq!(only_from["to"], rfc3339(d + 3 * DAY_MS + 1));
    let nothing = histogram_agrees_with_search(&server, &read, "q=nosuchword").await;
    assert_eq!(nothing["buckets"], json!([]));
    assert_eq!(nothing["from"], Value::Null);

    // The same validation as search, and the same scopes.
    for bad in [
        "buckets=0",
        "buckets=1001",
        "buckets=x",
        "from=yesterday",
        "q=%22unclosed",
        "nope=1",
    ] {
        let (status, error) = get(&server, &read, &format!("/api/v1/histogram?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {error}");
        assert!(error["error"].is_string(), "{bad}: {error}");
    }
    let (status, _) = get(&server, &ingest, "/api/v1/histogram?q=").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = get(&server, "lh_nonsense", "/api/v1/histogram?q=").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    tokio::task::spawn_blocking(move || server.shutdown())
        .await
        .unwrap();
}

fn messages(hits: &Value) -> Vec<String> {
    hits.as_array()
        .unwrap()
        .iter()
        .map(|h| h["message"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_returns_neighbours_in_file_order_across_days() {
    let dir = tempfile::tempdir().unwrap();
    let read = create(dir.path(), &[Scope::Read]).unwrap();
    let server = recover(&config(dir.path())).unwrap();
    let t = DAY0_MS + HOUR_MS;

    // File `fa` on web3, lines 0..10 at offsets 0, 100, …, received over
    // three days; interleaved offsets in another file on the same host and
    // in a file with the same id on another host must not show up. Event
    // times run backwards, so time order is not file order.
    let alpha = |i: u64| {
        line(
            "web3",
            "fa",
            i * 100,
            t - i as i64,
            &format!("alpha line {i}"),
        )
    };
    let bravo = |i: u64| line("web3", "fb", i * 100 + 50, t, &format!("bravo line {i}"));
    let other_host = |i: u64| line("web4", "fa", i * 100 + 50, t, &format!("charlie line {i}"));
    ingest_at(&server, "agent-1", t, (0..4).map(alpha).collect()).await;
    ingest_at(&server, "agent-1", t, (0..10).map(bravo).collect()).await;
    ingest_at(&server, "agent-2", t, (0..10).map(other_host).collect()).await;
    ingest_at(&server, "agent-1", t + DAY_MS, (4..7).map(alpha).collect()).await;
    ingest_at(
        &server,
        "agent-1",
        t + 2 * DAY_MS,
        (7..10).map(alpha).collect(),
    )
    .await;
    let found = wait_for_count(&server, &read, "q=alpha&limit=100", 10).await;
    let id_of = |message: &str| {
        found["hits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["message"] == message)
            .map(|h| h["id"].as_str().unwrap().to_string())
            .unwrap()
    };

    let id = id_of("alpha line 5");
    let (status, context) = get(
        &server,
        &read,
        &format!("/api/v1/context?id={id}&before=2&after=3"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{context}");
    assert_eq!(context["event"]["message"], "alpha line 5");
    assert_eq!(context["event"]["id"], id.as_str());
    assert_eq!(
        messages(&context["before"]),
        ["alpha line 3", "alpha line 4"]
    );
    assert_eq!(
        messages(&context["after"]),
        ["alpha line 6", "alpha line 7", "alpha line 8"]
    );

    // Defaults (10 each), cut by the file's ends.
    let (_, context) = get(&server, &read, &format!("/api/v1/context?id={id}")).await;
    let before: Vec<String> = (0..5).map(|i| format!("alpha line {i}")).collect();
    let after: Vec<String> = (6..10).map(|i| format!("alpha line {i}")).collect();
    assert_eq!(messages(&context["before"]), before);
    assert_eq!(messages(&context["after"]), after);

    let (_, first) = get(
        &server,
        &read,
        &format!("/api/v1/context?id={}&before=0", id_of("alpha line 0")),
    )
    .await;
    assert_eq!(first["before"], json!([]));
    assert_eq!(messages(&first["after"]).len(), 9);

    // Errors: unknown id 404, malformed 400, over the limit 400.
    let (status, error) = get(&server, &read, "/api/v1/context?id=123456789").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("123456789"),
        "{error}"
    );
    for bad in [
        "id=abc",
        "id=-1",
        "",
        &format!("id={id}&before=501"),
        &format!("id={id}&after=x"),
    ] {
        let (status, error) = get(&server, &read, &format!("/api/v1/context?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {error}");
    }

    tokio::task::spawn_blocking(move || server.shutdown())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_carry_byte_offsets_of_matching_words() {
    let dir = tempfile::tempdir().unwrap();
    let read = create(dir.path(), &[Scope::Read]).unwrap();
    let server = recover(&config(dir.path())).unwrap();
    let message = "Timeout: db TIMEOUT, timeouts timeout ünï DB";
    ingest_at(
        &server,
        "agent-1",
        DAY0_MS,
        vec![line("web3", "f1", 0, DAY0_MS, message)],
    )
    .await;

    let found = wait_for_count(&server, &read, "q=timeout", 1).await;
    assert_eq!(
        found["hits"][0]["highlights"],
        json!([[0, 7], [12, 19], [30, 37]])
    );
    // Byte offsets: the last `DB` comes after two 2-byte characters; the
    // words under NOT are not marked.
    let found = wait_for_count(&server, &read, "q=db%20-nothing", 1).await;
    assert_eq!(found["hits"][0]["highlights"], json!([[9, 11], [44, 46]]));
    let found = wait_for_count(&server, &read, "q=%22DB%20timeout%22", 1).await;
    let words: Vec<&str> = found["hits"][0]["highlights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &message[r[0].as_u64().unwrap() as usize..r[1].as_u64().unwrap() as usize])
        .collect();
    assert_eq!(words, ["Timeout", "db", "TIMEOUT", "timeout", "DB"]);
    // A phrase marks each of its words; an empty query marks nothing.
    let found = wait_for_count(&server, &read, "q=", 1).await;
    assert_eq!(found["hits"][0]["highlights"], json!([]));

    tokio::task::spawn_blocking(move || server.shutdown())
        .await
        .unwrap();
}

/// Search counts and pages against an oracle over the ingested lines, on
/// an index of many small segments over two days whose time spans overlap
/// (batches arrive out of time order): ranges that hold whole segments,
/// that cut through them, and none; words, negations, conjunctions,
/// phrases and everything; pages of several sizes followed to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_counts_and_pages_agree_with_an_oracle_over_many_segments() {
    let dir = tempfile::tempdir().unwrap();
    let read = create(dir.path(), &[Scope::Read]).unwrap();
    let _ingest = create(dir.path(), &[Scope::Ingest]).unwrap();
    let server = recover(&config(dir.path())).unwrap();

    const WORDS: [&str; 4] = ["alpha", "beta", "gamma", "delta"];
    let d = DAY0_MS;
    // (time, message) of every line; times are distinct, so the newest
    // first order is fully known.
    let mut lines: Vec<(i64, String)> = Vec::new();
    let mut offset = 0;
    for batch in 0..12i64 {
        // Out of order: batch 5's times come before batch 2's.
        let start = d + ((batch * 7) % 12) * HOUR_MS * 3;
        let mut events = Vec::new();
        for i in 0..40i64 {
            let n = batch * 40 + i;
            let time = start + i * 60_000 + batch;
            let words: Vec<&str> = (0..4)
                .filter(|bit| (n >> bit) & 1 == 1 || (n % 5 == 0 && *bit == 0))
                .map(|bit| WORDS[bit as usize])
                .collect();
            let message = format!("n{n} {}", words.join(" "));
            events.push(line("h1", "app", offset, time, &message));
            offset += message.len() as u64 + 1;
            lines.push((time, message));
        }
        // Received just after its last line was read (times in the future
        // of their receipt would be taken for a wrong clock): the batches
        // land in two day indexes.
        let received = start + 40 * 60_000 + HOUR_MS;
        ingest_at(&server, "agent1", received, events).await;
        // A commit between batches: a segment each.
        let (_, body) = get(&server, &read, "/api/v1/search?q=&limit=0").await;
        let expected = (batch as u64 + 1) * 40;
        if body["count"] != expected {
            wait_for_count(&server, &read, "q=&limit=0", expected).await;
        }
    }
    lines.sort_by_key(|(time, _)| std::cmp::Reverse(*time));

    let has = |message: &str, word: &str| message.split(' ').any(|w| w == word);
    type Matcher<'a> = Box<dyn Fn(&str) -> bool + 'a>;
    let queries: Vec<(&str, Matcher)> = vec![
        ("", Box::new(|_: &str| true)),
        ("alpha", Box::new(move |m: &str| has(m, "alpha"))),
        ("-alpha", Box::new(move |m: &str| !has(m, "alpha"))),
        (
            "beta -gamma",
            Box::new(move |m: &str| has(m, "beta") && !has(m, "gamma")),
        ),
        (
            "alpha delta",
            Box::new(move |m: &str| has(m, "alpha") && has(m, "delta")),
        ),
        (
            "\"alpha beta\"",
            Box::new(|m: &str| m.contains(" alpha beta")),
        ),
        ("nowhere", Box::new(|_: &str| false)),
    ];
    let ranges = [
        (None, None),
        (Some(d - DAY_MS), Some(d + 3 * DAY_MS)),
        // Cuts through segments on both sides.
        (
            Some(d + 4 * HOUR_MS + 30 * 60_000),
            Some(d + 20 * HOUR_MS + 7),
        ),
        (Some(d + 9 * HOUR_MS), None),
    ];
    for (q, matches) in &queries {
        for (from, to) in ranges {
            let expected: Vec<&str> = lines
                .iter()
                .filter(|(time, message)| {
                    from.is_none_or(|from| *time >= from)
                        && to.is_none_or(|to| *time < to)
                        && matches(message)
                })
                .map(|(_, message)| message.as_str())
                .collect();
            let mut params = format!("q={}", urlencoding(q));
            if let Some(from) = from {
                params.push_str(&format!("&from={}", rfc3339(from)));
            }
            if let Some(to) = to {
                params.push_str(&format!("&to={}", rfc3339(to)));
            }
            for limit in [0usize, 1, 7, 100] {
                let mut seen = Vec::new();
                let mut cursor: Option<String> = None;
                loop {
                    let mut path = format!("/api/v1/search?{params}&limit={limit}");
                    if let Some(cursor) = &cursor {
                        path.push_str(&format!("&cursor={cursor}"));
                    }
                    let (status, body) = get(&server, &read, &path).await;
                    assert_eq!(status, StatusCode::OK, "{path}: {body}");
                    assert_eq!(body["count"], expected.len() as u64, "{path}");
                    let hits = messages(&body["hits"]);
                    assert!(hits.len() <= limit, "{path}");
                    seen.extend(hits);
                    match body["cursor"].as_str() {
                        Some(next) if limit > 0 => cursor = Some(next.to_string()),
                        _ => break,
                    }
                }
                let wanted: Vec<&str> = if limit == 0 {
                    Vec::new()
                } else {
                    expected.clone()
                };
                assert_eq!(seen, wanted, "{params} limit {limit}");
            }
        }
    }
}

fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
