//! `/api/v1/searches`: saved searches as the API answers them and as a
//! client sends them.

use serde::{Deserialize, Serialize};

/// A named query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSearch {
    /// Store id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Query text.
    pub query: String,
    /// Default time range for the UI, such as `1h` (free text, ≤ 32 chars).
    pub range: Option<String>,
    /// Creation time, ms.
    pub created_at_ms: i64,
}

/// A saved search as a client sends it to create or replace one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedSearchInput {
    /// Unique name.
    pub name: String,
    /// Query text.
    pub query: String,
    /// Default time range.
    #[serde(default)]
    pub range: Option<String>,
}

/// The answer to `GET /api/v1/searches`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSearchList {
    /// Every saved search, by name.
    pub searches: Vec<SavedSearch>,
}
