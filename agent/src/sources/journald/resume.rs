//! What a journald input checkpoints besides its streams' positions: the
//! records' state, their ids, and the resume cursor, which moves over the
//! runs of emitted entries only as far as all of them are settled.

use std::collections::VecDeque;

use loghound_shared::{ByteOffset, FileId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::SOURCE_NAME;
use crate::pipeline::checkpoints::StreamCheckpoint;
use crate::sources::file::fingerprint::hex;

/// The format version of the records' state.
pub(super) const STATE_VERSION: u32 = 1;

/// What a journald checkpoint records besides its position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(super) enum State {
    /// One sequence-number space's stream.
    Stream {
        version: u32,
        input: String,
        seqnum_id: String,
    },
    /// The input's resume cursor.
    Resume {
        version: u32,
        input: String,
        after_cursor: Option<String>,
    },
}

/// Whether `checkpoint` is a journald input's resume record, which
/// `status` does not list (it carries no events).
pub(crate) fn is_resume_record(checkpoint: &StreamCheckpoint) -> bool {
    checkpoint.source == SOURCE_NAME
        && matches!(
            serde_json::from_value::<State>(checkpoint.state.clone()),
            Ok(State::Resume { .. })
        )
}

impl State {
    pub(super) fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The id of a journald record: a digest of its parts.
pub(super) fn digest_id(parts: &[&str]) -> FileId {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    FileId::new(hex(&hasher.finalize()[..16])).expect("hex digits are a valid file id")
}

/// Consecutive emitted entries of one stream, not yet settled.
#[derive(Debug)]
struct Run {
    file_id: FileId,
    end: ByteOffset,
    cursor: String,
    entries: u32,
}

/// Entries per [`Run`] at most.
const RUN_ENTRIES: u32 = 256;

/// The runs of emitted entries not yet settled, in emission order.
#[derive(Debug, Default)]
pub(super) struct Unsettled {
    runs: VecDeque<Run>,
}

impl Unsettled {
    /// Records an emitted (or skipped) entry in the runs not yet settled.
    /// A run is cut every [`RUN_ENTRIES`] entries, so that the resume
    /// cursor moves while entries keep coming.
    pub(super) fn remember(&mut self, file_id: &FileId, end: ByteOffset, cursor: &str) {
        match self.runs.back_mut() {
            Some(run) if run.file_id == *file_id && run.end <= end && run.entries < RUN_ENTRIES => {
                run.end = end;
                run.entries += 1;
                cursor.clone_into(&mut run.cursor);
            }
            _ => self.runs.push_back(Run {
                file_id: file_id.clone(),
                end,
                cursor: cursor.to_string(),
                entries: 1,
            }),
        }
    }

    /// Drops the runs at the front that are settled (`settled` gives a
    /// stream's settled position); the cursor of the last one dropped.
    pub(super) fn take_settled(
        &mut self,
        settled: impl Fn(&FileId) -> Option<ByteOffset>,
    ) -> Option<String> {
        let mut newest = None;
        while let Some(run) = self.runs.front() {
            if settled(&run.file_id).is_none_or(|offset| offset < run.end) {
                break;
            }
            newest = self.runs.pop_front().map(|run| run.cursor);
        }
        newest
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn the_cursor_moves_over_the_settled_prefix_only() {
        let (a, b) = (digest_id(&["a"]), digest_id(&["b"]));
        let mut unsettled = Unsettled::default();
        for seqnum in 1..=300 {
            unsettled.remember(&a, ByteOffset(seqnum + 1), &format!("a{seqnum}"));
        }
        unsettled.remember(&b, ByteOffset(8), "b7");
        unsettled.remember(&a, ByteOffset(302), "a301");
        let mut settled: HashMap<FileId, ByteOffset> = HashMap::new();
        let take = |unsettled: &mut Unsettled, settled: &HashMap<FileId, ByteOffset>| {
            unsettled.take_settled(|id| settled.get(id).copied())
        };
        assert_eq!(take(&mut unsettled, &settled), None);
        // A run holds at most RUN_ENTRIES entries: settling part of a long
        // stretch of one stream still moves the cursor.
        settled.insert(a.clone(), ByteOffset(RUN_ENTRIES as u64 + 1));
        assert_eq!(take(&mut unsettled, &settled).as_deref(), Some("a256"));
        // Stream b's entry is not settled: a's later entries wait behind it.
        settled.insert(a.clone(), ByteOffset(302));
        assert_eq!(take(&mut unsettled, &settled).as_deref(), Some("a300"));
        settled.insert(b.clone(), ByteOffset(8));
        assert_eq!(take(&mut unsettled, &settled).as_deref(), Some("a301"));
        assert_eq!(take(&mut unsettled, &settled), None);
    }

    #[test]
    fn records_say_what_they_are() {
        let record = |state: State| StreamCheckpoint {
            source: SOURCE_NAME.into(),
            stream_id: digest_id(&["x"]),
            label: "journald".into(),
            offset: ByteOffset(0),
            cursor: None,
            state: state.to_value(),
        };
        let resume = record(State::Resume {
            version: STATE_VERSION,
            input: "journald".into(),
            after_cursor: None,
        });
        let stream = record(State::Stream {
            version: STATE_VERSION,
            input: "journald".into(),
            seqnum_id: "ab".into(),
        });
        assert!(is_resume_record(&resume));
        assert!(!is_resume_record(&stream));
        assert_ne!(digest_id(&["a", "bc"]), digest_id(&["ab", "c"]));
    }
}
