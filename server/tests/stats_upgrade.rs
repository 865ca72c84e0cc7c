//! Day indexes written by earlier releases: before `host`, `source`, `app`
//! and `severity` had fast columns, while `id` still had terms, fields had
//! norms and lines were stored in lz4 blocks. The server opens them as
//! they are: stats read the missing columns from stored documents, and
//! search and context work across old and new days without a re-index.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use loghound_server::config::ServerConfig;
use loghound_server::http::app;
use loghound_server::index::schema::register_analyzers;
use loghound_server::serve::{recover, Recovered};
use loghound_server::tokens::{create, Scope};
use loghound_shared::{encode_batch, AgentId, ByteOffset, Event, FileId};
use serde_json::{json, Value};
use tantivy::schema::OwnedValue;
use tantivy::schema::{
    DateOptions, DateTimePrecision, IndexRecordOption, JsonObjectOptions, Schema,
    TextFieldIndexing, TextOptions, FAST, INDEXED, STORED,
};
use tantivy::{doc, DateTime, Index};
use tower::ServiceExt;

/// 2025-11-20T00:00:00Z.
const DAY0_MS: i64 = 1_763_596_800_000;
const DAY_MS: i64 = 86_400_000;

/// The day-index schema of releases before stats: the same fields, with
/// no fast column on the keyword fields.
fn schema_before_stats() -> Schema {
    let mut builder = Schema::builder();
    let fast_date = DateOptions::default()
        .set_fast()
        .set_precision(DateTimePrecision::Milliseconds);
    let keyword = TextOptions::default().set_stored().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("loghound_keyword")
            .set_index_option(IndexRecordOption::Basic),
    );
    let text = TextOptions::default().set_stored().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("loghound_text")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    builder.add_u64_field("id", INDEXED | FAST);
    builder.add_date_field("timestamp", fast_date.clone());
    builder.add_date_field("received_at", fast_date.set_stored());
    for name in ["host", "source", "app", "severity"] {
        builder.add_text_field(name, keyword.clone());
    }
    builder.add_json_field(
        "fields",
        JsonObjectOptions::default()
            .set_stored()
            .set_fast(None)
            .set_expand_dots_enabled()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("loghound_text")
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            ),
    );
    builder.add_text_field("message", text);
    builder.add_json_field(
        "tags",
        JsonObjectOptions::default()
            .set_stored()
            .set_indexing_options(TextFieldIndexing::default().set_tokenizer("loghound_keyword")),
    );
    builder.add_text_field("agent", TextOptions::default().set_stored());
    builder.add_text_field("file_id", keyword);
    builder.add_u64_field("offset", FAST | STORED);
    builder.add_bool_field("truncated", INDEXED | STORED);
    builder.add_bool_field("invalid_utf8", INDEXED | STORED);
    builder.build()
}

/// Writes `hosts` (one document each) into an old-schema index of DAY0.
fn write_old_day(data_dir: &std::path::Path, hosts: &[&str]) {
    let dir = data_dir.join("indexes").join("2025-11-20");
    std::fs::create_dir_all(&dir).unwrap();
    let schema = schema_before_stats();
    let index = Index::create_in_dir(&dir, schema.clone()).unwrap();
    register_analyzers(index.tokenizers());
    let field = |name| schema.get_field(name).unwrap();
    let mut writer = index.writer_with_num_threads(1, 16 << 20).unwrap();
    for (i, host) in hosts.iter().enumerate() {
        let time = DateTime::from_timestamp_millis(DAY0_MS + i as i64 * 1000);
        let mut document = doc!(
                field("id") => i as u64,
                field("timestamp") => time,
                field("received_at") => time,
                field("host") => *host,
                field("source") => "/var/log/old.log",
                field("severity") => "error",
                field("message") => format!("old line {i} with error"),
                field("agent") => "old-agent",
                field("file_id") => "old-file",
                field("offset") => i as u64 * 10,
        );
        // Old days store the parsed fields.
        if i == 1 {
            document.add_object(
                field("fields"),
                BTreeMap::from([("user".to_string(), OwnedValue::Str("ann".into()))]),
            );
        }
        writer.add_document(document).unwrap();
    }
    writer.commit().unwrap();
}

