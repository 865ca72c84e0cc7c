//! One log line as it travels from the agent to the server.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{ByteOffset, FileId};

/// A line read from a file, with where it came from.
///
/// `(agent, file_id, offset)` names the line uniquely: the server uses it to
/// drop lines it already holds, so a re-sent batch never duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The file content stream the line was read from.
    pub file_id: FileId,
    /// Byte position of the line's first byte in that stream.
    pub offset: ByteOffset,
    /// Byte position just past the line's terminating newline: where the next
    /// line starts, and what the agent checkpoints once the line is acked.
    pub end_offset: ByteOffset,
    /// Host name of the machine the line was read on.
    pub host: String,
    /// Path of the file, as the agent saw it when reading.
    pub source: String,
    /// The line, without its `\n` (and without a trailing `\r`).
    pub message: String,
    /// When the agent read the line, in milliseconds since the Unix epoch.
    /// The server falls back to it when the line carries no timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at_ms: Option<i64>,
    /// Labels configured for the file's glob, such as `app = "api"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The line was longer than the agent's limit and was cut.
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
    /// The line was not valid UTF-8; invalid bytes became U+FFFD.
    #[serde(default, skip_serializing_if = "is_false")]
    pub invalid_utf8: bool,
    /// How the server should parse the line, when the agent's configuration
    /// says: `auto`, `json`, `apache`, `syslog` or `plain`. The server
    /// parses a value it does not know as `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The event's own time in milliseconds since the Unix epoch, when the
    /// source records one apart from the line (a journal entry's
    /// `__REALTIME_TIMESTAMP`, a container runtime's timestamp). The server
    /// takes it over any timestamp in the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<i64>,
    /// The severity the source records apart from the line (a journal
    /// entry's `PRIORITY`), as a name (`err`, `warning`, `info`, …). A level
    /// the server finds in the line itself takes precedence, since programs
    /// that log to standard output get their unit's default priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Structured fields the source records apart from the line (a journal
    /// entry's fields, a container's name and stream). Indexed like the
    /// fields the server parses from the line; on the same name these win.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, serde_json::Value>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Why an event is inconsistent in itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvent {
    /// The line ends before it starts.
    #[error("end_offset {end} is not after offset {start}")]
    EmptyRange {
        /// The event's `offset`.
        start: u64,
        /// The event's `end_offset`.
        end: u64,
    },
}

impl Event {
    /// Checks what serde cannot: the byte range is not empty.
    pub fn validate(&self) -> Result<(), InvalidEvent> {
        if self.end_offset <= self.offset {
            return Err(InvalidEvent::EmptyRange {
                start: self.offset.0,
                end: self.end_offset.0,
            });
        }
        Ok(())
    }
}
