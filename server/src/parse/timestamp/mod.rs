//! Timestamp scanners. [`find`] looks, in this order:
//!
//! 1. at the start of the line (after a `<PRI>`, optionally inside `[`…`]`):
//!    - ISO 8601 / RFC 3339: `2026-11-25T03:12:00Z`, `…00.123+01:00`,
//!      `2026-11-25 03:12:00,123` (comma millis), zones `Z`, `±HH:MM`,
//!      `±HHMM`, `±HH`, or ` ±HHMM` after a space;
//!    - IBM `2005-06-03-15.42.50.675872`; nginx error log `2026/11/25 03:12:00`;
//!    - syslog RFC 3164 `Jun 14 15:16:01`, `Jun  4 …`, optionally `… 2026`;
//!    - Apache error log / ctime `Sun Dec 04 04:47:44[.123456] 2005`;
//!    - access log `17/May/2015:10:05:03 +0000`; Tomcat `25-Nov-2026 03:12:00.123`;
//!    - log4j/Spark `17/06/09 20:10:40` (yy/MM/dd); HDFS `081109 203615`
//!      (yyMMdd HHmmss); Android logcat `03-17 16:13:38.811` (MM-dd);
//!      `20171223-22:15:29:606` (yyyyMMdd-H:m:s:S, unpadded fields and
//!      milliseconds as an integer, as Java writes them); `[10.30 16:49:06]`
//!      (MM.dd, only in brackets, where it cannot be an IP address);
//!    - glog/klog `I1125 03:12:00.123456` (the letter is also the severity);
//!    - epoch seconds (10 digits, optionally `.fraction`) or ms (13 digits)
//!      as the first token;
//! 2. an access-log bracket `[17/May/2015:10:05:03 +0000]` anywhere in the
//!    first 300 bytes;
//! 3. an ISO or IBM date-time that *has a year* starting one of tokens 2–6
//!    (BGL puts it fifth), or as the value of a logfmt `time=`, `ts=` or
//!    `timestamp=` among the first 6 tokens. Bare numbers are never taken
//!    from mid-line: an ID mistaken for a time would hide the line from
//!    every time range.
//!
//! A time without a zone is UTC. Formats without a year take the year of
//! `received_at_ms`, or the year before when that would put the line more
//! than a day after its receipt (New Year rollover); two-digit years are
//! 19yy from 70 up, else 20yy. Times before 1990 or more than a day after
//! receipt are absurd: the scanner still reports where the timestamp was
//! (so the level search skips it) but with `timestamp_ms: None`.

mod calendar;
mod scanners;

pub use calendar::from_epoch_number;
use calendar::{resolve, Civil};
use scanners::{at, count_digits, is_boundary, scan_access, scan_at, scan_iso};

use super::severity::Severity;

/// How far into the line the access-log bracket is looked for.
const ACCESS_BRACKET_SEARCH_BYTES: usize = 300;
/// Mid-line date-times are looked for in tokens 2..=this.
const LAST_MID_LINE_TOKEN: usize = 6;

/// The shapes a timestamp can have; callers use it to know what follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampKind {
    /// ISO 8601 / RFC 3339 and its relatives with a four-digit year.
    Iso,
    /// RFC 3164 syslog, `Jun 14 15:16:01`.
    Syslog,
    /// Apache error log / ctime, `Sun Dec 04 04:47:44 2005`.
    Ctime,
    /// Access log, `17/May/2015:10:05:03 +0000`.
    Access,
    /// A leading epoch number.
    Epoch,
    /// Any of the other, year-less or two-digit-year, Java/ops formats.
    Other,
}

/// A timestamp found in a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Byte offset where the timestamp text (or its `[`) starts.
    pub start: usize,
    /// Byte offset just past it (past its `]` when bracketed).
    pub end: usize,
    /// The time in ms since the epoch, `None` when absurd.
    pub timestamp_ms: Option<i64>,
    /// Its shape.
    pub kind: TimestampKind,
    /// A severity the format puts in the timestamp (glog's letter).
    pub severity: Option<Severity>,
}

impl Found {
    /// Whether the line looks like RFC 3164 syslog.
    pub fn is_syslog(&self) -> bool {
        self.kind == TimestampKind::Syslog
    }
}