fn line(host: &str, offset: u64, time_ms: i64) -> Event {
    let message = format!("new line {offset} with error");
    Event {
        file_id: FileId::new("new-file").unwrap(),
        offset: ByteOffset(offset),
        end_offset: ByteOffset(offset + message.len() as u64 + 1),
        host: host.into(),
        source: "/var/log/new.log".into(),
        message,
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

/// A server on `data_dir` and a `read` token.
fn start(data_dir: &std::path::Path) -> (Recovered, String) {
    let read = create(data_dir, &[Scope::Read]).unwrap();
    let config = ServerConfig {
        data_dir: data_dir.to_path_buf(),
        commit_interval_ms: 100,
        index_writer_heap_bytes: 16 << 20,
        index_writer_threads: 1,
        ..ServerConfig::default()
    };
    (recover(&config).unwrap(), read)
}

/// Ingests `events` as received the day after DAY0, into a new day index.
async fn ingest_next_day(server: &Recovered, events: Vec<Event>) {
    let backend = server.state.ingest.clone();
    tokio::task::spawn_blocking(move || {
        let body = encode_batch(&events, 3).unwrap();
        let agent = AgentId::new("new-agent").unwrap();
        backend.ingest(&agent, DAY0_MS + DAY_MS, &body).unwrap()
    })
    .await
    .unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_span_days_written_before_and_after_keyword_columns() {
    let dir = tempfile::tempdir().unwrap();
    write_old_day(dir.path(), &["Web-1", "Web-1", "db-2"]);
    let (server, read) = start(dir.path());

    // New lines a day later land in a new day index, with fast columns.
    let events: Vec<Event> = ["Web-1", "cache-3", "cache-3", "cache-3"]
        .iter()
        .enumerate()
        .map(|(i, host)| line(host, i as u64 * 100, DAY0_MS + DAY_MS + i as i64))
        .collect();
    ingest_next_day(&server, events).await;

    let range = "from=2025-11-19T00:00:00Z&to=2025-11-23T00:00:00Z";
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (status, body) = get(
            &server,
            &read,
            &format!("/api/v1/stats?q=error%20%7C%20stats%20count()%20by%20(host)&{range}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["count"] == 7 || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        body["rows"],
        json!([["Web-1", 3], ["cache-3", 3], ["db-2", 1]]),
        "{body}"
    );
    // file_id has no fast column anywhere: stored documents on both days.
    let (status, body) = get(
        &server,
        &read,
        &format!("/api/v1/stats?q=%7C%20top%205%20by%20file_id,%20source&{range}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["rows"],
        json!([
            ["new-file", "/var/log/new.log", 4],
            ["old-file", "/var/log/old.log", 3]
        ]),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_context_span_days_of_both_layouts() {
    let dir = tempfile::tempdir().unwrap();
    write_old_day(dir.path(), &["old-1", "old-1", "old-1"]);
    let (server, read) = start(dir.path());
    let mut events: Vec<Event> = (0..4)
        .map(|i| line("new-1", i * 100, DAY0_MS + DAY_MS + i as i64))
        .collect();
    // New days derive parsed fields from the line, and store the sender's.
    let mut json = line("new-1", 400, DAY0_MS + DAY_MS + 4);
    json.message = r#"{"msg":"json request","user":"bo","n":3}"#.into();
    json.end_offset = ByteOffset(400 + json.message.len() as u64 + 1);
    json.fields = BTreeMap::from([("unit".to_string(), json!("web.service"))]);
    events.push(json);
    ingest_next_day(&server, events).await;

    let range = "from=2025-11-19T00:00:00Z&to=2025-11-23T00:00:00Z";
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (status, body) = get(&server, &read, &format!("/api/v1/search?q=line&{range}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["count"] == 7 || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let hits = body["hits"].as_array().cloned().unwrap_or_default();
    let messages: Vec<&str> = hits.iter().filter_map(|h| h["message"].as_str()).collect();
    assert_eq!(
        messages,
        [
            "new line 300 with error",
            "new line 200 with error",
            "new line 100 with error",
            "new line 0 with error",
            "old line 2 with error",
            "old line 1 with error",
            "old line 0 with error",
        ],
        "{body}"
    );

    for (query, expected) in [
        ("user:ann", json!({"user": "ann"})),
        (
            "user:bo",
            json!({"msg": "json request", "user": "bo", "n": 3, "unit": "web.service"}),
        ),
        (
            "unit:web.service",
            json!({"msg": "json request", "user": "bo", "n": 3, "unit": "web.service"}),
        ),
    ] {
        let (status, found) =
            get(&server, &read, &format!("/api/v1/search?q={query}&{range}")).await;
        assert_eq!(status, StatusCode::OK, "{found}");
        assert_eq!(found["count"], 1, "{query}: {found}");
        assert_eq!(found["hits"][0]["fields"], expected, "{query}: {found}");
    }

    // Context finds an event by its id on either layout; before is
    // earlier in the file.
    for (hit, before, after) in [
        (1, "new line 100 with error", "new line 300 with error"),
        (5, "old line 0 with error", "old line 2 with error"),
    ] {
        let id = hits[hit]["id"].as_str().unwrap();
        let (status, context) = get(
            &server,
            &read,
            &format!("/api/v1/context?id={id}&before=1&after=1"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{context}");
        assert_eq!(
            context["event"]["message"], hits[hit]["message"],
            "{context}"
        );
        assert_eq!(context["before"][0]["message"], before, "{context}");
        assert_eq!(context["after"][0]["message"], after, "{context}");
    }
    let (status, missing) = get(&server, &read, "/api/v1/context?id=999999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");

    // The new day has the new layout: zstd blocks and no id terms.
    let new_day = Index::open_in_dir(dir.path().join("indexes").join("2025-11-21")).unwrap();
    assert!(
        matches!(
            new_day.settings().docstore_compression,
            tantivy::store::Compressor::Zstd(_)
        ),
        "{:?}",
        new_day.settings()
    );
    let id = new_day.schema().get_field("id").unwrap();
    assert!(!new_day.schema().get_field_entry(id).is_indexed());
}
