//! OpenTelemetry logs (`[otlp]`): OTLP/HTTP `POST /v1/logs`, protobuf or
//! JSON, from the OpenTelemetry SDKs' exporters and the Collector's
//! `otlphttp` exporter, as the input `input:otlp`. The messages are the
//! `opentelemetry-proto` crate's.
//!
//! A log record becomes an event:
//! - the line is the body: text as it is; a map as its JSON text, parsed
//!   as a JSON line; any other value as its JSON;
//! - the time is the record's, else when the sender observed it;
//! - the severity is the record's text, else its number's range (1–4
//!   trace … 21–24 fatal);
//! - the resource's `host.name` is the host (else `default_host`, else
//!   the sender's address), its `service.name` the `app` label;
//! - the source is `otlp/<instrumentation scope>` (`otlp` without one);
//! - fields: the resource's other attributes, then the record's own
//!   (which win on a clash), flattened to dotted paths; `trace_id` and
//!   `span_id` as hex; `event_name` when set.
//!
//! An answer of 200 means every record of the request is durable; a
//! refused request (4xx, or 429/503 to retry) stored nothing. OTLP has
//! no ids to tell a resent request by, so one resent after its answer was
//! lost is stored twice.

use serde::Deserialize;
use serde_json::{Map, Number, Value};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use crate::ingest::InEvent;
use crate::parse::json::flattened;

/// `[otlp]`: turns on `POST /v1/logs`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// Host of records whose resource names none (default: the sender's
    /// address).
    #[serde(default)]
    pub default_host: Option<String>,
}

impl OtlpConfig {
    /// Checks what the types cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self
            .default_host
            .as_deref()
            .is_some_and(|h| h.trim().is_empty())
        {
            return Err("key `otlp.default_host`: must not be empty (leave it out instead)".into());
        }
        Ok(())
    }
}

/// The number of log records in `request`.
pub fn record_count(request: &ExportLogsServiceRequest) -> usize {
    request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum()
}

/// Every record of `request` as an event, in order.
pub fn to_events(request: ExportLogsServiceRequest, default_host: &str) -> Vec<InEvent> {
    let mut events = Vec::with_capacity(record_count(&request));
    for resource_logs in request.resource_logs {
        let mut resource = attributes(
            resource_logs
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default(),
        );
        let host = take_text(&mut resource, "host.name").unwrap_or_else(|| default_host.into());
        let app = take_text(&mut resource, "service.name");
        for scope_logs in resource_logs.scope_logs {
            let scope = scope_logs.scope.map(|s| s.name).unwrap_or_default();
            let source = if scope.is_empty() {
                "otlp".to_string()
            } else {
                format!("otlp/{scope}")
            };
            for record in scope_logs.log_records {
                events.push(to_event(record, &resource, &host, app.as_deref(), &source));
            }
        }
    }
    events
}

fn to_event(
    record: LogRecord,
    resource: &Map<String, Value>,
    host: &str,
    app: Option<&str>,
    source: &str,
) -> InEvent {
    let mut fields = resource.clone();
    fields.extend(attributes(record.attributes));
    for (name, id) in [("trace_id", &record.trace_id), ("span_id", &record.span_id)] {
        if id.iter().any(|&b| b != 0) {
            fields.insert(name.into(), Value::String(hex::encode(id)));
        }
    }
    if !record.event_name.is_empty() {
        fields.insert("event_name".into(), Value::String(record.event_name));
    }
    let (message, format) = match record.body.and_then(|b| b.value) {
        Some(Any::StringValue(text)) => (text, None),
        Some(Any::KvlistValue(list)) => (
            Value::Object(attributes(list.values)).to_string(),
            Some("json".to_string()),
        ),
        Some(other) => (any_value(other).to_string(), None),
        None => (String::new(), None),
    };
    let time_ns = match record.time_unix_nano {
        0 => record.observed_time_unix_nano,
        t => t,
    };
    let severity = if record.severity_text.trim().is_empty() {
        severity_of_number(record.severity_number).map(str::to_string)
    } else {
        Some(record.severity_text)
    };
    let mut tags = std::collections::BTreeMap::new();
    if let Some(app) = app {
        tags.insert("app".to_string(), app.to_string());
    }
    InEvent {
        host: host.to_string(),
        source: source.to_string(),
        message,
        tags,
        format,
        time_ms: (time_ns > 0).then(|| i64::try_from(time_ns / 1_000_000).unwrap_or(i64::MAX)),
        severity,
        fields: flattened(fields).into_iter().collect(),
        ..InEvent::default()
    }
}

/// OTLP's severity number ranges as level words.
fn severity_of_number(number: i32) -> Option<&'static str> {
    Some(match number {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => return None,
    })
}

fn take_text(map: &mut Map<String, Value>, key: &str) -> Option<String> {
    match map.get(key) {
        Some(Value::String(text)) if !text.trim().is_empty() => match map.remove(key) {
            Some(Value::String(text)) => Some(text),
            _ => None,
        },
        _ => None,
    }
}

/// Key-values as a JSON object (a later key wins); empty values dropped.
fn attributes(list: Vec<KeyValue>) -> Map<String, Value> {
    list.into_iter()
        .filter_map(|kv| {
            let value = kv.value.and_then(|v| v.value).map(any_value)?;
            Some((kv.key, value))
        })
        .collect()
}

fn any_value(value: Any) -> Value {
    match value {
        Any::StringValue(text) => Value::String(text),
        Any::BoolValue(b) => Value::Bool(b),
        Any::IntValue(i) => Value::Number(i.into()),
        Any::DoubleValue(d) => {
            Number::from_f64(d).map_or_else(|| Value::String(d.to_string()), Value::Number)
        }
        Any::ArrayValue(array) => Value::Array(
            array
                .values
                .into_iter()
                .filter_map(|v: AnyValue| v.value.map(any_value))
                .collect(),
        ),
        Any::KvlistValue(list) => Value::Object(attributes(list.values)),
        // An index into a profile's string table: logs have none.
        Any::StringValueStrindex(_) => Value::Null,
        Any::BytesValue(bytes) => {
            use base64::Engine as _;
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
    }
}

#[cfg(test)]
mod tests;
