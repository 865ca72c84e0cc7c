//! Lines → events: through the stream's multi-line joiner when its input
//! joins lines, labelled with host, path and the input's tags, handed to
//! the pipeline in file order.

use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use loghound_shared::{Event, FileId};

use super::container::{format_for, ContainerJoiner};
use super::discovery::Tags;
use super::fingerprint::DevInode;
use super::multiline::{Joined, Joiner, SPLIT_TAG};
use super::{FileSource, Grouper, OpenGroup};
use crate::pipeline::{Pipeline, PipelineError};

impl FileSource {
    /// Turns the lines just read from the file at `location` into events,
    /// through the stream's joiner when its input joins multi-line events.
    pub(super) fn emit(
        &mut self,
        pipeline: &mut Pipeline,
        location: DevInode,
    ) -> Result<(), PipelineError> {
        let Some(watcher) = self.watchers.get(&location) else {
            return Ok(());
        };
        let Some(identity) = watcher.identity() else {
            return Ok(());
        };
        let (file_id, source, tags) = (
            identity.file_id.clone(),
            watcher.path().display().to_string(),
            watcher.tags().clone(),
        );
        let lines = std::mem::take(&mut self.lines);
        let bytes: u64 = lines.iter().map(|l| l.end_offset.0 - l.offset.0).sum();
        self.metrics
            .lines_read
            .fetch_add(lines.len() as u64, Ordering::Relaxed);
        self.metrics.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        let container = format_for(tags.container, tags.format.as_deref(), watcher.path());
        let grouper = match (container, tags.multiline.clone()) {
            (Some(format), _) => Grouper::Container(ContainerJoiner::new(
                format,
                watcher.path(),
                self.settings.max_line_bytes,
            )),
            (None, Some(settings)) => Grouper::Multiline(Joiner::new(settings)),
            (None, None) => {
                let joined = lines.into_iter().map(Joined::from).collect();
                return self.ship(pipeline, &file_id, &source, &tags, joined);
            }
        };
        let now = Instant::now();
        let stream = self
            .joiners
            .entry(file_id.clone())
            .or_insert_with(|| OpenGroup {
                joiner: grouper,
                source: source.clone(),
                tags: tags.clone(),
            });
        stream.source.clone_from(&source);
        let mut joined = Vec::new();
        for line in lines {
            stream.joiner.push(line, now, &mut joined);
        }
        if stream.joiner.is_idle() {
            self.joiners.remove(&file_id);
        }
        self.ship(pipeline, &file_id, &source, &tags, joined)
    }

    /// Ships the open multi-line groups of `file_ids`, or of every stream
    /// whose flush timeout has passed when `file_ids` is `None`.
    pub(super) fn flush_groups(
        &mut self,
        pipeline: &mut Pipeline,
        file_ids: Option<&[FileId]>,
    ) -> Result<(), PipelineError> {
        let now = Instant::now();
        let mut flushed = Vec::new();
        for (file_id, open) in &mut self.joiners {
            let mut joined = Vec::new();
            match file_ids {
                Some(ids) if ids.contains(file_id) => open.joiner.flush(&mut joined),
                Some(_) => {}
                None => open.joiner.flush_if_due(now, &mut joined),
            }
            if !joined.is_empty() {
                flushed.push((file_id.clone(), joined));
            }
        }
        for (file_id, joined) in flushed {
            let Some(open) = self.joiners.remove(&file_id) else {
                continue;
            };
            self.ship(pipeline, &file_id, &open.source, &open.tags, joined)?;
        }
        Ok(())
    }

    /// Hands events of one stream, in file order, to the batcher.
    pub(super) fn ship(
        &mut self,
        pipeline: &mut Pipeline,
        file_id: &FileId,
        source: &str,
        tags: &Tags,
        joined: Vec<Joined>,
    ) -> Result<(), PipelineError> {
        let read_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .ok();
        for Joined {
            line,
            split,
            container,
        } in joined
        {
            let (offset, end_offset, truncated) = (line.offset, line.end_offset, line.truncated);
            let text = line.into_text();
            let mut event_tags = tags.tags.clone();
            if let Some(split) = split {
                event_tags.insert(SPLIT_TAG.to_string(), split.tag_value().to_string());
            }
            let (time_ms, fields) = match container {
                Some(meta) => {
                    let meta = *meta;
                    for (name, value) in meta.tags {
                        event_tags.insert(name.to_string(), value.to_string());
                    }
                    if let Some(name) = meta.fields.get("container").and_then(|v| v.as_str()) {
                        event_tags
                            .entry("app".to_string())
                            .or_insert_with(|| name.to_string());
                    }
                    (meta.time_ms, meta.fields)
                }
                None => (None, Default::default()),
            };
            let event = Event {
                file_id: file_id.clone(),
                offset,
                end_offset,
                host: self.host.clone(),
                source: source.to_string(),
                message: text.message,
                read_at_ms,
                tags: event_tags,
                truncated,
                invalid_utf8: text.invalid_utf8,
                format: tags.format.clone(),
                time_ms,
                severity: None,
                fields,
            };
            pipeline.emit(event, None)?;
        }
        Ok(())
    }
}
