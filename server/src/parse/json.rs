//! JSON lines: a line that is one JSON object.
//!
//! Members are flattened to dotted paths (`{"user":{"id":7}}` → `user.id`);
//! numbers, bools and strings keep their JSON type, `null`s are dropped.
//! Arrays of scalars stay arrays; an array holding objects or arrays, and
//! an object nested deeper than [`MAX_DEPTH`], is kept as its compact JSON
//! text, so it is still searchable but costs no more flattening. At most
//! [`MAX_FIELDS`] fields are kept (the rest are dropped): hostile JSON
//! costs work bounded by its length.
//!
//! The timestamp comes from the first top-level member named `time`,
//! `timestamp`, `@timestamp` or `ts` (names case-insensitive): a string in
//! any format the text scanners know, or a number of epoch seconds (ms
//! when above 1e11; fractions allowed). The severity from `level`,
//! `severity`, `lvl`, `loglevel`, `levelname` or ECS's `log.level`: a
//! word, or a number (syslog 0–7, or bunyan/pino 10–60; see
//! [`Severity::from_number`]).

use serde_json::{Map, Value};

use super::severity::Severity;
use super::{timestamp, Parsed};

/// Nesting beyond this is kept as JSON text.
pub const MAX_DEPTH: usize = 16;
/// Fields beyond this many are dropped.
pub const MAX_FIELDS: usize = 256;

const TIME_KEYS: [&str; 4] = ["time", "timestamp", "@timestamp", "ts"];
const LEVEL_KEYS: [&str; 6] = [
    "level",
    "severity",
    "lvl",
    "loglevel",
    "levelname",
    "log.level",
];

/// Parses `line` if it is a JSON object; `None` otherwise.
pub fn parse_json_line(line: &str, received_at_ms: i64) -> Option<Parsed> {
    let trimmed = line.trim();
    if !trimmed.starts_with('{') || !trimmed.ends_with('}') {
        return None;
    }
    let object: Map<String, Value> = serde_json::from_str(trimmed).ok()?;
    let mut parsed = Parsed::default();
    for (key, value) in &object {
        if parsed.timestamp_ms.is_none() && is_one_of(key, &TIME_KEYS) {
            parsed.timestamp_ms = timestamp_of(value, received_at_ms);
        }
        if parsed.severity.is_none() && is_one_of(key, &LEVEL_KEYS) {
            parsed.severity = severity_of(value);
        }
    }
    if parsed.severity.is_none() {
        // ECS writes `{"log": {"level": "warn"}}`.
        if let Some(Value::Object(log)) = object.get("log") {
            parsed.severity = log.get("level").and_then(severity_of);
        }
    }
    flatten(object, "", 1, &mut parsed.fields);
    Some(parsed)
}

/// `object`'s members as dotted paths, as a JSON line's fields are.
pub fn flattened(object: Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    flatten(object, "", 1, &mut out);
    out
}

fn is_one_of(key: &str, names: &[&str]) -> bool {
    names.iter().any(|name| key.eq_ignore_ascii_case(name))
}

/// A JSON `time` value as ms since the epoch: text in any format the
/// scanners know, or a number of epoch seconds (ms when above 1e11).
pub fn timestamp_of(value: &Value, received_at_ms: i64) -> Option<i64> {
    match value {
        Value::String(text) => timestamp::parse_whole(text, received_at_ms),
        Value::Number(number) => timestamp::from_epoch_number(number.as_f64()?, received_at_ms),
        _ => None,
    }
}

/// A JSON level value as a severity: a word, or a number (syslog 0–7,
/// or bunyan/pino 10–60).
pub fn severity_of(value: &Value) -> Option<Severity> {
    match value {
        Value::String(text) => Severity::from_word(text.trim()),
        Value::Number(number) => Severity::from_number(number.as_f64()?),
        _ => None,
    }
}

