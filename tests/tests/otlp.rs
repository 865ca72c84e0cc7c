//! OTLP/HTTP logs end to end: the real OpenTelemetry Python SDK
//! (`logging` → LoggingHandler → batch processor → OTLP/HTTP protobuf
//! exporter with gzip) and curl posting a hand-checked OTLP/JSON body,
//! the server killed with SIGKILL right after curl's answer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use loghound_tests::http::{hit_message, search, search_all};
use loghound_tests::{assert_count_stays, temp_dir, token, wait_for_count, Server, ServerOptions};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);

/// A server with `[otlp]` on; an ingest and a read token.
fn server_with_otlp(root: &Path) -> (Server, String, String) {
    let config = root.join("server.toml");
    std::fs::write(&config, "[otlp]\n").expect("write server.toml");
    let data = root.join("data");
    let server = Server::start_with(
        &data,
        ServerOptions {
            config: Some(config),
            ..ServerOptions::default()
        },
    );
    let ingest = token(&data, &["ingest"]);
    let read = token(&data, &["read"]);
    (server, ingest, read)
}

/// `curl` with `args`: the status and the body.
fn curl(root: &Path, args: &[&str]) -> (u16, Vec<u8>) {
    let body = root.join("curl-body");
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-o"])
        .arg(&body)
        .args(["-w", "%{http_code}"])
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run curl: {error}"));
    assert!(
        output.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (status, std::fs::read(&body).unwrap_or_default())
}

fn sdk_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("otlp/send.py")
}

