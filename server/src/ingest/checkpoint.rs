//! `checkpoint.json`: where replay starts. Every log record up to
//! `indexed_through_seq` is committed in the indexes; `streams` is the
//! deduplication state of at least those records (it may also hold later
//! ones, which replay then finds again). On start the server loads it and
//! reads the log from the next record; the log may free what is before.
//!
//! Versions: 1 (earlier releases) holds the state exactly as of
//! `indexed_through_seq`, which records of those releases need, since
//! their replay decides again which events are new. 2 holds the state as
//! of some durable record at or after it. [`Checkpoints`] writes version
//! 2 only once no record of an earlier release is left to replay.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::dedup::{Dedup, StreamSnapshot};
use crate::log::{Log, LogError, LogPosition};

const FILE_NAME: &str = "checkpoint.json";
const TEMP_NAME: &str = "checkpoint.json.tmp";
/// The version this release writes.
const VERSION: u32 = 2;

/// Why the checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing the file failed.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a checkpoint.
    #[error("corrupt checkpoint {path}: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: serde_json::Error,
    },
    /// Written by a newer release.
    #[error("checkpoint {path} has unknown version {version}")]
    UnknownVersion {
        /// The file.
        path: PathBuf,
        /// Its version.
        version: u32,
    },
    /// The log could not free what the checkpoint covers.
    #[error("cannot release the log behind the checkpoint: {0}")]
    Release(#[from] LogError),
}

impl CheckpointError {
    /// Whether the failure is a full disk, which the indexer waits out.
    pub fn is_disk_full(&self) -> bool {
        match self {
            CheckpointError::Io { source, .. } => crate::storage::is_disk_full_io(source),
            CheckpointError::Release(LogError::StorageFull(_)) => true,
            _ => false,
        }
    }
}

/// The persisted checkpoint.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format version: 1 or 2 (see the module's documentation).
    pub version: u32,
    /// Every log record up to this position is committed.
    pub indexed_through_seq: u64,
    /// Deduplication ranges.
    pub streams: Vec<StreamSnapshot>,
}

impl Checkpoint {
    /// A checkpoint at `seq` with the given state.
    pub fn new(seq: u64, dedup: &Dedup) -> Self {
        Checkpoint {
            version: VERSION,
            indexed_through_seq: seq,
            streams: dedup.snapshot(),
        }
    }

    /// Loads the checkpoint, or the empty one on a fresh data directory.
    pub fn load(data_dir: &Path) -> Result<Checkpoint, CheckpointError> {
        let _ = fs::remove_file(data_dir.join(TEMP_NAME));
        let path = data_dir.join(FILE_NAME);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Checkpoint {
                    version: VERSION,
                    ..Checkpoint::default()
                })
            }
            Err(source) => return Err(CheckpointError::Io { path, source }),
        };
        let checkpoint: Checkpoint =
            serde_json::from_str(&text).map_err(|source| CheckpointError::Corrupt {
                path: path.clone(),
                source,
            })?;
        if !(1..=VERSION).contains(&checkpoint.version) {
            return Err(CheckpointError::UnknownVersion {
                path,
                version: checkpoint.version,
            });
        }
        Ok(checkpoint)
    }

    /// Writes the checkpoint atomically: temp file, fsync, rename, fsync dir.
    pub fn store(&self, data_dir: &Path) -> Result<(), CheckpointError> {
        let temp = data_dir.join(TEMP_NAME);
        let io = |source| CheckpointError::Io {
            path: data_dir.join(FILE_NAME),
            source,
        };
        let body = serde_json::to_vec(self).map_err(|e| io(e.into()))?;
        let mut file = File::create(&temp).map_err(io)?;
        file.write_all(&body).map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&temp, data_dir.join(FILE_NAME)).map_err(io)?;
        File::open(data_dir).and_then(|d| d.sync_all()).map_err(io)
    }

    /// The deduplication state it holds.
    pub fn dedup(&self) -> Dedup {
        Dedup::from_snapshot(self.streams.clone())
    }
}

