//! Alert rules with their state in the same row, and the outcome of a
//! round of evaluations written in one transaction with the deliveries it
//! causes.

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::outbox::enqueue;
use super::searches::get_search;
use super::{Store, StoreError};
use crate::alerts::model::{Channel, Rule, RuleInput, RuleKind, RuleState, RuleStatus};
use crate::alerts::notify::Notification;

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
    /// A `metric` rule's firing groups after the evaluation.
    pub firing_groups: Vec<serde_json::Map<String, serde_json::Value>>,
    /// The notifications to send (a `metric` rule: one per group that
    /// fired or resolved).
    pub notifications: Vec<Notification>,
}

const RULE_COLUMNS: &str = "r.id, r.search_id, r.name, s.query, s.name, r.kind, r.interval_secs,
    r.window_secs, r.threshold, r.samples, r.enabled, r.muted_until_ms, r.channels, r.created_at,
    r.version, r.status, r.watermark_id, r.next_eval_ms, r.last_fired_ms, r.above, r.below,
    r.firing_groups";

impl Store {
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
                samples, enabled, muted_until_ms, channels, created_at, watermark_id, above, below)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
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
                input.above,
                input.below,
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
                muted_until_ms = ?10, channels = ?11, above = ?12, below = ?13,
                version = version + 1,
                status = CASE WHEN search_id = ?2 AND kind = ?4 AND window_secs = ?6
                    AND threshold = ?7 AND above IS ?12 AND below IS ?13
                    THEN status ELSE 'ok' END,
                firing_groups = CASE WHEN search_id = ?2 AND kind = ?4 AND window_secs = ?6
                    AND threshold = ?7 AND above IS ?12 AND below IS ?13
                    THEN firing_groups ELSE '[]' END,
                next_eval_ms = CASE WHEN search_id = ?2 AND kind = ?4 AND window_secs = ?6
                    AND threshold = ?7 AND above IS ?12 AND below IS ?13
                    THEN next_eval_ms ELSE 0 END
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
                input.above,
                input.below,
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
                    last_fired_ms = CASE WHEN ?6 THEN ?7 ELSE last_fired_ms END,
                    firing_groups = ?8
                 WHERE id = ?1 AND version = ?2",
            )?;
            for (evaluated, channels) in evaluations {
                let changed = update.execute(params![
                    evaluated.rule_id,
                    evaluated.version,
                    evaluated.status.name(),
                    evaluated.watermark_id as i64,
                    evaluated.next_eval_ms,
                    !evaluated.notifications.is_empty(),
                    now_ms,
                    serde_json::to_string(&evaluated.firing_groups).unwrap_or_else(|_| "[]".into()),
                ])?;
                if changed == 0 {
                    continue;
                }
                for notification in &evaluated.notifications {
                    queued += enqueue(&tx, notification, channels, now_ms)?.len();
                }
            }
        }
        tx.commit()?;
        Ok(queued)
    }
}

fn channels_json(channels: &[Channel]) -> String {
    serde_json::to_string(channels).unwrap_or_else(|_| "[]".into())
}

pub(super) fn get_rule(conn: &Connection, id: i64) -> Result<Rule, StoreError> {
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
    let firing_groups: String = row.get(21)?;
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
        above: row.get(19)?,
        below: row.get(20)?,
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
            firing_groups: serde_json::from_str(&firing_groups).unwrap_or_default(),
            watermark_id: row.get::<_, i64>(16)? as u64,
            next_eval_ms: row.get(17)?,
            last_fired_ms: row.get(18)?,
            last_evaluated_ms: None,
            last_error: None,
            evaluated_through: None,
        },
    })
}
