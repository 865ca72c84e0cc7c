//! The `journalctl` child of one journald input, and the thread that reads
//! it: entries go to the source through a bounded channel (so a paused
//! pipeline stops the reading and, through the pipe, journalctl), and when
//! journalctl ends the thread says why and starts it again after a backoff,
//! after the last entry it read, so nothing is read twice within a run.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::entry::{self, Entry, EntryError};
use crate::sources::Waker;

/// Entries waiting for the scheduler at most; the reader blocks beyond.
const CHANNEL_ENTRIES: usize = 4096;
/// The first pause before journalctl is started again; doubled per quick
/// failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A child that ran this long resets the backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(30);
/// A line of journalctl's output longer than this is skipped (and said):
/// the server refuses events over 2 MiB, and fields are cut far below it.
const MAX_OUTPUT_LINE: usize = 16 << 20;
/// Lines of journalctl's standard error kept for the report of its end.
const STDERR_LINES: usize = 5;

/// What journalctl is run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Query {
    pub(crate) journalctl: PathBuf,
    pub(crate) directory: Option<PathBuf>,
    pub(crate) units: Vec<String>,
    pub(crate) matches: Vec<String>,
}

/// Where journalctl starts reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Start {
    /// At the oldest entry.
    Head,
    /// Just after the entry with this cursor.
    AfterCursor(String),
}

impl Query {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.journalctl);
        command
            .env("SYSTEMD_COLORS", "0")
            .env("SYSTEMD_PAGER", "")
            .args(["--no-pager", "--quiet", "--all", "--output=json"]);
        if let Some(directory) = &self.directory {
            command.arg(format!("--directory={}", directory.display()));
        }
        for unit in &self.units {
            command.arg(format!("--unit={unit}"));
        }
        command.args(&self.matches);
        command
    }

    /// The command that follows the journal from `start`.
    pub(crate) fn follow_command(&self, start: &Start) -> Command {
        let mut command = self.command();
        // `--follow` alone shows at most the last 10 entries before the new
        // ones, even after a cursor; `--no-tail` shows them all.
        command.args(["--follow", "--no-tail"]);
        if let Start::AfterCursor(cursor) = start {
            command.arg(format!("--after-cursor={cursor}"));
        }
        command
    }

    /// Runs journalctl once with `extra` arguments and reads the first
    /// entry it prints, if any; used to look at the journal before
    /// following it.
    pub(crate) fn first_entry(&self, extra: &[String]) -> Result<Option<Entry>, String> {
        let mut command = self.command();
        command.args(extra);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("cannot run {}: {error}", self.journalctl.display()))?;
        let stdout = child.stdout.take();
        let mut line = Vec::new();
        if let Some(stdout) = stdout {
            let _ = BufReader::new(stdout)
                .take(MAX_OUTPUT_LINE as u64)
                .read_until(b'\n', &mut line);
        }
        let _ = child.kill();
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let status = child.wait();
        if line.iter().all(u8::is_ascii_whitespace) {
            return match status {
                Ok(status) if !status.success() && stderr.trim().is_empty() => {
                    Err(format!("journalctl exited with {status}"))
                }
                Ok(status) if !status.success() => Err(format!(
                    "journalctl exited with {status}: {}",
                    stderr.trim()
                )),
                _ => Ok(None),
            };
        }
        // No limit on the message: only its cursor is used.
        entry::parse_entry(&line, usize::MAX)
            .map(Some)
            .map_err(|error| error.to_string())
    }
}

/// What the reader thread tells the source.
#[derive(Debug)]
pub(crate) enum Report {
    Entry(Box<Entry>),
    /// A line of output that is not an entry (skipped).
    Unreadable(EntryError),
    /// journalctl is running.
    Started,
    /// journalctl ended; it is started again after `restart_in`.
    Ended {
        why: String,
        restart_in: Duration,
    },
}

