//! A thread that appends [`numbered_line`]s to a file at a steady rate, as
//! an application writing its log does, while a test rotates, truncates or
//! deletes the file underneath it.
//!
//! The writer keeps its file open in append mode, like an application: after
//! a rename it goes on writing to the renamed file until told to
//! [`NumberedWriter::reopen`] (logrotate's `postrotate` signal). A test can
//! hold it still with [`NumberedWriter::paused`], e.g. around
//! copy-and-truncate, whose window between the copy and the truncation
//! loses any line written in it whatever the agent does.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::data::numbered_line;

struct State {
    path: PathBuf,
    file: File,
    next: u64,
}

/// See the module docs.
pub struct NumberedWriter {
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn open_append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|error| panic!("open {} for append: {error}", path.display()))
}

impl NumberedWriter {
    /// Starts appending `lines_per_tick` lines tagged `tag`, numbered from
    /// `first`, to `path` every `tick`, until `limit` lines (total numbers
    /// `first..limit`) are written or [`NumberedWriter::stop`] is called.
    pub fn start(
        path: &Path,
        tag: &str,
        first: u64,
        limit: u64,
        lines_per_tick: u64,
        tick: Duration,
    ) -> NumberedWriter {
        let state = Arc::new(Mutex::new(State {
            path: path.to_path_buf(),
            file: open_append(path),
            next: first,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop, tag) = (Arc::clone(&state), Arc::clone(&stop), tag.to_string());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    {
                        let mut state = state.lock().expect("writer lock");
                        let end = (state.next + lines_per_tick).min(limit);
                        let mut bytes = Vec::new();
                        for number in state.next..end {
                            bytes.extend_from_slice(numbered_line(&tag, number).as_bytes());
                            bytes.push(b'\n');
                        }
                        state.file.write_all(&bytes).expect("write numbered lines");
                        state.next = end;
                        if end >= limit {
                            return;
                        }
                    }
                    std::thread::sleep(tick);
                }
            })
        };
        NumberedWriter {
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// Holds the writer still: no line is written while the guard lives.
    pub fn paused(&self) -> WriterPause<'_> {
        WriterPause(self.state.lock().expect("writer lock"))
    }

    /// How many numbers were written so far (the next number to write).
    pub fn written(&self) -> u64 {
        self.state.lock().expect("writer lock").next
    }

    /// Stops writing, waits for the thread, returns the next number (all
    /// numbers below it were written).
    pub fn stop(mut self) -> u64 {
        self.finish()
    }

    /// Waits until every number below `limit` is written; returns `limit`.
    pub fn join(mut self) -> u64 {
        if let Some(thread) = self.thread.take() {
            thread.join().expect("writer thread panicked");
        }
        self.written()
    }

    fn finish(&mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("writer thread panicked");
        }
        self.written()
    }
}

impl Drop for NumberedWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A paused [`NumberedWriter`]; see [`NumberedWriter::paused`].
pub struct WriterPause<'a>(MutexGuard<'a, State>);

impl WriterPause<'_> {
    /// Reopens the writer's path (after a rename, the new file there).
    pub fn reopen(&mut self) {
        self.0.file = open_append(&self.0.path);
    }

    /// Points the writer at another path (opened in append mode).
    pub fn switch_to(&mut self, path: &Path) {
        self.0.path = path.to_path_buf();
        self.reopen();
    }

    /// The next number the writer will write.
    pub fn next(&self) -> u64 {
        self.0.next
    }
}
