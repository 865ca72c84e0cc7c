//! `<state-dir>/status.json`: what `loghound-agent status` shows beyond the
//! checkpoints, written by the running agent: its last error and the last
//! error met on each file (cannot open, cannot read). Written atomically,
//! only when an error is new, at most once per rescan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic_file::{write_atomically, AtomicWriteError};
use crate::metrics::ErrorNote;

/// Name of the file inside the state directory.
pub(crate) const STATUS_FILE: &str = "status.json";
const FORMAT_VERSION: u32 = 1;

/// Why `status.json` cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StatusFileError {
    /// It cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// `status.json`.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It is not a status file.
    #[error("{path}: not a status file: {source}")]
    Parse {
        /// `status.json`.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// It is of a format this agent does not read.
    #[error("{path}: unsupported status format version {version}")]
    Version {
        /// `status.json`.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// It cannot be replaced.
    #[error(transparent)]
    Write(#[from] AtomicWriteError),
}

/// The content of `status.json`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StatusFile {
    pub(crate) version: u32,
    /// When the agent wrote this file (ms since the epoch).
    pub(crate) written_at_ms: i64,
    /// The last error of any kind (shipping, files, checkpoints).
    pub(crate) last_error: Option<ErrorNote>,
    /// The last error met on each path.
    pub(crate) file_errors: BTreeMap<PathBuf, ErrorNote>,
}

/// Replaces `status.json` in `state_dir`.
pub(crate) fn store(
    state_dir: &Path,
    last_error: Option<ErrorNote>,
    file_errors: BTreeMap<PathBuf, ErrorNote>,
) -> Result<(), StatusFileError> {
    let status = StatusFile {
        version: FORMAT_VERSION,
        written_at_ms: crate::metrics::now_ms(),
        last_error,
        file_errors,
    };
    let target = state_dir.join(STATUS_FILE);
    let body = serde_json::to_vec_pretty(&status).map_err(|source| StatusFileError::Parse {
        path: target.clone(),
        source,
    })?;
    Ok(write_atomically(
        &state_dir.join("status.json.tmp"),
        &target,
        &body,
    )?)
}

/// Reads `status.json`; an absent file means no error was recorded.
pub(crate) fn load(state_dir: &Path) -> Result<StatusFile, StatusFileError> {
    let path = state_dir.join(STATUS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(StatusFile::default())
        }
        Err(source) => return Err(StatusFileError::Read { path, source }),
    };
    let status: StatusFile = match serde_json::from_str(&text) {
        Ok(status) => status,
        Err(source) => return Err(StatusFileError::Parse { path, source }),
    };
    if status.version != FORMAT_VERSION {
        return Err(StatusFileError::Version {
            path,
            version: status.version,
        });
    }
    Ok(status)
}

/// `at_ms` as UTC `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn format_time(at_ms: i64) -> String {
    let seconds = at_ms.div_euclid(1000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_absent_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), StatusFile::default());
        let note = ErrorNote {
            at_ms: 1_700_000_000_123,
            message: "cannot open: Permission denied".into(),
        };
        let files = BTreeMap::from([(PathBuf::from("/var/log/x.log"), note.clone())]);
        store(dir.path(), Some(note.clone()), files.clone()).unwrap();
        let loaded = load(dir.path()).unwrap();
        assert_eq!(loaded.last_error, Some(note));
        assert_eq!(loaded.file_errors, files);
        std::fs::write(dir.path().join(STATUS_FILE), b"{").unwrap();
        assert!(load(dir.path())
            .unwrap_err()
            .to_string()
            .contains(STATUS_FILE));
    }

    #[test]
    fn formats_utc_times() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert_eq!(format_time(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
