//! Syslog framing: the `<PRI>` prefix (RFC 3164 and 5424) and the
//! `program` / `pid` fields.
//!
//! RFC 5424 (`<34>1 TIMESTAMP HOST APP PROCID MSGID …`): `program` is APP
//! and `pid` is PROCID when numeric. RFC 3164 and the traditional file
//! format (`TIMESTAMP [HOST] TAG: msg`, also with rsyslog's ISO
//! timestamps): the tag is the first or second token after the timestamp
//! that ends with `:`; `app[pid]:` gives both fields, `app:` only the
//! program. `pid` is a number; the NILVALUE `-` gives no field.

use serde_json::{Map, Value};

use super::timestamp::Found;

/// The RFC 3164/5424 priority: `<0>` to `<191>` at `start`. Returns the
/// value, the offset after it (and after a 5424 `1 ` version), and
/// whether the line is RFC 5424.
pub fn parse_pri(bytes: &[u8], start: usize) -> Option<(u16, usize, bool)> {
    if bytes.get(start) != Some(&b'<') {
        return None;
    }
    let digits = bytes
        .get(start + 1..)?
        .iter()
        .take(4)
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    if !(1..=3).contains(&digits) || bytes.get(start + 1 + digits) != Some(&b'>') {
        return None;
    }
    let pri = bytes[start + 1..start + 1 + digits]
        .iter()
        .fold(0u16, |value, &byte| value * 10 + u16::from(byte - b'0'));
    if pri > 191 {
        return None;
    }
    let end = start + 2 + digits;
    if bytes.get(end..end + 2) == Some(b"1 ") {
        return Some((pri, end + 2, true));
    }
    Some((pri, end, false))
}

/// Adds `program` and `pid` from the header after the timestamp.
pub fn add_tag_fields(bytes: &[u8], found: &Found, rfc5424: bool, fields: &mut Map<String, Value>) {
    let mut tokens = bytes
        .get(found.end..)
        .unwrap_or_default()
        .split(|&byte| byte == b' ')
        .filter(|token| !token.is_empty());
    if rfc5424 {
        let _host = tokens.next();
        if let Some(app) = tokens.next().filter(|app| *app != b"-") {
            insert_program(app, fields);
        }
        if let Some(pid) = tokens.next().and_then(number) {
            fields.insert("pid".to_owned(), Value::from(pid));
        }
        return;
    }
    let first = tokens.next();
    let tag = match first {
        Some(token) if token.ends_with(b":") => Some(token),
        Some(_) => tokens.next().filter(|token| token.ends_with(b":")),
        None => None,
    };
    let Some(tag) = tag else { return };
    let tag = &tag[..tag.len() - 1];
    if let [head @ .., b']'] = tag {
        if let Some(open) = head.iter().rposition(|&byte| byte == b'[') {
            if open > 0 {
                if let Some(pid) = number(&head[open + 1..]) {
                    insert_program(&head[..open], fields);
                    fields.insert("pid".to_owned(), Value::from(pid));
                    return;
                }
            }
        }
    }
    if !tag.is_empty() && !tag.contains(&b'[') {
        insert_program(tag, fields);
    }
}

fn insert_program(program: &[u8], fields: &mut Map<String, Value>) {
    let program = String::from_utf8_lossy(program).into_owned();
    fields.insert("program".to_owned(), Value::String(program));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::timestamp;

    fn tag_fields(line: &str) -> Map<String, Value> {
        let bytes = line.as_bytes();
        let (start, rfc5424) = match parse_pri(bytes, 0) {
            Some((_, end, rfc5424)) => (end, rfc5424),
            None => (0, false),
        };
        let found = timestamp::find(bytes, start, 1_795_000_000_000).expect("a timestamp");
        let mut fields = Map::new();
        add_tag_fields(bytes, &found, rfc5424, &mut fields);
        fields
    }

    #[test]
    fn pri_bounds() {
        assert_eq!(parse_pri(b"<0>x", 0), Some((0, 3, false)));
        assert_eq!(parse_pri(b"<191>1 x", 0), Some((191, 7, true)));
        assert_eq!(parse_pri(b"<192>x", 0), None);
        assert_eq!(parse_pri(b"<1234>x", 0), None);
        assert_eq!(parse_pri(b"<>x", 0), None);
        assert_eq!(parse_pri(b"<12", 0), None);
    }

    #[test]
    fn rfc3164_tags() {
        let fields = tag_fields("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: auth failure");
        assert_eq!(fields["program"], "sshd(pam_unix)");
        assert_eq!(fields["pid"], 19939);
        let fields = tag_fields("Jun 14 15:16:01 combo kernel: oops");
        assert_eq!(fields["program"], "kernel");
        assert!(!fields.contains_key("pid"));
        let fields = tag_fields("<13>Jun 14 15:16:01 cron[7]: no host");
        assert_eq!(fields["program"], "cron");
        let fields = tag_fields("Jun 14 15:16:01 host just a message");
        assert!(fields.is_empty());
    }

    #[test]
    fn rfc5424_header() {
        let fields = tag_fields("<34>1 2026-11-17T03:12:00.003Z web3 su 812 ID47 - msg");
        assert_eq!(fields["program"], "su");
        assert_eq!(fields["pid"], 812);
        let fields = tag_fields("<34>1 2026-11-17T03:12:00.003Z web3 - - - - msg");
        assert!(fields.is_empty());
    }
}
