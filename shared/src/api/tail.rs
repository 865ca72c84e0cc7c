//! `GET /api/v1/tail`: live tail as server-sent events. Each `hit` event
//! carries one [`super::Hit`] as its data and the event id as its SSE `id`;
//! a subscriber that reads too slowly gets one last `dropped` event.

use serde::{Deserialize, Serialize};

/// The route.
pub const TAIL_PATH: &str = "/api/v1/tail";
/// SSE event name of a matching line; its data is a [`super::Hit`].
pub const TAIL_EVENT_HIT: &str = "hit";
/// SSE event name of the last event sent to a subscriber that fell behind;
/// its data is a [`TailDropped`].
pub const TAIL_EVENT_DROPPED: &str = "dropped";

/// Why the stream ended and where to resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailDropped {
    /// What happened, for people.
    pub reason: String,
    /// Resume after this event id (`Last-Event-ID` or `after`).
    pub last_id: String,
}
