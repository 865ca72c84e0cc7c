//! What a notification says, and how each channel's body is written.
//! Bodies are built from the stored notification alone, so a retry sends
//! the same bytes (and the same signature) as the first attempt.

use hmac::{Hmac, Mac};
use loghound_shared::api::Hit;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::model::{Rule, RuleKind, WebhookFormat};

/// Why a notification was sent.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NotificationEvent {
    /// The rule fired.
    Fire,
    /// A firing threshold or absence rule cleared.
    Resolve,
    /// Sent by hand to check the channels.
    Test,
}

impl NotificationEvent {
    /// Name in storage and JSON.
    pub fn name(self) -> &'static str {
        match self {
            NotificationEvent::Fire => "fire",
            NotificationEvent::Resolve => "resolve",
            NotificationEvent::Test => "test",
        }
    }

    /// Parses [`NotificationEvent::name`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "fire" => Some(NotificationEvent::Fire),
            "resolve" => Some(NotificationEvent::Resolve),
            "test" => Some(NotificationEvent::Test),
            _ => None,
        }
    }
}

/// One sample line in a notification.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    /// Event id.
    pub id: String,
    /// The line's own time, RFC 3339.
    pub timestamp: String,
    /// When the server received it, RFC 3339.
    pub received_at: String,
    /// Host.
    pub host: String,
    /// File on the host.
    pub source: String,
    /// `app` tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Normalised severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The line.
    pub message: String,
    /// Parsed fields.
    #[serde(default)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl From<Hit> for Sample {
    fn from(hit: Hit) -> Self {
        Sample {
            id: hit.id,
            timestamp: hit.timestamp,
            received_at: hit.received_at,
            host: hit.host,
            source: hit.source,
            app: hit.app,
            severity: hit.severity,
            message: hit.message,
            fields: hit.fields,
        }
    }
}

/// A decided notification, as stored in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Notification {
    /// Rule id.
    pub rule_id: i64,
    /// Rule name.
    pub rule_name: String,
    /// Saved search id.
    pub search_id: i64,
    /// Saved search name.
    pub search_name: String,
    /// The query evaluated.
    pub query: String,
    /// The rule's kind.
    pub kind: RuleKind,
    /// Fire, resolve or test.
    pub event: NotificationEvent,
    /// Matches counted: new matches (`any`), matches in the window
    /// (`threshold`, `absence`).
    pub count: u64,
    /// The threshold, for `threshold` rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u64>,
    /// The window, seconds, for `threshold` and `absence` rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<u64>,
    /// Start of what was counted (receive time), ms.
    pub from_ms: i64,
    /// End of what was counted, ms.
    pub to_ms: i64,
    /// The newest matches, newest first.
    pub samples: Vec<Sample>,
    /// The search in the web UI.
    pub link: String,
    /// When it was decided, ms.
    pub created_at_ms: i64,
    /// A `metric` rule's group, the group columns' values by name (empty
    /// for a table without `by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<serde_json::Map<String, serde_json::Value>>,
    /// A `metric` rule's column compared, like `p95(duration_ms)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// The group's value; absent when it had none in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// A `metric` rule's limit: `above 800`, `below 5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// A `metric` rule's group and value, for [`Notification::for_group`].
#[derive(Debug, Clone)]
pub struct GroupValue {
    /// The group columns' values by name.
    pub group: serde_json::Map<String, serde_json::Value>,
    /// The column compared.
    pub metric: String,
    /// Its value, if the group had one.
    pub value: Option<f64>,
}

