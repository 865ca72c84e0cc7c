//! One event → one tantivy document: the line parsed for its own time,
//! severity and fields, with where it came from.

use tantivy::{DateTime, TantivyDocument};

use crate::index::schema::Fields;
use crate::index::{event_id, MAX_CLOCK_SKEW_MS};
use crate::ingest::InEvent;
use crate::parse::{parse, FormatHint, Parsed, Severity};

/// The event's time: the sender's record of it when it sends one apart
/// from the line (a journal entry's time), else the line's own timestamp
/// when it has one, else when the agent read it; a sender's time that is
/// implausible is skipped, and the receive time is the last resort.
fn event_time_ms(parsed: &Parsed, event: &InEvent, received_at_ms: i64) -> i64 {
    if let Some(ms) = event.time_ms.filter(|&ms| plausible(ms, received_at_ms)) {
        return ms;
    }
    if let Some(ms) = parsed.timestamp_ms {
        return ms;
    }
    match event.read_at_ms {
        Some(ms) if plausible(ms, received_at_ms) => ms,
        _ => received_at_ms,
    }
}

/// The parser's hint from a sender's format name; an unknown name (from a
/// newer sender) parses as if none was given.
fn format_hint(format: Option<&str>) -> FormatHint {
    format
        .and_then(|f| f.parse::<FormatHint>().ok())
        .unwrap_or_default()
}

/// The fields a hit shows, for a day that derives them: those parsed from
/// `message` (as when it was indexed, with the stored `format` hint and
/// receive time), then the sender's `sent` fields, which win on a clash.
pub fn derived_fields(
    message: &str,
    format: Option<&str>,
    received_at_ms: i64,
    sent: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut fields = parse(message, format_hint(format), received_at_ms).fields;
    fields.extend(sent);
    fields
}

fn plausible(ms: i64, received_at_ms: i64) -> bool {
    ms > 0 && ms <= received_at_ms + MAX_CLOCK_SKEW_MS
}

/// The document of the event at `index` in the record at `seq`, sent by
/// `origin` and received at `received_at_ms`. With `derive_fields` (the
/// day's layout, [`crate::index::schema::derives_fields`]) the sender's
/// fields and format hint are stored apart, and the parsed fields are
/// only indexed: [`derived_fields`] finds them again from the line.
pub(super) fn build(
    fields: &Fields,
    derive_fields: bool,
    seq: u64,
    index: usize,
    event: &InEvent,
    origin: &str,
    received_at_ms: i64,
) -> TantivyDocument {
    let parsed = parse(
        &event.message,
        format_hint(event.format.as_deref()),
        received_at_ms,
    );
    let time_ms = event_time_ms(&parsed, event, received_at_ms);
    let mut doc = TantivyDocument::new();
    doc.add_u64(fields.id, event_id(seq, index));
    doc.add_date(fields.timestamp, DateTime::from_timestamp_millis(time_ms));
    doc.add_date(
        fields.received_at,
        DateTime::from_timestamp_millis(received_at_ms),
    );
    doc.add_text(fields.host, &event.host);
    doc.add_text(fields.source, &event.source);
    if let Some(app) = event.tags.get("app") {
        doc.add_text(fields.app, app);
    }
    doc.add_text(fields.message, &event.message);
    let severity = parsed
        .severity
        .or_else(|| event.severity.as_deref().and_then(Severity::from_word));
    if let Some(severity) = severity {
        doc.add_text(fields.severity, severity.name());
    }
    if derive_fields {
        if !event.fields.is_empty() {
            let sent = serde_json::Value::Object(event.fields.clone().into_iter().collect());
            doc.add_field_value(fields.sent_fields, &tantivy::schema::OwnedValue::from(sent));
        }
        if let Some(format) = &event.format {
            doc.add_text(fields.format, format);
        }
    }
    let mut parsed_fields = parsed.fields;
    for (name, value) in &event.fields {
        parsed_fields.insert(name.clone(), value.clone());
    }
    if !parsed_fields.is_empty() {
        let object = serde_json::Value::Object(parsed_fields);
        doc.add_field_value(fields.fields, &tantivy::schema::OwnedValue::from(object));
    }
    if !event.tags.is_empty() {
        let tags = event
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), tantivy::schema::OwnedValue::Str(v.clone())))
            .collect::<std::collections::BTreeMap<_, _>>();
        doc.add_object(fields.tags, tags);
    }
    doc.add_text(fields.agent, origin);
    if let Some(range) = &event.stream {
        doc.add_text(fields.file_id, range.stream.as_str());
        doc.add_u64(fields.offset, range.start);
    }
    if event.truncated {
        doc.add_bool(fields.truncated, true);
    }
    if event.invalid_utf8 {
        doc.add_bool(fields.invalid_utf8, true);
    }
    doc
}

#[cfg(test)]
mod tests {
    use tantivy::schema::Value as _;

    use super::*;
    use crate::index::schema;
    use crate::index::search::stored_object;

    const RECEIVED: i64 = 1_795_000_000_000;

    fn event(message: &str) -> InEvent {
        InEvent {
            stream: None,
            host: "h".into(),
            source: "journald".into(),
            message: message.into(),
            read_at_ms: None,
            tags: Default::default(),
            truncated: false,
            invalid_utf8: false,
            format: None,
            time_ms: None,
            severity: None,
            fields: Default::default(),
        }
    }

    fn severity_of(doc: &TantivyDocument, fields: &Fields) -> Option<String> {
        doc.get_first(fields.severity)
            .and_then(|value| value.as_str())
            .map(str::to_string)
    }

