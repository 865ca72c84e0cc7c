//! Alert rules as the API and the store see them, with the validation
//! that turns a request body into something the engine can trust; saved
//! searches' shapes are the API's (`loghound_shared::api::saved`), their
//! validation is here.

use loghound_shared::api::SavedSearchInput;
use serde::{Deserialize, Serialize};

use crate::query::pipe::Stage;

/// Evaluation intervals a rule may use, in seconds: 10 s, 1 min, 10 min,
/// 1 h, 1 day.
pub const INTERVALS_SECS: &[u64] = &[10, 60, 600, 3600, 86_400];
/// Longest window a threshold or absence rule may count over: 7 days.
pub const MAX_WINDOW_SECS: u64 = 7 * 86_400;
/// Most sample lines one notification carries.
pub const MAX_SAMPLES: u32 = 50;
/// Most channels per rule.
pub const MAX_CHANNELS: usize = 10;
/// Most recipients of one email channel.
pub const MAX_EMAIL_RECIPIENTS: usize = 50;
const MAX_NAME_CHARS: usize = 200;
const MAX_QUERY_BYTES: usize = 8 << 10;

/// Whether a rule of `kind` can run `query`: a `metric` rule needs a
/// `| stats` (or `| top`) table, the others answer lines and take no
/// pipes.
pub fn check_kind_and_query(kind: RuleKind, query: &str) -> Result<(), String> {
    let piped = crate::query::pipe::split(query).map_err(|e| format!("query: {e}"))?;
    let table = piped.stages.first();
    match (kind, table) {
        (RuleKind::Metric, Some(Stage::Stats(_) | Stage::Top { .. })) => Ok(()),
        (RuleKind::Metric, Some(Stage::Timechart { .. })) => Err(
            "kind: a metric rule compares a | stats table, not a timechart: \
             use | stats AGG by (…)"
                .into(),
        ),
        (RuleKind::Metric, _) => Err(
            "kind: a metric rule needs a saved search with a table, like \
             `status:>=500 | stats p95(duration_ms) by (path)`"
                .into(),
        ),
        (_, None) => Ok(()),
        (_, Some(_)) => Err(format!(
            "kind: a {} rule counts lines, and this search's query has pipes; \
             use kind metric",
            kind.name()
        )),
    }
}

/// Checks a saved search's fields; the query's syntax is checked by the
/// caller, which has the query compiler.
pub fn validate_search(input: &SavedSearchInput) -> Result<(), String> {
    check_name(&input.name)?;
    if input.query.len() > MAX_QUERY_BYTES {
        return Err(format!("query: longer than {MAX_QUERY_BYTES} bytes"));
    }
    if let Some(range) = &input.range {
        if range.chars().count() > 32 {
            return Err("range: longer than 32 characters".into());
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("name: must not be empty".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("name: longer than {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("name: must not contain control characters".into());
    }
    Ok(())
}

/// What makes a rule fire.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// New matches arrived.
    Any,
    /// At least `threshold` matches arrived within the window.
    Threshold,
    /// No match arrived within the window.
    Absence,
    /// A value of the search's `| stats` table, per group, crossed a
    /// limit (`above` or `below`) over the window of event time.
    Metric,
}

impl RuleKind {
    /// Name in storage and JSON.
    pub fn name(self) -> &'static str {
        match self {
            RuleKind::Any => "any",
            RuleKind::Threshold => "threshold",
            RuleKind::Absence => "absence",
            RuleKind::Metric => "metric",
        }
    }

    /// Parses [`RuleKind::name`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "any" => Some(RuleKind::Any),
            "threshold" => Some(RuleKind::Threshold),
            "absence" => Some(RuleKind::Absence),
            "metric" => Some(RuleKind::Metric),
            _ => None,
        }
    }
}

/// Body shape of a webhook.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// Loghound's JSON, signed with HMAC-SHA256.
    #[default]
    Loghound,
    /// `{"text": …}`, as Slack's incoming webhooks take it.
    Slack,
    /// A form field `payload` holding Papertrail's JSON.
    Papertrail,
}

