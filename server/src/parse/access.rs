//! The common and combined access-log formats (Apache `%h %l %u %t "%r"
//! %>s %b "%{Referer}i" "%{User-agent}i"`, nginx's `combined`):
//!
//! `client_ip`, `ident`, `user`, `method`, `path`, `protocol`, `status`
//! (number), `bytes` (number), `referrer`, `user_agent`, `duration_ms`.
//! A `-` (or an empty quoted string) gives no field. A request line that is
//! not `METHOD target [protocol]` (garbage from scanners) gives no
//! `method`/`path`/`protocol` but the rest of the line still parses.
//!
//! `duration_ms` (always a float) comes from the last token when the line
//! goes on after the user agent (or after the bytes, for the common
//! format) and that token is a bare number or `rt=`/`request_time=`
//! followed by one. The heuristic: a number with a decimal point is
//! seconds (nginx `$request_time`, `0.123`), an integer is microseconds
//! (Apache `%D`). A quoted last token is never a duration.
//!
//! Access lines carry no severity.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::timestamp::{self, TimestampKind};
use super::Parsed;

/// Parses `bytes` if it is an access-log line; `None` otherwise.
pub fn parse_access_line(bytes: &[u8], received_at_ms: i64) -> Option<Parsed> {
    let mut cursor = Cursor { bytes, position: 0 };
    let client_ip = cursor.token()?;
    cursor.space()?;
    let ident = cursor.token()?;
    cursor.space()?;
    let user = cursor.token()?;
    cursor.space()?;
    let bracket = cursor.position;
    let found = timestamp::find(bytes, bracket, received_at_ms)
        .filter(|found| found.start == bracket && found.kind == TimestampKind::Access)?;
    cursor.position = found.end;
    cursor.space()?;
    let request = cursor.quoted()?;
    cursor.space()?;
    let status = cursor
        .token()
        .and_then(|token| number(token).filter(|_| token.len() == 3))?;
    cursor.space()?;
    let bytes_sent = cursor.token()?;
    if bytes_sent != b"-" && number(bytes_sent).is_none() {
        return None;
    }

    let mut fields = Map::new();
    insert_text(&mut fields, "client_ip", client_ip);
    insert_text(&mut fields, "ident", ident);
    insert_text(&mut fields, "user", user);
    add_request_fields(request, &mut fields);
    fields.insert("status".to_owned(), Value::from(status));
    if let Some(sent) = number(bytes_sent) {
        fields.insert("bytes".to_owned(), Value::from(sent));
    }
    if cursor.space().is_some() && cursor.peek() == Some(b'"') {
        if let Some(referrer) = cursor.quoted() {
            insert_text(&mut fields, "referrer", referrer);
            if cursor.space().is_some() && cursor.peek() == Some(b'"') {
                // A truncated line may lose the closing quote: keep the rest.
                let user_agent = cursor.quoted().unwrap_or_else(|| cursor.rest_after_quote());
                insert_text(&mut fields, "user_agent", user_agent);
            }
        }
    }
    if let Some(duration_ms) = trailing_duration_ms(cursor.rest()) {
        if let Some(number) = serde_json::Number::from_f64(duration_ms) {
            fields.insert("duration_ms".to_owned(), Value::Number(number));
        }
    }
    Some(Parsed {
        timestamp_ms: found.timestamp_ms,
        severity: None,
        fields,
    })
}

struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.position..).unwrap_or_default()
    }

    /// Skips one or more spaces; `None` when there is none.
    fn space(&mut self) -> Option<()> {
        let start = self.position;
        while self.peek() == Some(b' ') {
            self.position += 1;
        }
        (self.position > start).then_some(())
    }

    /// A non-empty run of non-space bytes.
    fn token(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest();
        let length = rest
            .iter()
            .position(|&byte| byte == b' ')
            .unwrap_or(rest.len());
        if length == 0 {
            return None;
        }
        self.position += length;
        Some(&rest[..length])
    }

    /// A `"…"` string (backslash escapes skipped), without its quotes.
    fn quoted(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest();
        if rest.first() != Some(&b'"') {
            return None;
        }
        let mut index = 1;
        while index < rest.len() {
            match rest[index] {
                b'\\' => index += 2,
                b'"' => {
                    self.position += index + 1;
                    return Some(&rest[1..index]);
                }
                _ => index += 1,
            }
        }
        None
    }

    /// Everything after an opening quote that never closes.
    fn rest_after_quote(&mut self) -> &'a [u8] {
        let rest = self.rest();
        self.position = self.bytes.len();
        rest.get(1..).unwrap_or_default()
    }
}

fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fn insert_text(fields: &mut Map<String, Value>, key: &str, value: &[u8]) {
    if !value.is_empty() && value != b"-" {
        fields.insert(key.to_owned(), Value::String(text(value).into_owned()));
    }
}

fn number(token: &[u8]) -> Option<u64> {
    if token.is_empty() || token.len() > 18 || !token.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        token
            .iter()
            .fold(0u64, |value, &byte| value * 10 + u64::from(byte - b'0')),
    )
}

