//! Time bounds as people type them: `now`, relative (`-15m`, `-24h`,
//! `-7d`; the minus is optional) or absolute (RFC 3339, or a bare date
//! meaning its midnight UTC).

use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

/// Parses a time bound relative to `now_ms`, returning ms since the epoch.
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if let Some(ms) = parse_relative(text) {
        return Ok(now_ms - ms);
    }
    if let Ok(time) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok((time.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let day = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = Date::parse(text, &day) {
        return Ok(date.midnight().assume_utc().unix_timestamp() * 1000);
    }
    Err(format!(
        "invalid time {text:?}: use `now`, a relative time such as `-15m`, `-24h`, `-7d`, or RFC 3339 such as 2026-11-25T03:12:00Z"
    ))
}

fn parse_relative(text: &str) -> Option<i64> {
    let body = text.strip_prefix('-').unwrap_or(text);
    let split = body.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = body.split_at(split);
    let number: i64 = number.parse().ok()?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return None,
    };
    number.checked_mul(unit_ms)
}

/// Seconds since the epoch as RFC 3339 in UTC (`2026-11-25T03:12:00Z`).
pub fn rfc3339_secs(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// A time in ms as RFC 3339 UTC with milliseconds
/// (`2026-11-25T03:12:00.250Z`), as the API writes times.
pub fn rfc3339_ms(ms: i64) -> String {
    let time = tantivy::DateTime::from_timestamp_millis(ms).into_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time.format(&format).unwrap_or_else(|_| ms.to_string())
}

/// The current time in ms since the epoch.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("-15m", now), Ok(now - 900_000));
        assert_eq!(parse_time("24h", now), Ok(now - 86_400_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z", 0), Ok(1_700_000_000_000));
        assert_eq!(
            parse_time("2023-11-14T23:13:20+01:00", 0),
            Ok(1_700_000_000_000)
        );
        assert_eq!(parse_time("1970-01-02", 0), Ok(86_400_000));
        let err = parse_time("yesterday", now).unwrap_err();
        assert!(err.contains("yesterday"));
        assert!(parse_time("-5x", now).is_err());
        assert!(parse_time("-99999999999999999w", now).is_err());
    }
}
