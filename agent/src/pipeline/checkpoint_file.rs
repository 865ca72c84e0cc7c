//! `<state-dir>/checkpoints.json`: the settled position of every stream,
//! on disk.
//!
//! Format 2 (written by this agent) holds one entry per stream: the source
//! that owns it, its wire stream id, a label for `status`, the settled
//! wire position, an optional cursor and the source's own state (a JSON
//! value with its own `version`, which only the source interprets). The
//! list keeps format 1's key, `files`, and each entry its `offset`, so
//! what reads `files[].offset` (scripts, benchmarks) keeps working.
//! Format 1 (written by agents before sources had a seam) held only file
//! streams; it is still read, each record becoming a `file` stream whose
//! state is the record without its id and offset (the file source's state
//! version 1), so an upgraded agent carries on exactly where the old one
//! stopped.
//!
//! The file is replaced atomically ([`crate::atomic_file`]). A temp file
//! left by a crash is ignored and removed on load: the previous complete
//! file is still in place.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use loghound_shared::{ByteOffset, FileId};
use serde::{Deserialize, Serialize};

use crate::atomic_file::{write_atomically, AtomicWriteError};

/// Name of the checkpoint file inside the state directory.
pub(crate) const CHECKPOINTS_FILE: &str = "checkpoints.json";
const TEMP_SUFFIX: &str = ".tmp";
/// The format this agent writes.
const FORMAT_VERSION: u32 = 2;
/// The format of agents before sources: file records only.
const FORMAT_VERSION_FILES_ONLY: u32 = 1;
/// The source that owns every stream of a format-1 file.
const FORMAT_1_SOURCE: &str = "file";

/// Why checkpoints could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The checkpoint file (or its temp file).
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file is not a checkpoint file.
    #[error("{path}: not a checkpoint file: {source}")]
    Parse {
        /// The checkpoint file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The file is of a format this agent does not read.
    #[error("{path}: unsupported checkpoint format version {version} (this agent reads {FORMAT_VERSION_FILES_ONLY} and {FORMAT_VERSION})")]
    Version {
        /// The checkpoint file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// The file cannot be replaced.
    #[error(transparent)]
    Write(#[from] AtomicWriteError),
}

/// One stream's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamCheckpoint {
    /// The source that owns the stream (`file`, ...).
    pub(crate) source: String,
    /// The stream's id on the wire (events' `file_id`).
    pub(crate) stream_id: FileId,
    /// What `status` calls the stream (a file's last path).
    pub(crate) label: String,
    /// Every event of the stream before this wire position is settled.
    pub(crate) offset: ByteOffset,
    /// The source's resume point at `offset`, when the wire position does
    /// not say it (a journal cursor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cursor: Option<String>,
    /// What the source records about the stream besides; its own format.
    pub(crate) state: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointFile {
    version: u32,
    /// Every stream, files or not (the key is format 1's).
    files: Vec<StreamCheckpoint>,
}

#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

/// A record of format 1: one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRecordV1 {
    file_id: FileId,
    offset: ByteOffset,
    path: PathBuf,
    dev: u64,
    inode: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    birth_ns: u64,
    fingerprint: String,
    generation: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointFileV1 {
    #[allow(dead_code)]
    version: u32,
    files: Vec<FileRecordV1>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl FileRecordV1 {
    /// The same file as a format-2 stream of the file source.
    fn upgrade(self) -> Result<StreamCheckpoint, serde_json::Error> {
        let (stream_id, offset, label) = (
            self.file_id.clone(),
            self.offset,
            self.path.display().to_string(),
        );
        let mut state = serde_json::to_value(&self)?;
        if let serde_json::Value::Object(fields) = &mut state {
            fields.remove("file_id");
            fields.remove("offset");
            fields.insert("version".into(), FORMAT_VERSION_FILES_ONLY.into());
        }
        Ok(StreamCheckpoint {
            source: FORMAT_1_SOURCE.into(),
            stream_id,
            label,
            offset,
            cursor: None,
            state,
        })
    }
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
pub(crate) fn load(state_dir: &Path) -> Result<Vec<StreamCheckpoint>, CheckpointError> {
    let temp = temp_path(state_dir);
    match fs::remove_file(&temp) {
        Ok(()) => tracing::info!(path = %temp.display(), "removed leftover checkpoint temp file"),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error(&temp)(error)),
    }
    read_checkpoints(&state_dir.join(CHECKPOINTS_FILE))
}

/// Reads a checkpoint file of any supported format without touching
/// anything (for `status`).
pub(crate) fn read_checkpoints(path: &Path) -> Result<Vec<StreamCheckpoint>, CheckpointError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io_error(path)(error)),
    };
    let parse_error = |source| CheckpointError::Parse {
        path: path.to_path_buf(),
        source,
    };
    let VersionOnly { version } = serde_json::from_str(&text).map_err(parse_error)?;
    match version {
        FORMAT_VERSION => {
            let file: CheckpointFile = serde_json::from_str(&text).map_err(parse_error)?;
            Ok(file.files)
        }
        FORMAT_VERSION_FILES_ONLY => {
            let file: CheckpointFileV1 = serde_json::from_str(&text).map_err(parse_error)?;
            tracing::info!(path = %path.display(), num_files = file.files.len(), "read checkpoints of format 1; they are written in format 2 from now on");
            file.files
                .into_iter()
                .map(FileRecordV1::upgrade)
                .collect::<Result<_, _>>()
                .map_err(parse_error)
        }
        version => Err(CheckpointError::Version {
            path: path.to_path_buf(),
            version,
        }),
    }
}

