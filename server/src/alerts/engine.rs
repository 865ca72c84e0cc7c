//! Rule evaluation.
//!
//! Rules judge *arrival*: event ids grow with arrival, and the indexer
//! reports the WAL sequence it has committed through, so "everything that
//! arrived and is searchable" is `id <= last_id_of_seq(committed)`. An
//! `any` rule keeps a watermark id and counts `watermark < id <= through`:
//! an event is counted exactly once, however old its own timestamp, and a
//! count never depends on what is still being indexed. `threshold` and
//! `absence` rules count what was received within their window.
//!
//! `metric` rules run their search's `| stats` table over the lines timed
//! within the window, every `interval`, and keep the set of groups whose
//! value crosses the limit: a group entering the set fires, one leaving
//! it resolves, each with its own notification, stored with the new set
//! in the same transaction.
//!
//! `any` rules are evaluated on every index commit, so the first match
//! after a quiet spell is reported within about a second of being
//! searchable; after a notification the rule waits `interval` before the
//! next, and the matches in between are reported together. `threshold` and
//! `absence` rules are evaluated every `interval`.
//!
//! One tick evaluates every due rule (identical requests share one search)
//! and writes all their new states and notifications in one transaction:
//! a notification is decided once, and its deliveries are queued in the
//! same commit that moves the watermark.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tracing::{debug, error, warn};

use loghound_shared::api::{ColumnKind, StatsResponse};

use super::model::{check_kind_and_query, Rule, RuleKind, RuleStatus};
use super::notify::{GroupValue, Notification, NotificationEvent, Sample};
use super::store::{Evaluated, Store};
use crate::index::arrivals::{Arrivals, ArrivalsRequest, ArrivalsSnapshot};
use crate::index::search::Searcher;
use crate::index::stats::StatsRequest;
use crate::index::tail::last_id_of_seq;
use crate::timeparse::now_ms;

/// Set to `abort-after-alert-commit` to make the server abort right after
/// it commits a notification to the outbox and before it delivers it: the
/// crash the tests inject to prove nothing is lost or sent twice.
pub const FAULT_ENV: &str = "LOGHOUND_FAULT";

/// What the API shows of a rule's last evaluation, kept in memory.
#[derive(Debug, Clone, Default)]
pub struct Runtime {
    /// Last evaluation, ms.
    pub last_evaluated_ms: Option<i64>,
    /// Its error, if it failed.
    pub last_error: Option<String>,
    /// The newest event id it could see.
    pub evaluated_through: Option<u64>,
    /// An `any` rule's watermark advanced past spans without matches,
    /// with the rule version it belongs to: written to the store at most
    /// once a minute (or with the next notification), since evaluating a
    /// span without matches again finds nothing again.
    watermark: Option<(i64, u64)>,
    /// When `watermark` was last written, ms.
    persisted_ms: i64,
}

/// Longest a tick spends on `threshold` and `absence` rules before it
/// lets `any` rules run again.
const WINDOWED_BUDGET: std::time::Duration = std::time::Duration::from_millis(250);

/// Most notifications a `metric` rule sends per evaluation.
pub const MAX_GROUP_NOTIFICATIONS: usize = 20;

/// How often an `any` rule's watermark is written while nothing matches.
const WATERMARK_PERSIST_MS: i64 = 60_000;

/// Evaluates rules.
pub struct Engine {
    store: Arc<Store>,
    searcher: Arc<Searcher>,
    committed: watch::Receiver<u64>,
    /// Notified when rules change.
    pub rules_changed: Arc<Notify>,
    outbox_wake: Arc<Notify>,
    public_url: super::PublicUrl,
    started_ms: i64,
    runtime: Mutex<HashMap<i64, Runtime>>,
    abort_after_commit: bool,
}

impl Engine {
    /// An engine over the store and the index.
    pub fn new(
        store: Arc<Store>,
        searcher: Arc<Searcher>,
        committed: watch::Receiver<u64>,
        outbox_wake: Arc<Notify>,
        public_url: super::PublicUrl,
    ) -> Arc<Engine> {
        let abort_after_commit =
            std::env::var(FAULT_ENV).is_ok_and(|v| v == "abort-after-alert-commit");
        Arc::new(Engine {
            store,
            searcher,
            committed,
            rules_changed: Arc::new(Notify::new()),
            outbox_wake,
            public_url,
            started_ms: now_ms(),
            runtime: Mutex::default(),
            abort_after_commit,
        })
    }

