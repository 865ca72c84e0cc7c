//! One Elasticsearch document as an event.
//!
//! The event's own parts are taken out of the document first, by the
//! [`ElasticConfig`] field lists, each the first field present whose
//! value fits:
//! - the message field becomes the line (a text as it is, less one
//!   trailing newline; a number or boolean as its JSON); a document with
//!   none is kept whole as its JSON text, parsed as a JSON line;
//! - the time field becomes the event's time;
//! - the host field becomes the host (else `default_host`);
//! - the app field becomes the `app` label;
//! - the severity field is the severity when the line states none, and
//!   stays a field, as Kibana users filter on it.
//!
//! What remains is flattened to dotted paths, as a JSON line's fields are
//! ([`crate::parse::json`], with its bound on their number). The source
//! is `elasticsearch/<index>`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::ElasticConfig;
use crate::ingest::InEvent;
use crate::parse::json::{flattened, severity_of, timestamp_of};

/// The event of `document`, sent to `index` (when the request names one).
pub fn to_event(
    mut document: Map<String, Value>,
    index: Option<&str>,
    default_host: &str,
    config: &ElasticConfig,
    received_at_ms: i64,
) -> InEvent {
    let message = take_first(&mut document, &config.message_fields, &|value| {
        matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
    });
    let (message, format) = match message {
        Some(Value::String(text)) => (without_newline(text), None),
        Some(other) => (other.to_string(), None),
        None => (
            Value::Object(document.clone()).to_string(),
            Some("json".to_string()),
        ),
    };
    let time_ms = take_first(&mut document, &config.time_fields, &|value| {
        timestamp_of(value, received_at_ms).is_some()
    })
    .and_then(|value| timestamp_of(&value, received_at_ms));
    let host = take_first(&mut document, &config.host_fields, &non_empty_text)
        .and_then(into_text)
        .unwrap_or_else(|| default_host.to_string());
    let mut tags = BTreeMap::new();
    if let Some(app) =
        take_first(&mut document, &config.app_fields, &non_empty_text).and_then(into_text)
    {
        tags.insert("app".to_string(), app);
    }
    let severity = config.severity_fields.iter().find_map(|path| {
        let value = get_path(&document, path)?;
        match value {
            Value::String(text) if severity_of(value).is_some() => Some(text.clone()),
            _ => severity_of(value).map(|s| s.name().to_string()),
        }
    });
    let fields = match format {
        // The line is the whole document: its fields come from parsing it.
        Some(_) => BTreeMap::new(),
        None => flattened(document).into_iter().collect(),
    };
    InEvent {
        host,
        source: match index {
            Some(index) => format!("elasticsearch/{index}"),
            None => "elasticsearch".to_string(),
        },
        message,
        tags,
        format,
        time_ms,
        severity,
        fields,
        ..InEvent::default()
    }
}

/// `text` less one trailing `\n` or `\r\n`, as container runtimes and
/// Fluent Bit's tail leave on `log`.
fn without_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// The value at `path`, as one dotted key or through nested objects
/// (`host.name` in `{"host": {"name": …}}`).
fn get_path<'a>(object: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = object.get(path) {
        return Some(value);
    }
    path.match_indices('.')
        .find_map(|(at, _)| match object.get(&path[..at]) {
            Some(Value::Object(inner)) => get_path(inner, &path[at + 1..]),
            _ => None,
        })
}

/// Removes and returns the value at `path` if `accept` takes it.
fn take_path(
    object: &mut Map<String, Value>,
    path: &str,
    accept: &dyn Fn(&Value) -> bool,
) -> Option<Value> {
    if object.get(path).is_some_and(accept) {
        return object.remove(path);
    }
    for (at, _) in path.match_indices('.') {
        if let Some(Value::Object(inner)) = object.get_mut(&path[..at]) {
            if let Some(value) = take_path(inner, &path[at + 1..], accept) {
                return Some(value);
            }
        }
    }
    None
}

