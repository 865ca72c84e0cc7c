//! The per-format scanners: each reads one shape at a byte offset and
//! returns the broken-down time and where it ends. They only index through
//! [`at`] and [`digits`], which return nothing past the end, so no input
//! can make them panic.

use super::calendar::Civil;
use super::{Scan, Severity, TimestampKind};

// ---- byte helpers ----

pub(super) fn at(bytes: &[u8], position: usize) -> u8 {
    bytes.get(position).copied().unwrap_or(0)
}

/// Exactly `count` ASCII digits at `position`.
pub(super) fn digits(bytes: &[u8], position: usize, count: usize) -> Option<u32> {
    let slice = bytes.get(position..position.checked_add(count)?)?;
    slice.iter().try_fold(0u32, |value, &byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + u32::from(byte - b'0'))
    })
}

pub(super) fn count_digits(bytes: &[u8], position: usize) -> usize {
    bytes.get(position..).map_or(0, |rest| {
        rest.iter().take_while(|b| b.is_ascii_digit()).count()
    })
}

/// Whether the timestamp may end at `position`: end of line, whitespace or
/// punctuation, but not a letter or digit that would make it another word.
pub(super) fn is_boundary(bytes: &[u8], position: usize) -> bool {
    !at(bytes, position).is_ascii_alphanumeric()
}

const MONTHS: [&[u8; 3]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];
const WEEKDAYS: [&[u8; 3]; 7] = [b"mon", b"tue", b"wed", b"thu", b"fri", b"sat", b"sun"];

fn three_letters(bytes: &[u8], position: usize) -> Option<[u8; 3]> {
    let slice = bytes.get(position..position + 3)?;
    Some([
        slice[0].to_ascii_lowercase(),
        slice[1].to_ascii_lowercase(),
        slice[2].to_ascii_lowercase(),
    ])
}

fn month_name(bytes: &[u8], position: usize) -> Option<u32> {
    let word = three_letters(bytes, position)?;
    let index = MONTHS.iter().position(|month| **month == word)?;
    Some(index as u32 + 1)
}

fn is_weekday_name(bytes: &[u8], position: usize) -> bool {
    three_letters(bytes, position).is_some_and(|word| WEEKDAYS.contains(&&word))
}

/// `HH<sep>mm<sep>ss` at `position`; sets the time and returns the end.
fn time_of_day(bytes: &[u8], position: usize, separator: u8, civil: &mut Civil) -> Option<usize> {
    civil.hour = digits(bytes, position, 2)?;
    (at(bytes, position + 2) == separator).then_some(())?;
    civil.minute = digits(bytes, position + 3, 2)?;
    (at(bytes, position + 5) == separator).then_some(())?;
    civil.second = digits(bytes, position + 6, 2)?;
    Some(position + 8)
}

/// An optional fraction introduced by one of `separators`; extra digits
/// beyond nanoseconds are skipped.
fn fraction(bytes: &[u8], position: usize, separators: &[u8], civil: &mut Civil) -> usize {
    if !separators.contains(&at(bytes, position)) {
        return position;
    }
    let count = count_digits(bytes, position + 1);
    if count == 0 {
        return position;
    }
    let kept = count.min(9);
    let value = digits(bytes, position + 1, kept).unwrap_or(0);
    civil.nanos = value * 10u32.pow((9 - kept) as u32);
    position + 1 + count
}

/// An optional zone: `Z`, `±HH:MM`, `±HHMM`, `±HH`, or ` ±HHMM`.
fn zone(bytes: &[u8], position: usize, civil: &mut Civil) -> usize {
    let mut sign_at = position;
    match at(bytes, position) {
        b'Z' | b'z' if is_boundary(bytes, position + 1) => return position + 1,
        b' ' if matches!(at(bytes, position + 1), b'+' | b'-')
            && count_digits(bytes, position + 2) == 4 =>
        {
            sign_at = position + 1;
        }
        b'+' | b'-' => {}
        _ => return position,
    }
    let sign = if at(bytes, sign_at) == b'-' { -1 } else { 1 };
    let Some(hours) = digits(bytes, sign_at + 1, 2) else {
        return position;
    };
    let (minutes, end) = if at(bytes, sign_at + 3) == b':' {
        match digits(bytes, sign_at + 4, 2) {
            Some(minutes) => (minutes, sign_at + 6),
            None => return position,
        }
    } else if let Some(minutes) = digits(bytes, sign_at + 3, 2) {
        (minutes, sign_at + 5)
    } else {
        (0, sign_at + 3)
    };
    if hours > 23 || minutes > 59 || at(bytes, end).is_ascii_digit() {
        return position;
    }
    civil.offset_seconds = sign * (hours as i32 * 3600 + minutes as i32 * 60);
    end
}

