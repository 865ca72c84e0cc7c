//! Calendar arithmetic: broken-down times to ms since the epoch, the year
//! of year-less formats, and what counts as a plausible time.

use super::Scan;

const MIN_PLAUSIBLE_MS: i64 = 631_152_000_000;
const DAY_MS: i64 = 86_400_000;

/// A broken-down time as written; `year: None` when the format has none.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Civil {
    pub(super) year: Option<i32>,
    pub(super) month: u32,
    pub(super) day: u32,
    pub(super) hour: u32,
    pub(super) minute: u32,
    pub(super) second: u32,
    pub(super) nanos: u32,
    pub(super) offset_seconds: i32,
}

/// Interprets a JSON number as epoch seconds, or ms when above 1e11.
pub fn from_epoch_number(value: f64, received_at_ms: i64) -> Option<i64> {
    if !value.is_finite() {
        return None;
    }
    let ms = if value.abs() > 1e11 {
        value
    } else {
        value * 1000.0
    };
    if ms.abs() > 1e15 {
        return None;
    }
    plausible(ms.floor() as i64, received_at_ms)
}

fn plausible(ms: i64, received_at_ms: i64) -> Option<i64> {
    (MIN_PLAUSIBLE_MS..=received_at_ms.saturating_add(DAY_MS))
        .contains(&ms)
        .then_some(ms)
}

pub(super) fn resolve(scan: &Scan, received_at_ms: i64) -> Option<i64> {
    if let Some(ms) = scan.epoch_ms {
        return plausible(ms, received_at_ms);
    }
    let civil = &scan.civil;
    if let Some(year) = civil.year {
        return plausible(civil_to_ms(year, civil)?, received_at_ms);
    }
    let latest_ms = received_at_ms.saturating_add(DAY_MS);
    let received_year = year_of_ms(received_at_ms);
    // Up to four years back, so that Feb 29 finds its leap year.
    for year in (received_year - 4..=received_year).rev() {
        if let Some(ms) = civil_to_ms(year, civil) {
            if ms <= latest_ms {
                return plausible(ms, received_at_ms);
            }
        }
    }
    None
}

fn civil_to_ms(year: i32, civil: &Civil) -> Option<i64> {
    if !(1..=12).contains(&civil.month)
        || civil.day < 1
        || civil.day > days_in_month(year, civil.month)
        || civil.hour > 23
        || civil.minute > 59
        || civil.second > 60
    {
        return None;
    }
    let days = days_from_civil(year, civil.month, civil.day);
    let seconds = days * 86_400
        + i64::from(civil.hour) * 3600
        + i64::from(civil.minute) * 60
        + i64::from(civil.second)
        - i64::from(civil.offset_seconds);
    Some(seconds * 1000 + i64::from(civil.nanos / 1_000_000))
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The UTC calendar year of an instant (Hinnant's `civil_from_days`).
pub(super) fn year_of_ms(ms: i64) -> i32 {
    // Years 0..=9999 are all any caller needs; this keeps the arithmetic
    // far from overflow whatever `received_at_ms` says.
    const YEAR_10000_MS: i64 = 253_402_300_800_000;
    let ms = ms.clamp(-62_167_219_200_000, YEAR_10000_MS);
    let days = ms.div_euclid(DAY_MS) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let year = year_of_era + era * 400 + i64::from(month_index >= 10);
    year.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}
