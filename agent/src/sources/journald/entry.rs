//! One line of `journalctl --output=json` → one entry, with the fields
//! mapped to the event's: `MESSAGE` (a string, or an array of bytes when it
//! is not UTF-8), `__REALTIME_TIMESTAMP` → the event's time, `PRIORITY` →
//! its severity, `SYSLOG_IDENTIFIER` (else `_SYSTEMD_UNIT` without
//! `.service`, else `_COMM`) → `app`, `_HOSTNAME` → host, `_PID` → `pid`,
//! and every other field under its journal name. Fields the journal holds
//! several times are arrays; fields that are numbers in the journal's own
//! vocabulary (`_PID`, `_UID`, `SYSLOG_FACILITY`, …) are numbers, so
//! `pid:>1000` works.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Fields the journal documents as decimal numbers.
const NUMERIC_FIELDS: [&str; 13] = [
    "_PID",
    "_UID",
    "_GID",
    "_AUDIT_SESSION",
    "_AUDIT_LOGINUID",
    "SYSLOG_FACILITY",
    "SYSLOG_PID",
    "ERRNO",
    "CODE_LINE",
    "TID",
    "_TID",
    "_STREAM_ID_NUMBER",
    "OBJECT_PID",
];

/// Fields the event carries elsewhere, or that only journalctl needs.
const MAPPED_FIELDS: [&str; 8] = [
    "MESSAGE",
    "PRIORITY",
    "_HOSTNAME",
    "__CURSOR",
    "__REALTIME_TIMESTAMP",
    "__MONOTONIC_TIMESTAMP",
    "__SEQNUM",
    "__SEQNUM_ID",
];

/// Bytes of a field other than `MESSAGE` at most (what journalctl itself
/// shows without `--all`); longer values are cut and the entry is marked
/// truncated.
pub(crate) const MAX_FIELD_BYTES: usize = 4096;

/// Syslog severity names by `PRIORITY`, as the server knows them.
const SEVERITIES: [&str; 8] = [
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "info",
    "debug",
];

/// Where an entry sits in the journal, from its cursor
/// (`s=<seqnum id>;i=<seqnum, hex>;b=<boot id>;m=…;t=<realtime, hex>;x=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CursorPlace {
    /// The sequence-number space: one journald instance's files.
    pub(crate) seqnum_id: String,
    /// The entry's number in that space; grows by one per entry written.
    pub(crate) seqnum: u64,
    /// The entry's realtime, µs since the epoch.
    pub(crate) realtime_us: u64,
}

/// Reads the parts of a cursor this source needs.
pub(crate) fn parse_cursor(cursor: &str) -> Option<CursorPlace> {
    let (mut seqnum_id, mut seqnum, mut realtime_us) = (None, None, None);
    for part in cursor.split(';') {
        let (key, value) = part.split_once('=')?;
        match key {
            "s" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_hexdigit()) => {
                seqnum_id = Some(value.to_string());
            }
            "i" => seqnum = Some(u64::from_str_radix(value, 16).ok()?),
            "t" => realtime_us = Some(u64::from_str_radix(value, 16).ok()?),
            _ => {}
        }
    }
    Some(CursorPlace {
        seqnum_id: seqnum_id?,
        seqnum: seqnum?,
        realtime_us: realtime_us?,
    })
}

/// One journal entry, mapped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) cursor: String,
    pub(crate) place: CursorPlace,
    pub(crate) message: String,
    pub(crate) truncated: bool,
    pub(crate) invalid_utf8: bool,
    /// `__REALTIME_TIMESTAMP`, in ms.
    pub(crate) time_ms: Option<i64>,
    pub(crate) severity: Option<&'static str>,
    pub(crate) host: Option<String>,
    pub(crate) app: Option<String>,
    /// `_SYSTEMD_UNIT`, for the event's source.
    pub(crate) unit: Option<String>,
    pub(crate) fields: BTreeMap<String, Value>,
}

/// Why a line of journalctl's output is not an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EntryError {
    #[error("not a JSON object: {0}")]
    NotJson(String),
    #[error("the entry has no __CURSOR")]
    NoCursor,
    #[error("cannot read the entry's cursor {0:?}")]
    BadCursor(String),
}

