//! The safety-net rescan (re-glob, re-stat, release what vanished), the
//! look at start for files renamed out of the globs while the agent was
//! stopped, and the release of a drained file no glob finds any more.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::checkpoints::{FileCheckpoints, FileRecord};
use super::fingerprint::{self, DevInode};
use super::{
    remember_ended, stream_truncated, watcher_identity, FileSource, RELEASE_AFTER_MISSING_RESCANS,
};
use crate::pipeline::{Pipeline, PipelineError};

impl FileSource {
    /// Re-globs, re-stats every known file and releases vanished ones.
    pub(super) fn rescan(&mut self, pipeline: &mut Pipeline) -> Result<(), PipelineError> {
        self.room_exhausted = false;
        self.fs_watch.watch_roots(&self.provider.roots());
        let mut seen = HashSet::new();
        let mut by_path = HashMap::new();
        for found in self.provider.discover() {
            if let Some(location) = self.follow(pipeline, &found.path, found.tags) {
                seen.insert(location);
                by_path.insert(found.path, location);
            }
        }
        self.by_path = by_path;
        let mut released = Vec::new();
        let mut errors = Vec::new();
        for (location, watcher) in &mut self.watchers {
            if seen.contains(location) {
                watcher.missing_rescans = 0;
            } else {
                watcher.missing_rescans += 1;
            }
            match watcher.check_truncated() {
                Ok(Some(old)) => stream_truncated(&mut self.ended, pipeline, old),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, path = %watcher.path().display(), "cannot check file");
                    errors.push((
                        watcher.path().to_path_buf(),
                        format!("cannot check: {error}"),
                    ));
                }
            }
            let gone = watcher.missing_rescans >= RELEASE_AFTER_MISSING_RESCANS;
            if gone && !self.ready.contains(location) && watcher.at_end().unwrap_or(true) {
                released.push(*location);
            }
        }
        for (path, message) in errors {
            self.note_file_error(&path, message);
        }
        let any_released = !released.is_empty();
        for location in released {
            self.release(pipeline, location)?;
        }
        // Closed files were marked ready by `follow` if they changed.
        self.ready.extend(
            self.watchers
                .iter()
                .filter(|(_, watcher)| watcher.is_open())
                .map(|(location, _)| *location),
        );
        debug_assert_eq!(
            self.num_open,
            self.watchers.values().filter(|w| w.is_open()).count()
        );
        self.publish_files(pipeline);
        self.next_rescan = Instant::now() + Duration::from_millis(self.settings.rescan_interval_ms);
        if any_released && !self.shadowed.is_empty() {
            // A shadowed copy may continue a released file.
            self.next_rescan = Instant::now();
        }
        Ok(())
    }

    /// At start: a file with a checkpoint that no glob finds any more may
    /// have been renamed out of the globs while the agent was stopped
    /// (logrotate's `app.log` → `app.log.1` under a `*.log` glob) with
    /// lines the server has not acked. Each such file is looked for by its
    /// inode (and first line) in the directory it was last seen in, and one
    /// found with unacked bytes is followed: read to its end and released,
    /// like any file that left the globs while followed.
    pub(super) fn find_renamed_away(&mut self, pipeline: &mut Pipeline) {
        let mut wanted: HashMap<PathBuf, Vec<FileRecord>> = HashMap::new();
        for record in pipeline.checkpoints().file_records() {
            let followed = self.watchers.keys().any(|location| {
                location.same_file(record.state.dev, record.state.inode, record.state.birth_ns)
            });
            if let (false, Some(dir)) = (followed, record.state.path.parent()) {
                wanted.entry(dir.to_path_buf()).or_default().push(record);
            }
        }
        for (dir, records) in wanted {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(metadata) = entry.metadata() else {
                    continue;
                };
                if !metadata.is_file() {
                    continue;
                }
                let location = DevInode::of(&metadata);
                let Some(record) = records
                    .iter()
                    .find(|r| location.same_file(r.state.dev, r.state.inode, r.state.birth_ns))
                else {
                    continue;
                };
                let path = entry.path();
                let same_stream = std::fs::File::open(&path)
                    .and_then(|file| fingerprint::fingerprint(&file))
                    .is_ok_and(|print| print.is_some_and(|p| p.0 == record.state.fingerprint));
                if !same_stream || metadata.len() <= record.offset.0 {
                    continue;
                }
                let Some(tags) = self.provider.matches(&record.state.path) else {
                    continue;
                };
                tracing::info!(from = %record.state.path.display(), to = %path.display(), acked = %record.offset, size = metadata.len(), "file was renamed out of the globs while the agent was stopped; reading the rest of it");
                self.follow(pipeline, &path, tags);
            }
        }
    }

    /// Stops following a drained file that no glob finds any more: its
    /// partial last line is shipped as it is, its descriptor closed.
    pub(super) fn release(
        &mut self,
        pipeline: &mut Pipeline,
        location: DevInode,
    ) -> Result<(), PipelineError> {
        if let Some(watcher) = self.watchers.get_mut(&location) {
            self.lines.clear();
            if watcher.flush_partial(&mut self.lines) {
                self.emit(pipeline, location)?;
            }
            if let Some(identity) = watcher_identity(&self.watchers, location) {
                self.flush_groups(pipeline, Some(&[identity]))?;
            }
        }
        let Some(watcher) = self.watchers.remove(&location) else {
            return Ok(());
        };
        if watcher.is_open() {
            self.num_open -= 1;
        }
        self.room_exhausted = false;
        if let Some(ended) = watcher.ended() {
            remember_ended(&mut self.ended, ended);
        }
        let deleted = watcher.is_deleted().unwrap_or(true);
        if let Some(identity) = watcher.identity() {
            if deleted {
                pipeline.checkpoints_mut().retire(&identity.file_id);
            }
        }
        tracing::info!(path = %watcher.path().display(), deleted, "released file");
        Ok(())
    }
}
