//! The HTTP API's paths, headers, limits and JSON bodies: what the agent,
//! the server, the command-line client and the end-to-end tests all speak.
//!
//! - this module: the ingest route and headers, the ingest answer and the
//!   error body every route answers with;
//! - [`search`]: search, histogram and context answers and their limits;
//! - [`stats`]: the table a query's pipes answer;
//! - [`tail`]: the live tail's route and event shapes;
//! - [`fields`]: the fields of a search's matches, for the UI's panel;
//! - [`saved`]: saved searches (`/api/v1/searches`) as the API reads and
//!   writes them.

pub mod fields;
pub mod saved;
pub mod search;
pub mod stats;
pub mod tail;

use serde::{Deserialize, Serialize};

pub use self::fields::{
    FieldSummary, FieldsResponse, NumericSummary, ValueCount, DEFAULT_FIELD_VALUES, FIELDS_PATH,
    MAX_FIELD_VALUES,
};
pub use self::saved::{SavedSearch, SavedSearchInput, SavedSearchList};
pub use self::search::{
    Bucket, ContextResponse, HistogramResponse, Hit, SearchResponse, DEFAULT_CONTEXT_LINES,
    DEFAULT_HISTOGRAM_BUCKETS, DEFAULT_SEARCH_LIMIT, MAX_CONTEXT_LINES, MAX_HISTOGRAM_BUCKETS,
    MAX_SEARCH_LIMIT,
};
pub use self::stats::{Column, ColumnKind, StatsResponse, STATS_PATH};
pub use self::tail::{TailDropped, TAIL_EVENT_DROPPED, TAIL_EVENT_HIT, TAIL_PATH};

/// Where agents POST batches.
pub const INGEST_PATH: &str = "/api/v1/ingest";
/// Header carrying [`crate::PROTOCOL_VERSION`].
pub const HEADER_PROTOCOL: &str = "x-loghound-protocol";
/// Header carrying the sending agent's [`crate::AgentId`].
pub const HEADER_AGENT: &str = "x-loghound-agent";
/// Content type of a batch body (before compression).
pub const BATCH_CONTENT_TYPE: &str = "application/x-ndjson";
/// Content encoding of a batch body.
pub const BATCH_CONTENT_ENCODING: &str = "zstd";

/// The answer to an accepted batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestResponse {
    /// Events that were new and are now durable.
    pub accepted: u64,
    /// Events the server already had (a retry); dropped.
    pub duplicates: u64,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, precisely enough to fix it.
    pub error: String,
    /// The limit that was exceeded, when a limit was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// The 0-based character offset of the problem in a malformed query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
}
