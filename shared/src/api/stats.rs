//! The answer of `GET /api/v1/stats`: a query's pipes (`| stats …`,
//! `| timechart …`, `| top …`) as a table.

use serde::{Deserialize, Serialize};

/// Where stats queries are asked.
pub const STATS_PATH: &str = "/api/v1/stats";

/// A table computed from the matches of a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsResponse {
    /// Column names, in order: `_time` first for a timechart, then the
    /// group fields, then the aggregates (`count()`, `p99(duration_ms)` or
    /// their `as` names).
    pub columns: Vec<Column>,
    /// One row per group (and time bucket), each with one value per
    /// column: a string, a number, or `null` (the field is missing, or no
    /// value was numeric).
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Lines that matched the search part of the query.
    pub count: u64,
    /// Groups before `limit` (or `top`) cut the rows.
    pub groups: u64,
    /// A timechart's bucket width in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<i64>,
    /// Percentile columns of groups too large to be computed exactly (more
    /// than the server's exact limit of values), which are DDSketch
    /// estimates within 1 % relative error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub estimated: Vec<String>,
}

/// A column of a stats table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Its name, as a `sort` names it.
    pub name: String,
    /// `time`, `group` or `aggregate`.
    pub kind: ColumnKind,
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// A timechart bucket's start (RFC 3339).
    Time,
    /// A value of a `by` field.
    Group,
    /// A computed value.
    Aggregate,
}
