//! The answer of `GET /api/v1/fields`: for the lines a search matches,
//! every field with its most frequent values and, for numeric ones, their
//! range and tail.

use serde::{Deserialize, Serialize};

/// Where field summaries are asked.
pub const FIELDS_PATH: &str = "/api/v1/fields";
/// Most values listed per field by default.
pub const DEFAULT_FIELD_VALUES: usize = 5;
/// Most values a request may ask for per field.
pub const MAX_FIELD_VALUES: usize = 100;

/// The fields of a search's matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldsResponse {
    /// Lines that matched.
    pub count: u64,
    /// The built-in fields (`host`, `source`, `app`, `severity`), then the
    /// parsed fields by name.
    pub fields: Vec<FieldSummary>,
}

/// One field over the matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldSummary {
    /// As a query names it (`status`, `user.id`, `host`).
    pub name: String,
    /// Matching lines where it is set.
    pub count: u64,
    /// How many different values it takes.
    pub distinct: u64,
    /// The most frequent values, most frequent first (ties by value).
    pub top: Vec<ValueCount>,
    /// For a field with numeric values: their summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric: Option<NumericSummary>,
}

/// A value and how many matching lines have it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueCount {
    /// The value, as JSON (a string, number or boolean).
    pub value: serde_json::Value,
    /// Matching lines with it.
    pub count: u64,
}

/// A numeric field's values over the matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericSummary {
    /// Smallest.
    pub min: Option<f64>,
    /// Mean.
    pub avg: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
    /// 99th percentile, as `| stats p99(…)` computes it.
    pub p99: Option<f64>,
}
