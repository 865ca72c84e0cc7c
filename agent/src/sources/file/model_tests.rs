//! Model-based test of the file state machine: discovery, identity,
//! watchers, truncation and checkpoints, driven synchronously through the
//! source's own steps (`FileSource::drain_for_test`) on real files.
//!
//! proptest generates sequences of what writers, logrotate and operators
//! do to files in a temporary directory (append lines, append half a line
//! and complete it later, rotate by rename + create, copytruncate, truncate
//! in place, delete, create a file on a reused name), with "agent reads"
//! steps and agent restarts (with checkpoints written just before, or with
//! older ones, as after kill -9) in between. A small model says what the
//! agent must ship: every complete line exactly once (after the server's
//! dedup by file id and offset), at its exact byte range in its file, in
//! write order per stream, except the lines that were legitimately
//! destroyed before the agent could read them, which must be exactly the
//! missing ones.
//!
//! The model's premises: the glob is `*.log` and rotated names
//! (`x.log.N`) lie outside it, so a copy is never read; every line is
//! unique (so no file looks like a copy of another); a writer completes
//! its half-written line before its file is rotated, truncated or deleted;
//! copytruncate copies and truncates with no write in between. No wall
//! clock is involved.

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crossbeam_channel::Receiver;
use loghound_shared::{ByteOffset, Event, FileId};
use proptest::prelude::*;

use super::{FileSource, FileSourceSettings};
use crate::config::{self, Overrides};
use crate::pipeline::batcher::Batch;
use crate::pipeline::checkpoints::Checkpoints;
use crate::pipeline::{BatchLimits, Pipeline};
use crate::sources::{Source, SourceContext, Waker};

/// Names the glob matches.
const NAMES: [&str; 3] = ["a.log", "b.log", "c.log"];

#[derive(Debug, Clone)]
enum Op {
    /// Appends complete lines of these lengths to `NAMES[slot]`.
    Append { slot: usize, lengths: Vec<usize> },
    /// Appends the first half of a line (no newline).
    AppendPartial { slot: usize },
    /// Writes the rest of the half-written line.
    CompletePartial { slot: usize },
    /// `mv x.log x.log.N`; the next write creates a new `x.log`.
    RotateRename { slot: usize },
    /// `cp x.log x.log.N; truncate -s 0 x.log`, no write in between.
    CopyTruncate { slot: usize },
    /// `truncate -s 0 x.log`.
    Truncate { slot: usize },
    /// `rm x.log`.
    Delete { slot: usize },
    /// Creates `x.log` empty if there is none.
    Create { slot: usize },
    /// The agent rescans and reads everything it can.
    Read,
    /// The agent stops and starts again; `persist` says whether it wrote
    /// its checkpoints first (clean stop) or not (kill -9).
    Restart { persist: bool },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let slot = 0..NAMES.len();
    prop_oneof![
        6 => (slot.clone(), prop::collection::vec(0usize..40, 1..4))
            .prop_map(|(slot, lengths)| Op::Append { slot, lengths }),
        2 => slot.clone().prop_map(|slot| Op::AppendPartial { slot }),
        2 => slot.clone().prop_map(|slot| Op::CompletePartial { slot }),
        1 => slot.clone().prop_map(|slot| Op::RotateRename { slot }),
        1 => slot.clone().prop_map(|slot| Op::CopyTruncate { slot }),
        1 => slot.clone().prop_map(|slot| Op::Truncate { slot }),
        1 => slot.clone().prop_map(|slot| Op::Delete { slot }),
        1 => slot.clone().prop_map(|slot| Op::Create { slot }),
        4 => Just(Op::Read),
        1 => any::<bool>().prop_map(|persist| Op::Restart { persist }),
    ]
}

/// A line the model expects, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    /// Which physical file (inode) it was written to.
    file: usize,
    offset: u64,
    end_offset: u64,
}

