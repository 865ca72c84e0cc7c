//! The alerting tables of `meta.sqlite`: saved searches, rules with their
//! state, and the outbox. Whatever belongs together is written in one
//! transaction: a rule's new state and the deliveries it causes commit
//! together or not at all, so a crash can neither lose a notification that
//! was decided nor decide it twice.
//!
//! - [`searches`]: saved searches;
//! - [`rules`]: rules, and the outcome of their evaluations;
//! - [`outbox`]: deliveries, their attempts and the history.

mod outbox;
mod rules;
mod searches;

use std::path::Path;
use std::sync::Mutex;

use rusqlite::Connection;

pub use self::outbox::{AttemptRecord, AttemptResult, DeliveryRecord, PendingDelivery};
pub use self::rules::Evaluated;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The change contradicts what is stored.
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("metadata database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// Whether the database failed because the disk (or the quota) is full:
    /// nothing was written, and the same call succeeds once there is room.
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DiskFull
        )
    }
}

/// The alerting tables.
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens `meta.sqlite` under `data_dir`, migrating it.
    pub fn open(data_dir: &Path) -> rusqlite::Result<Store> {
        Ok(Store {
            conn: Mutex::new(crate::meta::open(data_dir)?),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}