/// Where a notification goes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Channel {
    /// Email through the server's SMTP relay.
    Email {
        /// Recipients.
        to: Vec<String>,
    },
    /// An HTTP POST.
    Webhook {
        /// `http://` or `https://` URL.
        url: String,
        /// Body shape.
        #[serde(default)]
        format: WebhookFormat,
        /// Key of the `X-Loghound-Signature` HMAC; none means unsigned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
}

impl Channel {
    /// A short description for the delivery history.
    pub fn describe(&self) -> String {
        match self {
            Channel::Email { to } => format!("email {}", to.join(", ")),
            Channel::Webhook { url, format, .. } => match format {
                WebhookFormat::Loghound => format!("webhook {url}"),
                WebhookFormat::Slack => format!("webhook (slack) {url}"),
                WebhookFormat::Papertrail => format!("webhook (papertrail) {url}"),
            },
        }
    }

    /// [`Channel::describe`] for the server's own log: a webhook's URL is
    /// cut to its scheme and host, since its path or query often is the
    /// credential (Slack's incoming webhooks, `?token=`).
    pub fn describe_for_log(&self) -> String {
        match self {
            Channel::Email { .. } => self.describe(),
            Channel::Webhook { url, .. } => {
                let origin_end = url
                    .find("://")
                    .map(|scheme| {
                        let rest = scheme + 3;
                        url[rest..]
                            .find(['/', '?', '#'])
                            .map_or(url.len(), |at| rest + at)
                    })
                    .unwrap_or(0);
                let origin = &url[..origin_end];
                // Userinfo (`user:password@host`) goes too.
                let origin = match (origin.find("://"), origin.rfind('@')) {
                    (Some(scheme), Some(at)) => {
                        format!("{}{}", &origin[..scheme + 3], &origin[at + 1..])
                    }
                    _ => origin.to_string(),
                };
                if origin_end < url.len() {
                    format!("webhook {origin}/…")
                } else {
                    format!("webhook {origin}")
                }
            }
        }
    }

    fn validate(&self) -> Result<(), String> {
        match self {
            Channel::Email { to } => {
                if to.is_empty() {
                    return Err("channels: an email channel needs at least one address".into());
                }
                if to.len() > MAX_EMAIL_RECIPIENTS {
                    return Err(format!(
                        "channels: more than {MAX_EMAIL_RECIPIENTS} email recipients"
                    ));
                }
                for address in to {
                    if address.parse::<lettre::Address>().is_err() {
                        return Err(format!("channels: invalid email address {address:?}"));
                    }
                }
                Ok(())
            }
            Channel::Webhook { url, secret, .. } => {
                let parsed: axum::http::Uri = url
                    .parse()
                    .map_err(|_| format!("channels: invalid webhook URL {url:?}"))?;
                match parsed.scheme_str() {
                    Some("http" | "https") if parsed.host().is_some() => {}
                    _ => {
                        return Err(format!(
                            "channels: webhook URL {url:?} must be http:// or https:// with a host"
                        ))
                    }
                }
                if secret.as_ref().is_some_and(|s| s.len() > 1024) {
                    return Err("channels: webhook secret longer than 1024 bytes".into());
                }
                Ok(())
            }
        }
    }
}

