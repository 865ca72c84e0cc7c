//! The outbox: one delivery per notification and channel, each attempt
//! recorded before it is made, and the history the API shows.

use rusqlite::{params, TransactionBehavior};
use serde::Serialize;

use super::rules::get_rule;
use super::{Store, StoreError};
use crate::alerts::model::Channel;
use crate::alerts::notify::{Notification, NotificationEvent};

/// One delivery as the history shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    /// Stable across retries; sent as `X-Loghound-Delivery`.
    pub delivery_id: String,
    /// Where it goes.
    pub channel: String,
    /// `fire`, `resolve` or `test`.
    pub event: NotificationEvent,
    /// Matches the notification reports.
    pub count: u64,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// When the notification was decided, ms.
    pub created_at_ms: i64,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptRecord>,
}

/// One attempt to deliver.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    /// Start of the attempt, ms.
    pub at_ms: i64,
    /// `sending` (in progress), `delivered`, `failed`, or `unknown` (the
    /// server stopped before learning the outcome).
    pub outcome: String,
    /// The receiver's HTTP status or SMTP reply code.
    pub status_code: Option<u16>,
    /// What went wrong.
    pub error: Option<String>,
}

/// A delivery the outbox still has to make.
#[derive(Debug, Clone)]
pub struct PendingDelivery {
    /// Row id.
    pub row: i64,
    /// Stable id.
    pub delivery_id: String,
    /// Where it goes.
    pub channel: Channel,
    /// What it says.
    pub notification: Notification,
    /// Attempts made before this one.
    pub attempts: u32,
}

impl Store {
    /// Queues a test notification to every channel of a rule.
    pub fn enqueue_test(
        &self,
        notification: &Notification,
        channels: &[Channel],
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ids = enqueue(&tx, notification, channels, now_ms)?;
        tx.commit()?;
        Ok(ids)
    }

    /// Marks attempts left `sending` by a server that stopped as `unknown`.
    /// Their deliveries stay pending and are tried again with the same id.
    pub fn recover_in_flight(&self, now_ms: i64) -> Result<usize, StoreError> {
        let conn = self.conn();
        let n = conn.execute(
            "UPDATE delivery_attempts SET outcome = 'unknown',
                error = 'the server stopped before the outcome was known'
             WHERE outcome = 'sending'",
            [],
        )?;
        conn.execute(
            "UPDATE deliveries SET next_attempt_ms = ?1
             WHERE status = 'pending' AND next_attempt_ms > ?1",
            [now_ms],
        )?;
        Ok(n)
    }