#[test]
fn opentelemetry_python_sdk_exports_logs_with_resource_and_trace_context() {
    let root = temp_dir();
    let (server, ingest, read) = server_with_otlp(root.path());
    let url = server.url();
    const COUNT: u64 = 1500;
    let output = Command::new("python3")
        .arg(sdk_script())
        .args([url.as_str(), ingest.as_str(), &COUNT.to_string()])
        .output()
        .unwrap_or_else(|error| panic!("cannot run python3: {error}"));
    assert!(
        output.status.success(),
        "the OpenTelemetry SDK script failed (are opentelemetry-sdk and \
         opentelemetry-exporter-otlp-proto-http installed? scripts/test.sh installs them):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "send.py printed no JSON ({error}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let results = report["results"].as_array().cloned().unwrap_or_default();
    assert!(!results.is_empty(), "{report}");
    assert!(
        results.iter().all(|r| r == "SUCCESS"),
        "every export succeeded: {report}"
    );

    wait_for_count(&url, &read, "otel-rec", COUNT, DEADLINE);
    let expect = |q: &str, want: u64| {
        let (count, _) = search(&url, &read, q);
        assert_eq!(count, want, "{q}");
    };
    let numbers = 0..COUNT;
    expect("otel-rec app:billing host:otel-host-1", COUNT);
    expect(
        "otel-rec severity:error",
        numbers.clone().filter(|n| n % 10 == 0).count() as u64,
    );
    expect(
        "otel-rec tenant:t3",
        numbers.clone().filter(|n| n % 4 == 3).count() as u64,
    );
    let trace_id = report["trace_id"].as_str().unwrap_or("");
    assert_eq!(trace_id.len(), 32, "{report}");
    expect(&format!("trace_id:{trace_id}"), COUNT);
    expect("otel-outside-span severity:warning", 1);

    let hits = search_all(&url, &read, "invoice.id:777");
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(hit_message(hit), "otel-rec 777 invoice sent", "{hit}");
    assert_eq!(hit["source"], "otlp/billing.invoices", "{hit}");
    assert_eq!(hit["severity"], "info", "{hit}");
    assert_eq!(hit["fields"]["span_id"], report["span_id"], "{hit}");
    assert_eq!(hit["fields"]["service.version"], "2.4.1", "{hit}");
    assert_eq!(hit["fields"]["deployment.environment"], "staging", "{hit}");
    assert!(
        hit["fields"].get("host.name").is_none(),
        "host.name became the host: {hit}"
    );
    let numbers_seen: std::collections::BTreeSet<u64> = search_all(&url, &read, "otel-rec")
        .iter()
        .filter_map(|h| hit_message(h).split(' ').nth(1)?.parse().ok())
        .collect();
    assert_eq!(numbers_seen.len() as u64, COUNT, "every record once");
}

/// An OTLP/JSON request as the specification writes it: ids in hex,
/// 64-bit integers as strings, enums as numbers.
const JSON_BODY: &str = r#"{
  "resourceLogs": [{
    "resource": {"attributes": [
      {"key": "service.name", "value": {"stringValue": "edge-proxy"}},
      {"key": "k8s.pod.name", "value": {"stringValue": "edge-7f9c"}}
    ]},
    "scopeLogs": [{
      "scope": {"name": "envoy.access"},
      "logRecords": [
        {
          "timeUnixNano": "1700000000123000000",
          "severityNumber": 13,
          "body": {"stringValue": "otlp-json upstream slow"},
          "attributes": [
            {"key": "http.status_code", "value": {"intValue": "504"}},
            {"key": "retry", "value": {"boolValue": true}},
            {"key": "peer", "value": {"kvlistValue": {"values": [
              {"key": "port", "value": {"intValue": 8443}}
            ]}}}
          ],
          "traceId": "5b8efff798038103d269b633813fc60c",
          "spanId": "eee19b7ec3c1b174"
        },
        {
          "observedTimeUnixNano": "1700000001000000000",
          "severityText": "DEBUG",
          "body": {"kvlistValue": {"values": [
            {"key": "msg", "value": {"stringValue": "otlp-json structured"}},
            {"key": "bytes", "value": {"doubleValue": 12.5}}
          ]}}
        }
      ]
    }]
  }]
}"#;

#[test]
fn curl_json_export_is_durable_at_its_answer_and_bad_input_is_precise() {
    let root = temp_dir();
    let (mut server, ingest, read) = server_with_otlp(root.path());
    let url = server.url();
    let endpoint = format!("{url}/v1/logs");
    let bearer = format!("Authorization: Bearer {ingest}");
    let json = ["-H", "Content-Type: application/json"];

    let (status, body) = curl(
        root.path(),
        &[
            &json[..],
            &["-H", &bearer, "--data-binary", JSON_BODY, &endpoint],
        ]
        .concat(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, b"{}");

    // Answered means durable: a SIGKILL right after loses neither record.
    server.kill9();
    server.restart();
    wait_for_count(&url, &read, "otlp-json", 2, DEADLINE);
    let hits = search_all(&url, &read, "\"upstream slow\"");
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(hit["timestamp"], "2023-11-14T22:13:20.123Z", "{hit}");
    assert_eq!(hit["severity"], "warning", "{hit}");
    assert_eq!(hit["app"], "edge-proxy", "{hit}");
    assert_eq!(hit["host"], "127.0.0.1", "the sender's address: {hit}");
    assert_eq!(hit["source"], "otlp/envoy.access", "{hit}");
    assert_eq!(hit["fields"]["http.status_code"], 504, "{hit}");
    assert_eq!(hit["fields"]["retry"], true, "{hit}");
    assert_eq!(hit["fields"]["peer.port"], 8443, "{hit}");
    assert_eq!(hit["fields"]["k8s.pod.name"], "edge-7f9c", "{hit}");
    assert_eq!(
        hit["fields"]["trace_id"], "5b8efff798038103d269b633813fc60c",
        "{hit}"
    );
    let (count, _) = search(
        &url,
        &read,
        "http.status_code:>=500 trace_id:5b8efff798038103d269b633813fc60c",
    );
    assert_eq!(count, 1);
    let (count, hits) = search(&url, &read, "\"otlp-json structured\"");
    assert_eq!(count, 1);
    assert_eq!(hits[0]["severity"], "debug", "{}", hits[0]);
    assert_eq!(
        hits[0]["timestamp"], "2023-11-14T22:13:21.000Z",
        "{}",
        hits[0]
    );
    assert_eq!(hits[0]["fields"]["bytes"], 12.5, "{}", hits[0]);

    // Bad requests: the status OTLP exporters act on, a google.rpc.Status
    // body naming the reason, nothing stored.
    let one = JSON_BODY.replace("otlp-json upstream slow", "otlp-refused");
    let refused = |args: &[&str]| {
        let (status, body) = curl(root.path(), args);
        let status_body: Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "{status}: not a JSON Status ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        (status, status_body)
    };
    let (status, body) = refused(&[&json[..], &["--data-binary", &one, &endpoint]].concat());
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], 16, "{body}");
    let read_bearer = format!("Authorization: Bearer {read}");
    let (status, body) = refused(
        &[
            &json[..],
            &["-H", &read_bearer, "--data-binary", &one, &endpoint],
        ]
        .concat(),
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = refused(&[
        "-H",
        "Content-Type: text/plain",
        "-H",
        &bearer,
        "--data-binary",
        &one,
        &endpoint,
    ]);
    assert_eq!(status, 415, "{body}");
    let broken = &one[..one.len() / 2];
    let (status, body) = refused(
        &[
            &json[..],
            &["-H", &bearer, "--data-binary", broken, &endpoint],
        ]
        .concat(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("invalid OTLP JSON"),
        "{body}"
    );
    let (status, body) = curl(
        root.path(),
        &[
            "-H",
            "Content-Type: application/x-protobuf",
            "-H",
            &bearer,
            "--data-binary",
            "\u{7}\u{7}\u{7}not protobuf",
            &endpoint,
        ],
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("invalid OTLP protobuf"),
        "a protobuf Status whose message names the error: {:?}",
        String::from_utf8_lossy(&body)
    );
    assert_count_stays(&url, &read, "otlp-refused", 0, Duration::from_millis(1500));
    let (count, _) = search(&url, &read, "otlp-json");
    assert_eq!(count, 2, "nothing more after the refused requests");
}
