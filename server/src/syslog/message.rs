//! A syslog message (RFC 5424 or RFC 3164, parsed leniently) as an
//! [`InEvent`].
//!
//! - the line is the message's MSG part (a leading UTF-8 BOM dropped); a
//!   message that parses as neither RFC is kept whole as the line, but
//!   for a leading `<PRI>`, which still gives facility and severity;
//! - `host` is HOSTNAME, else the listener's `default_host`, else the
//!   peer's address; `source` is `syslog/<listener>/<peer address>`;
//! - the event's time is TIMESTAMP (RFC 3164's, which has no year and no
//!   zone, is read as UTC in the year that puts it nearest to the time
//!   of receipt); the severity is PRI's;
//! - fields: `facility`, `program` (APP-NAME, also the `app` label, else
//!   the listener's `default_app`), `pid` (PROCID when a number, else
//!   `procid`), `msgid`, and each structured-data element as an object
//!   named by its SD-ID holding its parameters.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};
use syslog_loose::{ProcId, Variant};

use super::frame::Frame;
use crate::ingest::InEvent;

/// What a listener adds to every message it receives.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// The listener's name.
    pub listener: String,
    /// Host of messages that name none.
    pub host: Option<String>,
    /// `app` of messages that name none.
    pub app: Option<String>,
}

/// The event for `frame`, received from `peer` at `received_at_ms`.
pub fn to_event(frame: Frame, peer: IpAddr, defaults: &Defaults, received_at_ms: i64) -> InEvent {
    let (text, invalid_utf8) = match String::from_utf8(frame.bytes) {
        Ok(text) => (text, false),
        Err(error) => (String::from_utf8_lossy(error.as_bytes()).into_owned(), true),
    };
    let parsed = syslog_loose::parse_message_with_year_tz(
        &text,
        |date| nearest_year(date, received_at_ms),
        Some(chrono::Utc),
        Variant::Either,
    );
    let recognised = parsed.facility.is_some() || parsed.timestamp.is_some();
    // A `<PRI>` with no header after it (as some network devices send):
    // the priority, and the rest as the line.
    let bare_pri = if recognised {
        None
    } else {
        crate::parse::syslog::parse_pri(text.as_bytes(), 0)
            .filter(|&(_, _, rfc5424)| !rfc5424)
            .map(|(pri, end, _)| (syslog_loose::decompose_pri(pri as u8), end))
    };
    let (facility, severity) = match bare_pri {
        Some((pri, _)) => pri,
        None => (parsed.facility, parsed.severity),
    };
    let mut fields = BTreeMap::new();
    let mut tags = BTreeMap::new();
    if let Some(facility) = facility {
        fields.insert("facility".to_string(), Value::from(facility.as_str()));
    }
    let app = parsed
        .appname
        .filter(|_| recognised)
        .map(str::to_string)
        .or_else(|| defaults.app.clone());
    if let Some(app) = &app {
        fields.insert("program".to_string(), Value::from(app.as_str()));
        tags.insert("app".to_string(), app.clone());
    }
    match parsed.procid.filter(|_| recognised) {
        Some(ProcId::PID(pid)) => {
            fields.insert("pid".to_string(), Value::from(pid));
        }
        Some(ProcId::Name(name)) => {
            fields.insert("procid".to_string(), Value::from(name));
        }
        None => {}
    }
    if let Some(msgid) = parsed.msgid.filter(|_| recognised) {
        fields.insert("msgid".to_string(), Value::from(msgid));
    }
    for element in &parsed.structured_data {
        let mut params = Map::new();
        for (name, value) in element.params() {
            params.insert(name.to_string(), Value::from(value.as_str()));
        }
        fields.insert(element.id.to_string(), Value::Object(params));
    }
    let host = parsed
        .hostname
        .filter(|host| recognised && !host.is_empty())
        .map(str::to_string)
        .or_else(|| defaults.host.clone())
        .unwrap_or_else(|| peer.to_string());
    let message = match bare_pri {
        _ if recognised => parsed.msg.strip_prefix('\u{feff}').unwrap_or(parsed.msg),
        Some((_, end)) => text[end..].trim_start_matches(' '),
        None => text.as_str(),
    }
    .to_string();
    InEvent {
        stream: None,
        host,
        source: format!("syslog/{}/{peer}", defaults.listener),
        message,
        read_at_ms: Some(received_at_ms),
        tags,
        truncated: frame.truncated,
        invalid_utf8,
        format: None,
        time_ms: parsed.timestamp.map(|t| t.timestamp_millis()),
        severity: severity.map(|s| s.as_str().to_string()),
        fields: fields.into_iter().collect(),
    }
}