/// What [`Checkpoints::store`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Written; the log was released through the position, freeing this
    /// many storage units.
    Written {
        /// Segments (or the like) the log freed.
        released: usize,
    },
    /// Not written: records of an earlier release up to this position
    /// still wait to be committed.
    Deferred(LogPosition),
}

/// Writes checkpoints for the indexer: the ingest room owns the
/// deduplication state, the indexer knows what is committed. Clones share
/// everything.
#[derive(Clone)]
pub struct Checkpoints {
    data_dir: PathBuf,
    log: Arc<dyn Log>,
    state: Arc<Mutex<Dedup>>,
    /// The last record of an earlier release that replay handed on.
    legacy_through: Arc<AtomicU64>,
}

impl Checkpoints {
    /// A writer of `data_dir/checkpoint.json` over `log` and the ingest
    /// room's `state`.
    pub fn new(data_dir: &Path, log: Arc<dyn Log>, state: Arc<Mutex<Dedup>>) -> Self {
        Checkpoints {
            data_dir: data_dir.to_path_buf(),
            log,
            state,
            legacy_through: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The marker replay raises (under the state's lock, before deciding)
    /// for each record of an earlier release.
    pub(super) fn legacy_marker(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.legacy_through)
    }

    /// Stores a checkpoint saying every record through `committed` is in
    /// the indexes, then lets the log free what is before it. The
    /// deduplication state is taken together with the last appended
    /// position and written only once that position is durable, so it
    /// never names an event a crash could still take back.
    pub fn store(&self, committed: LogPosition) -> Result<Stored, CheckpointError> {
        let (snapshot, appended) = {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let legacy = LogPosition(self.legacy_through.load(Ordering::SeqCst));
            if committed < legacy {
                return Ok(Stored::Deferred(legacy));
            }
            (state.snapshot(), self.log.last_appended())
        };
        self.log.wait_durable_blocking(appended);
        Checkpoint {
            version: VERSION,
            indexed_through_seq: committed.get(),
            streams: snapshot,
        }
        .store(&self.data_dir)?;
        let released = self.log.release_through(committed)?;
        Ok(Stored::Written { released })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_then_load_and_leftover_temp_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Checkpoint::load(dir.path()).unwrap().indexed_through_seq, 0);
        Checkpoint::new(42, &Dedup::default())
            .store(dir.path())
            .unwrap();
        fs::write(dir.path().join(TEMP_NAME), b"{half a wri").unwrap();
        let loaded = Checkpoint::load(dir.path()).unwrap();
        assert_eq!(loaded.indexed_through_seq, 42);
        assert!(!dir.path().join(TEMP_NAME).exists());
    }

    #[test]
    fn checkpoints_of_the_previous_release_load_and_unknown_versions_do_not() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(FILE_NAME),
            br#"{"version":1,"indexed_through_seq":7,"streams":[{"agent":"a1","file_id":"f1","ranges":[[0,120]]}]}"#,
        )
        .unwrap();
        let loaded = Checkpoint::load(dir.path()).unwrap();
        assert_eq!((loaded.version, loaded.indexed_through_seq), (1, 7));
        assert_eq!(loaded.dedup().num_streams(), 1);
        fs::write(
            dir.path().join(FILE_NAME),
            br#"{"version":3,"indexed_through_seq":7,"streams":[]}"#,
        )
        .unwrap();
        assert!(matches!(
            Checkpoint::load(dir.path()),
            Err(CheckpointError::UnknownVersion { version: 3, .. })
        ));
    }

    #[test]
    fn no_checkpoint_is_written_while_records_of_an_earlier_release_wait() {
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn Log> = Arc::new(crate::log::memory::MemoryLog::default());
        let checkpoints = Checkpoints::new(dir.path(), log, Arc::default());
        checkpoints.legacy_marker().store(5, Ordering::SeqCst);
        assert_eq!(
            checkpoints.store(LogPosition(4)).unwrap(),
            Stored::Deferred(LogPosition(5))
        );
        assert!(!dir.path().join(FILE_NAME).exists());
        assert!(matches!(
            checkpoints.store(LogPosition(5)).unwrap(),
            Stored::Written { .. }
        ));
        assert_eq!(Checkpoint::load(dir.path()).unwrap().indexed_through_seq, 5);
    }
}