/// Atomically replaces the checkpoint file with `checkpoints`.
pub(crate) fn store(
    state_dir: &Path,
    checkpoints: Vec<StreamCheckpoint>,
) -> Result<(), CheckpointError> {
    let temp = temp_path(state_dir);
    let target = state_dir.join(CHECKPOINTS_FILE);
    let body = serde_json::to_vec_pretty(&CheckpointFile {
        version: FORMAT_VERSION,
        files: checkpoints,
    })
    .map_err(|source| CheckpointError::Parse {
        path: target.clone(),
        source,
    })?;
    Ok(write_atomically(&temp, &target, &body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(id: &str, offset: u64) -> StreamCheckpoint {
        StreamCheckpoint {
            source: "file".into(),
            stream_id: FileId::new(id).unwrap(),
            label: "/var/log/app.log".into(),
            offset: ByteOffset(offset),
            cursor: None,
            state: serde_json::json!({"version": 1, "inode": 77}),
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
        let checkpoints = vec![checkpoint("a1", 10), checkpoint("b2", 20)];
        store(dir.path(), checkpoints.clone()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), checkpoints);
        store(dir.path(), vec![checkpoint("a1", 30)]).unwrap();
        assert_eq!(load(dir.path()).unwrap(), vec![checkpoint("a1", 30)]);
        assert!(!temp_path(dir.path()).exists());
    }

    #[test]
    fn leftover_temp_file_is_ignored_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path(), vec![checkpoint("a1", 10)]).unwrap();
        // A crash in the middle of the next write left half a temp file.
        fs::write(temp_path(dir.path()), b"{\"version\":2,\"str").unwrap();
        assert_eq!(load(dir.path()).unwrap(), vec![checkpoint("a1", 10)]);
        assert!(!temp_path(dir.path()).exists());
    }

    #[test]
    fn corrupt_or_future_files_are_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHECKPOINTS_FILE);
        fs::write(&path, b"garbage").unwrap();
        let error = load(dir.path()).unwrap_err().to_string();
        assert!(error.contains(CHECKPOINTS_FILE), "{error}");
        fs::write(&path, br#"{"version":3,"files":[]}"#).unwrap();
        assert!(matches!(
            load(dir.path()),
            Err(CheckpointError::Version { version: 3, .. })
        ));
    }

    /// What the agent wrote before format 2, byte for byte.
    const FORMAT_1: &str = r#"{
  "version": 1,
  "files": [
    {
      "file_id": "3f2a9c0d1e5b7a64",
      "offset": 4096,
      "path": "/var/log/app.log",
      "dev": 2049,
      "inode": 77,
      "birth_ns": 1700000000123456789,
      "fingerprint": "abababababababababababababababababababababababababababababababab",
      "generation": 1
    },
    {
      "file_id": "00aa11bb22cc33dd",
      "offset": 12,
      "path": "/var/log/old.log",
      "dev": 2049,
      "inode": 78,
      "fingerprint": "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
      "generation": 0
    }
  ]
}"#;

    #[test]
    fn format_1_is_read_as_file_streams_and_written_back_as_format_2() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CHECKPOINTS_FILE), FORMAT_1).unwrap();
        let checkpoints = load(dir.path()).unwrap();
        assert_eq!(checkpoints.len(), 2);
        let first = &checkpoints[0];
        assert_eq!(
            (
                first.source.as_str(),
                first.stream_id.as_str(),
                first.offset
            ),
            ("file", "3f2a9c0d1e5b7a64", ByteOffset(4096))
        );
        assert_eq!(first.label, "/var/log/app.log");
        assert_eq!(first.cursor, None);
        assert_eq!(
            first.state,
            serde_json::json!({
                "version": 1,
                "path": "/var/log/app.log",
                "dev": 2049,
                "inode": 77,
                "birth_ns": 1_700_000_000_123_456_789u64,
                "fingerprint": "ab".repeat(32),
                "generation": 1,
            })
        );
        assert_eq!(checkpoints[1].state.get("birth_ns"), None);
        store(dir.path(), checkpoints.clone()).unwrap();
        let text = fs::read_to_string(dir.path().join(CHECKPOINTS_FILE)).unwrap();
        assert!(text.contains("\"version\": 2"), "{text}");
        assert_eq!(load(dir.path()).unwrap(), checkpoints);
    }
}