    /// The in-memory part of a rule's state.
    pub fn runtime(&self, rule_id: i64) -> Runtime {
        self.runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&rule_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The watermark to count from: the stored one, or the one kept in
    /// memory for the same rule version if it is further.
    fn watermark(&self, rule: &Rule) -> u64 {
        let runtime = self.runtime.lock().unwrap_or_else(|p| p.into_inner());
        match runtime.get(&rule.id).and_then(|r| r.watermark) {
            Some((version, id)) if version == rule.version => id.max(rule.state.watermark_id),
            _ => rule.state.watermark_id,
        }
    }

    /// The newest event id that is searchable.
    pub fn through_id(&self) -> u64 {
        last_id_of_seq(*self.committed.borrow())
    }

    /// Evaluates rules until `shutdown` turns true: on each index commit,
    /// each rule change, and at least once a second for rules whose time
    /// has come.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut committed = self.committed.clone();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let this = Arc::clone(&self);
            let next_due = match tokio::task::spawn_blocking(move || this.tick(now_ms())).await {
                Ok(next_due) => next_due,
                Err(error) => {
                    error!(%error, "alert evaluation panicked");
                    None
                }
            };
            let wait = next_due.map_or(Duration::from_secs(1), |at| {
                Duration::from_millis(at.saturating_sub(now_ms()).clamp(50, 1000) as u64)
            });
            tokio::select! {
                _ = committed.changed() => {}
                () = self.rules_changed.notified() => {}
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Evaluates every due rule once. Returns when a rule is next due.
    /// Blocking.
    pub fn tick(&self, now: i64) -> Option<i64> {
        let rules = match self.store.list_rules() {
            Ok(rules) => rules,
            Err(error) => {
                warn!(%error, "cannot read alert rules");
                return None;
            }
        };
        // Forget the in-memory state of rules that were deleted.
        let live: std::collections::HashSet<i64> = rules.iter().map(|r| r.id).collect();
        self.runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|id, _| live.contains(id));
        let through = self.through_id();
        // Taken after `through` is read, so it holds everything up to it;
        // only when a rule is due.
        let mut snapshot: Option<ArrivalsSnapshot> = None;
        let mut shared: HashMap<ArrivalsRequest, Result<Arrivals, String>> = HashMap::new();
        let mut decided: Vec<(Evaluated, Vec<super::model::Channel>)> = Vec::new();
        let mut next_due: Option<i64> = None;
        // `any` rules first: they are cheap (new arrivals only) and the
        // ones whose latency people notice. Windowed rules get a time
        // budget per tick; the rest stay due and run on the next tick.
        let started = std::time::Instant::now();
        let mut ordered: Vec<&Rule> = rules.iter().filter(|r| r.enabled).collect();
        ordered.sort_by_key(|r| r.kind != RuleKind::Any);
        for rule in ordered {
            let due_at = match rule.kind {
                RuleKind::Any if through <= self.watermark(rule) => {
                    continue;
                }
                _ => rule.state.next_eval_ms,
            };
            if due_at > now {
                next_due = Some(next_due.map_or(due_at, |n: i64| n.min(due_at)));
                continue;
            }
            if rule.kind != RuleKind::Any && started.elapsed() > WINDOWED_BUDGET {
                next_due = Some(now);
                continue;
            }
            if rule.kind == RuleKind::Metric {
                let result = self.metric_table(rule, now);
                let mut runtime = self.runtime.lock().unwrap_or_else(|p| p.into_inner());
                let entry = runtime.entry(rule.id).or_default();
                entry.last_evaluated_ms = Some(now);
                entry.evaluated_through = Some(through);
                match result {
                    Ok(table) => {
                        entry.last_error = None;
                        drop(runtime);
                        decided
                            .push((self.decide_metric(rule, &table, now), rule.channels.clone()));
                    }
                    Err(error) => {
                        debug!(rule = rule.id, %error, "alert rule evaluation failed");
                        entry.last_error = Some(error);
                    }
                }
                continue;
            }
            let snapshot = match &mut snapshot {
                Some(snapshot) => &*snapshot,
                empty => match self.searcher.arrivals_snapshot() {
                    Ok(taken) => &*empty.insert(taken),
                    Err(error) => {
                        warn!(%error, "cannot read the index for alert rules");
                        return None;
                    }
                },
            };
            let request = self.request_for(rule, through, now);
            let result = shared
                .entry(request.clone())
                .or_insert_with(|| {
                    self.searcher
                        .arrivals_in(snapshot, &request)
                        .map_err(|e| e.to_string())
                })
                .clone();
            let mut runtime = self.runtime.lock().unwrap_or_else(|p| p.into_inner());
            let entry = runtime.entry(rule.id).or_default();
            entry.last_evaluated_ms = Some(now);
            entry.evaluated_through = Some(through);
            match result {
                Ok(arrivals) => {
                    entry.last_error = None;
                    drop(runtime);
                    if let Some(evaluated) = self.decide(rule, &request, arrivals, through, now) {
                        decided.push((evaluated, rule.channels.clone()));
                    }
                }
                Err(error) => {
                    debug!(rule = rule.id, %error, "alert rule evaluation failed");
                    entry.last_error = Some(error);
                }
            }
        }
        if decided.is_empty() {
            return next_due;
        }
        match self.store.record_evaluations(&decided, now) {
            Ok(queued) => {
                if queued > 0 {
                    if self.abort_after_commit {
                        error!("{FAULT_ENV}=abort-after-alert-commit: aborting");
                        std::process::abort();
                    }
                    self.outbox_wake.notify_one();
                }
            }
            Err(error) => warn!(%error, "cannot store alert evaluations"),
        }
        decided
            .iter()
            .map(|(evaluated, _)| evaluated.next_eval_ms)
            .filter(|&at| at > 0)
            .chain(next_due)
            .min()
    }

    fn request_for(&self, rule: &Rule, through: u64, now: i64) -> ArrivalsRequest {
        match rule.kind {
            RuleKind::Any => ArrivalsRequest {
                query: rule.query.clone(),
                after_id: self.watermark(rule),
                through_id: through,
                received_from_ms: None,
                samples: rule.samples as usize,
            },
            RuleKind::Threshold | RuleKind::Absence | RuleKind::Metric => ArrivalsRequest {
                query: rule.query.clone(),
                after_id: 0,
                through_id: through,
                received_from_ms: Some(now.saturating_sub(window_ms(rule))),
                samples: rule.samples as usize,
            },
        }
    }

    /// The rule's new state and notification, or `None` if nothing changes.
    fn decide(
        &self,
        rule: &Rule,
        request: &ArrivalsRequest,
        arrivals: Arrivals,
        through: u64,
        now: i64,
    ) -> Option<Evaluated> {
        let muted = rule.muted_until_ms.is_some_and(|until| until > now);
        let interval_ms = (rule.interval_secs as i64).saturating_mul(1000);
        let samples = || arrivals.newest.iter().cloned().map(Sample::from).collect();
        let notify = |event, from_ms| {
            (!muted).then(|| {
                Notification::new(
                    rule,
                    event,
                    arrivals.count,
                    from_ms,
                    now,
                    samples(),
                    &self.public_url.get(),
                    now,
                )
            })
        };
        let evaluated =
            |status, watermark_id, next_eval_ms, notification: Option<Notification>| Evaluated {
                rule_id: rule.id,
                version: rule.version,
                status,
                watermark_id,
                next_eval_ms,
                firing_groups: Vec::new(),
                notifications: notification.into_iter().collect(),
            };
        match rule.kind {
            RuleKind::Any => {
                if arrivals.count == 0 {
                    // Nothing new: the next count starts here. Kept in
                    // memory, and stored once a minute.
                    let mut runtime = self.runtime.lock().unwrap_or_else(|p| p.into_inner());
                    let entry = runtime.entry(rule.id).or_default();
                    entry.watermark = Some((rule.version, through));
                    if now.saturating_sub(entry.persisted_ms) < WATERMARK_PERSIST_MS {
                        return None;
                    }
                    entry.persisted_ms = now;
                    return Some(evaluated(RuleStatus::Ok, through, 0, None));
                }
                let since = rule.state.last_fired_ms.unwrap_or(rule.created_at_ms);
                let notification = notify(NotificationEvent::Fire, since);
                let next = if notification.is_some() {
                    now.saturating_add(interval_ms)
                } else {
                    0
                };
                Some(evaluated(RuleStatus::Ok, through, next, notification))
            }
            RuleKind::Threshold | RuleKind::Absence | RuleKind::Metric => {
                let from = request.received_from_ms.unwrap_or(now);
                let next = now.saturating_add(interval_ms);
                let crossing = match rule.kind {
                    RuleKind::Threshold => arrivals.count >= rule.threshold,
                    _ => {
                        // A whole window must have passed since the rule
                        // (or the server) started, or silence proves nothing.
                        let watching_since = rule.created_at_ms.max(self.started_ms);
                        arrivals.count == 0 && now.saturating_sub(window_ms(rule)) >= watching_since
                    }
                };
                let clear = match rule.kind {
                    RuleKind::Threshold => arrivals.count < rule.threshold,
                    _ => arrivals.count > 0,
                };
                let (status, notification) = match rule.state.status {
                    RuleStatus::Ok if crossing => {
                        (RuleStatus::Firing, notify(NotificationEvent::Fire, from))
                    }
                    RuleStatus::Firing if clear => {
                        (RuleStatus::Ok, notify(NotificationEvent::Resolve, from))
                    }
                    status => (status, None),
                };
                Some(evaluated(
                    status,
                    rule.state.watermark_id,
                    next,
                    notification,
                ))
            }
        }
    }
}

impl Engine {
    /// A `metric` rule's table over the lines timed within its window.
    fn metric_table(&self, rule: &Rule, now: i64) -> Result<StatsResponse, String> {
        check_kind_and_query(rule.kind, &rule.query)?;
        let request = StatsRequest {
            query: rule.query.clone(),
            from_ms: Some(now.saturating_sub(window_ms(rule))),
            to_ms: Some(now),
        };
        self.searcher.stats(&request).map_err(|e| e.to_string())
    }