    /// Pending deliveries due by `now_ms`, oldest first, skipping `busy`.
    pub fn due_deliveries(
        &self,
        now_ms: i64,
        limit: usize,
        busy: &std::collections::HashSet<i64>,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT id, delivery_id, channel, payload, attempts FROM deliveries
             WHERE status = 'pending' AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, id",
        )?;
        let mut rows = statement.query([now_ms])?;
        let mut due = Vec::new();
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            if busy.contains(&id) {
                continue;
            }
            let channel: String = row.get(2)?;
            let payload: String = row.get(3)?;
            let (Ok(channel), Ok(notification)) = (
                serde_json::from_str::<Channel>(&channel),
                serde_json::from_str::<Notification>(&payload),
            ) else {
                tracing::error!(delivery = id, "unreadable delivery in the outbox; skipped");
                continue;
            };
            due.push(PendingDelivery {
                row: id,
                delivery_id: row.get(1)?,
                channel,
                notification,
                attempts: row.get(4)?,
            });
            if due.len() >= limit {
                break;
            }
        }
        Ok(due)
    }

    /// When the next pending delivery is due, ms.
    pub fn next_due_ms(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.conn().query_row(
            "SELECT MIN(next_attempt_ms) FROM deliveries WHERE status = 'pending'",
            [],
            |row| row.get(0),
        )?)
    }

    /// Records that an attempt starts; returns its row.
    pub fn begin_attempt(&self, delivery: i64, now_ms: i64) -> Result<i64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE deliveries SET attempts = attempts + 1 WHERE id = ?1",
            [delivery],
        )?;
        tx.execute(
            "INSERT INTO delivery_attempts (delivery, at_ms, outcome) VALUES (?1, ?2, 'sending')",
            params![delivery, now_ms],
        )?;
        let attempt = tx.last_insert_rowid();
        tx.commit()?;
        Ok(attempt)
    }

    /// Records an attempt's outcome and what happens to its delivery next:
    /// `retry_at_ms` `None` ends it (delivered if `delivered`, else failed).
    pub fn finish_attempt(
        &self,
        delivery: i64,
        attempt: i64,
        result: &AttemptResult,
        retry_at_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE delivery_attempts SET outcome = ?2, status_code = ?3, error = ?4 WHERE id = ?1",
            params![
                attempt,
                if result.delivered {
                    "delivered"
                } else {
                    "failed"
                },
                result.status_code,
                result.error
            ],
        )?;
        let (status, next) = match (result.delivered, retry_at_ms) {
            (true, _) => ("delivered", 0),
            (false, Some(at)) => ("pending", at),
            (false, None) => ("failed", 0),
        };
        tx.execute(
            "UPDATE deliveries SET status = ?2, next_attempt_ms = ?3 WHERE id = ?1",
            params![delivery, status, next],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A rule's deliveries, newest first, with their attempts.
    pub fn history(&self, rule_id: i64, limit: usize) -> Result<Vec<DeliveryRecord>, StoreError> {
        let conn = self.conn();
        get_rule(&conn, rule_id)?;
        let mut statement = conn.prepare(
            "SELECT id, delivery_id, channel, event, count, status, created_at FROM deliveries
             WHERE rule_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let mut attempts = conn.prepare(
            "SELECT at_ms, outcome, status_code, error FROM delivery_attempts
             WHERE delivery = ?1 ORDER BY id",
        )?;
        let mut rows = statement.query(params![rule_id, limit as i64])?;
        let mut records = Vec::new();
        while let Some(row) = rows.next()? {
            let row_id: i64 = row.get(0)?;
            let channel: String = row.get(2)?;
            let event: String = row.get(3)?;
            let list = attempts
                .query_map([row_id], |a| {
                    Ok(AttemptRecord {
                        at_ms: a.get(0)?,
                        outcome: a.get(1)?,
                        status_code: a.get(2)?,
                        error: a.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            records.push(DeliveryRecord {
                delivery_id: row.get(1)?,
                channel: serde_json::from_str::<Channel>(&channel)
                    .map(|c| c.describe())
                    .unwrap_or(channel),
                event: NotificationEvent::parse(&event).unwrap_or(NotificationEvent::Fire),
                count: row.get::<_, i64>(4)?.max(0) as u64,
                status: row.get(5)?,
                created_at_ms: row.get(6)?,
                attempts: list,
            });
        }
        Ok(records)
    }
}

/// The outcome of one attempt.
#[derive(Debug, Clone, Default)]
pub struct AttemptResult {
    /// The receiver took it.
    pub delivered: bool,
    /// HTTP status or SMTP code.
    pub status_code: Option<u16>,
    /// What went wrong.
    pub error: Option<String>,
}

pub(super) fn enqueue(
    tx: &rusqlite::Transaction<'_>,
    notification: &Notification,
    channels: &[Channel],
    now_ms: i64,
) -> Result<Vec<String>, StoreError> {
    let payload = serde_json::to_string(notification)
        .map_err(|e| StoreError::Conflict(format!("cannot encode notification: {e}")))?;
    let mut ids = Vec::with_capacity(channels.len());
    for channel in channels {
        let delivery_id = new_delivery_id();
        let channel_json = serde_json::to_string(channel)
            .map_err(|e| StoreError::Conflict(format!("cannot encode channel: {e}")))?;
        tx.execute(
            "INSERT INTO deliveries (delivery_id, rule_id, event, count, channel, payload, status,
                next_attempt_ms, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?7)",
            params![
                delivery_id,
                notification.rule_id,
                notification.event.name(),
                notification.count as i64,
                channel_json,
                payload,
                now_ms,
            ],
        )?;
        ids.push(delivery_id);
    }
    Ok(ids)
}

fn new_delivery_id() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    hex::encode(bytes)
}
