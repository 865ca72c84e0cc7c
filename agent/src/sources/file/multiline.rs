//! Joining the lines of one multi-line message (a stack trace) into one
//! event.
//!
//! A [`Joiner`] per stream gets that stream's complete lines in order. A
//! line that matches the configured `start` pattern begins a new group;
//! any other line continues the open group (or, with none open, begins
//! one of its own: a file that starts in the middle of a trace). A group
//! is shipped when the next group begins, when it got no new line for
//! `flush_ms`, or when its file is released. An event spans from its first
//! line's offset to its last line's end, so checkpoints, dedup and a
//! re-read after a crash (which starts at the group's first line) stay
//! exact.
//!
//! Caps: a line that would take a group past `max_lines` lines or
//! `max_bytes` bytes of message is not added; the group is shipped as it
//! is and the line begins the next part. Every part of a group split this
//! way carries the tag `multiline = "max_lines"` (or `"max_bytes"`), so
//! nothing is dropped and the split is visible in search.

use std::sync::Arc;
use std::time::{Duration, Instant};

use regex_lite::Regex;

use super::lines::RawLine;

/// The tag that marks the parts of a group split by a cap.
pub const SPLIT_TAG: &str = "multiline";

/// One input's multi-line rule, validated.
#[derive(Debug, Clone)]
pub struct MultilineSettings {
    /// A line that matches begins a new event.
    pub start: Regex,
    /// Lines per event at most.
    pub max_lines: usize,
    /// Bytes of message per event at most (a single line is never cut
    /// here; `max_line_bytes` bounds lines).
    pub max_bytes: usize,
    /// A group that got no new line for this long is shipped.
    pub flush_ms: u64,
}

impl PartialEq for MultilineSettings {
    fn eq(&self, other: &Self) -> bool {
        self.start.as_str() == other.start.as_str()
            && self.max_lines == other.max_lines
            && self.max_bytes == other.max_bytes
            && self.flush_ms == other.flush_ms
    }
}

impl Eq for MultilineSettings {}

/// Which cap split a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `max_lines` was reached.
    MaxLines,
    /// `max_bytes` was reached.
    MaxBytes,
}

impl Split {
    /// The value of the [`SPLIT_TAG`] tag.
    pub fn tag_value(self) -> &'static str {
        match self {
            Split::MaxLines => "max_lines",
            Split::MaxBytes => "max_bytes",
        }
    }
}

/// A line, or several joined with `\n`, ready to become one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The line or the joined lines, spanning their byte range.
    pub line: RawLine,
    /// Set on every part of a group split by a cap.
    pub split: Option<Split>,
    /// What a container log's line carries besides its text.
    pub(crate) container: Option<Box<super::container::ContainerMeta>>,
}

impl From<RawLine> for Joined {
    fn from(line: RawLine) -> Self {
        Self {
            line,
            split: None,
            container: None,
        }
    }
}

#[derive(Debug)]
struct Group {
    joined: RawLine,
    num_lines: usize,
    split: Option<Split>,
    last_line_at: Instant,
}

/// Joins one stream's lines; see the module docs.
#[derive(Debug)]
pub struct Joiner {
    settings: Arc<MultilineSettings>,
    group: Option<Group>,
}

impl Joiner {
    /// A joiner with no open group.
    pub fn new(settings: Arc<MultilineSettings>) -> Self {
        Self {
            settings,
            group: None,
        }
    }

    /// Adds the stream's next complete line, received at `now`; groups
    /// that end are appended to `out`.
    pub fn push(&mut self, line: RawLine, now: Instant, out: &mut Vec<Joined>) {
        let starts = self
            .settings
            .start
            .is_match(&String::from_utf8_lossy(&line.bytes));
        let Some(group) = self.group.as_mut().filter(|_| !starts) else {
            self.flush(out);
            self.begin(line, None, now);
            return;
        };
        let cap = if group.num_lines >= self.settings.max_lines {
            Some(Split::MaxLines)
        } else if group.joined.bytes.len() + 1 + line.bytes.len() > self.settings.max_bytes {
            Some(Split::MaxBytes)
        } else {
            None
        };
        if let Some(cap) = cap {
            let split = group.split.unwrap_or(cap);
            group.split = Some(split);
            self.flush(out);
            self.begin(line, Some(split), now);
            return;
        }
        let joined = &mut group.joined;
        joined.bytes.push(b'\n');
        joined.bytes.extend_from_slice(&line.bytes);
        if line.truncated {
            trim_split_character(&mut joined.bytes);
        }
        joined.end_offset = line.end_offset;
        joined.truncated |= line.truncated;
        group.num_lines += 1;
        group.last_line_at = now;
    }