/// One scanner's result before resolution.
struct Scan {
    civil: Civil,
    end: usize,
    kind: TimestampKind,
    severity: Option<Severity>,
    /// Epoch formats carry their instant directly.
    epoch_ms: Option<i64>,
}

/// Finds the line's timestamp, looking at `start` first (see module docs).
pub fn find(bytes: &[u8], start: usize, received_at_ms: i64) -> Option<Found> {
    let resolve_at = |scan: Scan, at: usize| Found {
        start: at,
        end: scan.end,
        timestamp_ms: resolve(&scan, received_at_ms),
        kind: scan.kind,
        severity: scan.severity,
    };
    if let Some(scan) = scan_at(bytes, start) {
        return Some(resolve_at(scan, start));
    }
    if let Some((at, scan)) = find_access_bracket(bytes, start) {
        return Some(resolve_at(scan, at));
    }
    find_mid_line_iso(bytes, start).map(|(at, scan)| resolve_at(scan, at))
}

/// Parses a whole string as a timestamp (JSON `time` values): any format
/// [`find`] knows at the start, followed by nothing but whitespace.
pub fn parse_whole(text: &str, received_at_ms: i64) -> Option<i64> {
    let bytes = text.trim().as_bytes();
    let scan = scan_at(bytes, 0)?;
    if scan.end != bytes.len() {
        return None;
    }
    resolve(&scan, received_at_ms)
}

/// An access-log bracket anywhere in the first few hundred bytes.
fn find_access_bracket(bytes: &[u8], start: usize) -> Option<(usize, Scan)> {
    let limit = bytes.len().min(ACCESS_BRACKET_SEARCH_BYTES);
    let window = bytes.get(start..limit)?;
    window
        .iter()
        .enumerate()
        .filter(|(_, &byte)| byte == b'[')
        .find_map(|(offset, _)| {
            let at_bracket = start + offset;
            if count_digits(bytes, at_bracket + 1) != 2 || at(bytes, at_bracket + 3) != b'/' {
                return None;
            }
            let mut scan = scan_access(bytes, at_bracket + 1)?;
            if at(bytes, scan.end) == b']' {
                scan.end += 1;
            }
            Some((at_bracket, scan))
        })
}

/// An ISO/IBM date-time with a year starting one of tokens 2..=6, or the
/// value of a logfmt `time=`/`ts=`/`timestamp=` key in tokens 1..=6.
fn find_mid_line_iso(bytes: &[u8], start: usize) -> Option<(usize, Scan)> {
    let mut position = start;
    for token_number in 1..=LAST_MID_LINE_TOKEN {
        if token_number > 1 {
            // Skip the current token, then the whitespace after it.
            while position < bytes.len() && !bytes[position].is_ascii_whitespace() {
                position += 1;
            }
            while position < bytes.len() && bytes[position].is_ascii_whitespace() {
                position += 1;
            }
        }
        if position >= bytes.len() {
            return None;
        }
        let value_at = logfmt_time_value(bytes, position);
        if token_number == 1 && value_at.is_none() {
            continue; // the start of the line was already tried
        }
        if let Some(scan) = iso_token(bytes, value_at.unwrap_or(position)) {
            return Some((position, scan));
        }
    }
    None
}

/// Where the value starts when the token at `position` is `time=…`,
/// `ts=…` or `timestamp=…`.
fn logfmt_time_value(bytes: &[u8], position: usize) -> Option<usize> {
    let rest = bytes.get(position..)?;
    [&b"time="[..], b"ts=", b"timestamp="]
        .iter()
        .find(|key| rest.len() >= key.len() && rest[..key.len()].eq_ignore_ascii_case(key))
        .map(|key| position + key.len())
}

/// An ISO/IBM date-time at `position`, optionally after `[`, `(` or `"`.
fn iso_token(bytes: &[u8], position: usize) -> Option<Scan> {
    let opener = matches!(at(bytes, position), b'[' | b'(' | b'"');
    let digits_at = position + usize::from(opener);
    if count_digits(bytes, digits_at) != 4 || at(bytes, digits_at + 4) != b'-' {
        return None;
    }
    let mut scan = scan_iso(bytes, digits_at)?;
    if !is_boundary(bytes, scan.end) {
        return None;
    }
    if opener && matches!(at(bytes, scan.end), b']' | b')' | b'"') {
        scan.end += 1;
    }
    Some(scan)
}

#[cfg(test)]
mod tests;
