//! Server-side parsing of one raw log line: its own timestamp, its severity
//! and its structured fields, so that `status:>=500`, `duration_ms:>1000`
//! and `severity:error` work on logs nobody configured a parser for.
//!
//! Every ingested line goes through [`parse`], so the scanners are
//! hand-written byte-level code dispatching on the first byte (no regex on
//! the hot path; about a microsecond per typical line) and never panic, on
//! any input: they work on bytes and only ever slice at ASCII positions.
//!
//! - [`timestamp`]: the date/time scanners and the year inference for
//!   formats that omit the year;
//! - [`severity`]: [`Severity`], its names and aliases, and the search for
//!   a level word near the start of a line;
//! - [`json`]: JSON lines, flattened to dotted paths;
//! - [`access`]: the common/combined access-log format (Apache, nginx);
//! - [`syslog`]: the `<PRI>` prefix and `program[pid]:` tags.
//!
//! What is recognised, and every heuristic, is listed in the docs of each
//! submodule; a line nothing recognises still parses, to an empty
//! [`Parsed`] (the caller then uses the receive time).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub mod access;
pub mod json;
pub mod severity;
pub mod syslog;
pub mod timestamp;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod robustness_tests;

pub use severity::Severity;

/// What the sender says a source's lines look like. `Auto` guesses per
/// line; the other hints only narrow what is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatHint {
    /// JSON objects, access logs and text, tried in that order.
    #[default]
    Auto,
    /// JSON lines; a line that is not a JSON object is parsed as text.
    Json,
    /// Apache/nginx access logs; other lines (the error log) as text.
    Apache,
    /// Syslog: text, plus `program` and `pid` from the tag.
    Syslog,
    /// Timestamp and severity only, never any fields.
    Plain,
}

/// A format hint that is not one of the known names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log format {0:?}: use auto, json, apache, syslog or plain")]
pub struct UnknownFormatHint(pub String);

impl FromStr for FormatHint {
    type Err = UnknownFormatHint;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(FormatHint::Auto),
            "json" => Ok(FormatHint::Json),
            "apache" => Ok(FormatHint::Apache),
            "syslog" => Ok(FormatHint::Syslog),
            "plain" => Ok(FormatHint::Plain),
            _ => Err(UnknownFormatHint(text.to_owned())),
        }
    }
}

/// What [`parse`] found in one line. The message itself is not copied: the
/// caller keeps the raw line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    /// The line's own time in ms since the Unix epoch; `None` when there is
    /// none or it is absurd (before 1990, or more than a day after receipt).
    pub timestamp_ms: Option<i64>,
    /// The line's severity, when the line states one.
    pub severity: Option<Severity>,
    /// Structured fields: flattened JSON members, access-log fields, or the
    /// syslog program and pid.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// Parses one line (without its line terminator; a trailing `\r` is
/// ignored). `received_at_ms` is the server's receive time: it supplies the
/// year of year-less formats and bounds what counts as a plausible time.
pub fn parse(message: &str, hint: FormatHint, received_at_ms: i64) -> Parsed {
    let line = message.strip_suffix('\r').unwrap_or(message);
    if matches!(hint, FormatHint::Auto | FormatHint::Json) {
        if let Some(parsed) = json::parse_json_line(line, received_at_ms) {
            return parsed;
        }
    }
    let bytes = line.as_bytes();
    if matches!(hint, FormatHint::Auto | FormatHint::Apache) {
        if let Some(parsed) = access::parse_access_line(bytes, received_at_ms) {
            return parsed;
        }
    }
    parse_text(bytes, hint, received_at_ms)
}

/// Any text line: `<PRI>`, a timestamp at (or near) the start, a level.
fn parse_text(bytes: &[u8], hint: FormatHint, received_at_ms: i64) -> Parsed {
    let mut parsed = Parsed::default();
    let start = skip_leading_noise(bytes);
    let (pri_severity, after_pri, rfc5424) = match syslog::parse_pri(bytes, start) {
        Some((pri, end, rfc5424)) => (Some(Severity::from_syslog_pri(pri)), end, rfc5424),
        None => (None, start, false),
    };
    let found = timestamp::find(bytes, after_pri, received_at_ms);
    if let Some(found) = &found {
        parsed.timestamp_ms = found.timestamp_ms;
    }
    parsed.severity = pri_severity
        .or_else(|| found.as_ref().and_then(|found| found.severity))
        .or_else(|| severity::find_in_text(bytes, after_pri, found.as_ref()));
    let wants_tag = match hint {
        FormatHint::Syslog => true,
        FormatHint::Auto => {
            pri_severity.is_some() || found.as_ref().is_some_and(|found| found.is_syslog())
        }
        _ => false,
    };
    if wants_tag {
        if let Some(found) = &found {
            syslog::add_tag_fields(bytes, found, rfc5424, &mut parsed.fields);
        }
    }
    parsed
}

