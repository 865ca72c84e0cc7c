//! The agent's own id: random, chosen on first start, kept in
//! `<state-dir>/agent_id` so it survives restarts and host renames.

use std::path::{Path, PathBuf};

use loghound_shared::AgentId;
use rand::Rng;

use crate::atomic_file::{write_atomically, AtomicWriteError};

const AGENT_ID_FILE: &str = "agent_id";

/// Why the agent id cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum AgentIdError {
    /// The file holds something that is not an agent id.
    #[error("{path}: invalid agent id: {reason}")]
    Invalid {
        /// The agent id file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The agent id file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A new id cannot be stored.
    #[error(transparent)]
    Write(#[from] AtomicWriteError),
}

/// Reads the stored agent id, or creates and stores a new one.
pub(crate) fn load_or_create(state_dir: &Path) -> Result<AgentId, AgentIdError> {
    let path = state_dir.join(AGENT_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            return AgentId::new(text.trim()).map_err(|error| AgentIdError::Invalid {
                path,
                reason: error.to_string(),
            });
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(AgentIdError::Read { path, source }),
    }
    let bytes: [u8; 8] = rand::rng().random();
    let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let temp = state_dir.join(format!("{AGENT_ID_FILE}.tmp"));
    write_atomically(&temp, &path, format!("{text}\n").as_bytes())?;
    tracing::info!(agent_id = %text, "created agent id");
    Ok(AgentId::new(text).expect("hex digits are a valid agent id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        assert_eq!(first.as_str().len(), 16);
        assert_eq!(load_or_create(dir.path()).unwrap(), first);
    }
}
