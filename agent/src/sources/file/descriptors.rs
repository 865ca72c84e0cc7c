//! The descriptor budget (`max_open_files`): closing the longest idle
//! drained files to make room, opening a closed file again when it
//! changed, and letting waiting files in once descriptors are free.

use std::path::Path;

use super::checkpoints::FileCheckpoints;
use super::fingerprint::DevInode;
use super::watcher::FileWatcher;
use super::{open_files, stream_truncated, FileSource};
use crate::pipeline::Pipeline;

impl FileSource {
    /// Makes room for `needed` more open descriptors under
    /// `max_open_files`, closing the longest idle drained files (a batch of
    /// them, so the search is not repeated for every file); false if not
    /// enough could be closed.
    pub(super) fn make_room(&mut self, needed: usize) -> bool {
        if self.num_open + needed <= self.max_watchers_open {
            return true;
        }
        if self.room_exhausted {
            return false;
        }
        let excess = self.num_open + needed - self.max_watchers_open;
        let batch = excess.max(self.max_watchers_open / 8);
        for location in open_files::idle_to_close(&self.watchers, batch) {
            // A file written to since it was picked stays open.
            if self
                .watchers
                .get_mut(&location)
                .is_some_and(FileWatcher::close)
            {
                self.num_open -= 1;
                self.ready.remove(&location);
            }
        }
        if self.num_open + needed <= self.max_watchers_open {
            return true;
        }
        self.room_exhausted = true;
        false
    }

    /// Opens the watcher at `location` again if it was closed; false if
    /// it cannot be read now (no descriptor free: it waits; or its path
    /// names another file now).
    pub(super) fn ensure_open(&mut self, pipeline: &mut Pipeline, location: DevInode) -> bool {
        match self.watchers.get(&location) {
            None => return false,
            Some(watcher) if watcher.is_open() => return true,
            Some(_) => {}
        }
        if !self.make_room(1) {
            self.ready.remove(&location);
            self.waiting_reopen.insert(location);
            return false;
        }
        let watcher = self.watchers.get_mut(&location).expect("present above");
        match watcher.reopen() {
            Ok(true) => {
                self.num_open += 1;
                match watcher.check_truncated() {
                    Ok(Some(old)) => stream_truncated(&mut self.ended, pipeline, old),
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(%error, path = %watcher.path().display(), "cannot check file")
                    }
                }
                true
            }
            Ok(false) => {
                tracing::info!(path = %watcher.path().display(), "a closed file is no longer at its path; what was appended to it since it was closed cannot be read");
                self.ready.remove(&location);
                false
            }
            Err(error) => {
                tracing::warn!(%error, path = %watcher.path().display(), "cannot open file again");
                let path = watcher.path().to_path_buf();
                self.ready.remove(&location);
                self.note_file_error(&path, format!("cannot open again: {error}"));
                false
            }
        }
    }

    /// A change event found the closed file at `location` under `path`
    /// (renamed, maybe out of the globs): follow it there, so what is
    /// appended to it before it is released is still read.
    pub(super) fn closed_file_renamed(
        &mut self,
        pipeline: &mut Pipeline,
        location: DevInode,
        path: &Path,
        metadata: &std::fs::Metadata,
    ) {
        let Some(watcher) = self.watchers.get_mut(&location) else {
            return;
        };
        if watcher.is_open() || watcher.path() == path {
            return;
        }
        tracing::info!(from = %watcher.path().display(), to = %path.display(), "closed file renamed");
        let tags = watcher.tags().clone();
        watcher.set_path(path, tags);
        if let Some(identity) = watcher.identity() {
            pipeline.checkpoints_mut().set_path(&identity.file_id, path);
        }
        if watcher.changed_since_close(metadata) {
            self.ready.insert(location);
        }
    }

    /// Gives files waiting for a descriptor their turn, when reading has
    /// nothing else to do.
    pub(super) fn admit_waiting(&mut self, pipeline: &mut Pipeline) {
        if self.room_exhausted || (self.waiting.is_empty() && self.waiting_reopen.is_empty()) {
            return;
        }
        for location in std::mem::take(&mut self.waiting_reopen) {
            if self.watchers.contains_key(&location) {
                self.ready.insert(location);
            }
        }
        for (path, tags) in std::mem::take(&mut self.waiting) {
            if let Some(location) = self.follow(pipeline, &path, tags) {
                self.by_path.insert(path, location);
            }
        }
    }
}
