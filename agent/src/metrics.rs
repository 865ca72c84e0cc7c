//! The agent's own counters and gauges, shared by the scheduler, the sender
//! threads and the `/metrics` endpoint (`metrics_http.rs`), and rendered in
//! the Prometheus text format.
//!
//! Counters are atomics bumped where things happen; per-file lag is a list
//! the scheduler publishes (path, inode, acked offset) whenever checkpoints
//! move or files come and go, and the file sizes are read at scrape time,
//! so a scrape shows the lag as of now without the scheduler doing any work
//! for it.

use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// An error the agent met, with when (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ErrorNote {
    pub(crate) at_ms: i64,
    pub(crate) message: String,
}

impl ErrorNote {
    /// `message`, now.
    pub(crate) fn now(message: String) -> Self {
        Self {
            at_ms: now_ms(),
            message,
        }
    }
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One followed file as the scheduler last published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileLag {
    pub(crate) path: PathBuf,
    pub(crate) dev: u64,
    pub(crate) inode: u64,
    /// Every byte before this one is acked by the server.
    pub(crate) acked: u64,
}

/// See the module docs. Counters only grow.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) lines_read: AtomicU64,
    pub(crate) bytes_read: AtomicU64,
    pub(crate) lines_shipped: AtomicU64,
    pub(crate) batches_shipped: AtomicU64,
    pub(crate) bytes_shipped: AtomicU64,
    pub(crate) lines_acked: AtomicU64,
    pub(crate) batches_acked: AtomicU64,
    pub(crate) batches_in_flight: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) refused_events: AtomicU64,
    pub(crate) files_followed: AtomicU64,
    pub(crate) files_open: AtomicU64,
    pub(crate) files_waiting: AtomicU64,
    pub(crate) journalctl_restarts: AtomicU64,
    pub(crate) journal_entries_skipped: AtomicU64,
    /// Bumped with every new last error, so the scheduler knows when to
    /// write the status file again.
    pub(crate) error_generation: AtomicU64,
    last_error: Mutex<Option<ErrorNote>>,
    files: Mutex<Vec<FileLag>>,
}

/// The metric kinds of the text format.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

