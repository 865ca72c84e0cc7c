//! `checkpoint.json`: what the server knows at a point of the WAL — every
//! record up to `indexed_through_seq` is committed in the indexes, and the
//! deduplication state as of that record. On start the server loads it and
//! replays the WAL from the next record; segments before it can go.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::dedup::{Dedup, StreamSnapshot};

const FILE_NAME: &str = "checkpoint.json";
const TEMP_NAME: &str = "checkpoint.json.tmp";

/// The persisted checkpoint.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format version; only `1` exists.
    pub version: u32,
    /// Every WAL record up to this sequence number is committed.
    pub indexed_through_seq: u64,
    /// Deduplication ranges after that record.
    pub streams: Vec<StreamSnapshot>,
}

impl Checkpoint {
    /// A checkpoint at `seq` with the given state.
    pub fn new(seq: u64, dedup: &Dedup) -> Self {
        Checkpoint {
            version: 1,
            indexed_through_seq: seq,
            streams: dedup.snapshot(),
        }
    }

    /// Loads the checkpoint, or the empty one on a fresh data directory.
    pub fn load(data_dir: &Path) -> anyhow::Result<Checkpoint> {
        let _ = fs::remove_file(data_dir.join(TEMP_NAME));
        let path = data_dir.join(FILE_NAME);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Checkpoint {
                    version: 1,
                    ..Checkpoint::default()
                })
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let checkpoint: Checkpoint = serde_json::from_str(&text)
            .with_context(|| format!("corrupt checkpoint {}", path.display()))?;
        anyhow::ensure!(
            checkpoint.version == 1,
            "checkpoint {} has unknown version {}",
            path.display(),
            checkpoint.version
        );
        Ok(checkpoint)
    }

    /// Writes the checkpoint atomically: temp file, fsync, rename, fsync dir.
    pub fn store(&self, data_dir: &Path) -> std::io::Result<()> {
        let temp = data_dir.join(TEMP_NAME);
        let mut file = File::create(&temp)?;
        file.write_all(&serde_json::to_vec(self)?)?;
        file.sync_all()?;
        fs::rename(&temp, data_dir.join(FILE_NAME))?;
        File::open(data_dir)?.sync_all()
    }

    /// The deduplication state it holds.
    pub fn dedup(&self) -> Dedup {
        Dedup::from_snapshot(self.streams.clone())
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
}
