//! Query-string parameters shared by the read endpoints: time bounds and
//! bounded counts, with the precise 400 messages every endpoint gives.

use super::AppError;
use crate::timeparse::{now_ms, parse_time};

/// `from`/`to` as ms (`from` inclusive, `to` exclusive); empty means open.
pub(super) fn time_range(
    from: Option<String>,
    to: Option<String>,
) -> Result<(Option<i64>, Option<i64>), AppError> {
    let now = now_ms();
    let time = |name: &str, value: Option<String>| {
        value
            .filter(|v| !v.trim().is_empty())
            .map(|v| parse_time(&v, now).map_err(|e| AppError::bad_request(format!("{name}: {e}"))))
            .transpose()
    };
    let from_ms = time("from", from)?;
    let to_ms = time("to", to)?;
    if let (Some(from), Some(to)) = (from_ms, to_ms) {
        if from > to {
            return Err(AppError::bad_request("from: must not be after `to`"));
        }
    }
    Ok((from_ms, to_ms))
}

/// A count parameter from `min` to `max`; absent or empty gives `default`.
pub(super) fn bounded_count(
    name: &str,
    value: Option<&str>,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, AppError> {
    match value.map(str::trim) {
        None | Some("") => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                AppError::bad_request(format!(
                    "{name}: expected a number from {min} to {max}, got {text:?}"
                ))
            }),
    }
}