/// An alert rule as a client sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    /// The saved search whose query the rule runs.
    pub search_id: i64,
    /// Display name; the search's name when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// What makes it fire.
    pub kind: RuleKind,
    /// Seconds between evaluations (one of [`INTERVALS_SECS`]); for `any`,
    /// the least time between two notifications.
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
    /// Seconds counted over by `threshold` and `absence`.
    #[serde(default = "default_window_secs")]
    pub window_secs: u64,
    /// Matches that make a `threshold` rule fire.
    #[serde(default = "default_threshold")]
    pub threshold: u64,
    /// A `metric` rule fires for a group whose value is above this.
    #[serde(default)]
    pub above: Option<f64>,
    /// A `metric` rule fires for a group whose value is below this.
    #[serde(default)]
    pub below: Option<f64>,
    /// Sample lines per notification.
    #[serde(default = "default_samples")]
    pub samples: u32,
    /// A disabled rule is not evaluated.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Until then (ms since the epoch), the rule is evaluated but sends
    /// nothing.
    #[serde(default)]
    pub muted_until_ms: Option<i64>,
    /// Where notifications go.
    #[serde(default)]
    pub channels: Vec<Channel>,
}

const fn default_interval_secs() -> u64 {
    10
}
const fn default_window_secs() -> u64 {
    300
}
const fn default_threshold() -> u64 {
    1
}
const fn default_samples() -> u32 {
    5
}
const fn default_true() -> bool {
    true
}

impl RuleInput {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(name) = &self.name {
            check_name(name)?;
        }
        if !INTERVALS_SECS.contains(&self.interval_secs) {
            return Err(format!(
                "interval_secs: must be one of {INTERVALS_SECS:?}, not {}",
                self.interval_secs
            ));
        }
        if self.kind != RuleKind::Any
            && (self.window_secs < 10 || self.window_secs > MAX_WINDOW_SECS)
        {
            return Err(format!(
                "window_secs: must be between 10 and {MAX_WINDOW_SECS}"
            ));
        }
        if self.kind == RuleKind::Threshold && self.threshold == 0 {
            return Err("threshold: must be at least 1".into());
        }
        match (self.kind, self.above, self.below) {
            (RuleKind::Metric, Some(limit), None) | (RuleKind::Metric, None, Some(limit)) => {
                if !limit.is_finite() {
                    return Err("above/below: must be a finite number".into());
                }
            }
            (RuleKind::Metric, _, _) => {
                return Err("a metric rule needs exactly one of above or below".into())
            }
            (_, None, None) => {}
            (_, _, _) => return Err("above/below: only metric rules take them".into()),
        }
        if self.samples > MAX_SAMPLES {
            return Err(format!("samples: at most {MAX_SAMPLES}"));
        }
        if self.channels.len() > MAX_CHANNELS {
            return Err(format!("channels: at most {MAX_CHANNELS}"));
        }
        self.channels.iter().try_for_each(Channel::validate)
    }
}

/// Whether a rule is firing.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RuleStatus {
    /// Not firing.
    Ok,
    /// Fired and not resolved yet (threshold and absence).
    Firing,
}

impl RuleStatus {
    /// Name in storage and JSON.
    pub fn name(self) -> &'static str {
        match self {
            RuleStatus::Ok => "ok",
            RuleStatus::Firing => "firing",
        }
    }
}

/// A rule's evaluation state.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RuleState {
    /// Firing or not (a `metric` rule: whether any group is).
    pub status: RuleStatus,
    /// A `metric` rule's firing groups: each the group columns' values
    /// by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub firing_groups: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Event id evaluated through: `any` rules count only ids above it.
    #[serde(skip)]
    pub watermark_id: u64,
    /// Last evaluation, ms.
    pub last_evaluated_ms: Option<i64>,
    /// Last notification, ms.
    pub last_fired_ms: Option<i64>,
    /// What went wrong in the last evaluation.
    pub last_error: Option<String>,
    /// The newest event id the last evaluation could see (a string, as
    /// hit ids are): every line up to it has been judged.
    #[serde(serialize_with = "id_string")]
    pub evaluated_through: Option<u64>,
    /// When the rule is next due, ms.
    #[serde(skip)]
    pub next_eval_ms: i64,
}

fn id_string<S: serde::Serializer>(id: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => serializer.serialize_str(&id.to_string()),
        None => serializer.serialize_none(),
    }
}

