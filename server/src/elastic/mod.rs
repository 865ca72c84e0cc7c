//! The Elasticsearch bulk API (`[elasticsearch]`): shippers that speak
//! Elasticsearch (Fluent Bit's `es` output, Vector's `elasticsearch`
//! sink, Filebeat, Logstash, the official clients) send to
//! `<server>/es/_bulk` unchanged, as the input `input:elasticsearch`.
//!
//! - [`bulk`]: a `_bulk` body read into its items, each an event or the
//!   reason it is refused;
//! - [`document`]: one document as an event.
//!
//! What the protocol allows, and what it does not:
//! - An answer of 200 means every item it reports as `201` is durable in
//!   the log; an item refused (`400`, with the reason) is not stored, and
//!   the others are. A request refused as a whole (`429` when the indexer
//!   is behind, `507` when the disk is full, `4xx` for a body that cannot
//!   be read) stored nothing, so retrying it duplicates nothing.
//! - Logs are append-only: `update` and `delete` items are refused one by
//!   one. `index` and `create` both add the document; an `_id` is answered
//!   back but does not make a re-sent document a duplicate, so a request
//!   re-sent after its answer was lost (a broken connection) is stored
//!   twice.

pub mod bulk;
pub mod document;

use serde::Deserialize;

/// `[elasticsearch]`: turns on the Elasticsearch-compatible API under
/// `/es`, and says how documents become events.
///
/// Each field list is tried in order and the first field present with a
/// value that fits wins; a name with dots (`host.name`) finds both
/// `{"host": {"name": …}}` and `{"host.name": …}`. What a list takes is
/// not kept among the fields (but for the severity); every other member
/// is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticConfig {
    /// The Elasticsearch version `GET /es/` reports; shippers pick their
    /// request format by its major version (7 or 8).
    #[serde(default = "default_version")]
    pub version: String,
    /// Host of documents that name none (default: the sender's address).
    #[serde(default)]
    pub default_host: Option<String>,
    /// The line: a text, number or boolean value. A document without any
    /// is kept whole, as its JSON text, and its fields are parsed from that.
    #[serde(default = "default_message_fields")]
    pub message_fields: Vec<String>,
    /// The event's time: any timestamp text the line parsers read
    /// (RFC 3339 first) or epoch seconds or milliseconds. A value that is
    /// none stays a field, and the next name is tried.
    #[serde(default = "default_time_fields")]
    pub time_fields: Vec<String>,
    /// The host: a non-empty text.
    #[serde(default = "default_host_fields")]
    pub host_fields: Vec<String>,
    /// The `app` label: a non-empty text.
    #[serde(default = "default_app_fields")]
    pub app_fields: Vec<String>,
    /// The severity, used when the line states none: a level word or a
    /// number (syslog 0–7, or bunyan/pino 10–60).
    #[serde(default = "default_severity_fields")]
    pub severity_fields: Vec<String>,
}

impl Default for ElasticConfig {
    fn default() -> Self {
        ElasticConfig {
            version: default_version(),
            default_host: None,
            message_fields: default_message_fields(),
            time_fields: default_time_fields(),
            host_fields: default_host_fields(),
            app_fields: default_app_fields(),
            severity_fields: default_severity_fields(),
        }
    }
}

fn default_version() -> String {
    "8.17.0".into()
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn default_message_fields() -> Vec<String> {
    // `log`: Fluent Bit's tail and Docker records; `event.original`: ECS.
    names(&["message", "log", "msg", "event.original"])
}

fn default_time_fields() -> Vec<String> {
    names(&["@timestamp", "timestamp", "time"])
}

fn default_host_fields() -> Vec<String> {
    names(&["host.name", "host.hostname", "hostname", "host"])
}

fn default_app_fields() -> Vec<String> {
    names(&[
        "service.name",
        "app",
        "kubernetes.container_name",
        "container.name",
    ])
}

fn default_severity_fields() -> Vec<String> {
    names(&["log.level", "level", "severity"])
}

impl ElasticConfig {
    /// Checks what the types cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let mut parts = self.version.split('.');
        let numeric = |part: Option<&str>| {
            part.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        };
        if !(numeric(parts.next())
            && numeric(parts.next())
            && numeric(parts.next())
            && parts.next().is_none())
        {
            return Err(format!(
                "key `elasticsearch.version`: {:?} is not a version such as \"8.17.0\"",
                self.version
            ));
        }
        if self
            .default_host
            .as_deref()
            .is_some_and(|h| h.trim().is_empty())
        {
            return Err(
                "key `elasticsearch.default_host`: must not be empty (leave it out instead)".into(),
            );
        }
        for (key, list) in [
            ("message_fields", &self.message_fields),
            ("time_fields", &self.time_fields),
            ("host_fields", &self.host_fields),
            ("app_fields", &self.app_fields),
            ("severity_fields", &self.severity_fields),
        ] {
            if let Some(bad) = list
                .iter()
                .find(|name| name.is_empty() || name.split('.').any(str::is_empty))
            {
                return Err(format!(
                    "key `elasticsearch.{key}`: {bad:?} is not a field name"
                ));
            }
        }
        Ok(())
    }
}
