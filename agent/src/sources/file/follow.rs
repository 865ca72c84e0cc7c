//! Following a file found at a path: a known file (maybe renamed), a new
//! one, or a copy of a stream followed now or earlier (`copies.rs`).

use std::fs::File;
use std::io;
use std::path::Path;

use super::checkpoints::{FileCheckpoints, FileRecord};
use super::copies::{self, Continuation, EndedStream, Marks};
use super::discovery::Tags;
use super::fingerprint::{self, DevInode, Fingerprint, Identity};
use super::watcher::FileWatcher;
use super::{stream_truncated, FileSource, Origin};
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
            Ok(Some((file, Origin::Continues(ended, how)))) => {
                let held = how == Continuation::Held;
                let watcher = FileWatcher::continuing(
                    path,
                    file,
                    location,
                    &ended,
                    held,
                    tags,
                    self.settings.max_line_bytes,
                );
                if let Some(identity) = watcher.identity() {
                    if held {
                        tracing::info!(path = %path.display(), file_id = %identity.file_id, offset = %watcher.position(), "file is a copy of a stream that ended, and holds nothing that was not read from it");
                    } else {
                        tracing::info!(path = %path.display(), file_id = %identity.file_id, offset = %watcher.position(), "file is a copy of a stream that ended; carrying it on");
                    }
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
            Ok(Some((_, Origin::CopyOfLive))) => {
                if self.shadowed.insert(path.to_path_buf()) {
                    tracing::info!(path = %path.display(), "file is a copy of a followed file; not read while it is one, waiting for that file's truncation");
                }
                return None;
            }
            Ok(Some((file, Origin::New))) => {
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
    /// no first line; `New` for a file with a checkpoint of its own.
    pub(super) fn origin(
        &mut self,
        pipeline: &mut Pipeline,
        path: &Path,
        location: DevInode,
    ) -> io::Result<Option<(File, Origin)>> {
        let file = File::open(path)?;
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
        if self.copy_of_followed(pipeline, path, &file, size, location, &print)?
            || self.copy_of_unfollowed(pipeline, path, &file, size, &print)?
        {
            return Ok(Some((file, Origin::CopyOfLive)));
        }
        for index in (0..self.ended.len()).rev() {
            let ended = &self.ended[index];
            if ended.identity.fingerprint != print || !copies::rotated_name_of(path, &ended.path) {
                continue;
            }
            if let Some(how) = copies::continues(&file, size, ended)? {
                let ended = self.ended.remove(index).expect("index in range");
                return Ok(Some((file, Origin::Continues(ended, how))));
            }
        }
        // Ended before this agent started, or no longer in memory.
        for record in pipeline.checkpoints().ended_records() {
            if record.state.fingerprint != print.0
                || !copies::rotated_name_of(path, &record.state.path)
            {
                continue;
            }
            let ended = ended_stream_of(&record);
            if let Some(how) = copies::continues(&file, size, &ended)? {
                self.ended
                    .retain(|known| known.identity.file_id != record.file_id);
                return Ok(Some((file, Origin::Continues(ended, how))));
            }
        }
        Ok(Some((file, Origin::New)))
    }

    /// Whether `copy` is a copy of a followed file with the same first
    /// line. A followed file whose truncation was not seen yet (a
    /// copytruncate) has its stream ended here, so the copy can continue it.
    fn copy_of_followed(
        &mut self,
        pipeline: &mut Pipeline,
        path: &Path,
        copy: &File,
        size: u64,
        location: DevInode,
        print: &Fingerprint,
    ) -> io::Result<bool> {
        let same_start: Vec<DevInode> = self
            .watchers
            .iter()
            .filter(|(other, w)| {
                **other != location && w.identity().is_some_and(|i| i.fingerprint == *print)
            })
            .map(|(other, _)| *other)
            .collect();
        for other in same_start {
            if !self.ensure_open(pipeline, other) {
                continue;
            }
            let Some(watcher) = self.watchers.get_mut(&other) else {
                continue;
            };
            if let Some(old) = watcher.check_truncated()? {
                watcher.raise_generation(pipeline.checkpoints().next_generation(other));
                self.ready.insert(other);
                stream_truncated(&mut self.ended, pipeline, old);
                continue;
            }
            if watcher.is_held() || !copies::rotated_name_of(path, watcher.path()) {
                continue;
            }
            if copies::is_copy_of_live(copy, size, watcher.file()?)? {
                return Ok(true);
            }
            // The file may have been truncated since the check above (a
            // copytruncate finishing while the copy is looked at), which is
            // why it no longer agrees: its stream ends now, so the copy
            // continues it instead of being taken for a new file.
            if let Some(old) = watcher.check_truncated()? {
                watcher.raise_generation(pipeline.checkpoints().next_generation(other));
                self.ready.insert(other);
                stream_truncated(&mut self.ended, pipeline, old);
            }
        }
        Ok(false)
    }

    /// Whether `copy` is a copy of a file with a checkpoint that is not
    /// followed yet (at start, the globs are followed in no particular
    /// order). Such a file that was truncated while the agent was stopped
    /// has its stream ended here, so the copy can continue it.
    fn copy_of_unfollowed(
        &mut self,
        pipeline: &mut Pipeline,
        path: &Path,
        copy: &File,
        size: u64,
        print: &Fingerprint,
    ) -> io::Result<bool> {
        let records: Vec<FileRecord> = pipeline
            .checkpoints()
            .file_records()
            .into_iter()
            .filter(|record| {
                record.state.fingerprint == print.0
                    && !self.watchers.keys().any(|location| {
                        location.same_file(
                            record.state.dev,
                            record.state.inode,
                            record.state.birth_ns,
                        )
                    })
            })
            .collect();
        for record in records {
            let Ok(original) = File::open(&record.state.path) else {
                continue;
            };
            let metadata = original.metadata()?;
            if !DevInode::of(&metadata).same_file(
                record.state.dev,
                record.state.inode,
                record.state.birth_ns,
            ) {
                continue;
            }
            let marks = Marks::from_vec(record.state.marks.clone());
            let shorter = metadata.len() < record.offset.0
                && !copies::holds_marked_bytes(&original, metadata.len(), &marks)?;
            let rewritten = fingerprint::fingerprint(&original)?.is_none_or(|p| p != *print);
            if shorter || rewritten {
                tracing::info!(path = %record.state.path.display(), file_id = %record.file_id, "file was truncated while the agent was stopped");
                pipeline
                    .checkpoints_mut()
                    .end_stream(&record.file_id, &marks);
            } else if copies::rotated_name_of(path, &record.state.path)
                && copies::is_copy_of_live(copy, size, &original)?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// A stream known from its checkpoint only, ended at its settled offset.
fn ended_stream_of(record: &FileRecord) -> EndedStream {
    EndedStream {
        identity: Identity::with_file_id(
            record.location(),
            Fingerprint(record.state.fingerprint.clone()),
            record.state.generation,
            record.file_id.clone(),
        ),
        path: record.state.path.clone(),
        resume_at: record.offset,
        consumed: record.offset,
        tail: Vec::new(),
        marks: Marks::from_vec(record.state.marks.clone()),
    }
}