fn plain_scan(civil: Civil, end: usize, kind: TimestampKind) -> Option<Scan> {
    Some(Scan {
        civil,
        end,
        kind,
        severity: None,
        epoch_ms: None,
    })
}

// ---- scanners ----

/// A timestamp starting exactly at `position`, optionally in brackets.
pub(super) fn scan_at(bytes: &[u8], position: usize) -> Option<Scan> {
    let first = at(bytes, position);
    if first == b'[' {
        let mut scan = match at(bytes, position + 1) {
            b'0'..=b'9' => scan_numeric(bytes, position + 1, true),
            b'A'..=b'Z' | b'a'..=b'z' => scan_alpha(bytes, position + 1),
            _ => None,
        }?;
        if at(bytes, scan.end) == b']' {
            scan.end += 1;
        }
        return Some(scan);
    }
    match first {
        b'0'..=b'9' => scan_numeric(bytes, position, false),
        b'A'..=b'Z' | b'a'..=b'z' => scan_alpha(bytes, position),
        _ => None,
    }
}

fn scan_numeric(bytes: &[u8], position: usize, bracketed: bool) -> Option<Scan> {
    let count = count_digits(bytes, position);
    let next = at(bytes, position + count);
    let scan = match (count, next) {
        (4, b'-') => scan_iso(bytes, position)?,
        (4, b'/') => scan_year_slash(bytes, position)?,
        (8, b'-' | b' ' | b'T') => scan_compact(bytes, position)?,
        (2, b'/') if at(bytes, position + 3).is_ascii_alphabetic() => scan_access(bytes, position)?,
        (2, b'/') => scan_two_digit_year_slash(bytes, position)?,
        (2, b'-') if at(bytes, position + 3).is_ascii_alphabetic() => scan_tomcat(bytes, position)?,
        (2, b'-') => scan_month_day(bytes, position, b'-')?,
        (2, b'.') if bracketed => scan_month_day(bytes, position, b'.')?,
        (6, b' ') => scan_hdfs(bytes, position)?,
        (10 | 13, _) => scan_epoch(bytes, position, count)?,
        _ => return None,
    };
    is_boundary(bytes, scan.end).then_some(scan)
}

/// `yyyy-MM-dd` then `T`/` ` and `HH:mm:ss`, or `-` and IBM `HH.mm.ss`.
pub(super) fn scan_iso(bytes: &[u8], position: usize) -> Option<Scan> {
    let mut civil = Civil {
        year: Some(digits(bytes, position, 4)? as i32),
        month: digits(bytes, position + 5, 2)?,
        ..Civil::default()
    };
    (at(bytes, position + 7) == b'-').then_some(())?;
    civil.day = digits(bytes, position + 8, 2)?;
    let end = match at(bytes, position + 10) {
        b'T' | b't' | b' ' => {
            let end = time_of_day(bytes, position + 11, b':', &mut civil)?;
            let end = fraction(bytes, end, b".,", &mut civil);
            let end = zone(bytes, end, &mut civil);
            if matches!(at(bytes, end), b'+' | b'-') && at(bytes, end + 1).is_ascii_digit() {
                return None; // an offset we cannot read: not a guess at UTC
            }
            end
        }
        b'-' => {
            let separator = at(bytes, position + 13);
            if separator != b'.' && separator != b':' {
                return None;
            }
            let end = time_of_day(bytes, position + 11, separator, &mut civil)?;
            fraction(bytes, end, b".", &mut civil)
        }
        _ => return None,
    };
    plain_scan(civil, end, TimestampKind::Iso)
}

/// nginx error log: `yyyy/MM/dd HH:mm:ss`.
fn scan_year_slash(bytes: &[u8], position: usize) -> Option<Scan> {
    let mut civil = Civil {
        year: Some(digits(bytes, position, 4)? as i32),
        month: digits(bytes, position + 5, 2)?,
        ..Civil::default()
    };
    (at(bytes, position + 7) == b'/' && at(bytes, position + 10) == b' ').then_some(())?;
    civil.day = digits(bytes, position + 8, 2)?;
    let end = time_of_day(bytes, position + 11, b':', &mut civil)?;
    let end = fraction(bytes, end, b".,", &mut civil);
    plain_scan(civil, end, TimestampKind::Iso)
}