/// Removes and returns the first of `paths` whose value `accept` takes.
fn take_first(
    object: &mut Map<String, Value>,
    paths: &[String],
    accept: &dyn Fn(&Value) -> bool,
) -> Option<Value> {
    paths
        .iter()
        .find_map(|path| take_path(object, path, accept))
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
        to_event(document, index, "sender", &ElasticConfig::default(), NOW)
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
            json!({"log": "{\"level\":\"error\",\"msg\":\"boom\"}\n", "kubernetes.container_name": "worker", "stream": "stderr"}),
            None,
        );
        assert_eq!(
            e.message, "{\"level\":\"error\",\"msg\":\"boom\"}",
            "less its newline"
        );
        assert_eq!(e.tags.get("app").map(String::as_str), Some("worker"));
        assert_eq!(e.host, "sender");
        assert_eq!(e.source, "elasticsearch");
        assert_eq!(e.fields.get("stream"), Some(&json!("stderr")));
        assert_eq!(e.fields.len(), 1);
    }

    #[test]
    fn a_document_without_a_message_is_kept_whole() {
        let doc = json!({"user": "ana", "action": {"kind": "login"}, "time": 1_700_000_000});
        let e = event(doc.clone(), Some("audit"));
        let back: Value = serde_json::from_str(&e.message).unwrap_or(Value::Null);
        assert_eq!(back, doc);
        assert_eq!(e.format.as_deref(), Some("json"));
        assert_eq!(e.time_ms, Some(1_700_000_000_000));
        assert!(
            e.fields.is_empty(),
            "parsed from the line instead: {:?}",
            e.fields
        );
        // A message field holding an object is no line: `log` as ECS nests it.
        let doc = json!({"log": {"level": "info"}, "note": "t70", "message": {}});
        let e = event(doc.clone(), None);
        assert_eq!(
            serde_json::from_str::<Value>(&e.message).unwrap_or(Value::Null),
            doc
        );
        assert_eq!(e.format.as_deref(), Some("json"));
    }

    #[test]
    fn values_that_do_not_fit_are_passed_over_and_stay_fields() {
        let e = event(
            json!({"message": {"text": "nested"}, "msg": 5, "@timestamp": "not a time", "time": "2025-12-06T05:46:40Z", "host": 42, "hostname": "", "level": 50}),
            None,
        );
        assert_eq!(e.message, "5");
        assert_eq!(e.fields.get("message.text"), Some(&json!("nested")));
        assert_eq!(
            e.time_ms,
            Some(NOW),
            "the next time field that reads as one"
        );
        assert_eq!(e.fields.get("@timestamp"), Some(&json!("not a time")));
        assert_eq!(e.host, "sender");
        assert_eq!(e.fields.get("host"), Some(&json!(42)));
        assert_eq!(e.severity.as_deref(), Some("error"), "pino's 50");
    }

    #[test]
    fn the_event_is_taken_before_fields_are_bounded() {
        let mut doc: Map<String, Value> =
            (0..300).map(|i| (format!("a{i:03}"), json!(i))).collect();
        doc.insert("message".into(), json!("t55"));
        doc.insert("host".into(), json!({"name": "h"}));
        let e = event(Value::Object(doc), None);
        assert_eq!(e.message, "t55");
        assert_eq!(e.host, "h");
        assert_eq!(e.fields.len(), crate::parse::json::MAX_FIELDS);
    }

    #[test]
    fn paths_follow_dots_through_objects() {
        let Value::Object(mut doc) = json!({"a": {"b.c": {"d": 1}}, "x.y": null}) else {
            unreachable!()
        };
        assert_eq!(get_path(&doc, "a.b.c.d"), Some(&json!(1)));
        assert_eq!(get_path(&doc, "a.b"), None);
        assert_eq!(get_path(&doc, "x.y"), Some(&Value::Null));
        assert_eq!(take_path(&mut doc, "a.b.c.d", &|_| true), Some(json!(1)));
        assert_eq!(get_path(&doc, "a.b.c.d"), None);
    }
}
