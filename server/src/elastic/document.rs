//! One Elasticsearch document as an event.
//!
//! The document is flattened to dotted paths, as a JSON line's fields are
//! ([`crate::parse::json`]). Then, by the [`Mapping`]'s lists:
//! - the message field becomes the line (text as it is, any other value
//!   as its JSON); a document with none is kept whole as its JSON text,
//!   parsed as a JSON line;
//! - the time field becomes the event's time when it reads as one;
//! - the host field becomes the host (else `default_host`);
//! - the app field becomes the `app` label;
//! - the severity field is the severity when the line states none, and
//!   stays a field, as Kibana users filter on it.
//!
//! The message, time, host and app fields taken are not kept among the
//! fields; every other member is. The source is `elasticsearch/<index>`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Mapping;
use crate::ingest::InEvent;
use crate::parse::json::{flattened, timestamp_of};

/// The event of `document`, sent to `index` (when the request names one).
pub fn to_event(
    document: Map<String, Value>,
    index: Option<&str>,
    default_host: &str,
    mapping: &Mapping,
    received_at_ms: i64,
) -> InEvent {
    let has_message = mapping
        .message_fields
        .iter()
        .any(|path| present(&document, path));
    let (message, mut fields, format) = if has_message {
        let mut fields = flattened(document);
        let message = take_first(&mut fields, &mapping.message_fields, |_| true)
            .map(|value| match value {
                Value::String(text) => text,
                other => other.to_string(),
            })
            .unwrap_or_default();
        (message, fields, None)
    } else {
        let text = Value::Object(document).to_string();
        let fields = match serde_json::from_str(&text) {
            Ok(Value::Object(object)) => flattened(object),
            _ => Map::new(),
        };
        (text, fields, Some("json".to_string()))
    };

    let mut time_ms = None;
    if let Some(name) = mapping
        .time_fields
        .iter()
        .find(|name| fields.contains_key(name.as_str()))
    {
        time_ms = fields
            .get(name.as_str())
            .and_then(|value| timestamp_of(value, received_at_ms));
        if time_ms.is_some() {
            fields.remove(name.as_str());
        }
    }
    let host = take_first(&mut fields, &mapping.host_fields, non_empty_text)
        .and_then(into_text)
        .unwrap_or_else(|| default_host.to_string());
    let mut tags = BTreeMap::new();
    if let Some(app) =
        take_first(&mut fields, &mapping.app_fields, non_empty_text).and_then(into_text)
    {
        tags.insert("app".to_string(), app);
    }
    let severity = mapping.severity_fields.iter().find_map(|name| {
        fields
            .get(name.as_str())
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    if format.is_some() {
        // The line is the whole document: its fields come from parsing it.
        fields.clear();
    }
    InEvent {
        stream: None,
        host,
        source: match index {
            Some(index) => format!("elasticsearch/{index}"),
            None => "elasticsearch".to_string(),
        },
        message,
        read_at_ms: None,
        tags,
        truncated: false,
        invalid_utf8: false,
        format,
        time_ms,
        severity,
        fields: fields.into_iter().collect(),
    }
}

/// Whether `path` names a member of `object`, as one dotted key or
/// through nested objects (`host.name` in `{"host": {"name": …}}`).
fn present(object: &Map<String, Value>, path: &str) -> bool {
    if object.get(path).is_some_and(|v| !v.is_null()) {
        return true;
    }
    path.match_indices('.').any(|(at, _)| {
        matches!(object.get(&path[..at]), Some(Value::Object(inner)) if present(inner, &path[at + 1..]))
    })
}

/// Removes and returns the first of `names` whose value `accept`s.
fn take_first(
    fields: &mut Map<String, Value>,
    names: &[String],
    accept: impl Fn(&Value) -> bool,
) -> Option<Value> {
    let name = names
        .iter()
        .find(|name| fields.get(name.as_str()).is_some_and(&accept))?;
    fields.remove(name.as_str())
}

fn non_empty_text(value: &Value) -> bool {
    value.as_str().is_some_and(|text| !text.trim().is_empty())
}

fn into_text(value: Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_765_000_000_000;

    fn event(document: Value, index: Option<&str>) -> InEvent {
        let Value::Object(document) = document else {
            panic!("test documents are objects");
        };
        to_event(document, index, "sender", &Mapping::default(), NOW)
    }

    #[test]
    fn ecs_document_maps_to_the_event_and_keeps_the_rest() {
        let e = event(
            json!({
                "@timestamp": "2025-12-06T05:46:40.123Z",
                "message": "GET /health 200",
                "host": {"name": "web-1", "os": {"family": "debian"}},
                "service": {"name": "api"},
                "log": {"level": "warn"},
                "http": {"response": {"status_code": 200}},
            }),
            Some("logs-2025"),
        );
        assert_eq!(e.message, "GET /health 200");
        assert_eq!(e.host, "web-1");
        assert_eq!(e.source, "elasticsearch/logs-2025");
        assert_eq!(e.tags.get("app").map(String::as_str), Some("api"));
        assert_eq!(e.time_ms, Some(NOW + 123));
        assert_eq!(e.severity.as_deref(), Some("warn"));
        assert_eq!(e.fields.get("http.response.status_code"), Some(&json!(200)));
        assert_eq!(e.fields.get("host.os.family"), Some(&json!("debian")));
        assert_eq!(e.fields.get("log.level"), Some(&json!("warn")));
        for taken in ["message", "host.name", "service.name", "@timestamp"] {
            assert!(!e.fields.contains_key(taken), "{taken} is the event's own");
        }
        assert_eq!(e.format, None);
    }

    #[test]
    fn fluent_bit_record_uses_log_and_dotted_keys() {
        let e = event(
            json!({"log": "{\"level\":\"error\",\"msg\":\"boom\"}", "kubernetes.container_name": "worker", "stream": "stderr"}),
            None,
        );
        assert_eq!(e.message, "{\"level\":\"error\",\"msg\":\"boom\"}");
        assert_eq!(e.tags.get("app").map(String::as_str), Some("worker"));
        assert_eq!(e.host, "sender");
        assert_eq!(e.source, "elasticsearch");
        assert_eq!(e.fields.get("stream"), Some(&json!("stderr")));
        assert_eq!(e.fields.len(), 1);
    }

    #[test]
    fn a_document_without_a_message_is_kept_whole() {
        let e = event(
            json!({"user": "ana", "action": {"kind": "login"}, "time": 1_700_000_000}),
            Some("audit"),
        );
        let back: Value = serde_json::from_str(&e.message).unwrap_or(Value::Null);
        assert_eq!(
            back,
            json!({"user": "ana", "action": {"kind": "login"}, "time": 1_700_000_000})
        );
        assert_eq!(e.format.as_deref(), Some("json"));
        assert_eq!(e.time_ms, Some(1_700_000_000_000));
        assert!(
            e.fields.is_empty(),
            "parsed from the line instead: {:?}",
            e.fields
        );
    }

    #[test]
    fn values_that_do_not_fit_stay_fields() {
        let e = event(
            json!({"message": {"text": "nested"}, "msg": 5, "@timestamp": "not a time", "host": 42, "hostname": ""}),
            None,
        );
        // `message` flattened to `message.text`; `msg` is next in the list.
        assert_eq!(e.message, "5");
        assert_eq!(e.fields.get("message.text"), Some(&json!("nested")));
        assert_eq!(e.time_ms, None);
        assert_eq!(e.fields.get("@timestamp"), Some(&json!("not a time")));
        assert_eq!(e.host, "sender");
        assert_eq!(e.fields.get("host"), Some(&json!(42)));
    }

    #[test]
    fn presence_follows_dotted_paths_through_objects() {
        let Value::Object(doc) = json!({"a": {"b.c": {"d": 1}}, "x.y": null}) else {
            unreachable!()
        };
        assert!(present(&doc, "a.b.c.d"));
        assert!(present(&doc, "a"));
        assert!(!present(&doc, "a.b"));
        assert!(!present(&doc, "x.y"));
    }
}