/// The reading thread of one input; dropping it stops the thread and
/// kills its child.
pub(crate) struct Reader {
    stop: Arc<AtomicBool>,
    child: Arc<Mutex<Option<Child>>>,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    /// Starts reading `query` from `start`; reports arrive on the returned
    /// channel, each followed by a call of `waker`.
    pub(crate) fn start(
        query: Query,
        start: Start,
        max_message_bytes: usize,
        waker: Waker,
        name: &str,
    ) -> std::io::Result<(Self, Receiver<Report>)> {
        let (sender, receiver) = crossbeam_channel::bounded(CHANNEL_ENTRIES);
        let stop = Arc::new(AtomicBool::new(false));
        let child = Arc::new(Mutex::new(None));
        let run = Run {
            query,
            start,
            max_message_bytes,
            sender,
            waker,
            stop: stop.clone(),
            child: child.clone(),
        };
        let thread = thread::Builder::new()
            .name(format!("journalctl {name}"))
            .spawn(move || run.run())?;
        Ok((
            Self {
                stop,
                child,
                thread: Some(thread),
            },
            receiver,
        ))
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(mut child) = self.child.lock() {
            if let Some(child) = child.as_mut() {
                let _ = child.kill();
            }
        }
        // The thread may be blocked handing over an entry nobody takes
        // any more; it ends when the receiver is dropped, so it is not
        // joined here.
        drop(self.thread.take());
    }
}

struct Run {
    query: Query,
    start: Start,
    max_message_bytes: usize,
    sender: Sender<Report>,
    waker: Waker,
    stop: Arc<AtomicBool>,
    child: Arc<Mutex<Option<Child>>>,
}

impl Run {
    fn send(&self, report: Report) -> bool {
        let sent = self.sender.send(report).is_ok();
        self.waker.wake();
        sent
    }

    fn run(mut self) {
        let mut backoff = FIRST_BACKOFF;
        while !self.stop.load(Ordering::SeqCst) {
            let started = Instant::now();
            let why = match self.follow_once() {
                Ok(why) => why,
                Err(()) => return,
            };
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            if started.elapsed() >= HEALTHY_RUN {
                backoff = FIRST_BACKOFF;
            }
            if !self.send(Report::Ended {
                why,
                restart_in: backoff,
            }) {
                return;
            }
            let deadline = Instant::now() + backoff;
            while Instant::now() < deadline {
                if self.stop.load(Ordering::SeqCst) {
                    return;
                }
                thread::sleep(Duration::from_millis(50).min(backoff));
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Runs journalctl until it ends; why it ended, or `Err` when the
    /// source is gone.
    fn follow_once(&mut self) -> Result<String, ()> {
        let mut command = self.query.follow_command(&self.start);
        let spawned = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) => {
                return Ok(format!(
                    "cannot run {}: {error}",
                    self.query.journalctl.display()
                ))
            }
        };
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Ok("journalctl's output pipes are missing".to_string());
        };
        if let Ok(mut slot) = self.child.lock() {
            *slot = Some(child);
        }
        let errors = thread::Builder::new()
            .name("journalctl stderr".into())
            .spawn(move || last_lines(stderr))
            .ok();
        if !self.send(Report::Started) {
            return Err(());
        }
        let mut reader = BufReader::with_capacity(256 << 10, stdout);
        let mut line = Vec::new();
        let mut gone = false;
        loop {
            line.clear();
            let read = (&mut reader)
                .take(MAX_OUTPUT_LINE as u64 + 1)
                .read_until(b'\n', &mut line);
            match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if line.len() > MAX_OUTPUT_LINE {
                // Skip the rest of the line.
                let mut rest = Vec::new();
                let _ = reader.read_until(b'\n', &mut rest);
                if !self.send(Report::Unreadable(EntryError::NotJson(format!(
                    "an entry over {MAX_OUTPUT_LINE} bytes of JSON was skipped"
                )))) {
                    gone = true;
                    break;
                }
                continue;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let report = match entry::parse_entry(&line, self.max_message_bytes) {
                Ok(entry) => {
                    self.start = Start::AfterCursor(entry.cursor.clone());
                    Report::Entry(Box::new(entry))
                }
                Err(error) => Report::Unreadable(error),
            };
            if !self.send(report) {
                gone = true;
                break;
            }
        }
        let status = match self.child.lock() {
            Ok(mut slot) => slot.take().map(|mut child| {
                let _ = child.kill();
                child.wait()
            }),
            Err(_) => None,
        };
        if gone {
            return Err(());
        }
        let stderr = errors
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default();
        let status = match status {
            Some(Ok(status)) => status.to_string(),
            Some(Err(error)) => format!("unknown status ({error})"),
            None => "unknown status".to_string(),
        };
        Ok(if stderr.is_empty() {
            format!("journalctl ended ({status})")
        } else {
            format!("journalctl ended ({status}): {}", stderr.join(" / "))
        })
    }
}

/// The last few non-empty lines of a pipe, read to its end.
fn last_lines(pipe: impl Read) -> Vec<String> {
    let mut lines = std::collections::VecDeque::new();
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        let line = line.trim().to_string();
        if line.is_empty() {
            continue;
        }
        if lines.len() == STDERR_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }
    lines.into()
}
