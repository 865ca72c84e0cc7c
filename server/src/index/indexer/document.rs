//! One event → one tantivy document: the line parsed for its own time,
//! severity and fields, with where it came from.

use tantivy::{DateTime, TantivyDocument};

use crate::index::schema::Fields;
use crate::index::{event_id, MAX_CLOCK_SKEW_MS};
use crate::ingest::InEvent;
use crate::parse::{parse, FormatHint, Parsed};

/// The event's time: the line's own timestamp when it has one, else when
/// the agent read it (unless that is implausible), else the receive time.
fn event_time_ms(parsed: &Parsed, event: &InEvent, received_at_ms: i64) -> i64 {
    if let Some(ms) = parsed.timestamp_ms {
        return ms;
    }
    match event.read_at_ms {
        Some(ms) if ms > 0 && ms <= received_at_ms + MAX_CLOCK_SKEW_MS => ms,
        _ => received_at_ms,
    }
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
    if let Some(severity) = parsed.severity {
        doc.add_text(fields.severity, severity.name());
    }
    if !parsed.fields.is_empty() {
        let object = serde_json::Value::Object(parsed.fields);
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