/// Skips leading whitespace and a UTF-8 byte-order mark.
fn skip_leading_noise(bytes: &[u8]) -> usize {
    let mut position = 0;
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        position = 3;
    }
    while position < bytes.len() && matches!(bytes[position], b' ' | b'\t') {
        position += 1;
    }
    position
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIVED_2026: i64 = 1_795_000_000_000; // 2026-11-18T...Z

    #[test]
    fn hint_from_str_and_serde_agree() {
        for (text, hint) in [
            ("auto", FormatHint::Auto),
            ("JSON", FormatHint::Json),
            ("apache", FormatHint::Apache),
            ("syslog", FormatHint::Syslog),
            ("plain", FormatHint::Plain),
        ] {
            assert_eq!(text.parse::<FormatHint>(), Ok(hint));
            let json = serde_json::to_string(&hint).expect("serializes");
            assert_eq!(json, format!("\"{}\"", text.to_ascii_lowercase()));
            assert_eq!(serde_json::from_str::<FormatHint>(&json).ok(), Some(hint));
        }
        assert!("csv".parse::<FormatHint>().is_err());
    }

    #[test]
    fn plain_hint_gives_no_fields() {
        let line = r#"{"time":"2026-11-17T03:12:00Z","level":"warn","a":1}"#;
        let parsed = parse(line, FormatHint::Plain, RECEIVED_2026);
        assert!(parsed.fields.is_empty());
        let access = r#"1.2.3.4 - - [17/Nov/2026:10:05:03 +0000] "GET / HTTP/1.1" 200 5"#;
        let parsed = parse(access, FormatHint::Plain, RECEIVED_2026);
        assert!(parsed.fields.is_empty());
        assert!(
            parsed.timestamp_ms.is_some(),
            "the access bracket is still a time"
        );
    }

    #[test]
    fn json_hint_falls_back_to_text() {
        let parsed = parse(
            "2026-11-17 03:12:00 ERROR not json",
            FormatHint::Json,
            RECEIVED_2026,
        );
        assert_eq!(parsed.severity, Some(Severity::Error));
        assert!(parsed.timestamp_ms.is_some());
    }

    #[test]
    fn syslog_hint_extracts_tag_and_pri_wins() {
        let parsed = parse(
            "<11>Nov 17 03:12:00 web3 nginx[812]: INFO started",
            FormatHint::Syslog,
            RECEIVED_2026,
        );
        assert_eq!(parsed.severity, Some(Severity::Error), "pri 11 % 8 = 3");
        assert_eq!(parsed.fields["program"], "nginx");
        assert_eq!(parsed.fields["pid"], 812);
    }

    #[test]
    fn common_shapes_end_to_end() {
        let day_ms = 86_400_000;
        let nov_17 = RECEIVED_2026 - RECEIVED_2026 % day_ms - day_ms; // 2026-11-17T00:00Z
        let at = |hms: i64| Some(nov_17 + hms * 1000);
        for (line, timestamp_ms, severity) in [
            (
                "<165>1 2026-11-17T03:12:00Z h app 1 - - x",
                at(11_520),
                Some(Severity::Notice),
            ),
            (
                "2026/11/17 03:12:00 [warn] 1#0: x",
                at(11_520),
                Some(Severity::Warning),
            ),
            (
                "E1117 03:12:00.000000 7 a.go:1] x",
                at(11_520),
                Some(Severity::Error),
            ),
            (
                "2026-11-17 03:12:00,000 CRITICAL x",
                at(11_520),
                Some(Severity::Critical),
            ),
            (
                "time=2026-11-17T03:12:00Z level=info msg=x",
                at(11_520),
                Some(Severity::Info),
            ),
            (
                r#"a=1 ts="2026-11-17 03:12:00" lvl=debug"#,
                at(11_520),
                Some(Severity::Debug),
            ),
            (
                "Nov 17 03:12:00 h app: failed to read error count",
                at(11_520),
                None,
            ),
            ("WARNING:root:disk low", None, Some(Severity::Warning)),
            (
                r#"{"ts":1794885120,"level":"error"}"#,
                at(11_520),
                Some(Severity::Error),
            ),
        ] {
            let parsed = parse(line, FormatHint::Auto, RECEIVED_2026);
            assert_eq!(
                (parsed.timestamp_ms, parsed.severity),
                (timestamp_ms, severity),
                "{line}"
            );
        }
    }

    #[test]
    fn empty_and_whitespace_lines() {
        for line in ["", " ", "\r", "\t\t", "\u{feff}", "{", "[", "<", "<1"] {
            let parsed = parse(line, FormatHint::Auto, RECEIVED_2026);
            assert_eq!(parsed, Parsed::default(), "{line:?}");
        }
    }
}
