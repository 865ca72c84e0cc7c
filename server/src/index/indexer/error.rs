//! Why indexing failed. A full disk pauses the indexer; anything else
//! stops the process, and the log replays on restart.

use crate::index::IndexError;
use crate::ingest::checkpoint::CheckpointError;

/// An indexing failure.
#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    /// A day index could not be opened or created.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// tantivy failed (writer, commit, reader reload).
    #[error("index {action} failed: {source}")]
    Tantivy {
        /// What was being done.
        action: &'static str,
        /// tantivy's error.
        #[source]
        source: tantivy::TantivyError,
    },
    /// Adding a document failed; a failed indexing thread shows there
    /// only as "killed", and joining the threads gave the real cause.
    #[error("adding a document failed ({shown}): {source}")]
    AddDocument {
        /// What `add_document` said.
        shown: String,
        /// The cause the writer's threads gave.
        #[source]
        source: tantivy::TantivyError,
    },
    /// The checkpoint could not be written.
    #[error("cannot write the checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
}

impl IndexerError {
    /// Whether the data directory is full, which the indexer waits out.
    pub fn is_disk_full(&self) -> bool {
        crate::storage::is_disk_full(self)
    }
}

/// `map_err` for tantivy results: names what was being done.
pub(super) fn tantivy(action: &'static str) -> impl Fn(tantivy::TantivyError) -> IndexerError {
    move |source| IndexerError::Tantivy { action, source }
}