/// `yyyyMMdd-HH:mm:ss:SSS` (also with ` ` or `T`, and `.`/`,` millis).
fn scan_compact(bytes: &[u8], position: usize) -> Option<Scan> {
    let mut civil = Civil {
        year: Some(digits(bytes, position, 4)? as i32),
        month: digits(bytes, position + 4, 2)?,
        day: digits(bytes, position + 6, 2)?,
        ..Civil::default()
    };
    let end = unpadded_time_of_day(bytes, position + 9, &mut civil)?;
    let end = if at(bytes, end) == b':' {
        // Java's `H:m:s:S`: a count of milliseconds, not a decimal fraction.
        let count = count_digits(bytes, end + 1);
        if !(1..=3).contains(&count) {
            return None;
        }
        civil.nanos = digits(bytes, end + 1, count)? * 1_000_000;
        end + 1 + count
    } else {
        fraction(bytes, end, b".,", &mut civil)
    };
    plain_scan(civil, end, TimestampKind::Other)
}

/// `H:m:s` with one or two digits each (HealthApp writes `22:16:0`).
fn unpadded_time_of_day(bytes: &[u8], position: usize, civil: &mut Civil) -> Option<usize> {
    let mut end = position;
    let mut parts = [0u32; 3];
    for (index, part) in parts.iter_mut().enumerate() {
        if index > 0 {
            (at(bytes, end) == b':').then_some(())?;
            end += 1;
        }
        let count = count_digits(bytes, end);
        if !(1..=2).contains(&count) {
            return None;
        }
        *part = digits(bytes, end, count)?;
        end += count;
    }
    [civil.hour, civil.minute, civil.second] = parts;
    Some(end)
}

/// Access log: `dd/Mon/yyyy:HH:mm:ss ±HHMM`.
pub(super) fn scan_access(bytes: &[u8], position: usize) -> Option<Scan> {
    let mut civil = Civil {
        day: digits(bytes, position, 2)?,
        month: month_name(bytes, position + 3)?,
        ..Civil::default()
    };
    (at(bytes, position + 6) == b'/' && at(bytes, position + 11) == b':').then_some(())?;
    civil.year = Some(digits(bytes, position + 7, 4)? as i32);
    let end = time_of_day(bytes, position + 12, b':', &mut civil)?;
    let end = fraction(bytes, end, b".", &mut civil);
    let end = zone(bytes, end, &mut civil);
    plain_scan(civil, end, TimestampKind::Access)
}

fn two_digit_year(value: u32) -> i32 {
    if value >= 70 {
        1900 + value as i32
    } else {
        2000 + value as i32
    }
}

/// log4j's default in Spark: `yy/MM/dd HH:mm:ss`.
fn scan_two_digit_year_slash(bytes: &[u8], position: usize) -> Option<Scan> {
    let mut civil = Civil {
        year: Some(two_digit_year(digits(bytes, position, 2)?)),
        month: digits(bytes, position + 3, 2)?,
        ..Civil::default()
    };
    (at(bytes, position + 5) == b'/' && at(bytes, position + 8) == b' ').then_some(())?;
    civil.day = digits(bytes, position + 6, 2)?;
    let end = time_of_day(bytes, position + 9, b':', &mut civil)?;
    let end = fraction(bytes, end, b".,", &mut civil);
    plain_scan(civil, end, TimestampKind::Other)
}

/// Tomcat/Java: `dd-Mon-yyyy HH:mm:ss.SSS`.
fn scan_tomcat(bytes: &[u8], position: usize) -> Option<Scan> {
    let mut civil = Civil {
        day: digits(bytes, position, 2)?,
        month: month_name(bytes, position + 3)?,
        ..Civil::default()
    };
    (at(bytes, position + 6) == b'-' && at(bytes, position + 11) == b' ').then_some(())?;
    civil.year = Some(digits(bytes, position + 7, 4)? as i32);
    let end = time_of_day(bytes, position + 12, b':', &mut civil)?;
    let end = fraction(bytes, end, b".,", &mut civil);
    plain_scan(civil, end, TimestampKind::Other)
}

/// Year-less `MM-dd HH:mm:ss.SSS` (logcat) or `MM.dd HH:mm:ss` (bracketed).
fn scan_month_day(bytes: &[u8], position: usize, separator: u8) -> Option<Scan> {
    let mut civil = Civil {
        month: digits(bytes, position, 2)?,
        ..Civil::default()
    };
    (at(bytes, position + 2) == separator && at(bytes, position + 5) == b' ').then_some(())?;
    civil.day = digits(bytes, position + 3, 2)?;
    let end = time_of_day(bytes, position + 6, b':', &mut civil)?;
    let end = fraction(bytes, end, b".,", &mut civil);
    plain_scan(civil, end, TimestampKind::Other)
}

/// Hadoop HDFS: `yyMMdd HHmmss`.
fn scan_hdfs(bytes: &[u8], position: usize) -> Option<Scan> {
    if count_digits(bytes, position + 7) != 6 {
        return None;
    }
    let civil = Civil {
        year: Some(two_digit_year(digits(bytes, position, 2)?)),
        month: digits(bytes, position + 2, 2)?,
        day: digits(bytes, position + 4, 2)?,
        hour: digits(bytes, position + 7, 2)?,
        minute: digits(bytes, position + 9, 2)?,
        second: digits(bytes, position + 11, 2)?,
        ..Civil::default()
    };
    plain_scan(civil, position + 13, TimestampKind::Other)
}