/// One physical file as the model sees it.
#[derive(Debug)]
struct ModelFile {
    path: PathBuf,
    /// Still at a name the glob matches.
    at_glob_name: bool,
    exists: bool,
    size: u64,
    /// Texts of its complete lines in the current truncation generation.
    lines: Vec<String>,
    /// How many of `lines` the agent has read.
    num_read: usize,
    /// The half-written last line: its text and its remaining half.
    partial: Option<(String, String)>,
    /// The agent holds it open (followed it since its last start).
    followed: bool,
}

struct Model {
    files: Vec<ModelFile>,
    /// Index in `files` of the file at each name, if any.
    slots: [Option<usize>; NAMES.len()],
    expected: HashMap<String, Expected>,
    lost: Vec<String>,
    next_line: u64,
    next_rotation: u64,
}

impl Model {
    fn new() -> Self {
        Self {
            files: Vec::new(),
            slots: [None; NAMES.len()],
            expected: HashMap::new(),
            lost: Vec::new(),
            next_line: 0,
            next_rotation: 0,
        }
    }

    fn line_text(&mut self, length: usize) -> String {
        self.next_line += 1;
        format!("line {:06} {}", self.next_line, "x".repeat(length))
    }

    /// The file at `slot`, created (empty) if there is none.
    fn file_at(&mut self, dir: &Path, slot: usize) -> usize {
        if let Some(index) = self.slots[slot] {
            return index;
        }
        let path = dir.join(NAMES[slot]);
        std::fs::File::create(&path).unwrap();
        self.files.push(ModelFile {
            path,
            at_glob_name: true,
            exists: true,
            size: 0,
            lines: Vec::new(),
            num_read: 0,
            partial: None,
            followed: false,
        });
        let index = self.files.len() - 1;
        self.slots[slot] = Some(index);
        index
    }

