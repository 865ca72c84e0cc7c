//! Real journal files for the journald tests: entries in the journal's
//! export format piped into Debian's `systemd-journal-remote`, which writes
//! (or appends to) a journal file that `journalctl --directory` reads as it
//! reads the system journal.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where Debian and Fedora install `systemd-journal-remote`.
const JOURNAL_REMOTE: [&str; 2] = [
    "/lib/systemd/systemd-journal-remote",
    "/usr/lib/systemd/systemd-journal-remote",
];

/// The `systemd-journal-remote` binary; panics saying what to install.
pub fn journal_remote() -> PathBuf {
    JOURNAL_REMOTE
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!(
                "systemd-journal-remote is missing (looked in {JOURNAL_REMOTE:?}): the journald \
                 tests write real journal files with it; install Debian's package \
                 `systemd-journal-remote` (.ci/run does)"
            )
        })
}

/// One journal entry: its fields in order; the message may be bytes.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// `__REALTIME_TIMESTAMP`, µs since the epoch.
    pub realtime_us: u64,
    /// `MESSAGE`, as bytes (not necessarily UTF-8).
    pub message: Vec<u8>,
    /// The other fields, `NAME` → value.
    pub fields: Vec<(String, String)>,
}

impl JournalEntry {
    /// An entry with `message` at `realtime_us` and `fields`.
    pub fn new(realtime_us: u64, message: impl Into<Vec<u8>>, fields: &[(&str, &str)]) -> Self {
        JournalEntry {
            realtime_us,
            message: message.into(),
            fields: fields
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        }
    }

    fn export(&self, out: &mut Vec<u8>) {
        // One boot whose clock started at the epoch: monotonic time grows
        // across appends as it does on a real host.
        let _ = writeln!(out, "__REALTIME_TIMESTAMP={}", self.realtime_us);
        let _ = writeln!(out, "__MONOTONIC_TIMESTAMP={}", self.realtime_us);
        let _ = writeln!(out, "_BOOT_ID=6c0e2a1f3b9d4e5f8a7b6c5d4e3f2a1b");
        for (name, value) in &self.fields {
            let _ = writeln!(out, "{name}={value}");
        }
        if self.message.contains(&b'\n') || std::str::from_utf8(&self.message).is_err() {
            out.extend_from_slice(b"MESSAGE\n");
            out.extend_from_slice(&(self.message.len() as u64).to_le_bytes());
            out.extend_from_slice(&self.message);
            out.push(b'\n');
        } else {
            out.extend_from_slice(b"MESSAGE=");
            out.extend_from_slice(&self.message);
            out.push(b'\n');
        }
        out.push(b'\n');
    }
}

/// Appends `entries` to the journal file `file` (created if missing).
pub fn append_entries(file: &Path, entries: &[JournalEntry]) {
    let mut input = Vec::new();
    for entry in entries {
        entry.export(&mut input);
    }
    let mut child = Command::new(journal_remote())
        .arg(format!("--output={}", file.display()))
        .arg("--compress=no")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run systemd-journal-remote: {error}"));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(&input)
        .expect("write the export stream");
    let output = child
        .wait_with_output()
        .expect("wait for systemd-journal-remote");
    assert!(
        output.status.success(),
        "systemd-journal-remote failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Now, in µs since the epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