impl Notification {
    /// A notification for `rule`, with a link under `public_url`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rule: &Rule,
        event: NotificationEvent,
        count: u64,
        from_ms: i64,
        to_ms: i64,
        samples: Vec<Sample>,
        public_url: &str,
        now_ms: i64,
    ) -> Self {
        let windowed = rule.kind != RuleKind::Any;
        Notification {
            rule_id: rule.id,
            rule_name: rule.name.clone(),
            search_id: rule.search_id,
            search_name: rule.search_name.clone(),
            query: rule.query.clone(),
            kind: rule.kind,
            event,
            count,
            threshold: (rule.kind == RuleKind::Threshold).then_some(rule.threshold),
            window_secs: windowed.then_some(rule.window_secs),
            from_ms,
            to_ms,
            samples,
            link: search_link(public_url, &rule.query, from_ms, to_ms),
            created_at_ms: now_ms,
            group: None,
            metric: None,
            value: None,
            condition: None,
        }
    }

    /// This notification about one group of a `metric` rule.
    pub fn for_group(mut self, rule: &Rule, group: GroupValue) -> Self {
        self.group = Some(group.group);
        self.metric = Some(group.metric);
        self.value = group.value;
        self.condition = match (rule.above, rule.below) {
            (Some(above), _) => Some(format!("above {}", number_text(above))),
            (None, Some(below)) => Some(format!("below {}", number_text(below))),
            (None, None) => None,
        };
        self
    }

    /// `path=/api, host=web1`; `all lines` for a table without groups.
    fn group_text(&self) -> String {
        match &self.group {
            Some(group) if !group.is_empty() => group
                .iter()
                .map(|(name, value)| match value {
                    serde_json::Value::String(s) => format!("{name}={s}"),
                    other => format!("{name}={other}"),
                })
                .collect::<Vec<_>>()
                .join(", "),
            _ => "all lines".into(),
        }
    }

    fn metric_text(&self) -> String {
        let value = self.value.map_or("no value".into(), number_text);
        format!(
            "{} = {value} for {}",
            self.metric.as_deref().unwrap_or("value"),
            self.group_text()
        )
    }

    /// One line saying what happened, for subjects and chat.
    pub fn headline(&self) -> String {
        let window = self.window_secs.map(human_duration).unwrap_or_default();
        let name = &self.rule_name;
        match (self.event, self.kind) {
            (NotificationEvent::Test, _) => format!("test notification for {name}"),
            (NotificationEvent::Resolve, RuleKind::Absence) => {
                format!(
                    "resolved: {name}: matches again ({} in the last {window})",
                    self.count
                )
            }
            (NotificationEvent::Resolve, RuleKind::Metric) => format!(
                "resolved: {name}: {}, no longer {} (last {window})",
                self.metric_text(),
                self.condition.as_deref().unwrap_or("crossing")
            ),
            (NotificationEvent::Fire, RuleKind::Metric) => format!(
                "{name}: {}, {} (last {window})",
                self.metric_text(),
                self.condition.as_deref().unwrap_or("crossing")
            ),
            (NotificationEvent::Resolve, _) => format!(
                "resolved: {name}: {} {} in the last {window}, below {}",
                self.count,
                plural(self.count),
                self.threshold.unwrap_or(0)
            ),
            (NotificationEvent::Fire, RuleKind::Any) => {
                format!("{name}: {} new {}", self.count, plural(self.count))
            }
            (NotificationEvent::Fire, RuleKind::Threshold) => format!(
                "{name}: {} {} in the last {window} (threshold {})",
                self.count,
                plural(self.count),
                self.threshold.unwrap_or(0)
            ),
            (NotificationEvent::Fire, RuleKind::Absence) => {
                format!("{name}: no matches in the last {window}")
            }
        }
    }

    /// The email subject: names the search and the count.
    pub fn email_subject(&self) -> String {
        format!(
            "[Loghound] {} — search \"{}\"",
            self.headline(),
            self.search_name
        )
    }

    /// The plain-text email body.
    pub fn email_body(&self) -> String {
        let mut body = format!(
            "{}\n\nSearch: {}\nQuery:  {}\nRule:   {} ({})\n",
            self.headline(),
            self.search_name,
            if self.query.is_empty() {
                "(everything)"
            } else {
                &self.query
            },
            self.rule_name,
            self.kind.name()
        );
        if !self.samples.is_empty() {
            body.push_str(&format!(
                "\nNewest {} matching lines:\n",
                self.samples.len()
            ));
            for sample in &self.samples {
                body.push_str(&sample_line(sample));
                body.push('\n');
            }
        }
        body.push_str(&format!("\nOpen in Loghound: {}\n", self.link));
        body
    }

    /// The webhook body in `format`, with its content type.
    pub fn webhook_body(
        &self,
        format: WebhookFormat,
        delivery_id: &str,
    ) -> (Vec<u8>, &'static str) {
        match format {
            WebhookFormat::Loghound => (
                serde_json::to_vec(&self.loghound_json(delivery_id)).unwrap_or_default(),
                "application/json",
            ),
            WebhookFormat::Slack => (
                serde_json::to_vec(&serde_json::json!({ "text": self.slack_text() }))
                    .unwrap_or_default(),
                "application/json",
            ),
            WebhookFormat::Papertrail => {
                let payload = self.papertrail_json().to_string();
                let body = form_urlencoded::Serializer::new(String::new())
                    .append_pair("payload", &payload)
                    .finish();
                (body.into_bytes(), "application/x-www-form-urlencoded")
            }
        }
    }

    fn loghound_json(&self, delivery_id: &str) -> serde_json::Value {
        serde_json::json!({
            "delivery_id": delivery_id,
            "event": self.event,
            "rule": {
                "id": self.rule_id,
                "name": self.rule_name,
                "kind": self.kind,
                "threshold": self.threshold,
                "window_secs": self.window_secs,
            },
            "search": { "id": self.search_id, "name": self.search_name, "query": self.query },
            "count": self.count,
            "group": self.group,
            "metric": self.metric,
            "value": self.value,
            "condition": self.condition,
            "window": { "from": rfc3339(self.from_ms), "to": rfc3339(self.to_ms) },
            "events": self.samples,
            "link": self.link,
            "text": self.headline(),
        })
    }

    fn slack_text(&self) -> String {
        let mut text = format!("*{}*\nQuery: `{}`", self.headline(), self.query);
        if !self.samples.is_empty() {
            text.push_str("\n```\n");
            for sample in &self.samples {
                text.push_str(&sample_line(sample));
                text.push('\n');
            }
            text.push_str("```");
        }
        text.push_str(&format!("\n<{}|Open in Loghound>", self.link));
        text
    }

    /// Papertrail's webhook JSON: `events`, `saved_search`, `min_id`,
    /// `max_id`, `frequency`.
    fn papertrail_json(&self) -> serde_json::Value {
        let events: Vec<serde_json::Value> = self
            .samples
            .iter()
            .rev()
            .map(|s| {
                serde_json::json!({
                    "id": s.id.parse::<u64>().unwrap_or(0),
                    "received_at": s.received_at,
                    "display_received_at": display_time(&s.received_at),
                    "source_ip": "",
                    "source_name": s.host,
                    "source_id": 0,
                    "hostname": s.host,
                    "program": s.app.clone().unwrap_or_else(|| program_of(&s.source)),
                    "severity": s.severity.as_deref().map(capitalise).unwrap_or_else(|| "Info".into()),
                    "facility": "",
                    "message": s.message,
                })
            })
            .collect();
        let ids: Vec<&str> = self.samples.iter().map(|s| s.id.as_str()).collect();
        serde_json::json!({
            "events": events,
            "saved_search": {
                "id": self.search_id,
                "name": self.search_name,
                "query": self.query,
                "html_edit_url": self.link,
                "html_search_url": self.link,
            },
            "max_id": ids.first().copied().unwrap_or("0"),
            "min_id": ids.last().copied().unwrap_or("0"),
            "frequency": self.window_secs.map(human_duration).unwrap_or_else(|| "continuous".into()),
        })
    }
}

