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

fn plausible(ms: i64, received_at_ms: i64) -> bool {
    ms > 0 && ms <= received_at_ms + MAX_CLOCK_SKEW_MS
}

/// The document of the event at `index` in the record at `seq`, sent by
/// `origin` and received at `received_at_ms`.
pub(super) fn build(
    fields: &Fields,
    seq: u64,
    index: usize,
    event: &InEvent,
    origin: &str,
    received_at_ms: i64,
) -> TantivyDocument {
    let hint = event
        .format
        .as_deref()
        .and_then(|f| f.parse::<FormatHint>().ok())
        .unwrap_or_default();
    let parsed = parse(&event.message, hint, received_at_ms);
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
        let doc = build(&fields, 1, 0, &with_time, "a", RECEIVED);
        assert_eq!(time_of(&doc, &fields), Some(RECEIVED - 5_000));

        with_time.time_ms = Some(RECEIVED + 10 * MAX_CLOCK_SKEW_MS);
        let doc = build(&fields, 1, 0, &with_time, "a", RECEIVED);
        let line_time = parse(&with_time.message, FormatHint::Auto, RECEIVED).timestamp_ms;
        assert!(line_time.is_some());
        assert_eq!(time_of(&doc, &fields), line_time);
    }

    #[test]
    fn a_senders_severity_is_used_when_the_line_states_none() {
        let (_, fields) = schema::build();
        let mut quiet = event("Accepted publickey for root");
        quiet.severity = Some("notice".into());
        let doc = build(&fields, 1, 0, &quiet, "a", RECEIVED);
        assert_eq!(severity_of(&doc, &fields).as_deref(), Some("notice"));

        let mut loud = event("ERROR connection refused");
        loud.severity = Some("info".into());
        let doc = build(&fields, 1, 0, &loud, "a", RECEIVED);
        assert_eq!(severity_of(&doc, &fields).as_deref(), Some("error"));

        let mut unknown = event("nothing here");
        unknown.severity = Some("loud".into());
        let doc = build(&fields, 1, 0, &unknown, "a", RECEIVED);
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
        let doc = build(&fields, 1, 0, &json, "a", RECEIVED);
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
}
