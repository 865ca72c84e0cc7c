//! The alerting tables of `meta.sqlite`: saved searches, rules with their
//! state, and the outbox. Whatever belongs together is written in one
//! transaction: a rule's new state and the deliveries it causes commit
//! together or not at all, so a crash can neither lose a notification that
//! was decided nor decide it twice.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

use super::model::{
    Channel, Rule, RuleInput, RuleKind, RuleState, RuleStatus, SavedSearch, SearchInput,
};
use super::notify::{Notification, NotificationEvent};

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

/// What an evaluation decided for a rule.
#[derive(Debug, Clone)]
pub struct Evaluated {
    /// Rule id.
    pub rule_id: i64,
    /// The rule's version the evaluation read; if it changed since, the
    /// result is dropped and the rule evaluated again.
    pub version: i64,
    /// New status.
    pub status: RuleStatus,
    /// New watermark.
    pub watermark_id: u64,
    /// Next evaluation, ms.
    pub next_eval_ms: i64,
    /// The notification to send, if any.
    pub notification: Option<Notification>,
}

/// The alerting tables.
pub struct Store {
    conn: Mutex<Connection>,
}

const RULE_COLUMNS: &str = "r.id, r.search_id, r.name, s.query, s.name, r.kind, r.interval_secs,
    r.window_secs, r.threshold, r.samples, r.enabled, r.muted_until_ms, r.channels, r.created_at,
    r.version, r.status, r.watermark_id, r.next_eval_ms, r.last_fired_ms";

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

    // ---- saved searches ----

    /// Creates a saved search.
    pub fn create_search(
        &self,
        input: &SearchInput,
        now_ms: i64,
    ) -> Result<SavedSearch, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO saved_searches (name, query, range, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![input.name, input.query, input.range, now_ms],
        )
        .map_err(|e| name_taken(e, &input.name))?;
        let id = conn.last_insert_rowid();
        get_search(&conn, id)
    }

    /// Every saved search, by name.
    pub fn list_searches(&self) -> Result<Vec<SavedSearch>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT id, name, query, range, created_at FROM saved_searches ORDER BY name, id",
        )?;
        let rows = statement.query_map([], search_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One saved search.
    pub fn get_search(&self, id: i64) -> Result<SavedSearch, StoreError> {
        get_search(&self.conn(), id)
    }

    /// Replaces a saved search's name, query and range. Rules on it pick
    /// up the change; if the query changed they start over (not firing)
    /// from their current watermark.
    pub fn update_search(&self, id: i64, input: &SearchInput) -> Result<SavedSearch, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old = get_search(&tx, id)?;
        tx.execute(
            "UPDATE saved_searches SET name = ?2, query = ?3, range = ?4 WHERE id = ?1",
            params![id, input.name, input.query, input.range],
        )
        .map_err(|e| name_taken(e, &input.name))?;
        // Rules re-read their search; if the query changed, what they
        // counted no longer holds and their state starts over.
        let reset = old.query != input.query;
        tx.execute(
            "UPDATE alert_rules SET version = version + 1,
                status = CASE WHEN ?2 THEN 'ok' ELSE status END,
                next_eval_ms = CASE WHEN ?2 THEN 0 ELSE next_eval_ms END
             WHERE search_id = ?1",
            params![id, reset],
        )?;
        let search = get_search(&tx, id)?;
        tx.commit()?;
        Ok(search)
    }

    /// Deletes a saved search that no rule uses.
    pub fn delete_search(&self, id: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let users: Vec<i64> = {
            let mut statement =
                tx.prepare("SELECT id FROM alert_rules WHERE search_id = ?1 ORDER BY id")?;
            let rows = statement.query_map([id], |row| row.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        if !users.is_empty() {
            let list: Vec<String> = users.iter().map(i64::to_string).collect();
            return Err(StoreError::Conflict(format!(
                "saved search {id} is used by alert rule(s) {}; delete them first",
                list.join(", ")
            )));
        }
        if tx.execute("DELETE FROM saved_searches WHERE id = ?1", [id])? == 0 {
            return Err(StoreError::NotFound(format!("saved search {id}")));
        }
        tx.commit()?;
        Ok(())
    }

    // ---- rules ----

    /// Creates a rule. `watermark_id` is the newest committed event id: a
    /// new `any` rule reports what arrives from now on, not the past.
    pub fn create_rule(
        &self,
        input: &RuleInput,
        watermark_id: u64,
        now_ms: i64,
    ) -> Result<Rule, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let search = get_search(&tx, input.search_id)?;
        let name = input.name.clone().unwrap_or(search.name);
        tx.execute(
            "INSERT INTO alert_rules (search_id, name, kind, interval_secs, window_secs, threshold,
                samples, enabled, muted_until_ms, channels, created_at, watermark_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                input.search_id,
                name,
                input.kind.name(),
                input.interval_secs,
                input.window_secs,
                input.threshold,
                input.samples,
                input.enabled,
                input.muted_until_ms,
                channels_json(&input.channels),
                now_ms,
                watermark_id as i64,
            ],
        )?;
        let id = tx.last_insert_rowid();
        let rule = get_rule(&tx, id)?;
        tx.commit()?;
        Ok(rule)
    }

    /// Every rule, by id.
    pub fn list_rules(&self) -> Result<Vec<Rule>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare(&format!(
            "SELECT {RULE_COLUMNS} FROM alert_rules r JOIN saved_searches s ON s.id = r.search_id
             ORDER BY r.id"
        ))?;
        let rows = statement.query_map([], rule_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One rule.
    pub fn get_rule(&self, id: i64) -> Result<Rule, StoreError> {
        get_rule(&self.conn(), id)
    }

    /// Replaces a rule's settings. If what it counts changed (search,
    /// kind, window or threshold) its state starts over (not firing,
    /// evaluated at once); otherwise (name, interval, channels, muting,
    /// enabling) a firing rule stays firing and is not announced again.
    /// The watermark is kept either way, so nothing already reported is
    /// reported again.
    pub fn update_rule(&self, id: i64, input: &RuleInput) -> Result<Rule, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let search = get_search(&tx, input.search_id)?;
        let name = input.name.clone().unwrap_or(search.name);
        let changed = tx.execute(
            "UPDATE alert_rules SET search_id = ?2, name = ?3, kind = ?4, interval_secs = ?5,
                window_secs = ?6, threshold = ?7, samples = ?8, enabled = ?9,
                muted_until_ms = ?10, channels = ?11, version = version + 1,
                status = CASE WHEN search_id = ?2 AND kind = ?4 AND window_secs = ?6
                    AND threshold = ?7 THEN status ELSE 'ok' END,
                next_eval_ms = CASE WHEN search_id = ?2 AND kind = ?4 AND window_secs = ?6
                    AND threshold = ?7 THEN next_eval_ms ELSE 0 END
             WHERE id = ?1",
            params![
                id,
                input.search_id,
                name,
                input.kind.name(),
                input.interval_secs,
                input.window_secs,
                input.threshold,
                input.samples,
                input.enabled,
                input.muted_until_ms,
                channels_json(&input.channels),
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("alert rule {id}")));
        }
        let rule = get_rule(&tx, id)?;
        tx.commit()?;
        Ok(rule)
    }

    /// Deletes a rule, its pending deliveries and its history.
    pub fn delete_rule(&self, id: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if tx.execute("DELETE FROM alert_rules WHERE id = ?1", [id])? == 0 {
            return Err(StoreError::NotFound(format!("alert rule {id}")));
        }
        tx.execute("DELETE FROM deliveries WHERE rule_id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    // ---- evaluation ----

    /// Stores the outcomes of one round of evaluations and queues their
    /// notifications, one delivery per channel, all in one transaction. A
    /// rule that changed or went away meanwhile (its version moved) is left
    /// alone and evaluated again. Returns how many deliveries were queued.
    pub fn record_evaluations(
        &self,
        evaluations: &[(Evaluated, Vec<Channel>)],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut queued = 0;
        {
            let mut update = tx.prepare_cached(
                "UPDATE alert_rules SET status = ?3, watermark_id = ?4, next_eval_ms = ?5,
                    last_fired_ms = CASE WHEN ?6 THEN ?7 ELSE last_fired_ms END
                 WHERE id = ?1 AND version = ?2",
            )?;
            for (evaluated, channels) in evaluations {
                let changed = update.execute(params![
                    evaluated.rule_id,
                    evaluated.version,
                    evaluated.status.name(),
                    evaluated.watermark_id as i64,
                    evaluated.next_eval_ms,
                    evaluated.notification.is_some(),
                    now_ms,
                ])?;
                if changed == 0 {
                    continue;
                }
                if let Some(notification) = &evaluated.notification {
                    queued += enqueue(&tx, notification, channels, now_ms)?.len();
                }
            }
        }
        tx.commit()?;
        Ok(queued)
    }

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

    // ---- outbox ----

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

fn enqueue(
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

fn channels_json(channels: &[Channel]) -> String {
    serde_json::to_string(channels).unwrap_or_else(|_| "[]".into())
}

fn name_taken(error: rusqlite::Error, name: &str) -> StoreError {
    match error {
        rusqlite::Error::SqliteFailure(e, _)
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(format!("a saved search named {name:?} already exists"))
        }
        other => StoreError::Sqlite(other),
    }
}

fn search_from_row(row: &Row<'_>) -> rusqlite::Result<SavedSearch> {
    Ok(SavedSearch {
        id: row.get(0)?,
        name: row.get(1)?,
        query: row.get(2)?,
        range: row.get(3)?,
        created_at_ms: row.get(4)?,
    })
}

fn get_search(conn: &Connection, id: i64) -> Result<SavedSearch, StoreError> {
    conn.query_row(
        "SELECT id, name, query, range, created_at FROM saved_searches WHERE id = ?1",
        [id],
        search_from_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("saved search {id}")))
}

fn get_rule(conn: &Connection, id: i64) -> Result<Rule, StoreError> {
    conn.query_row(
        &format!(
            "SELECT {RULE_COLUMNS} FROM alert_rules r JOIN saved_searches s ON s.id = r.search_id
             WHERE r.id = ?1"
        ),
        [id],
        rule_from_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("alert rule {id}")))
}

fn rule_from_row(row: &Row<'_>) -> rusqlite::Result<Rule> {
    let kind: String = row.get(5)?;
    let channels: String = row.get(12)?;
    let status: String = row.get(15)?;
    Ok(Rule {
        id: row.get(0)?,
        search_id: row.get(1)?,
        name: row.get(2)?,
        query: row.get(3)?,
        search_name: row.get(4)?,
        kind: RuleKind::parse(&kind).unwrap_or(RuleKind::Any),
        interval_secs: row.get(6)?,
        window_secs: row.get(7)?,
        threshold: row.get(8)?,
        samples: row.get(9)?,
        enabled: row.get(10)?,
        muted_until_ms: row.get(11)?,
        channels: serde_json::from_str(&channels).unwrap_or_default(),
        created_at_ms: row.get(13)?,
        version: row.get(14)?,
        state: RuleState {
            status: if status == "firing" {
                RuleStatus::Firing
            } else {
                RuleStatus::Ok
            },
            watermark_id: row.get::<_, i64>(16)? as u64,
            next_eval_ms: row.get(17)?,
            last_fired_ms: row.get(18)?,
            last_evaluated_ms: None,
            last_error: None,
            evaluated_through: None,
        },
    })
}