/// A leading epoch: 10 digits (seconds, optional fraction) or 13 (ms).
fn scan_epoch(bytes: &[u8], position: usize, count: usize) -> Option<Scan> {
    let whole = bytes.get(position..position + count)?;
    let value = whole
        .iter()
        .fold(0i64, |value, &byte| value * 10 + i64::from(byte - b'0'));
    let mut end = position + count;
    let epoch_ms = if count == 13 {
        value
    } else {
        let mut civil = Civil::default();
        end = fraction(bytes, end, b".", &mut civil);
        value * 1000 + i64::from(civil.nanos / 1_000_000)
    };
    Some(Scan {
        civil: Civil::default(),
        end,
        kind: TimestampKind::Epoch,
        severity: None,
        epoch_ms: Some(epoch_ms),
    })
}

/// Formats that start with a letter: RFC 3164, ctime, glog.
fn scan_alpha(bytes: &[u8], position: usize) -> Option<Scan> {
    let scan = if let Some(month) = month_name(bytes, position) {
        scan_syslog(bytes, position, month)?
    } else if is_weekday_name(bytes, position) {
        scan_ctime(bytes, position)?
    } else {
        scan_glog(bytes, position)?
    };
    is_boundary(bytes, scan.end).then_some(scan)
}

/// A day of month padded to two columns: `04`, ` 4`, or `4` alone.
fn padded_day(bytes: &[u8], position: usize) -> Option<(u32, usize)> {
    if at(bytes, position) == b' ' {
        return Some((digits(bytes, position + 1, 1)?, position + 2));
    }
    if let Some(day) = digits(bytes, position, 2) {
        return Some((day, position + 2));
    }
    Some((digits(bytes, position, 1)?, position + 1))
}

/// RFC 3164: `Mmm dd HH:mm:ss[.frac][ yyyy]`.
fn scan_syslog(bytes: &[u8], position: usize, month: u32) -> Option<Scan> {
    (at(bytes, position + 3) == b' ').then_some(())?;
    let (day, after_day) = padded_day(bytes, position + 4)?;
    (at(bytes, after_day) == b' ').then_some(())?;
    let mut civil = Civil {
        month,
        day,
        ..Civil::default()
    };
    let end = time_of_day(bytes, after_day + 1, b':', &mut civil)?;
    let mut end = fraction(bytes, end, b".,", &mut civil);
    if at(bytes, end) == b' ' && count_digits(bytes, end + 1) == 4 {
        civil.year = Some(digits(bytes, end + 1, 4)? as i32);
        end += 5;
    }
    plain_scan(civil, end, TimestampKind::Syslog)
}

/// ctime / Apache error log: `Www Mmm dd HH:mm:ss[.frac] yyyy`.
fn scan_ctime(bytes: &[u8], position: usize) -> Option<Scan> {
    (at(bytes, position + 3) == b' ' && at(bytes, position + 7) == b' ').then_some(())?;
    let month = month_name(bytes, position + 4)?;
    let (day, after_day) = padded_day(bytes, position + 8)?;
    (at(bytes, after_day) == b' ').then_some(())?;
    let mut civil = Civil {
        month,
        day,
        ..Civil::default()
    };
    let end = time_of_day(bytes, after_day + 1, b':', &mut civil)?;
    let end = fraction(bytes, end, b".", &mut civil);
    (at(bytes, end) == b' ').then_some(())?;
    civil.year = Some(digits(bytes, end + 1, 4)? as i32);
    plain_scan(civil, end + 5, TimestampKind::Ctime)
}

/// glog/klog: `Lmmdd HH:mm:ss.uuuuuu`, L one of `IWEF`.
fn scan_glog(bytes: &[u8], position: usize) -> Option<Scan> {
    let severity = Severity::from_letter(at(bytes, position))?;
    if !matches!(at(bytes, position), b'I' | b'W' | b'E' | b'F') || at(bytes, position + 5) != b' '
    {
        return None;
    }
    let mut civil = Civil {
        month: digits(bytes, position + 1, 2)?,
        day: digits(bytes, position + 3, 2)?,
        ..Civil::default()
    };
    let end = time_of_day(bytes, position + 6, b':', &mut civil)?;
    let end = fraction(bytes, end, b".", &mut civil);
    let mut scan = plain_scan(civil, end, TimestampKind::Other)?;
    scan.severity = Some(severity);
    Some(scan)
}