    /// Which groups of a `metric` rule fire and resolve: a group fires
    /// when its value (the table's first aggregate column) crosses the
    /// limit, and resolves when it no longer does (or has no value in the
    /// window). One notification per group that changes, at most
    /// [`MAX_GROUP_NOTIFICATIONS`] per evaluation; groups past that are
    /// announced by the next evaluations.
    fn decide_metric(&self, rule: &Rule, table: &StatsResponse, now: i64) -> Evaluated {
        type Group = serde_json::Map<String, serde_json::Value>;
        let muted = rule.muted_until_ms.is_some_and(|until| until > now);
        let from = now.saturating_sub(window_ms(rule));
        let groups: Vec<(usize, &str)> = table
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.kind == ColumnKind::Group)
            .map(|(i, c)| (i, c.name.as_str()))
            .collect();
        let metric = table
            .columns
            .iter()
            .enumerate()
            .find(|(_, c)| c.kind == ColumnKind::Aggregate);
        let crosses = |value: f64| match (rule.above, rule.below) {
            (Some(above), _) => value > above,
            (None, Some(below)) => value < below,
            (None, None) => false,
        };
        let mut values: Vec<(Group, Option<f64>)> = Vec::with_capacity(table.rows.len());
        for row in &table.rows {
            let group: Group = groups
                .iter()
                .map(|(i, name)| ((*name).to_owned(), row.get(*i).cloned().unwrap_or_default()))
                .collect();
            let value = metric
                .and_then(|(i, _)| row.get(i))
                .and_then(serde_json::Value::as_f64);
            values.push((group, value));
        }
        let metric_name = metric.map_or_else(String::new, |(_, c)| c.name.clone());
        let notify = |event, group: &Group, value: Option<f64>| {
            Notification::new(
                rule,
                event,
                table.count,
                from,
                now,
                Vec::new(),
                &self.public_url.get(),
                now,
            )
            .for_group(
                rule,
                GroupValue {
                    group: group.clone(),
                    metric: metric_name.clone(),
                    value,
                },
            )
        };
        let mut notifications = Vec::new();
        let mut firing: Vec<Group> = Vec::new();
        for previous in &rule.state.firing_groups {
            let value = values
                .iter()
                .find(|(g, _)| g == previous)
                .and_then(|(_, v)| *v);
            if value.is_some_and(crosses) {
                firing.push(previous.clone());
            } else if notifications.len() < MAX_GROUP_NOTIFICATIONS {
                notifications.push(notify(NotificationEvent::Resolve, previous, value));
            } else {
                // Announced by a later evaluation.
                firing.push(previous.clone());
            }
        }
        for (group, value) in &values {
            let Some(value) = value.filter(|v| crosses(*v)) else {
                continue;
            };
            if firing.contains(group) || rule.state.firing_groups.contains(group) {
                continue;
            }
            if notifications.len() >= MAX_GROUP_NOTIFICATIONS {
                break;
            }
            notifications.push(notify(NotificationEvent::Fire, group, Some(value)));
            firing.push(group.clone());
        }
        if muted {
            notifications.clear();
        }
        Evaluated {
            rule_id: rule.id,
            version: rule.version,
            status: if firing.is_empty() {
                RuleStatus::Ok
            } else {
                RuleStatus::Firing
            },
            watermark_id: rule.state.watermark_id,
            next_eval_ms: now.saturating_add((rule.interval_secs as i64).saturating_mul(1000)),
            firing_groups: firing,
            notifications,
        }
    }
}

fn window_ms(rule: &Rule) -> i64 {
    (rule.window_secs as i64).saturating_mul(1000)
}