/// A number as people write it: `800`, `812.5`.
fn number_text(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// `sha256=<hex HMAC-SHA256 of body keyed by secret>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length; the error case cannot happen.
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::new(),
    }
}

fn sample_line(sample: &Sample) -> String {
    format!(
        "{} {} {}: {}",
        sample.timestamp, sample.host, sample.source, sample.message
    )
}

fn plural(count: u64) -> &'static str {
    if count == 1 {
        "match"
    } else {
        "matches"
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn program_of(source: &str) -> String {
    source.rsplit('/').next().unwrap_or(source).to_string()
}

/// `Mon DD HH:MM:SS` from an RFC 3339 time, as Papertrail displays it.
fn display_time(rfc3339_text: &str) -> String {
    time::OffsetDateTime::parse(rfc3339_text, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[month repr:short] [day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_else(|| rfc3339_text.to_string())
}

/// `5 min`, `1 h`, `90 s`, `2 days`.
pub fn human_duration(secs: u64) -> String {
    match secs {
        s if s % 86_400 == 0 && s >= 86_400 => {
            let days = s / 86_400;
            format!("{days} day{}", if days == 1 { "" } else { "s" })
        }
        s if s % 3600 == 0 && s >= 3600 => format!("{} h", s / 3600),
        s if s % 60 == 0 && s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn rfc3339(ms: i64) -> String {
    crate::timeparse::rfc3339_ms(ms)
}

/// The web UI's URL for a search over a receive-time span (a minute of
/// slack on each side, since the UI filters by the lines' own time).
pub fn search_link(public_url: &str, query: &str, from_ms: i64, to_ms: i64) -> String {
    let params = form_urlencoded::Serializer::new(String::new())
        .append_pair("q", query)
        .append_pair("from", &rfc3339(from_ms.saturating_sub(60_000)))
        .append_pair("to", &rfc3339(to_ms.saturating_add(60_000)))
        .finish();
    format!("{}/?{params}", public_url.trim_end_matches('/'))
}

#[cfg(test)]
#[path = "notify_tests.rs"]
mod tests;