fn flatten(object: Map<String, Value>, prefix: &str, depth: usize, out: &mut Map<String, Value>) {
    for (key, value) in object {
        if out.len() >= MAX_FIELDS {
            return;
        }
        let path = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Null => {}
            Value::Object(inner) if depth < MAX_DEPTH => flatten(inner, &path, depth + 1, out),
            Value::Object(inner) => {
                out.insert(path, Value::String(Value::Object(inner).to_string()));
            }
            Value::Array(items) if items.iter().any(|item| item.is_object() || item.is_array()) => {
                out.insert(path, Value::String(Value::Array(items).to_string()));
            }
            Value::Array(items) => {
                let items: Vec<Value> = items.into_iter().filter(|item| !item.is_null()).collect();
                out.insert(path, Value::Array(items));
            }
            scalar => {
                out.insert(path, scalar);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const RECEIVED: i64 = 1_795_000_000_000; // 2026-11-18

    fn parse(line: &str) -> Parsed {
        parse_json_line(line, RECEIVED).expect("a JSON object")
    }

    #[test]
    fn flattens_with_types() {
        let parsed = parse(
            r#"{"msg":"hi","user":{"id":7,"admin":true,"geo":{"cc":"NZ"}},"tags":["a","b",null],"n":null,"d":1.5}"#,
        );
        let fields = &parsed.fields;
        assert_eq!(fields["msg"], "hi");
        assert_eq!(fields["user.id"], 7);
        assert_eq!(fields["user.admin"], true);
        assert_eq!(fields["user.geo.cc"], "NZ");
        assert_eq!(fields["tags"], json!(["a", "b"]));
        assert_eq!(fields["d"], 1.5);
        assert!(!fields.contains_key("n"));
        assert_eq!(fields.len(), 6);
    }

    #[test]
    fn arrays_of_objects_are_text() {
        let parsed = parse(r#"{"a":[{"b":1}]}"#);
        assert_eq!(parsed.fields["a"], r#"[{"b":1}]"#);
    }

    #[test]
    fn time_members_in_every_form() {
        let expected = 1_795_000_000_000 - 86_400_000; // 2026-11-17T11:06:40Z
        for line in [
            r#"{"time":"2026-11-17T11:06:40Z"}"#,
            r#"{"timestamp":"2026-11-17T12:06:40+01:00"}"#,
            r#"{"@timestamp":"2026-11-17 11:06:40,000"}"#,
            r#"{"ts":1794913600}"#,
            r#"{"ts":1794913600000}"#,
            r#"{"ts":1794913600.0004}"#,
            r#"{"Time":"1794913600"}"#,
            r#"{"time":"Nov 17 11:06:40"}"#,
        ] {
            assert_eq!(parse(line).timestamp_ms, Some(expected), "{line}");
        }
        assert_eq!(
            parse(r#"{"ts":1794913600.5}"#).timestamp_ms,
            Some(expected + 500)
        );
        for line in [
            r#"{"time":"yesterday"}"#,
            r#"{"time":"2026-11-17T11:06:40Z trailing"}"#,
            r#"{"time":true}"#,
            r#"{"time":1e300}"#,
            r#"{"time":12}"#,
            r#"{"time":"2099-01-01T00:00:00Z"}"#,
        ] {
            assert_eq!(parse(line).timestamp_ms, None, "{line}");
        }
    }

    #[test]
    fn levels_as_words_and_numbers() {
        for (line, expected) in [
            (r#"{"level":"WARN"}"#, Severity::Warning),
            (r#"{"severity":"error"}"#, Severity::Error),
            (r#"{"level":30}"#, Severity::Info),
            (r#"{"level":60}"#, Severity::Critical),
            (r#"{"severity":3}"#, Severity::Error),
            (r#"{"log.level":"notice"}"#, Severity::Notice),
            (r#"{"log":{"level":"fatal"}}"#, Severity::Critical),
        ] {
            assert_eq!(parse(line).severity, Some(expected), "{line}");
        }
        assert_eq!(parse(r#"{"lvl":"dbug"}"#).severity, None, "not an alias");
    }

    #[test]
    fn not_json_objects() {
        for line in ["[1,2]", "{not json}", "{\"a\":1", "\"str\"", "{\"a\":1} x"] {
            assert!(parse_json_line(line, RECEIVED).is_none(), "{line}");
        }
    }

    #[test]
    fn hostile_json_is_bounded() {
        let deep = format!("{}1{}", "{\"a\":".repeat(40), "}".repeat(40));
        let parsed = parse(&deep);
        assert_eq!(parsed.fields.len(), 1);
        let (key, value) = parsed.fields.iter().next().expect("one field");
        assert_eq!(key.split('.').count(), MAX_DEPTH);
        assert!(value.is_string());

        let wide: Vec<String> = (0..1000).map(|i| format!("\"k{i}\":{i}")).collect();
        let parsed = parse(&format!("{{{}}}", wide.join(",")));
        assert_eq!(parsed.fields.len(), MAX_FIELDS);

        let too_deep = format!("{}1{}", "{\"a\":".repeat(500), "}".repeat(500));
        assert!(
            parse_json_line(&too_deep, RECEIVED).is_none(),
            "serde_json's own limit"
        );
    }
}