    fn begin(&mut self, mut line: RawLine, split: Option<Split>, now: Instant) {
        if line.truncated {
            trim_split_character(&mut line.bytes);
        }
        self.group = Some(Group {
            joined: line,
            num_lines: 1,
            split,
            last_line_at: now,
        });
    }

    /// When the open group is due to be shipped for lack of new lines.
    pub fn deadline(&self) -> Option<Instant> {
        self.group
            .as_ref()
            .map(|group| group.last_line_at + Duration::from_millis(self.settings.flush_ms))
    }

    /// Ships the open group if its flush timeout has passed at `now`.
    pub fn flush_if_due(&mut self, now: Instant, out: &mut Vec<Joined>) {
        if self.deadline().is_some_and(|deadline| deadline <= now) {
            self.flush(out);
        }
    }

    /// Ships the open group, if any.
    pub fn flush(&mut self, out: &mut Vec<Joined>) {
        if let Some(group) = self.group.take() {
            out.push(Joined {
                line: group.joined,
                split: group.split,
                container: None,
            });
        }
    }

    /// Whether a group is open.
    pub fn is_idle(&self) -> bool {
        self.group.is_none()
    }
}

/// Drops an incomplete UTF-8 sequence at the end of a line cut at
/// `max_line_bytes`, so that a cut through a character is not reported as
/// invalid UTF-8 once more lines follow it.
fn trim_split_character(bytes: &mut Vec<u8>) {
    let tail_start = bytes.len().saturating_sub(3);
    if let Err(error) = std::str::from_utf8(&bytes[tail_start..]) {
        if error.error_len().is_none() {
            bytes.truncate(tail_start + error.valid_up_to());
        }
    }
}

#[cfg(test)]
mod tests {
    use loghound_shared::ByteOffset;

    use super::*;
    use crate::sources::file::lines::LineSplitter;

    fn settings(start: &str, max_lines: usize, max_bytes: usize) -> Arc<MultilineSettings> {
        Arc::new(MultilineSettings {
            start: Regex::new(start).unwrap(),
            max_lines,
            max_bytes,
            flush_ms: 500,
        })
    }

    /// Splits `text` into lines from offset 0 and joins them.
    fn join(joiner: &mut Joiner, text: &str, now: Instant) -> Vec<Joined> {
        let mut lines = Vec::new();
        LineSplitter::new(ByteOffset(0), 1 << 20).push(text.as_bytes(), &mut lines);
        let mut out = Vec::new();
        for line in lines {
            joiner.push(line, now, &mut out);
        }
        out
    }

    fn messages(joined: &[Joined]) -> Vec<String> {
        joined
            .iter()
            .map(|j| String::from_utf8_lossy(&j.line.bytes).into_owned())
            .collect()
    }

    const JAVA: &str = "2026-12-01 10:00:00,001 INFO  [main] o.e.Server - started\n\
2026-12-01 10:00:01,002 ERROR [pool-1-thread-3] o.e.Handler - request failed\n\
java.lang.IllegalStateException: connection pool exhausted\n\
\tat org.example.db.Pool.acquire(Pool.java:88)\n\
\tat org.example.Handler.handle(Handler.java:41)\n\
Caused by: java.net.SocketTimeoutException: connect timed out\n\
\tat java.base/java.net.Socket.connect(Socket.java:633)\n\
\t... 12 more\n\
2026-12-01 10:00:02,003 INFO  [main] o.e.Server - still serving\n";

    #[test]
    fn java_trace_is_one_event_with_exact_offsets() {
        let mut joiner = Joiner::new(settings(r"^\d{4}-\d{2}-\d{2} ", 500, 1 << 20));
        let mut out = join(&mut joiner, JAVA, Instant::now());
        assert_eq!(out.len(), 2, "the last group stays open");
        joiner.flush(&mut out);
        let lines: Vec<&str> = JAVA.split_inclusive('\n').collect();
        assert_eq!(
            messages(&out),
            vec![
                lines[0].trim_end().to_string(),
                lines[1..8].concat().trim_end().to_string(),
                lines[8].trim_end().to_string(),
            ]
        );
        let len = |range: &[&str]| range.concat().len() as u64;
        assert_eq!(out[1].line.offset, ByteOffset(len(&lines[..1])));
        assert_eq!(out[1].line.end_offset, ByteOffset(len(&lines[..8])));
        assert_eq!(out[2].line.end_offset, ByteOffset(JAVA.len() as u64));
        assert!(out.iter().all(|j| j.split.is_none() && !j.line.truncated));
    }