/// `GET /path HTTP/1.1` (or HTTP/0.9's `GET /path`).
fn add_request_fields(request: &[u8], fields: &mut Map<String, Value>) {
    let mut parts = request
        .split(|&byte| byte == b' ')
        .filter(|part| !part.is_empty());
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return;
    };
    let protocol = parts.next();
    let method_ok = method.len() <= 16 && method.iter().all(u8::is_ascii_uppercase);
    let protocol_ok = protocol.is_none_or(|protocol| protocol.starts_with(b"HTTP/"));
    if !method_ok || !protocol_ok || parts.next().is_some() {
        return;
    }
    insert_text(fields, "method", method);
    insert_text(fields, "path", path);
    if let Some(protocol) = protocol {
        insert_text(fields, "protocol", protocol);
    }
}

/// The request time in ms from the last token (see module docs).
fn trailing_duration_ms(rest: &[u8]) -> Option<f64> {
    let last = rest
        .split(|&byte| byte == b' ')
        .rfind(|token| !token.is_empty())?;
    let value = [&b"rt="[..], b"request_time="]
        .iter()
        .find_map(|prefix| last.strip_prefix(*prefix))
        .unwrap_or(last);
    if let Some(microseconds) = number(value) {
        return Some(microseconds as f64 / 1000.0);
    }
    let dot = value.iter().position(|&byte| byte == b'.')?;
    let (whole, fraction) = (&value[..dot], &value[dot + 1..]);
    if whole.is_empty() || fraction.is_empty() || fraction.len() > 9 {
        return None;
    }
    let seconds =
        number(whole)? as f64 + number(fraction)? as f64 / 10f64.powi(fraction.len() as i32);
    Some((seconds * 1e6).round() / 1000.0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const RECEIVED: i64 = 1_795_000_000_000;

    fn fields(line: &str) -> Map<String, Value> {
        parse_access_line(line.as_bytes(), RECEIVED)
            .expect("an access line")
            .fields
    }

    #[test]
    fn combined_format() {
        let line = r#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /a/b.png?x=1 HTTP/1.1" 200 203023 "http://semicomplete.com/" "Mozilla/5.0 (X11)""#;
        let parsed = parse_access_line(line.as_bytes(), RECEIVED).expect("parses");
        assert_eq!(parsed.timestamp_ms, Some(1_431_857_103_000));
        assert_eq!(
            Value::Object(parsed.fields),
            json!({
                "client_ip": "83.149.9.216", "method": "GET", "path": "/a/b.png?x=1",
                "protocol": "HTTP/1.1", "status": 200, "bytes": 203023,
                "referrer": "http://semicomplete.com/", "user_agent": "Mozilla/5.0 (X11)",
            })
        );
    }

    #[test]
    fn common_format_dash_bytes_and_user() {
        let fields = fields(r#"::1 - frank [10/Oct/2000:13:55:36 -0700] "POST /x HTTP/1.0" 304 -"#);
        assert_eq!(fields["user"], "frank");
        assert_eq!(fields["status"], 304);
        assert!(!fields.contains_key("bytes"));
        assert!(!fields.contains_key("ident"));
    }

    #[test]
    fn durations() {
        let base =
            r#"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8""#;
        assert_eq!(fields(&format!("{base} 0.123"))["duration_ms"], 123.0);
        assert_eq!(fields(&format!("{base} rt=1.5"))["duration_ms"], 1500.0);
        assert_eq!(fields(&format!("{base} 2500"))["duration_ms"], 2.5);
        assert!(!fields(base).contains_key("duration_ms"));
        assert!(!fields(&format!("{base} \"10.0.0.1\"")).contains_key("duration_ms"));
        let common = r#"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 5 1234567"#;
        assert_eq!(fields(common)["duration_ms"], 1234.567);
    }

    #[test]
    fn odd_requests_and_escapes() {
        let fields = fields(
            r#"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "\x16\x03\x01" 400 0 "-" "a \"quoted\" agent""#,
        );
        assert!(!fields.contains_key("method"));
        assert_eq!(fields["status"], 400);
        assert_eq!(fields["user_agent"], r#"a \"quoted\" agent"#);
    }

    #[test]
    fn truncated_user_agent_is_kept() {
        let fields = fields(
            r#"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-" "Mozilla/5.0 (compat"#,
        );
        assert_eq!(fields["user_agent"], "Mozilla/5.0 (compat");
    }

    #[test]
    fn not_access_lines() {
        for line in [
            "",
            "a b c",
            "a b c [10/Oct/2000:13:55:36 +0000]",
            r#"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 2000 5"#,
            r#"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 x5"#,
            r#"1.2.3.4 - - [Sun Dec 04 04:47:44 2005] "GET / HTTP/1.1" 200 5"#,
        ] {
            assert!(
                parse_access_line(line.as_bytes(), RECEIVED).is_none(),
                "{line}"
            );
        }
    }
}
