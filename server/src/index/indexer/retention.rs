//! `retention_days`: whole days of receipt dropped by the indexer thread,
//! which owns the writers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::Date;
use tracing::{error, info, warn};

use super::Indexer;
use crate::index::DayIndex;

/// How long a retention pass waits for running searches to let go of a
/// dropped day before leaving its deletion to a later commit tick.
const RETENTION_READER_WAIT: Duration = Duration::from_secs(2);

/// What one retention pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Days whose index directory was deleted.
    pub dropped: Vec<Date>,
    /// Days taken out of searches but still held by a running search;
    /// their directories are deleted once it lets go.
    pub deferred: Vec<Date>,
}

impl Indexer {
    /// Drops the day indexes that `retention_days` no longer keeps: every
    /// day before `today − retention_days` (all of such a day is more than
    /// `retention_days` × 24 h old). Days are days of receipt, so only the
    /// WAL records received on a day feed its index; everything logged so
    /// far is committed and checkpointed first, so no replay will ever
    /// need a dropped day (records still on their way to the indexer were
    /// received today). Failures are logged, never fatal: the day stays
    /// and the next pass tries again.
    pub(super) fn retention_pass(&mut self, today: Date) -> RetentionReport {
        let mut report = RetentionReport::default();
        let Some(keep_days) = self.config.retention_days else {
            return report;
        };
        let Some(cutoff) = today.checked_sub(time::Duration::days(i64::from(keep_days))) else {
            return report;
        };
        let expired: Vec<Date> = self
            .indexes
            .days()
            .into_iter()
            .filter(|day| *day < cutoff)
            .collect();
        if expired.is_empty() {
            return report;
        }
        if self.stall.is_none() {
            self.commit_or_stall();
        }
        if !self.uncommitted.is_empty() {
            warn!("retention: indexing is paused by a full disk; no day dropped");
            return report;
        }
        match self.store_checkpoint() {
            Ok(true) => {}
            Ok(false) => {
                info!("retention: the log still holds records to replay; no day dropped");
                return report;
            }
            Err(error) => {
                error!(%error, "retention: cannot write the checkpoint; no day dropped");
                return report;
            }
        }
        for day in expired {
            if let Some(writer) = self.writers.remove(&day) {
                if let Err(error) = writer.writer.wait_merging_threads() {
                    error!(%day, %error, "retention: closing the day's writer failed");
                }
            }
            let still_needed = self
                .indexes
                .open_day(day)
                .map(|index| index.committed_seq() > self.checkpointed_seq)
                .unwrap_or(true);
            if still_needed {
                // Not reachable after the checkpoint above; kept as a guard.
                info!(%day, "retention: day still needed by the write-ahead log; kept");
                continue;
            }
            let Some(index) = self.indexes.remove_day(day) else {
                continue;
            };
            let deadline = Instant::now() + RETENTION_READER_WAIT;
            while Arc::strong_count(&index) > 1 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if Arc::strong_count(&index) > 1 {
                info!(%day, "retention: day dropped from searches; deleting it once running searches end");
                self.doomed.push(index);
                report.deferred.push(day);
            } else if self.delete_day(index) {
                report.dropped.push(day);
            }
        }
        report
    }

    /// Deletes the directories of dropped days that no search holds any
    /// more.
    pub(super) fn delete_released_days(&mut self) {
        let (free, held): (Vec<_>, Vec<_>) = std::mem::take(&mut self.doomed)
            .into_iter()
            .partition(|index| Arc::strong_count(index) == 1);
        self.doomed = held;
        for index in free {
            self.delete_day(index);
        }
    }

    /// Closes a dropped day (its reader and files) and deletes its
    /// directory; returns whether that worked.
    fn delete_day(&self, index: Arc<DayIndex>) -> bool {
        let day = index.day;
        let dir = self.indexes.day_dir(day);
        drop(index);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                info!(%day, "retention: day index deleted");
                true
            }
            Err(error) => {
                error!(%day, %error, dir = %dir.display(), "retention: cannot delete the day index");
                false
            }
        }
    }
}