    #[test]
    fn python_traceback_joins_to_its_timestamped_line() {
        let text = "2026-12-01T10:00:00Z ERROR worker crashed\n\
Traceback (most recent call last):\n  File \"/srv/app/worker.py\", line 42, in run\n    \
result = handler(job)\n  File \"/srv/app/jobs.py\", line 7, in handler\n    \
return int(job.payload)\nValueError: invalid literal for int() with base 10: 'x'\n\
2026-12-01T10:00:01Z INFO next job\n";
        let mut joiner = Joiner::new(settings(r"^\d{4}-\d{2}-\d{2}T", 500, 1 << 20));
        let out = join(&mut joiner, text, Instant::now());
        assert_eq!(out.len(), 1);
        assert!(
            messages(&out)[0].starts_with("2026-12-01T10:00:00Z ERROR worker crashed\nTraceback")
        );
        assert!(messages(&out)[0]
            .ends_with("\nValueError: invalid literal for int() with base 10: 'x'"));
        assert_eq!(messages(&out)[0].lines().count(), 7);
    }

    #[test]
    fn leading_continuation_lines_form_their_own_event() {
        let mut joiner = Joiner::new(settings("^START", 500, 1 << 20));
        let out = join(&mut joiner, "\tat a\n\tat b\nSTART x\n", Instant::now());
        assert_eq!(messages(&out), vec!["\tat a\n\tat b"]);
        assert_eq!(out[0].line.end_offset, ByteOffset(12));
    }

    #[test]
    fn max_lines_splits_and_marks_every_part() {
        let mut joiner = Joiner::new(settings("^S", 3, 1 << 20));
        let mut out = join(&mut joiner, "S0\n1\n2\n3\n4\n5\n6\nS1\n", Instant::now());
        joiner.flush(&mut out);
        assert_eq!(messages(&out), vec!["S0\n1\n2", "3\n4\n5", "6", "S1"]);
        let splits: Vec<_> = out.iter().map(|j| j.split).collect();
        assert_eq!(
            splits,
            vec![
                Some(Split::MaxLines),
                Some(Split::MaxLines),
                Some(Split::MaxLines),
                None
            ]
        );
        // Parts tile the file: each starts where the previous ended.
        for pair in out.windows(2) {
            assert_eq!(pair[0].line.end_offset, pair[1].line.offset);
        }
        assert_eq!(out[0].line.offset, ByteOffset(0));
    }

    #[test]
    fn max_bytes_splits_before_the_line_that_would_not_fit() {
        // "S 123" + "\n" + "abcd" = 10 bytes fits; one more "\nabcd" does not.
        let mut joiner = Joiner::new(settings("^S", 100, 10));
        let mut out = join(
            &mut joiner,
            "S 123\nabcd\nabcd\nlonger than ten\n",
            Instant::now(),
        );
        joiner.flush(&mut out);
        assert_eq!(
            messages(&out),
            vec!["S 123\nabcd", "abcd", "longer than ten"]
        );
        assert_eq!(out[0].split, Some(Split::MaxBytes));
        assert_eq!(out[1].split, Some(Split::MaxBytes));
        assert_eq!(
            out[2].split,
            Some(Split::MaxBytes),
            "a line alone is never cut"
        );
        assert!(out.iter().all(|j| j.line.bytes.len() <= 15));
    }

    #[test]
    fn flush_timeout_ships_an_idle_group_only_when_due() {
        let mut joiner = Joiner::new(settings("^S", 100, 1 << 20));
        let start = Instant::now();
        assert!(join(&mut joiner, "S a\n b\n", start).is_empty());
        assert_eq!(joiner.deadline(), Some(start + Duration::from_millis(500)));
        let mut out = Vec::new();
        joiner.flush_if_due(start + Duration::from_millis(499), &mut out);
        assert!(out.is_empty());
        // A new line moves the deadline.
        let later = start + Duration::from_millis(300);
        let mut lines = Vec::new();
        LineSplitter::new(ByteOffset(7), 100).push(b" c\n", &mut lines);
        joiner.push(lines.remove(0), later, &mut out);
        joiner.flush_if_due(start + Duration::from_millis(600), &mut out);
        assert!(out.is_empty());
        joiner.flush_if_due(later + Duration::from_millis(500), &mut out);
        assert_eq!(messages(&out), vec!["S a\n b\n c"]);
        assert_eq!(out[0].line.end_offset, ByteOffset(10));
        assert!(joiner.is_idle());
        assert_eq!(joiner.deadline(), None);
    }

    #[test]
    fn cut_line_inside_a_group_keeps_valid_utf8_and_the_flag() {
        let mut joiner = Joiner::new(settings("^S", 100, 1 << 20));
        let mut lines = Vec::new();
        LineSplitter::new(ByteOffset(0), 4).push("S\nabcé\nok\n".as_bytes(), &mut lines);
        let mut out = Vec::new();
        for line in lines {
            joiner.push(line, Instant::now(), &mut out);
        }
        joiner.flush(&mut out);
        let joined = out.remove(0).line;
        assert!(joined.truncated);
        let text = joined.into_text();
        assert_eq!(text.message, "S\nabc\nok");
        assert!(!text.invalid_utf8);
    }
}
