//! Unit tests of the timestamp scanners; expected values come from the
//! `time` crate, not from this module's own calendar arithmetic.

use time::macros::datetime;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::calendar::year_of_ms;
use super::*;

/// 2026-11-18T12:00:00Z.
const RECEIVED: i64 = 1_795_003_200_000;

fn ms(time: PrimitiveDateTime) -> i64 {
    (time.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn ms_offset(time: OffsetDateTime) -> i64 {
    (time.unix_timestamp_nanos() / 1_000_000) as i64
}

fn parsed(line: &str) -> Option<i64> {
    parsed_at(line, RECEIVED)
}

fn parsed_at(line: &str, received_at_ms: i64) -> Option<i64> {
    find(line.as_bytes(), 0, received_at_ms).and_then(|found| found.timestamp_ms)
}

#[test]
fn received_constant_is_what_it_says() {
    assert_eq!(RECEIVED, ms(datetime!(2026-11-18 12:00:00)));
}

#[test]
fn iso_8601_variants() {
    let base = datetime!(2026-11-17 03:12:00);
    let cases = [
        ("2026-11-17T03:12:00Z x", ms(base)),
        ("2026-11-17T03:12:00z", ms(base)),
        ("2026-11-17T03:12:00.123Z", ms(base) + 123),
        ("2026-11-17T03:12:00.123456789Z", ms(base) + 123),
        ("2026-11-17T03:12:00.1234567891234Z", ms(base) + 123),
        ("2026-11-17T04:12:00.123+01:00", ms(base) + 123),
        ("2026-11-17T04:12:00+0100", ms(base)),
        ("2026-11-17T04:12:00+01", ms(base)),
        ("2026-11-16T22:42:00-04:30", ms(base)),
        ("2026-11-17 03:12:00,123 INFO x", ms(base) + 123),
        ("2026-11-17 03:12:00.5 - INFO x", ms(base) + 500),
        ("2026-11-17 04:12:00 +0100 x", ms(base)),
        ("[2026-11-17 03:12:00] x", ms(base)),
        ("2026-11-17T03:12:00", ms(base)),
        ("2026-11-17-03.12.00.000001 IBM", ms(base)),
        ("2026/11/17 03:12:00 [error] 12#0: x", ms(base)),
    ];
    for (line, expected) in cases {
        assert_eq!(parsed(line), Some(expected), "{line}");
    }
}

#[test]
fn iso_rejects_invalid_parts() {
    for line in [
        "2026-13-17T03:12:00Z",
        "2026-02-30T03:12:00Z",
        "2026-11-17T24:12:00Z",
        "2026-11-17T03:60:00Z",
        "2026-11-17X03:12:00Z",
        "2026-11-17",
        "2026-11-17T03:12",
        "2026-11-17T03:12:00Zulu",
        "12026-11-17T03:12:00Z",
    ] {
        assert_eq!(parsed(line), None, "{line}");
    }
    assert_eq!(parsed("2026-11-17T03:12:00+25:00"), None, "not read as UTC");
}

#[test]
fn leap_day_and_leap_year_rules() {
    assert!(parsed("2024-02-29T00:00:00Z").is_some());
    assert!(parsed("2000-02-29T00:00:00Z").is_some());
    assert_eq!(parsed("2100-02-29T00:00:00Z"), None);
    assert_eq!(parsed("2025-02-29T00:00:00Z"), None);
    // Year-less Feb 29 received in 2026 is the most recent leap year.
    assert_eq!(
        parsed("Feb 29 10:00:00 h x:"),
        Some(ms(datetime!(2024-02-29 10:00:00)))
    );
}

#[test]
fn syslog_rfc3164_and_year_inference() {
    assert_eq!(
        parsed("Nov 17 03:12:00 host app[1]: x"),
        Some(ms(datetime!(2026-11-17 03:12:00)))
    );
    assert_eq!(
        parsed("Nov  4 03:12:00 h"),
        Some(ms(datetime!(2026-11-04 03:12:00)))
    );
    assert_eq!(
        parsed("Nov 4 03:12:00 h"),
        Some(ms(datetime!(2026-11-04 03:12:00)))
    );
    assert_eq!(
        parsed("nov 04 03:12:00 h"),
        Some(ms(datetime!(2026-11-04 03:12:00)))
    );
    // Within a day ahead of receipt (clock skew): this year.
    assert_eq!(
        parsed("Nov 19 11:00:00 h"),
        Some(ms(datetime!(2026-11-19 11:00:00)))
    );
    // More than a day ahead: last year.
    assert_eq!(
        parsed("Dec 25 11:00:00 h"),
        Some(ms(datetime!(2025-12-25 11:00:00)))
    );
    assert_eq!(
        parsed("Nov 17 03:12:00 2019 h"),
        Some(ms(datetime!(2019-11-17 03:12:00)))
    );
}

#[test]
fn new_year_rollover() {
    let new_year = ms(datetime!(2027-01-01 00:00:30));
    assert_eq!(
        parsed_at("Dec 31 23:59:59 host x", new_year),
        Some(ms(datetime!(2026-12-31 23:59:59)))
    );
    assert_eq!(
        parsed_at("01-01 00:00:10.000  1  2 I x", new_year),
        Some(ms(datetime!(2027-01-01 00:00:10)))
    );
    assert_eq!(
        parsed_at("[12.31 23:59:59] x", new_year),
        Some(ms(datetime!(2026-12-31 23:59:59)))
    );
}

#[test]
fn apache_error_and_ctime() {
    assert_eq!(
        parsed("[Sun Dec 04 04:47:44 2005] [notice] x"),
        Some(ms(datetime!(2005-12-04 04:47:44)))
    );
    assert_eq!(
        parsed("[Sun Dec 04 04:47:44.123456 2005] [core:error]"),
        Some(ms(datetime!(2005-12-04 04:47:44.123)))
    );
    assert_eq!(
        parsed("Sun Dec  4 04:47:44 2005"),
        Some(ms(datetime!(2005-12-04 04:47:44)))
    );
    assert_eq!(parsed("Sun Dec 04 04:47:44"), None, "ctime needs its year");
}

#[test]
fn access_log_bracket_anywhere_early() {
    let expected = ms_offset(time::macros::datetime!(2015-05-17 10:05:03 +02:00));
    assert_eq!(parsed("[17/May/2015:10:05:03 +0200]"), Some(expected));
    let line = "vhost:443 1.2.3.4 - - [17/May/2015:10:05:03 +0200] \"GET /\"";
    assert_eq!(parsed(line), Some(expected));
    let far = format!("{} [17/May/2015:10:05:03 +0200]", "x".repeat(300));
    assert_eq!(parsed(&far), None, "beyond the first 300 bytes");
}

#[test]
fn java_and_ops_formats() {
    let cases = [
        (
            "17/06/09 20:10:40 INFO x",
            ms(datetime!(2017-06-09 20:10:40)),
        ),
        (
            "081109 203615 148 INFO x",
            ms(datetime!(2008-11-09 20:36:15)),
        ),
        (
            "03-17 16:13:38.811  1702  2395 D x",
            ms(datetime!(2026-03-17 16:13:38.811)),
        ),
        (
            "20171223-22:15:29:606|Step|1|x",
            ms(datetime!(2017-12-23 22:15:29.606)),
        ),
        (
            "20171223-2:5:0:9|Step|1|x",
            ms(datetime!(2017-12-23 02:05:00.009)),
        ),
        (
            "20171223-22:15:29.5 x",
            ms(datetime!(2017-12-23 22:15:29.5)),
        ),
        (
            "[10.30 16:49:06] chrome.exe",
            ms(datetime!(2026-10-30 16:49:06)),
        ),
        (
            "25-Nov-2025 03:12:00.123 INFO",
            ms(datetime!(2025-11-25 03:12:00.123)),
        ),
        (
            "I1117 03:12:00.123456   1 main.go:10] x",
            ms(datetime!(2026-11-17 03:12:00.123)),
        ),
        ("1794913600 x", ms(datetime!(2026-11-17 11:06:40))),
        ("1794913600.25 x", ms(datetime!(2026-11-17 11:06:40.25))),
        ("1794913600123 x", ms(datetime!(2026-11-17 11:06:40.123))),
        ("[1794913600] x", ms(datetime!(2026-11-17 11:06:40))),
    ];
    for (line, expected) in cases {
        assert_eq!(parsed(line), Some(expected), "{line}");
    }
    for line in [
        "10.30 16:49:06 unbracketed could be an IP",
        "179491360 nine digits",
        "17949136001 eleven digits",
        "1794913600abc",
        "081109 2036151",
        "20171223-22:15:29:6060|x",
        "20171223-22:155:29|x",
        "X1117 03:12:00.123456 not a glog letter",
    ] {
        assert_eq!(parsed(line), None, "{line}");
    }
    let glog = find(b"E1117 03:12:00.1 1 x.go:1] boom", 0, RECEIVED).expect("glog");
    assert_eq!(glog.severity, Some(Severity::Error));
}

#[test]
fn mid_line_dates_need_a_year_and_an_early_token() {
    let bgl = "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02 RAS";
    assert_eq!(parsed(bgl), Some(ms(datetime!(2005-06-03 15:42:50.675))));
    assert_eq!(
        parsed("web3 api [2026-11-17T03:12:00Z] x"),
        Some(ms(datetime!(2026-11-17 03:12:00)))
    );
    assert_eq!(
        parsed("a b c d e f 2026-11-17T03:12:00Z"),
        None,
        "seventh token"
    );
    assert_eq!(parsed("id 1794913600 x"), None, "no bare epochs mid-line");
}

#[test]
fn absurd_times_are_located_but_not_used() {
    let found = find(b"1989-12-31T23:59:59Z INFO x", 0, RECEIVED).expect("located");
    assert_eq!((found.start, found.end, found.timestamp_ms), (0, 20, None));
    assert_eq!(
        parsed("2026-11-19T12:00:01Z"),
        None,
        "more than a day ahead"
    );
    assert!(
        parsed("2026-11-19T11:59:59Z").is_some(),
        "clock skew under a day"
    );
    assert_eq!(parsed("0000000001 x"), None);
    assert_eq!(parsed("0000-01-01T00:00:00Z"), None);
}

#[test]
fn parse_whole_requires_the_whole_string() {
    assert!(parse_whole(" 2026-11-17T03:12:00Z ", RECEIVED).is_some());
    assert_eq!(parse_whole("2026-11-17T03:12:00Z x", RECEIVED), None);
    assert_eq!(parse_whole("", RECEIVED), None);
}

#[test]
fn calendar_matches_the_time_crate() {
    // Every day from 1990 to 2100 at a fixed time, as year-ful ISO text.
    let mut day = time::macros::date!(1990 - 01 - 01);
    while day.year() < 2100 {
        let text = format!("{day}T01:02:03Z");
        let expected = ms(day.with_hms(1, 2, 3).expect("valid"));
        assert_eq!(parse_whole(&text, i64::MAX / 2), Some(expected), "{text}");
        assert_eq!(year_of_ms(expected), day.year(), "{text}");
        day = day.next_day().expect("in range");
    }
}