    fn time_of(doc: &TantivyDocument, fields: &Fields) -> Option<i64> {
        doc.get_first(fields.timestamp)
            .and_then(|value| value.as_datetime())
            .map(|date| date.into_timestamp_millis())
    }

    #[test]
    fn a_senders_time_wins_over_the_lines_unless_implausible() {
        let (_, fields) = schema::build();
        let mut with_time = event("2026-11-17T03:12:00Z started");
        with_time.time_ms = Some(RECEIVED - 5_000);
        let doc = build(&fields, true, 1, 0, &with_time, "a", RECEIVED);
        assert_eq!(time_of(&doc, &fields), Some(RECEIVED - 5_000));

        with_time.time_ms = Some(RECEIVED + 10 * MAX_CLOCK_SKEW_MS);
        let doc = build(&fields, true, 1, 0, &with_time, "a", RECEIVED);
        let line_time = parse(&with_time.message, FormatHint::Auto, RECEIVED).timestamp_ms;
        assert!(line_time.is_some());
        assert_eq!(time_of(&doc, &fields), line_time);
    }

    #[test]
    fn a_senders_severity_is_used_when_the_line_states_none() {
        let (_, fields) = schema::build();
        let mut quiet = event("Accepted publickey for root");
        quiet.severity = Some("notice".into());
        let doc = build(&fields, true, 1, 0, &quiet, "a", RECEIVED);
        assert_eq!(severity_of(&doc, &fields).as_deref(), Some("notice"));

        let mut loud = event("ERROR connection refused");
        loud.severity = Some("info".into());
        let doc = build(&fields, true, 1, 0, &loud, "a", RECEIVED);
        assert_eq!(severity_of(&doc, &fields).as_deref(), Some("error"));

        let mut unknown = event("nothing here");
        unknown.severity = Some("loud".into());
        let doc = build(&fields, true, 1, 0, &unknown, "a", RECEIVED);
        assert_eq!(severity_of(&doc, &fields), None);
    }

    #[test]
    fn a_senders_fields_join_the_parsed_ones_and_win_on_a_clash() {
        let (_, fields) = schema::build();
        let mut json = event(r#"{"msg":"hi","pid":7,"user":"ann"}"#);
        json.fields = [
            ("pid".to_string(), serde_json::json!(42)),
            (
                "_SYSTEMD_UNIT".to_string(),
                serde_json::json!("ssh.service"),
            ),
        ]
        .into();
        let doc = build(&fields, true, 1, 0, &json, "a", RECEIVED);
        let object = doc
            .get_first(fields.fields)
            .and_then(|value| value.as_object())
            .map(|members| {
                members
                    .map(|(k, v)| (k.to_string(), tantivy::schema::OwnedValue::from(v)))
                    .collect::<std::collections::BTreeMap<_, _>>()
            })
            .unwrap_or_default();
        let text = |name: &str| object.get(name).map(|value| format!("{value:?}"));
        assert_eq!(
            text("pid"),
            Some(format!("{:?}", tantivy::schema::OwnedValue::I64(42)))
        );
        assert_eq!(
            text("_SYSTEMD_UNIT"),
            Some(format!(
                "{:?}",
                tantivy::schema::OwnedValue::Str("ssh.service".into())
            ))
        );
        assert!(text("user").is_some(), "parsed fields stay: {object:?}");
    }

    #[test]
    fn derived_fields_are_the_fields_an_old_layout_stores() {
        let (_, fields) = schema::build();
        // A line, its sender's format hint and its sender's fields.
        type Line<'a> = (&'a str, Option<&'a str>, &'a [(&'a str, serde_json::Value)]);
        let lines: [Line; 8] = [
            (
                r#"{"level":"warn","msg":"slow","ms":12.5,"n":3,"ok":true,"user":{"id":7,"tags":["a","b"]},"none":null}"#,
                None,
                &[],
            ),
            (
                r#"203.0.113.9 - ann [03/Dec/2026:10:00:01 +0000] "GET /api/v1/x?y=1 HTTP/1.1" 503 1042 "-" "curl/8.5""#,
                None,
                &[],
            ),
            (
                "<34>Dec  3 10:00:02 gw sshd[811]: Failed password for root",
                None,
                &[],
            ),
            ("plain words with no structure", None, &[]),
            (r#"{"a":1}"#, Some("plain"), &[]),
            (r#"{"a":1}"#, Some("a-format-from-a-newer-agent"), &[]),
            (
                r#"{"pid":7,"msg":"started"}"#,
                Some("json"),
                &[
                    ("pid", serde_json::json!(42)),
                    ("_SYSTEMD_UNIT", serde_json::json!("ssh.service")),
                ],
            ),
            (
                "no parsed fields at all",
                None,
                &[("container", serde_json::json!("web"))],
            ),
        ];
        for (message, format, sent) in lines {
            let mut line = event(message);
            line.format = format.map(str::to_string);
            line.fields = sent
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            let old = build(&fields, false, 1, 0, &line, "a", RECEIVED);
            let new = build(&fields, true, 1, 0, &line, "a", RECEIVED);
            let stored = stored_object(&old, fields.fields);
            let derived = derived_fields(
                message,
                new.get_first(fields.format).and_then(|v| v.as_str()),
                RECEIVED,
                stored_object(&new, fields.sent_fields),
            );
            assert_eq!(derived, stored, "{message}");
            assert_eq!(
                stored_object(&new, fields.sent_fields).len(),
                sent.len(),
                "only the sender's fields are kept apart: {message}"
            );
            assert!(old.get_first(fields.sent_fields).is_none());
        }
    }
}
