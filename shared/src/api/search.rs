//! `GET /api/v1/search`, `/api/v1/histogram` and `/api/v1/context`: their
//! answers and the bounds on their parameters.

use serde::{Deserialize, Serialize};

/// Hits per search page when the request names no `limit`.
pub const DEFAULT_SEARCH_LIMIT: usize = 100;
/// Largest page (`limit`) a search returns.
pub const MAX_SEARCH_LIMIT: usize = 1000;
/// Histogram buckets when the request names none.
pub const DEFAULT_HISTOGRAM_BUCKETS: usize = 60;
/// Most histogram buckets a request may ask for.
pub const MAX_HISTOGRAM_BUCKETS: usize = 1000;
/// Context lines on each side when the request names no number.
pub const DEFAULT_CONTEXT_LINES: usize = 10;
/// Most context lines on each side a request may ask for.
pub const MAX_CONTEXT_LINES: usize = 500;

/// One matching event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// Event id (a string: it may exceed what JSON numbers carry exactly).
    pub id: String,
    /// Event time, RFC 3339.
    pub timestamp: String,
    /// Receive time, RFC 3339.
    pub received_at: String,
    /// Host.
    pub host: String,
    /// File path on the host.
    pub source: String,
    /// `app` tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Normalised severity, when the line has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The line.
    pub message: String,
    /// Fields parsed from the line.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Tags set on the agent.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub tags: serde_json::Map<String, serde_json::Value>,
    /// The agent cut the line.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The line was not valid UTF-8.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invalid_utf8: bool,
    /// `[start, end)` UTF-8 byte ranges of `message` that match the query's
    /// words; empty outside search results.
    #[serde(default)]
    pub highlights: Vec<[usize; 2]>,
}

/// A page of search results. The hit type is a parameter so that a client
/// may keep hits as raw JSON (`SearchResponse<serde_json::Value>`) and pass
/// them on exactly as the server sent them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse<H = Hit> {
    /// Newest first.
    pub hits: Vec<H>,
    /// Every match in the time range (not only this page).
    pub count: u64,
    /// Pass as `cursor` for the next, older page; `null` on the last page.
    pub cursor: Option<String>,
}

/// One histogram bucket: matches timed in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// RFC 3339; the first bucket starts at `from`, later ones on a
    /// multiple of `interval_ms` since the epoch.
    pub start: String,
    /// RFC 3339, exclusive; the last bucket ends at `to`.
    pub end: String,
    /// Matches in the bucket.
    pub count: u64,
}

/// A histogram answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramResponse {
    /// Oldest first; empty when nothing matches and a bound was open.
    pub buckets: Vec<Bucket>,
    /// Every match in the range: the sum of the buckets.
    pub count: u64,
    /// Bucket width in ms (0 when there are no buckets).
    pub interval_ms: i64,
    /// The range actually covered (RFC 3339), `null` when open and nothing
    /// matched.
    pub from: Option<String>,
    /// Exclusive end of that range.
    pub to: Option<String>,
}

/// An event and its neighbours in its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextResponse {
    /// The event asked for.
    pub event: Hit,
    /// Up to `before` earlier lines of the same file, in file order.
    pub before: Vec<Hit>,
    /// Up to `after` later lines of the same file, in file order.
    pub after: Vec<Hit>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_leaves_out_empty_parts_and_reads_back() {
        let hit = Hit {
            id: "1048576".into(),
            timestamp: "2025-11-24T16:00:00.000Z".into(),
            received_at: "2025-11-24T16:00:00.100Z".into(),
            host: "web3".into(),
            source: "/var/log/app.log".into(),
            app: None,
            severity: Some("error".into()),
            message: "timeout".into(),
            fields: serde_json::Map::new(),
            tags: serde_json::Map::new(),
            truncated: false,
            invalid_utf8: false,
            highlights: vec![[0, 7]],
        };
        let json = serde_json::to_value(&hit).unwrap();
        let object = json.as_object().unwrap();
        for absent in ["app", "fields", "tags", "truncated", "invalid_utf8"] {
            assert!(!object.contains_key(absent), "{absent}: {json}");
        }
        assert_eq!(serde_json::from_value::<Hit>(json).unwrap(), hit);
    }
}