    fn write(&mut self, index: usize, bytes: &[u8]) {
        let file = &mut self.files[index];
        OpenOptions::new()
            .append(true)
            .open(&file.path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        file.size += bytes.len() as u64;
    }

    fn append_line(&mut self, index: usize, text: String) {
        let offset = self.files[index].size;
        self.write(index, format!("{text}\n").as_bytes());
        self.expected.insert(
            text.clone(),
            Expected {
                file: index,
                offset,
                end_offset: self.files[index].size,
            },
        );
        self.files[index].lines.push(text);
    }

    fn complete_partial(&mut self, index: usize) {
        let Some((text, rest)) = self.files[index].partial.take() else {
            return;
        };
        let end = self.files[index].size + rest.len() as u64 + 1;
        let offset = end - text.len() as u64 - 1;
        self.write(index, format!("{rest}\n").as_bytes());
        self.expected.insert(
            text.clone(),
            Expected {
                file: index,
                offset,
                end_offset: end,
            },
        );
        self.files[index].lines.push(text);
    }

    /// The lines of `index` the agent has not read are destroyed.
    fn lose_unread(&mut self, index: usize) {
        let file = &mut self.files[index];
        for text in file.lines.drain(file.num_read..) {
            self.expected.remove(&text);
            self.lost.push(text);
        }
    }

    fn truncate(&mut self, index: usize) {
        self.lose_unread(index);
        let file = &mut self.files[index];
        std::fs::File::create(&file.path).unwrap();
        file.size = 0;
        file.lines.clear();
        file.num_read = 0;
    }

    fn rotated_path(&mut self, dir: &Path, slot: usize) -> PathBuf {
        self.next_rotation += 1;
        dir.join(format!("{}.{}", NAMES[slot], self.next_rotation))
    }

    fn apply(&mut self, dir: &Path, op: &Op) {
        match *op {
            Op::Append { slot, ref lengths } => {
                let index = self.file_at(dir, slot);
                // A half-written line is finished first: lines never mix.
                self.complete_partial(index);
                for &length in lengths {
                    let text = self.line_text(length);
                    self.append_line(index, text);
                }
            }
            Op::AppendPartial { slot } => {
                let index = self.file_at(dir, slot);
                if self.files[index].partial.is_none() {
                    let text = self.line_text(10);
                    let (head, rest) = text.split_at(text.len() / 2);
                    let (head, rest) = (head.to_string(), rest.to_string());
                    self.write(index, head.as_bytes());
                    self.files[index].partial = Some((text, rest));
                }
            }
            Op::CompletePartial { slot } => {
                if let Some(index) = self.slots[slot] {
                    self.complete_partial(index);
                }
            }
            Op::RotateRename { slot } => {
                if let Some(index) = self.slots[slot].take() {
                    self.complete_partial(index);
                    let to = self.rotated_path(dir, slot);
                    std::fs::rename(&self.files[index].path, &to).unwrap();
                    let file = &mut self.files[index];
                    file.path = to;
                    file.at_glob_name = false;
                    if !file.followed {
                        self.lose_unread(index);
                    }
                }
            }
            Op::CopyTruncate { slot } => {
                if let Some(index) = self.slots[slot] {
                    self.complete_partial(index);
                    let to = self.rotated_path(dir, slot);
                    std::fs::copy(&self.files[index].path, to).unwrap();
                    self.truncate(index);
                }
            }
            Op::Truncate { slot } => {
                if let Some(index) = self.slots[slot] {
                    self.complete_partial(index);
                    self.truncate(index);
                }
            }
            Op::Delete { slot } => {
                if let Some(index) = self.slots[slot].take() {
                    self.complete_partial(index);
                    std::fs::remove_file(&self.files[index].path).unwrap();
                    let file = &mut self.files[index];
                    file.exists = false;
                    file.at_glob_name = false;
                    if !file.followed {
                        self.lose_unread(index);
                    }
                }
            }
            Op::Create { slot } => {
                self.file_at(dir, slot);
            }
            Op::Read => self.read(),
            Op::Restart { .. } => {
                // Files no glob finds any more are out of reach after a
                // restart: what the agent had not read of them is lost.
                for index in 0..self.files.len() {
                    if !self.files[index].at_glob_name {
                        self.lose_unread(index);
                    }
                    self.files[index].followed = false;
                }
            }
        }
    }

    /// What one "agent reads" step does: files at a glob name with a
    /// complete first line are followed; every followed file is read.
    fn read(&mut self) {
        for file in &mut self.files {
            if file.at_glob_name && !file.lines.is_empty() {
                file.followed = true;
            }
            if file.followed {
                file.num_read = file.lines.len();
            }
        }
    }
}

/// The agent under test, with the receiving end of its batches.
struct Driven {
    source: FileSource,
    pipeline: Pipeline,
    batches: Receiver<Batch>,
}

fn start_agent(dir: &Path, state: &Path) -> Driven {
    std::fs::create_dir_all(state).unwrap();
    let settings = config::resolve(
        None,
        Overrides {
            servers: vec!["http://127.0.0.1:9".into()],
            token: Some("token".into()),
            state_dir: Some(state.to_path_buf()),
            paths: vec![dir.join("*.log").display().to_string()],
            ..Overrides::default()
        },
    )
    .unwrap();
    let checkpoints = Checkpoints::load(state).unwrap();
    let (batch_sender, batches) = crossbeam_channel::unbounded();
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::default());
    let pipeline = Pipeline::new(
        BatchLimits {
            max_bytes: settings.batch_max_bytes,
            max_age: std::time::Duration::from_millis(settings.batch_max_age_ms),
            zstd_level: settings.zstd_level,
            max_in_flight: settings.max_in_flight,
        },
        checkpoints,
        batch_sender,
        None,
        metrics.clone(),
    );
    let source = FileSource::new(
        FileSourceSettings::from_settings(&settings, settings.inputs.clone()),
        &SourceContext {
            host: "model".into(),
            waker: Waker::new().0,
            metrics,
        },
    )
    .unwrap();
    assert_eq!(source.name(), "file");
    Driven {
        source,
        pipeline,
        batches,
    }
}