/// A stored alert rule with its state.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// Store id.
    pub id: i64,
    /// Saved search id.
    pub search_id: i64,
    /// Display name.
    pub name: String,
    /// The saved search's query, as evaluated.
    pub query: String,
    /// The saved search's name.
    pub search_name: String,
    /// What makes it fire.
    pub kind: RuleKind,
    /// See [`RuleInput::interval_secs`].
    pub interval_secs: u64,
    /// See [`RuleInput::window_secs`].
    pub window_secs: u64,
    /// See [`RuleInput::threshold`].
    pub threshold: u64,
    /// See [`RuleInput::above`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// See [`RuleInput::below`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// See [`RuleInput::samples`].
    pub samples: u32,
    /// See [`RuleInput::enabled`].
    pub enabled: bool,
    /// See [`RuleInput::muted_until_ms`].
    pub muted_until_ms: Option<i64>,
    /// Where notifications go.
    pub channels: Vec<Channel>,
    /// Creation time, ms.
    pub created_at_ms: i64,
    /// Grows with every change of the rule or its search.
    #[serde(skip)]
    pub version: i64,
    /// Evaluation state.
    pub state: RuleState,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> Result<(), String> {
        let input: RuleInput = serde_json::from_str(json).map_err(|e| e.to_string())?;
        input.validate()
    }

    #[test]
    fn webhook_urls_are_cut_to_their_origin_in_the_log() {
        let hook = |url: &str| Channel::Webhook {
            url: url.into(),
            format: WebhookFormat::Slack,
            secret: Some("s3cret".into()),
        };
        for (url, logged) in [
            (
                "https://hooks.slack.com/services/T0/B0/XyZ",
                "webhook https://hooks.slack.com/…",
            ),
            (
                "http://example.com?token=abc",
                "webhook http://example.com/…",
            ),
            (
                "https://user:pw@example.com:8443/x",
                "webhook https://example.com:8443/…",
            ),
            ("http://example.com", "webhook http://example.com"),
        ] {
            assert_eq!(hook(url).describe_for_log(), logged, "{url}");
        }
    }

    #[test]
    fn defaults_are_valid() {
        rule(r#"{"search_id": 1, "kind": "any"}"#).unwrap();
        rule(r#"{"search_id": 1, "kind": "metric", "above": 800}"#).unwrap();
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (
                r#"{"search_id":1,"kind":"any","interval_secs":7}"#,
                "interval_secs",
            ),
            (
                r#"{"search_id":1,"kind":"threshold","threshold":0}"#,
                "threshold",
            ),
            (
                r#"{"search_id":1,"kind":"absence","window_secs":1}"#,
                "window_secs",
            ),
            (
                r#"{"search_id":1,"kind":"any","channels":[{"type":"email","to":["nope"]}]}"#,
                "invalid email address",
            ),
            (
                r#"{"search_id":1,"kind":"any","channels":[{"type":"webhook","url":"ftp://x/"}]}"#,
                "http:// or https://",
            ),
            (r#"{"search_id":1,"kind":"sometimes"}"#, "unknown variant"),
            (
                r#"{"search_id":1,"kind":"metric"}"#,
                "exactly one of above or below",
            ),
            (
                r#"{"search_id":1,"kind":"metric","above":1,"below":2}"#,
                "exactly one of above or below",
            ),
            (
                r#"{"search_id":1,"kind":"threshold","above":5}"#,
                "only metric rules",
            ),
            (
                r#"{"search_id":1,"kind":"any","colour":"red"}"#,
                "unknown field",
            ),
        ];
        for (json, expected) in cases {
            let err = rule(json).unwrap_err();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn channels_round_trip() {
        let channels = vec![
            Channel::Email {
                to: vec!["ops@example.com".into()],
            },
            Channel::Webhook {
                url: "https://hooks.example.com/x".into(),
                format: WebhookFormat::Slack,
                secret: Some("s".into()),
            },
        ];
        let text = serde_json::to_string(&channels).unwrap();
        let back: Vec<Channel> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, channels);
    }
}
