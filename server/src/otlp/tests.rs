use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::json;

use super::*;

fn kv(key: &str, value: Any) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn text(s: &str) -> Any {
    Any::StringValue(s.into())
}

fn request(
    resource: Vec<KeyValue>,
    scope: &str,
    records: Vec<LogRecord>,
) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: resource,
                ..Resource::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: scope.into(),
                    ..InstrumentationScope::default()
                }),
                log_records: records,
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

#[test]
fn a_record_maps_resource_scope_and_attributes() {
    let record = LogRecord {
        time_unix_nano: 1_765_000_000_123_456_789,
        observed_time_unix_nano: 1_765_000_001_000_000_000,
        severity_number: 17,
        severity_text: String::new(),
        body: Some(AnyValue {
            value: Some(text("payment declined")),
        }),
        attributes: vec![
            kv("order.id", Any::IntValue(42)),
            kv("deployment.environment", text("canary")),
            kv(
                "tags",
                Any::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(text("a")),
                    }],
                }),
            ),
        ],
        trace_id: vec![0xab; 16],
        span_id: vec![0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08],
        ..LogRecord::default()
    };
    let events = to_events(
        request(
            vec![
                kv("service.name", text("payments")),
                kv("host.name", text("pay-1")),
                kv("deployment.environment", text("prod")),
            ],
            "app.payments",
            vec![record],
        ),
        "peer",
    );
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.message, "payment declined");
    assert_eq!(e.host, "pay-1");
    assert_eq!(e.source, "otlp/app.payments");
    assert_eq!(e.tags.get("app").map(String::as_str), Some("payments"));
    assert_eq!(e.time_ms, Some(1_765_000_000_123));
    assert_eq!(e.severity.as_deref(), Some("error"));
    assert_eq!(e.fields["order.id"], json!(42));
    assert_eq!(
        e.fields["deployment.environment"],
        json!("canary"),
        "the record's attribute wins"
    );
    assert_eq!(e.fields["trace_id"], json!("ab".repeat(16)));
    assert_eq!(e.fields["span_id"], json!("0102030405060708"));
    assert_eq!(e.fields["tags"], json!(["a"]));
    assert!(!e.fields.contains_key("service.name") && !e.fields.contains_key("host.name"));
}

#[test]
fn bodies_times_and_severities_that_are_missing_or_structured() {
    let records = vec![
        LogRecord {
            observed_time_unix_nano: 1_765_000_000_000_000_000,
            severity_text: "WARN".into(),
            severity_number: 9,
            body: Some(AnyValue {
                value: Some(Any::KvlistValue(KeyValueList {
                    values: vec![
                        kv("msg", text("structured")),
                        kv("n", Any::DoubleValue(1.5)),
                    ],
                })),
            }),
            ..LogRecord::default()
        },
        LogRecord {
            body: Some(AnyValue {
                value: Some(Any::IntValue(7)),
            }),
            severity_number: 30,
            event_name: "cache.miss".into(),
            trace_id: vec![0; 16],
            ..LogRecord::default()
        },
    ];
    let events = to_events(request(vec![], "", records), "peer");
    assert_eq!(events[0].message, "{\"msg\":\"structured\",\"n\":1.5}");
    assert_eq!(events[0].format.as_deref(), Some("json"));
    assert_eq!(events[0].time_ms, Some(1_765_000_000_000));
    assert_eq!(
        events[0].severity.as_deref(),
        Some("WARN"),
        "the text wins over the number"
    );
    assert_eq!(events[0].host, "peer");
    assert_eq!(events[0].source, "otlp");
    assert!(events[0].tags.is_empty());
    assert_eq!(events[1].message, "7");
    assert_eq!(events[1].time_ms, None);
    assert_eq!(events[1].severity, None);
    assert_eq!(events[1].fields["event_name"], json!("cache.miss"));
    assert!(
        !events[1].fields.contains_key("trace_id"),
        "an all-zero id is no id"
    );
}

#[test]
fn severity_numbers_follow_the_ranges() {
    let words: Vec<_> = [0, 1, 4, 5, 9, 13, 17, 21, 24, 25]
        .map(severity_of_number)
        .into();
    assert_eq!(
        words,
        [
            None,
            Some("trace"),
            Some("trace"),
            Some("debug"),
            Some("info"),
            Some("warn"),
            Some("error"),
            Some("fatal"),
            Some("fatal"),
            None
        ]
    );
}