/// The server's side: dedup by (file id, offset) as `dedup.rs` does for
/// one agent, then what search would hold, in arrival order.
#[derive(Default)]
struct Received {
    seen: HashMap<(FileId, ByteOffset), Event>,
    kept: Vec<Event>,
}

impl Received {
    fn take(&mut self, events: Vec<Event>) -> Result<(), TestCaseError> {
        for event in events {
            let key = (event.file_id.clone(), event.offset);
            if let Some(earlier) = self.seen.get(&key) {
                prop_assert_eq!(
                    (&earlier.message, earlier.end_offset),
                    (&event.message, event.end_offset),
                    "the same range of a stream was shipped with other content"
                );
                continue;
            }
            self.seen.insert(key, event.clone());
            self.kept.push(event);
        }
        Ok(())
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("logs");
    let state = root.path().join("state");
    std::fs::create_dir_all(&dir).unwrap();
    let mut model = Model::new();
    let mut agent = start_agent(&dir, &state);
    let mut received = Received::default();
    let final_steps = [
        Op::CompletePartial { slot: 0 },
        Op::CompletePartial { slot: 1 },
        Op::CompletePartial { slot: 2 },
        Op::Read,
        Op::Read,
        Op::Read,
    ];
    for op in ops.iter().chain(&final_steps) {
        model.apply(&dir, op);
        match op {
            Op::Read => {
                let events = agent
                    .source
                    .drain_for_test(&mut agent.pipeline, &agent.batches)
                    .unwrap();
                received.take(events)?;
            }
            Op::Restart { persist } => {
                if *persist {
                    agent.pipeline.persist_final().unwrap();
                }
                drop(agent);
                agent = start_agent(&dir, &state);
            }
            _ => {}
        }
    }

    // Every kept event is an expected line, once, at its exact range.
    let mut by_text: HashMap<&str, &Event> = HashMap::new();
    for event in &received.kept {
        let Some(expected) = model.expected.get(&event.message) else {
            let lost = model.lost.contains(&event.message);
            return Err(TestCaseError::fail(format!(
                "shipped a line the model does not expect (lost: {lost}): {event:?}"
            )));
        };
        prop_assert!(
            by_text.insert(&event.message, event).is_none(),
            "shipped twice under different ranges: {:?}",
            event
        );
        prop_assert_eq!(
            (event.offset.0, event.end_offset.0),
            (expected.offset, expected.end_offset),
            "wrong byte range for {:?}",
            event.message
        );
    }
    let mut missing: Vec<&String> = model
        .expected
        .keys()
        .filter(|text| !by_text.contains_key(text.as_str()))
        .collect();
    missing.sort();
    prop_assert!(missing.is_empty(), "lines never shipped: {:?}", missing);

    // Per stream, in write order: offsets grow in arrival order, and a
    // stream's lines all lie in one physical file.
    let mut last: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for event in &received.kept {
        let file = model.expected[&event.message].file;
        if let Some((previous_file, previous_end)) = last.get(event.file_id.as_str()) {
            prop_assert_eq!(*previous_file, file, "one file id spans two files");
            prop_assert!(
                event.offset.0 >= *previous_end,
                "out of order in {}: {:?}",
                event.file_id,
                event
            );
        }
        last.insert(event.file_id.as_str(), (file, event.end_offset.0));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_complete_line_is_shipped_exactly_once(ops in prop::collection::vec(op_strategy(), 1..40)) {
        run(ops)?;
    }
}

/// Regression: after a copytruncate the new content got generation 1 in
/// memory only; an agent killed before its next checkpoint write gave the
/// same lines generation 0, another file id, and shipped them twice.
#[test]
fn restart_after_a_truncation_keeps_the_new_generation_file_id() {
    run(vec![
        Op::Append {
            slot: 0,
            lengths: vec![0],
        },
        Op::Read,
        Op::CopyTruncate { slot: 0 },
        Op::Append {
            slot: 0,
            lengths: vec![0],
        },
        Op::Read,
        Op::Restart { persist: false },
    ])
    .unwrap();
}
