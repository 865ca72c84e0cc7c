//! Low-latency change notification through `notify` (inotify on Linux).
//!
//! Only a hint: events can be dropped by the kernel, so the periodic rescan
//! stays the source of truth. When no watcher can be created (for example
//! the inotify instance limit is reached) a warning is logged and the agent
//! relies on the rescan alone.
//!
//! Events go into a channel of the file source's own; each one also calls
//! the scheduler's [`Waker`], so a sleeping loop turns and the source takes
//! them (`FileSource::on_wake`).

use std::collections::HashSet;
use std::path::PathBuf;

use crossbeam_channel::Receiver;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use crate::sources::Waker;

/// What the watcher reports.
pub(crate) type FsEvent = notify::Result<notify::Event>;

/// The watcher and the directories it watches.
pub(crate) struct FsWatch {
    watcher: Option<RecommendedWatcher>,
    events: Receiver<FsEvent>,
    watched: HashSet<PathBuf>,
    warned: bool,
}

impl FsWatch {
    pub(crate) fn new(waker: Waker) -> Self {
        let (sender, events) = crossbeam_channel::unbounded();
        let watcher = notify::recommended_watcher(move |event: FsEvent| {
            let _ = sender.send(event);
            waker.wake();
        });
        let watcher = match watcher {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(%error, "cannot watch files for changes; relying on the periodic rescan");
                None
            }
        };
        let events = if watcher.is_some() {
            events
        } else {
            crossbeam_channel::never()
        };
        Self {
            watcher,
            events,
            watched: HashSet::new(),
            warned: false,
        }
    }

    /// Events from the watcher; never fires when there is none.
    pub(crate) fn events(&self) -> &Receiver<FsEvent> {
        &self.events
    }

    /// Starts watching every root that exists and is not watched yet.
    pub(crate) fn watch_roots(&mut self, roots: &[(PathBuf, bool)]) {
        let Some(watcher) = &mut self.watcher else {
            return;
        };
        for (root, recursive) in roots {
            if self.watched.contains(root) || !root.is_dir() {
                continue;
            }
            let mode = if *recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            match watcher.watch(root, mode) {
                Ok(()) => {
                    tracing::debug!(path = %root.display(), recursive, "watching directory");
                    self.watched.insert(root.clone());
                }
                Err(error) => {
                    if !self.warned {
                        tracing::warn!(%error, path = %root.display(), "cannot watch directory; relying on the periodic rescan");
                        self.warned = true;
                    }
                }
            }
        }
    }
}