impl Metrics {
    /// Records `message` as the agent's last error.
    pub(crate) fn note_error(&self, message: String) {
        let note = ErrorNote::now(message);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(note);
        }
        self.error_generation.fetch_add(1, Ordering::Relaxed);
    }

    /// The agent's last error, if any.
    pub(crate) fn last_error(&self) -> Option<ErrorNote> {
        self.last_error.lock().ok().and_then(|last| last.clone())
    }

    /// Replaces the per-file list.
    pub(crate) fn set_files(&self, files: Vec<FileLag>) {
        self.files_followed
            .store(files.len() as u64, Ordering::Relaxed);
        if let Ok(mut current) = self.files.lock() {
            *current = files;
        }
    }

    /// Everything, in the Prometheus text exposition format (0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let counters: [(&str, &str, &AtomicU64, Kind); 15] = [
            (
                "lines_read_total",
                "Lines read from files and journal entries read.",
                &self.lines_read,
                Kind::Counter,
            ),
            (
                "bytes_read_total",
                "Bytes of files read into lines.",
                &self.bytes_read,
                Kind::Counter,
            ),
            (
                "lines_shipped_total",
                "Lines handed to the senders in batches.",
                &self.lines_shipped,
                Kind::Counter,
            ),
            (
                "batches_shipped_total",
                "Batches handed to the senders.",
                &self.batches_shipped,
                Kind::Counter,
            ),
            (
                "bytes_shipped_total",
                "Compressed bytes of the batches handed to the senders.",
                &self.bytes_shipped,
                Kind::Counter,
            ),
            (
                "lines_acked_total",
                "Lines the server acked (accepted or recognised as duplicates).",
                &self.lines_acked,
                Kind::Counter,
            ),
            (
                "batches_acked_total",
                "Batches the server acked.",
                &self.batches_acked,
                Kind::Counter,
            ),
            (
                "batches_in_flight",
                "Batches built and not yet settled.",
                &self.batches_in_flight,
                Kind::Gauge,
            ),
            (
                "retries_total",
                "Failed sends that will be retried.",
                &self.retries,
                Kind::Counter,
            ),
            (
                "refused_events_total",
                "Lines the server refused on their own and the agent gave up.",
                &self.refused_events,
                Kind::Counter,
            ),
            (
                "files_followed",
                "Files followed.",
                &self.files_followed,
                Kind::Gauge,
            ),
            (
                "files_open",
                "Followed files holding an open descriptor.",
                &self.files_open,
                Kind::Gauge,
            ),
            (
                "files_waiting_for_descriptor",
                "Files waiting for a descriptor under max_open_files.",
                &self.files_waiting,
                Kind::Gauge,
            ),
            (
                "journalctl_restarts_total",
                "Times a journald input's journalctl ended and was started again.",
                &self.journalctl_restarts,
                Kind::Counter,
            ),
            (
                "journal_entries_unreadable_total",
                "Lines of journalctl's output that were not journal entries, skipped.",
                &self.journal_entries_skipped,
                Kind::Counter,
            ),
        ];
        for (name, help, value, kind) in counters {
            header(&mut out, name, help, kind);
            let _ = writeln!(
                out,
                "loghound_agent_{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "open_fds",
            "Open descriptors of the agent process.",
            Kind::Gauge,
        );
        let _ = writeln!(out, "loghound_agent_open_fds {}", count_open_fds());
        header(
            &mut out,
            "last_error_timestamp_seconds",
            "When the agent last met an error (0: never).",
            Kind::Gauge,
        );
        let at_ms = self.last_error().map_or(0, |note| note.at_ms);
        let _ = writeln!(
            out,
            "loghound_agent_last_error_timestamp_seconds {}.{:03}",
            at_ms / 1000,
            at_ms % 1000
        );
        header(
            &mut out,
            "file_lag_bytes",
            "Bytes of a followed file not yet acked by the server.",
            Kind::Gauge,
        );
        let files = self.files.lock().map(|f| f.clone()).unwrap_or_default();
        for file in files {
            // The size only means something if the path still holds the file.
            let Some(size) = std::fs::metadata(&file.path)
                .ok()
                .filter(|m| m.dev() == file.dev && m.ino() == file.inode)
                .map(|m| m.len())
            else {
                continue;
            };
            let _ = writeln!(
                out,
                "loghound_agent_file_lag_bytes{{path=\"{}\"}} {}",
                escape_label(&file.path.to_string_lossy()),
                size.saturating_sub(file.acked)
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: Kind) {
    let kind = match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
    };
    let _ = writeln!(out, "# HELP loghound_agent_{name} {help}");
    let _ = writeln!(out, "# TYPE loghound_agent_{name} {kind}");
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Entries of `/proc/self/fd` (0 where there is no `/proc`).
fn count_open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |entries| entries.count().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_the_lag_of_files_still_at_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a \"quoted\" name.log");
        std::fs::write(&path, b"0123456789").unwrap();
        let metadata = std::fs::metadata(&path).unwrap();
        let metrics = Metrics::default();
        metrics.lines_read.store(7, Ordering::Relaxed);
        metrics.set_files(vec![
            FileLag {
                path: path.clone(),
                dev: metadata.dev(),
                inode: metadata.ino(),
                acked: 4,
            },
            FileLag {
                path: dir.path().join("gone.log"),
                dev: 1,
                inode: 2,
                acked: 0,
            },
        ]);
        let text = metrics.render();
        assert!(
            text.contains("\nloghound_agent_lines_read_total 7\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE loghound_agent_lines_read_total counter\n"));
        assert!(
            text.contains("\nloghound_agent_files_followed 2\n"),
            "{text}"
        );
        assert!(text.contains("\nloghound_agent_last_error_timestamp_seconds 0.000\n"));
        let lag = format!(
            "loghound_agent_file_lag_bytes{{path=\"{}\"}} 6\n",
            escape_label(&path.to_string_lossy())
        );
        assert!(text.contains(&lag), "{text}");
        assert!(lag.contains("a \\\"quoted\\\" name.log"));
        assert!(!text.contains("gone.log"), "{text}");
        metrics.note_error("boom".into());
        assert!(!metrics
            .render()
            .contains("loghound_agent_last_error_timestamp_seconds 0.000"));
    }
}
