//! `<state-dir>/checkpoints.json`: the acked offset of every file, on disk.
//!
//! The file is replaced atomically: the new content goes to a temp file that
//! is `sync_all`ed, renamed over the old one, and the directory is fsynced so
//! the rename itself survives a crash. A temp file left by a crash is ignored
//! and removed on load: the previous complete file is still in place.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use loghound_shared::{ByteOffset, FileId};
use serde::{Deserialize, Serialize};

/// Name of the checkpoint file inside the state directory.
pub(crate) const CHECKPOINTS_FILE: &str = "checkpoints.json";
const TEMP_SUFFIX: &str = ".tmp";
const FORMAT_VERSION: u32 = 1;

/// Why checkpoints could not be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a checkpoint file: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: unsupported checkpoint format version {version} (this agent reads {FORMAT_VERSION})")]
    Version { path: PathBuf, version: u32 },
}

/// One file's checkpoint, with what is needed to recognise the file again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckpointRecord {
    pub(crate) file_id: FileId,
    /// Every line before this byte has been acked by the server.
    pub(crate) offset: ByteOffset,
    /// The path the file was last seen at (informational).
    pub(crate) path: PathBuf,
    pub(crate) dev: u64,
    pub(crate) inode: u64,
    /// Birth time of the inode (ns since the epoch); 0 when unknown.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) birth_ns: u64,
    /// Hex SHA-256 of the first line.
    pub(crate) fingerprint: String,
    /// How many times the file was truncated while followed.
    pub(crate) generation: u32,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointFile {
    version: u32,
    files: Vec<CheckpointRecord>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn temp_path(state_dir: &Path) -> PathBuf {
    state_dir.join(format!("{CHECKPOINTS_FILE}{TEMP_SUFFIX}"))
}

/// Loads the checkpoints; an absent file means none. Removes a leftover
/// temp file from an interrupted write.
pub(crate) fn load(state_dir: &Path) -> Result<Vec<CheckpointRecord>, CheckpointError> {
    let temp = temp_path(state_dir);
    match fs::remove_file(&temp) {
        Ok(()) => tracing::info!(path = %temp.display(), "removed leftover checkpoint temp file"),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error(&temp)(error)),
    }
    read_records(&state_dir.join(CHECKPOINTS_FILE))
}

/// Reads a checkpoint file without touching anything (for `status`).
pub(crate) fn read_records(path: &Path) -> Result<Vec<CheckpointRecord>, CheckpointError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io_error(path)(error)),
    };
    let file: CheckpointFile =
        serde_json::from_str(&text).map_err(|source| CheckpointError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
    if file.version != FORMAT_VERSION {
        return Err(CheckpointError::Version {
            path: path.to_path_buf(),
            version: file.version,
        });
    }
    Ok(file.files)
}

/// Atomically replaces the checkpoint file with `records`.
pub(crate) fn store(
    state_dir: &Path,
    records: Vec<CheckpointRecord>,
) -> Result<(), CheckpointError> {
    let temp = temp_path(state_dir);
    let target = state_dir.join(CHECKPOINTS_FILE);
    let body = serde_json::to_vec_pretty(&CheckpointFile {
        version: FORMAT_VERSION,
        files: records,
    })
    .map_err(|source| CheckpointError::Parse {
        path: target.clone(),
        source,
    })?;
    write_atomically(&temp, &target, &body)
}

/// Writes `body` to `temp`, syncs it, renames it over `target` and syncs
/// the directory.
pub(crate) fn write_atomically(
    temp: &Path,
    target: &Path,
    body: &[u8],
) -> Result<(), CheckpointError> {
    let mut file = File::create(temp).map_err(io_error(temp))?;
    file.write_all(body).map_err(io_error(temp))?;
    file.sync_all().map_err(io_error(temp))?;
    drop(file);
    fs::rename(temp, target).map_err(io_error(target))?;
    let dir = target.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, offset: u64) -> CheckpointRecord {
        CheckpointRecord {
            file_id: FileId::new(id).unwrap(),
            offset: ByteOffset(offset),
            path: "/var/log/app.log".into(),
            dev: 2049,
            inode: 77,
            birth_ns: 0,
            fingerprint: "ab".repeat(32),
            generation: 1,
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            load(dir.path()).unwrap(),
            vec![],
            "no file means no checkpoints"
        );
        let records = vec![record("a1", 10), record("b2", 20)];
        store(dir.path(), records.clone()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), records);
        store(dir.path(), vec![record("a1", 30)]).unwrap();
        assert_eq!(load(dir.path()).unwrap(), vec![record("a1", 30)]);
        assert!(!temp_path(dir.path()).exists());
    }

    #[test]
    fn leftover_temp_file_is_ignored_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path(), vec![record("a1", 10)]).unwrap();
        // A crash in the middle of the next write left half a temp file.
        fs::write(temp_path(dir.path()), b"{\"version\":1,\"fil").unwrap();
        assert_eq!(load(dir.path()).unwrap(), vec![record("a1", 10)]);
        assert!(!temp_path(dir.path()).exists());
    }

    #[test]
    fn corrupt_or_future_files_are_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHECKPOINTS_FILE);
        fs::write(&path, b"garbage").unwrap();
        let error = load(dir.path()).unwrap_err().to_string();
        assert!(error.contains(CHECKPOINTS_FILE), "{error}");
        fs::write(&path, br#"{"version":2,"files":[]}"#).unwrap();
        assert!(matches!(
            load(dir.path()),
            Err(CheckpointError::Version { version: 2, .. })
        ));
    }
}