/// The year that puts an RFC 3164 date (no year) nearest to `now_ms`, so
/// that a message from 31 December received on 1 January lands in the
/// year before.
fn nearest_year(date: syslog_loose::IncompleteDate, now_ms: i64) -> i32 {
    let (month, day, hour, minute, second) = date;
    let now_secs = now_ms.div_euclid(1000);
    let this_year = time::OffsetDateTime::from_unix_timestamp(now_secs)
        .map(|now| now.year())
        .unwrap_or(1970);
    let at = |year: i32| -> Option<i64> {
        let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
        let date = time::Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()?;
        let time = time::Time::from_hms(
            u8::try_from(hour).ok()?,
            u8::try_from(minute).ok()?,
            u8::try_from(second).ok()?,
        )
        .ok()?;
        Some(date.with_time(time).assume_utc().unix_timestamp())
    };
    [this_year, this_year - 1, this_year + 1]
        .into_iter()
        .filter_map(|year| Some((year, at(year)?)))
        .min_by_key(|&(_, secs)| (secs - now_secs).abs())
        .map_or(this_year, |(year, _)| year)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            listener: "net".into(),
            host: None,
            app: None,
        }
    }

    fn event(text: &str) -> InEvent {
        let frame = Frame {
            bytes: text.as_bytes().to_vec(),
            truncated: false,
        };
        // 2026-12-04T22:30:00Z
        to_event(
            frame,
            "10.1.2.3".parse().unwrap(),
            &defaults(),
            1_796_423_400_000,
        )
    }

    #[test]
    fn rfc5424_with_structured_data() {
        let e = event(
            "<165>1 2026-12-04T22:29:58.123+01:00 web-1 api 4242 ID47 \
             [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"][origin ip=\"10.0.0.9\"] \
             \u{feff}user 7 logged in",
        );
        assert_eq!(e.message, "user 7 logged in");
        assert_eq!(e.host, "web-1");
        assert_eq!(e.source, "syslog/net/10.1.2.3");
        assert_eq!(e.severity.as_deref(), Some("notice"));
        assert_eq!(e.time_ms, Some(1_796_419_798_123));
        assert_eq!(e.tags["app"], "api");
        assert_eq!(e.fields["program"], "api");
        assert_eq!(e.fields["facility"], "local4");
        assert_eq!(e.fields["pid"], 4242);
        assert_eq!(e.fields["msgid"], "ID47");
        assert_eq!(e.fields["exampleSDID@32473"]["eventSource"], "Application");
        assert_eq!(e.fields["origin"]["ip"], "10.0.0.9");
    }

    #[test]
    fn rfc3164_takes_the_nearest_year_as_utc() {
        let e = event("<38>Dec  4 22:29:59 bastion sshd[811]: Accepted publickey for ops");
        assert_eq!(e.message, "Accepted publickey for ops");
        assert_eq!(e.host, "bastion");
        assert_eq!(e.severity.as_deref(), Some("info"));
        assert_eq!(e.fields["facility"], "auth");
        assert_eq!(e.fields["program"], "sshd");
        assert_eq!(e.fields["pid"], 811);
        assert_eq!(e.time_ms, Some(1_796_423_399_000));
        // Received on 1 January, a 31 December message is last year's.
        let year = nearest_year((12, 31, 23, 59, 59), 1_798_761_600_000); // 2027-01-01
        assert_eq!(year, 2026);
        assert_eq!(nearest_year((1, 1, 0, 0, 1), 1_798_761_500_000), 2027);
    }

    #[test]
    fn what_is_not_syslog_is_kept_whole_with_the_listeners_defaults() {
        let frame = Frame {
            bytes: b"just some text \xff here".to_vec(),
            truncated: true,
        };
        let defaults = Defaults {
            listener: "net".into(),
            host: Some("router-7".into()),
            app: Some("edge".into()),
        };
        let e = to_event(frame, "::1".parse().unwrap(), &defaults, 0);
        assert_eq!(e.message, "just some text \u{fffd} here");
        assert!(e.invalid_utf8 && e.truncated);
        assert_eq!(e.host, "router-7");
        assert_eq!(e.tags["app"], "edge");
        assert_eq!(e.time_ms, None);
        assert_eq!(e.source, "syslog/net/::1");
    }

    #[test]
    fn the_peer_address_stands_in_for_a_missing_host() {
        let e = event("<13>1 2026-12-04T22:29:58Z - - - - - hello");
        assert_eq!(e.host, "10.1.2.3");
        assert_eq!(e.message, "hello");
        assert!(!e.tags.contains_key("app"));
        assert_eq!(e.severity.as_deref(), Some("notice"));
    }
}
