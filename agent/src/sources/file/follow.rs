//! Following a file found at a path: a known file (maybe renamed), a new
//! one, or a copy of a stream followed now or earlier (`copies.rs`).

use std::collections::hash_map::Entry;
use std::path::Path;
use std::time::Instant;

use super::checkpoints::FileCheckpoints;
use super::copies;
use super::discovery::Tags;
use super::fingerprint::{self, DevInode};
use super::watcher::FileWatcher;
use super::{remember_ended, FileSource, Origin, COPY_GRACE};
use crate::pipeline::Pipeline;

impl FileSource {
    /// Makes sure the file at `path` is followed; returns its location.
    pub(super) fn follow(
        &mut self,
        pipeline: &mut Pipeline,
        path: &Path,
        tags: Tags,
    ) -> Option<DevInode> {
        let metadata = std::fs::metadata(path).ok()?;
        let location = DevInode::of(&metadata);
        if let Some(watcher) = self.watchers.get_mut(&location) {
            if watcher.changed_since_close(&metadata) {
                self.ready.insert(location);
            }
            if watcher.path() != path {
                tracing::info!(from = %watcher.path().display(), to = %path.display(), "file renamed");
                watcher.set_path(path, tags);
                if let Some(identity) = watcher.identity() {
                    pipeline.checkpoints_mut().set_path(&identity.file_id, path);
                }
            }
            return Some(location);
        }
        if !self.make_room(1) {
            self.waiting.insert(path.to_path_buf(), tags);
            return None;
        }
        let opened = match self.origin(pipeline, path, location) {
            Ok(Some((file, Origin::Continues(ended)))) => {
                let watcher = FileWatcher::continuing(
                    path,
                    file,
                    location,
                    &ended,
                    tags,
                    self.settings.max_line_bytes,
                );
                if let Some(identity) = watcher.identity() {
                    tracing::info!(path = %path.display(), file_id = %identity.file_id, offset = %watcher.position(), "file is a copy of a stream that ended; carrying it on");
                    pipeline
                        .checkpoints_mut()
                        .adopt(identity, path, watcher.position());
                }
                self.shadowed.remove(path);
                let location = watcher.location();
                self.watchers.insert(location, watcher);
                self.num_open += 1;
                self.ready.insert(location);
                return Some(location);
            }
            Ok(Some((_, Origin::CopyOfLive)))
                if self
                    .shadowed
                    .get(path)
                    .is_none_or(|seen| seen.elapsed() < COPY_GRACE) =>
            {
                if let Entry::Vacant(slot) = self.shadowed.entry(path.to_path_buf()) {
                    slot.insert(Instant::now());
                    tracing::info!(path = %path.display(), "file looks like a copy of a followed file; waiting for that one's truncation");
                }
                return None;
            }
            Ok(Some((file, _))) => {
                // A file that still looks like a copy after the grace period
                // is read as a file of its own: two files may simply hold
                // the same lines, and reading twice beats never reading.
                self.shadowed.remove(path);
                FileWatcher::open_file(
                    path,
                    file,
                    tags,
                    self.settings.max_line_bytes,
                    pipeline.checkpoints(),
                )
            }
            Ok(None) => Ok(None),
            Err(error) => Err(error),
        };
        match opened {
            Ok(Some(watcher)) => {
                self.open_failures.remove(path);
                if let Some(identity) = watcher.identity() {
                    pipeline
                        .checkpoints_mut()
                        .track(identity, path, watcher.position());
                    tracing::info!(path = %path.display(), file_id = %identity.file_id, offset = %watcher.position(), "following file");
                    if identity.generation > 0 {
                        self.persist_new_generation(pipeline);
                    }
                }
                let location = watcher.location();
                self.watchers.insert(location, watcher);
                self.num_open += 1;
                self.ready.insert(location);
                Some(location)
            }
            Ok(None) => None,
            Err(error) => {
                if self.open_failures.insert(path.to_path_buf()) {
                    tracing::warn!(%error, path = %path.display(), "cannot open file");
                    self.note_file_error(path, format!("cannot open: {error}"));
                }
                None
            }
        }
    }

    /// Whether the file at `path` (not followed yet) is new, or a copy of a
    /// stream we follow or followed; see `copies.rs`. `None` while it has
    /// no first line, and for files with a checkpoint of their own.
    pub(super) fn origin(
        &mut self,
        pipeline: &mut Pipeline,
        path: &Path,
        location: DevInode,
    ) -> std::io::Result<Option<(std::fs::File, Origin)>> {
        let file = std::fs::File::open(path)?;
        let Some(print) = fingerprint::fingerprint(&file)? else {
            return Ok(None);
        };
        if pipeline
            .checkpoints()
            .lookup(location, &print.0)
            .acked
            .is_some()
        {
            return Ok(Some((file, Origin::New)));
        }
        let size = file.metadata()?.len();
        let same_start: Vec<DevInode> = self
            .watchers
            .iter()
            .filter(|(other, w)| {
                **other != location && w.identity().is_some_and(|i| i.fingerprint == print)
            })
            .map(|(other, _)| *other)
            .collect();
        for other in same_start {
            if !self.ensure_open(pipeline, other) {
                continue;
            }
            let watcher = self.watchers.get_mut(&other).expect("listed above");
            // A copytruncate whose truncation we have not seen yet: end the
            // original's stream now, so the copy can continue it.
            if let Some(old) = watcher.check_truncated()? {
                watcher.raise_generation(pipeline.checkpoints().next_generation(other));
                self.ready.insert(other);
                remember_ended(&mut self.ended, old);
                continue;
            }
            if copies::is_copy_of_live(&file, size, watcher.file()?)? {
                return Ok(Some((file, Origin::CopyOfLive)));
            }
        }
        for index in (0..self.ended.len()).rev() {
            let ended = &self.ended[index];
            if ended.identity.fingerprint == print && copies::continues(&file, size, ended)? {
                let ended = self.ended.remove(index).expect("index in range");
                return Ok(Some((file, Origin::Continues(ended))));
            }
        }
        Ok(Some((file, Origin::New)))
    }
}
