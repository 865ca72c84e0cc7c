//! Test data: events for direct ingest, numbered lines whose identity can
//! be searched, file appends, and an independent word counter.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use loghound_shared::{ByteOffset, Event, FileId};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since_epoch.as_millis()).expect("time fits in i64")
}

/// One event for direct ingest: `message` at `offset` in file `file_id`.
pub fn event(file_id: &str, offset: u64, message: &str) -> Event {
    Event {
        file_id: FileId::new(file_id).expect("valid file id"),
        offset: ByteOffset(offset),
        end_offset: ByteOffset(offset + message.len() as u64 + 1),
        host: "e2e-host".into(),
        source: format!("/var/log/e2e/{file_id}.log"),
        message: message.into(),
        read_at_ms: Some(now_ms()),
        tags: BTreeMap::new(),
        truncated: false,
        invalid_utf8: false,
        format: None,
        fields: Default::default(),
        severity: None,
        time_ms: None,
    }
}

/// Consecutive events of file `file_id`, as if its lines were read from
/// byte `start_offset` on.
pub fn events(file_id: &str, start_offset: u64, messages: &[String]) -> Vec<Event> {
    let mut offset = start_offset;
    messages
        .iter()
        .map(|message| {
            let event = event(file_id, offset, message);
            offset = event.end_offset.0;
            event
        })
        .collect()
}

/// A line that names itself: `{tag} n{number:07} …`. `n0000042` is a token
/// that occurs in exactly one line, so a search for it counts copies.
pub fn numbered_line(tag: &str, number: u64) -> String {
    format!("{tag} n{number:07} lorem ipsum dolor sit amet {number:x}")
}

/// The search term that finds exactly [`numbered_line`]`(_, number)`.
pub fn numbered_term(number: u64) -> String {
    format!("n{number:07}")
}

/// The number in a [`numbered_line`] with this `tag`.
pub fn parse_numbered(tag: &str, message: &str) -> Option<u64> {
    let rest = message.strip_prefix(tag)?.strip_prefix(" n")?;
    rest.get(..7)?.parse().ok()
}

/// `\n`-terminated numbered lines `range` as bytes.
pub fn numbered_lines(tag: &str, range: std::ops::Range<u64>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for number in range {
        bytes.extend_from_slice(numbered_line(tag, number).as_bytes());
        bytes.push(b'\n');
    }
    bytes
}

/// Appends `bytes` to `path`, creating it if needed.
pub fn append(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|error| panic!("open {} for append: {error}", path.display()));
    file.write_all(bytes)
        .unwrap_or_else(|error| panic!("append to {}: {error}", path.display()));
}

/// The complete lines of `bytes` as the agent ships them: every
/// `\n`-terminated line, without the `\n` and without a trailing `\r`. A
/// final line without `\n` is not complete and is left out.
pub fn complete_lines(bytes: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(bytes).expect("test data is UTF-8");
    let mut lines: Vec<String> = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line).to_string())
        .collect();
    lines.pop(); // after the last `\n`: empty or incomplete
    lines
}

/// The words of a line as a case-insensitive full-text index sees them:
/// maximal runs of alphanumeric characters, lowercased.
pub fn words(line: &str) -> impl Iterator<Item = String> + '_ {
    line.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
}

/// How many of `lines` contain `word` (lowercase) as a whole word.
pub fn count_lines_with_word(lines: &[String], word: &str) -> u64 {
    lines
        .iter()
        .filter(|line| words(line).any(|w| w == word))
        .count() as u64
}

/// `unix_ms` as RFC 3339 in UTC with milliseconds,
/// e.g. `2024-05-01T10:00:01.250Z`.
pub fn rfc3339_utc(unix_ms: i64) -> String {
    let seconds = unix_ms.div_euclid(1000);
    let millis = unix_ms.rem_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Howard Hinnant's `days_from_civil`: a date to days since 1970-01-01
/// (month 1–12).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to a date.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_lines_drop_cr_and_the_unterminated_tail() {
        assert_eq!(complete_lines(b"a\r\nb\nc"), vec!["a", "b"]);
        assert_eq!(complete_lines(b"a\r\n"), vec!["a"]);
        assert!(complete_lines(b"").is_empty());
    }

    #[test]
    fn words_are_alphanumeric_runs() {
        let found: Vec<String> = words("ERROR: blk_-123 PacketResponder/1").collect();
        assert_eq!(found, ["error", "blk", "123", "packetresponder", "1"]);
        let lines = vec!["Error here".to_string(), "errors".into(), "an error".into()];
        assert_eq!(count_lines_with_word(&lines, "error"), 2);
    }

    #[test]
    fn numbered_lines_round_trip() {
        let line = numbered_line("crash", 42);
        assert_eq!(parse_numbered("crash", &line), Some(42));
        assert!(words(&line).any(|w| w == numbered_term(42)));
        assert_eq!(parse_numbered("other", &line), None);
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339_utc(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
    }
}