/// A field's value as text: a string as it is, an array of bytes decoded
/// (invalid UTF-8 replaced, and said), several values joined by newlines.
fn text_of(value: &Value) -> Option<(String, bool)> {
    match value {
        Value::String(text) => Some((text.clone(), false)),
        Value::Array(items) if items.iter().all(Value::is_u64) => {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(Value::as_u64)
                .map(|b| u8::try_from(b).unwrap_or(b'?'))
                .collect();
            let text = String::from_utf8_lossy(&bytes);
            let invalid = matches!(text, std::borrow::Cow::Owned(_));
            Some((text.into_owned(), invalid))
        }
        Value::Array(items) => {
            let mut invalid = false;
            let parts: Vec<String> = items
                .iter()
                .filter_map(text_of)
                .map(|(text, bad)| {
                    invalid |= bad;
                    text
                })
                .collect();
            Some((parts.join("\n"), invalid))
        }
        _ => None,
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary; whether it
/// was cut.
fn cut(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

/// A field's value as indexed: numbers for the numeric fields, arrays for
/// repeated fields, text otherwise; `None` for a null (a value journalctl
/// would not show).
fn field_value(name: &str, value: &Value, truncated: &mut bool) -> Option<Value> {
    if let Value::Array(items) = value {
        if !items.iter().all(Value::is_u64) {
            let values: Vec<Value> = items
                .iter()
                .filter_map(|item| field_value(name, item, truncated))
                .collect();
            return Some(Value::Array(values));
        }
    }
    let (mut text, _) = text_of(value)?;
    if NUMERIC_FIELDS.contains(&name) {
        if let Ok(number) = text.parse::<i64>() {
            return Some(Value::from(number));
        }
    }
    *truncated |= cut(&mut text, MAX_FIELD_BYTES);
    Some(Value::String(text))
}

fn first_text(object: &Map<String, Value>, name: &str) -> Option<String> {
    let value = object.get(name)?;
    let value = match value {
        Value::Array(items) if !items.iter().all(Value::is_u64) => items.first()?,
        other => other,
    };
    text_of(value)
        .map(|(text, _)| text)
        .filter(|text| !text.is_empty())
}

/// Maps one line of `journalctl --output=json`; messages longer than
/// `max_message_bytes` are cut.
pub(crate) fn parse_entry(line: &[u8], max_message_bytes: usize) -> Result<Entry, EntryError> {
    let object: Map<String, Value> = serde_json::from_slice(line).map_err(|error| {
        EntryError::NotJson(format!(
            "{error} in {:?}",
            String::from_utf8_lossy(&line[..line.len().min(120)])
        ))
    })?;
    let cursor = match object.get("__CURSOR") {
        Some(Value::String(cursor)) => cursor.clone(),
        _ => return Err(EntryError::NoCursor),
    };
    let place = parse_cursor(&cursor).ok_or_else(|| EntryError::BadCursor(cursor.clone()))?;
    let (mut message, invalid_utf8) = object.get("MESSAGE").and_then(text_of).unwrap_or_default();
    let mut truncated = cut(&mut message, max_message_bytes);
    let time_ms = first_text(&object, "__REALTIME_TIMESTAMP")
        .and_then(|us| us.parse::<i64>().ok())
        .map(|us| us / 1000);
    let severity = first_text(&object, "PRIORITY")
        .and_then(|p| p.trim().parse::<usize>().ok())
        .and_then(|p| SEVERITIES.get(p).copied());
    let unit = first_text(&object, "_SYSTEMD_UNIT");
    let app = first_text(&object, "SYSLOG_IDENTIFIER")
        .or_else(|| {
            unit.as_deref()
                .map(|u| u.strip_suffix(".service").unwrap_or(u).to_string())
        })
        .or_else(|| first_text(&object, "_COMM"));
    let mut fields = BTreeMap::new();
    for (name, value) in &object {
        if MAPPED_FIELDS.contains(&name.as_str()) {
            continue;
        }
        if let Some(value) = field_value(name, value, &mut truncated) {
            fields.insert(name.clone(), value);
        }
    }
    if let Some(pid) = fields.get("_PID").cloned() {
        fields.insert("pid".to_string(), pid);
    }
    Ok(Entry {
        cursor,
        place,
        message,
        truncated,
        invalid_utf8,
        time_ms,
        severity,
        host: first_text(&object, "_HOSTNAME"),
        app,
        unit,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURSOR: &str =
        "s=b106214c1edd4781989b3fb245ecb98e;i=1f;b=0123;m=0;t=661b8b34fe7ac;x=d185407f42efd6b5";

    #[test]
    fn a_cursor_gives_its_seqnum_space_number_and_time() {
        let place = parse_cursor(CURSOR).unwrap();
        assert_eq!(place.seqnum_id, "b106214c1edd4781989b3fb245ecb98e");
        assert_eq!(place.seqnum, 0x1f);
        assert_eq!(place.realtime_us, 0x661b8b34fe7ac);
        for bad in [
            "",
            "s=;i=1;t=1",
            "s=ab;t=1",
            "s=ab;i=zz;t=1",
            "garbage",
            "s=xy;i=1;t=1",
        ] {
            assert_eq!(parse_cursor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn fields_map_to_the_event() {
        let line = format!(
            r#"{{"__CURSOR":"{CURSOR}","__REALTIME_TIMESTAMP":"1796295770498988","MESSAGE":"Accepted publickey for root","PRIORITY":"5","SYSLOG_IDENTIFIER":"sshd","_SYSTEMD_UNIT":"ssh.service","_HOSTNAME":"web-1","_PID":"4242","_BOOT_ID":"0123","__MONOTONIC_TIMESTAMP":"9"}}"#
        );
        let entry = parse_entry(line.as_bytes(), 1 << 20).unwrap();
        assert_eq!(entry.message, "Accepted publickey for root");
        assert_eq!(entry.time_ms, Some(1_796_295_770_498));
        assert_eq!(entry.severity, Some("notice"));
        assert_eq!(entry.app.as_deref(), Some("sshd"));
        assert_eq!(entry.host.as_deref(), Some("web-1"));
        assert_eq!(entry.unit.as_deref(), Some("ssh.service"));
        assert_eq!(entry.fields.get("pid"), Some(&Value::from(4242)));
        assert_eq!(entry.fields.get("_PID"), Some(&Value::from(4242)));
        assert_eq!(entry.fields.get("_BOOT_ID"), Some(&Value::from("0123")));
        for gone in ["MESSAGE", "PRIORITY", "__CURSOR", "_HOSTNAME"] {
            assert!(!entry.fields.contains_key(gone), "{gone}");
        }
        assert!(!entry.truncated && !entry.invalid_utf8);
    }

    #[test]
    fn app_falls_back_to_the_unit_then_the_command() {
        let unit = format!(r#"{{"__CURSOR":"{CURSOR}","_SYSTEMD_UNIT":"nginx.service"}}"#);
        let entry = parse_entry(unit.as_bytes(), 100).unwrap();
        assert_eq!(entry.app.as_deref(), Some("nginx"));
        let comm = format!(r#"{{"__CURSOR":"{CURSOR}","_COMM":"cron"}}"#);
        assert_eq!(
            parse_entry(comm.as_bytes(), 100).unwrap().app.as_deref(),
            Some("cron")
        );
    }

    #[test]
    fn a_message_of_bytes_is_decoded_and_flagged() {
        let line =
            format!(r#"{{"__CURSOR":"{CURSOR}","MESSAGE":[98,97,100,32,255,10,115,101,99]}}"#);
        let entry = parse_entry(line.as_bytes(), 100).unwrap();
        assert_eq!(entry.message, "bad \u{FFFD}\nsec");
        assert!(entry.invalid_utf8);
        let utf8 = format!(r#"{{"__CURSOR":"{CURSOR}","MESSAGE":[104,105,10]}}"#);
        let entry = parse_entry(utf8.as_bytes(), 100).unwrap();
        assert_eq!(entry.message, "hi\n");
        assert!(!entry.invalid_utf8);
    }

    #[test]
    fn repeated_fields_are_arrays_and_long_values_are_cut() {
        let long = "x".repeat(MAX_FIELD_BYTES + 10);
        let line = format!(
            r#"{{"__CURSOR":"{CURSOR}","MESSAGE":"ünïcode message","TAG":["a","b"],"BIG":"{long}"}}"#
        );
        let entry = parse_entry(line.as_bytes(), 4).unwrap();
        assert_eq!(entry.message, "ün", "cut on a character boundary");
        assert!(entry.truncated);
        assert_eq!(
            entry.fields.get("TAG"),
            Some(&serde_json::json!(["a", "b"]))
        );
        assert_eq!(
            entry
                .fields
                .get("BIG")
                .and_then(Value::as_str)
                .map(str::len),
            Some(MAX_FIELD_BYTES)
        );
    }

    #[test]
    fn what_is_not_an_entry_is_refused_precisely() {
        assert!(matches!(
            parse_entry(b"-- cursor: x", 100),
            Err(EntryError::NotJson(_))
        ));
        assert_eq!(
            parse_entry(br#"{"MESSAGE":"x"}"#, 100),
            Err(EntryError::NoCursor)
        );
        assert!(matches!(
            parse_entry(br#"{"__CURSOR":"nope"}"#, 100),
            Err(EntryError::BadCursor(_))
        ));
    }
}
