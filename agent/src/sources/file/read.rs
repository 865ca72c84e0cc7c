//! Reacting to change notifications and reading the files that are ready,
//! open ones first, while the pipeline takes more.

use std::time::Instant;

use notify::event::{AccessKind, AccessMode, EventKind};

use super::checkpoints::FileCheckpoints;
use super::fingerprint::DevInode;
use super::watcher::{FileWatcher, ReadStatus};
use super::{stream_truncated, FileSource, READ_BUDGET_BYTES};
use crate::pipeline::{Pipeline, PipelineError};

impl FileSource {
    pub(super) fn on_fs_event(
        &mut self,
        pipeline: &mut Pipeline,
        event: notify::Result<notify::Event>,
    ) {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::debug!(%error, "file watcher error; rescanning");
                self.next_rescan = Instant::now();
                return;
            }
        };
        if event.need_rescan() {
            self.next_rescan = Instant::now();
        }
        // Opening and reading a file are events too, our own among them:
        // following them would make every look at a file not identified
        // yet (an empty file just created by a rotation) cause another.
        if let EventKind::Access(kind) = event.kind {
            if kind != AccessKind::Close(AccessMode::Write) {
                return;
            }
        }
        for path in &event.paths {
            let known = self.by_path.get(path).copied();
            let metadata = std::fs::metadata(path).ok();
            let current = metadata.as_ref().map(DevInode::of);
            match (known, current, &metadata) {
                (Some(known), Some(current), Some(metadata)) if known == current => {
                    if self
                        .watchers
                        .get(&known)
                        .is_some_and(|w| w.is_open() || w.changed_since_close(metadata))
                    {
                        self.ready.insert(known);
                    }
                }
                (known, current, metadata) => {
                    // Gone, replaced or new: read what is left of the old
                    // file and pick up the new one.
                    if let Some(known) = known {
                        if self.watchers.get(&known).is_some_and(FileWatcher::is_open) {
                            self.ready.insert(known);
                        }
                    }
                    if let (Some(current), Some(metadata)) = (current, metadata) {
                        self.closed_file_renamed(pipeline, current, path, metadata);
                    }
                    if let Some(tags) = self.provider.matches(path) {
                        if let Some(location) = self.follow(pipeline, path, tags) {
                            self.by_path.insert(path.clone(), location);
                        }
                    }
                }
            }
        }
    }

    pub(super) fn read_ready(&mut self, pipeline: &mut Pipeline) -> Result<(), PipelineError> {
        // Open files first: read to their end, they can make room for the
        // closed ones that changed.
        let mut keys: Vec<DevInode> = self.ready.iter().copied().collect();
        keys.sort_by_key(|location| {
            !self
                .watchers
                .get(location)
                .is_some_and(FileWatcher::is_open)
        });
        for location in keys {
            if pipeline.backpressured() {
                return Ok(());
            }
            // Closed meanwhile to make room for another.
            if !self.ready.contains(&location) {
                continue;
            }
            match self.watchers.get(&location).map(FileWatcher::is_open) {
                None => {
                    self.ready.remove(&location);
                    continue;
                }
                Some(false) if !self.ensure_open(pipeline, location) => continue,
                Some(_) => {}
            }
            let Some(watcher) = self.watchers.get_mut(&location) else {
                continue;
            };
            self.lines.clear();
            match watcher.read(READ_BUDGET_BYTES, &mut self.lines) {
                Ok(ReadStatus::Lines { more }) => {
                    if let Some((identity, marks)) = watcher.take_changed_marks() {
                        pipeline
                            .checkpoints_mut()
                            .set_marks(&identity.file_id, marks);
                    }
                    if !more {
                        self.ready.remove(&location);
                        self.room_exhausted = false;
                    }
                    self.emit(pipeline, location)?;
                }
                Ok(ReadStatus::Truncated { old }) => {
                    // The old generation's checkpoint stays until the new one
                    // is tracked: it keeps the generation from being reused.
                    watcher.raise_generation(pipeline.checkpoints().next_generation(location));
                    if let Some(old) = old {
                        stream_truncated(&mut self.ended, pipeline, old);
                        if !self.shadowed.is_empty() {
                            self.next_rescan = Instant::now();
                        }
                    }
                }
                Ok(ReadStatus::Identified) => {
                    if let Some(identity) = watcher.identity() {
                        tracing::debug!(path = %watcher.path().display(), file_id = %identity.file_id, generation = identity.generation, "file identified");
                        pipeline.checkpoints_mut().track(
                            identity,
                            watcher.path(),
                            watcher.position(),
                        );
                        if identity.generation > 0 {
                            self.persist_new_generation(pipeline);
                        }
                    }
                }
                Ok(ReadStatus::Waiting) => {
                    self.ready.remove(&location);
                }
                Err(error) => {
                    tracing::warn!(%error, path = %watcher.path().display(), "cannot read file");
                    let path = watcher.path().to_path_buf();
                    self.ready.remove(&location);
                    self.note_file_error(&path, format!("cannot read: {error}"));
                }
            }
        }
        Ok(())
    }
}
