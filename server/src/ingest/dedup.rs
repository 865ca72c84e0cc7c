//! The rule that makes retries harmless: per (origin, stream), the
//! ranges already logged. An event whose start falls inside a known range
//! is a duplicate; an event without a stream range is never one.
//!
//! Ranges rather than one high-water mark, because an agent keeps several
//! batches of one file in flight: a later batch may be logged while an
//! earlier one is still being retried, and the earlier one must not then be
//! mistaken for a duplicate. Adjacent ranges merge, so a stream read in
//! order costs one range.

use std::collections::{BTreeMap, HashMap};

use loghound_shared::FileId;
use serde::{Deserialize, Serialize};

use super::InEvent;

/// Known ranges of every stream, by origin key ([`super::Origin::key`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dedup {
    streams: HashMap<String, HashMap<FileId, Ranges>>,
}

/// Disjoint, non-adjacent `[start, end)` ranges, keyed by start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Ranges(BTreeMap<u64, u64>);

impl Ranges {
    fn contains(&self, offset: u64) -> bool {
        self.0
            .range(..=offset)
            .next_back()
            .is_some_and(|(_, &end)| offset < end)
    }

    fn insert(&mut self, mut start: u64, mut end: u64) {
        // Absorb a range that ends at or after `start` and begins before it.
        if let Some((&s, &e)) = self.0.range(..=start).next_back() {
            if e >= start {
                start = s;
                end = end.max(e);
                self.0.remove(&s);
            }
        }
        // Absorb ranges starting inside or right at the end of the new one.
        while let Some((&s, &e)) = self.0.range(start..=end).next() {
            end = end.max(e);
            self.0.remove(&s);
        }
        self.0.insert(start, end);
    }
}

/// One stream's state in a snapshot. The origin key is stored as
/// `agent`, the name it had when only agents sent batches.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamSnapshot {
    agent: String,
    file_id: FileId,
    ranges: Vec<(u64, u64)>,
}

impl Dedup {
    /// Which events of a batch are new, by index. Events repeated inside the
    /// batch itself count once. Does not change the state: call
    /// [`Dedup::record`] once the new events are logged.
    pub fn new_events(&self, origin: &str, events: &[InEvent]) -> Vec<usize> {
        let mut seen_in_batch: HashMap<&FileId, Ranges> = HashMap::new();
        let mut fresh = Vec::new();
        let files = self.streams.get(origin);
        for (index, event) in events.iter().enumerate() {
            let Some(range) = &event.stream else {
                fresh.push(index);
                continue;
            };
            let known = files
                .and_then(|files| files.get(&range.stream))
                .is_some_and(|r| r.contains(range.start));
            let in_batch = seen_in_batch.entry(&range.stream).or_default();
            if known || in_batch.contains(range.start) {
                continue;
            }
            in_batch.insert(range.start, range.end);
            fresh.push(index);
        }
        fresh
    }

    /// Records the given (new) events as logged.
    pub fn record<'a>(&mut self, origin: &str, events: impl IntoIterator<Item = &'a InEvent>) {
        let mut ranges = events
            .into_iter()
            .filter_map(|e| e.stream.as_ref())
            .peekable();
        if ranges.peek().is_none() {
            return;
        }
        let files = match self.streams.get_mut(origin) {
            Some(files) => files,
            None => self.streams.entry(origin.to_string()).or_default(),
        };
        for range in ranges {
            match files.get_mut(&range.stream) {
                Some(known) => known.insert(range.start, range.end),
                None => {
                    let mut known = Ranges::default();
                    known.insert(range.start, range.end);
                    files.insert(range.stream.clone(), known);
                }
            }
        }
    }

    /// The state as a list, for the checkpoint file.
    pub fn snapshot(&self) -> Vec<StreamSnapshot> {
        let mut out: Vec<StreamSnapshot> = self
            .streams
            .iter()
            .flat_map(|(agent, files)| {
                files.iter().map(move |(file_id, ranges)| StreamSnapshot {
                    agent: agent.clone(),
                    file_id: file_id.clone(),
                    ranges: ranges.0.iter().map(|(&s, &e)| (s, e)).collect(),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.agent, &a.file_id).cmp(&(&b.agent, &b.file_id)));
        out
    }

    /// Rebuilds the state from [`Dedup::snapshot`].
    pub fn from_snapshot(streams: Vec<StreamSnapshot>) -> Self {
        let mut dedup = Dedup::default();
        for stream in streams {
            let ranges = dedup
                .streams
                .entry(stream.agent)
                .or_default()
                .entry(stream.file_id)
                .or_default();
            for (start, end) in stream.ranges {
                ranges.insert(start, end);
            }
        }
        dedup
    }

    /// Number of streams known.
    pub fn num_streams(&self) -> usize {
        self.streams.values().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use loghound_shared::{ByteOffset, Event};
    use proptest::prelude::*;

    use super::*;

    fn event(file: &str, start: u64, end: u64) -> InEvent {
        InEvent::from(Event {
            file_id: FileId::new(file).unwrap(),
            offset: ByteOffset(start),
            end_offset: ByteOffset(end),
            host: "h".into(),
            source: "s".into(),
            message: "m".into(),
            read_at_ms: None,
            tags: Default::default(),
            truncated: false,
            invalid_utf8: false,
            format: None,
            fields: Default::default(),
            severity: None,
            time_ms: None,
        })
    }

    fn accept(dedup: &mut Dedup, agent: &str, events: &[InEvent]) -> usize {
        let fresh = dedup.new_events(agent, events);
        dedup.record(agent, fresh.iter().map(|&i| &events[i]));
        fresh.len()
    }

    fn start_of(event: &InEvent) -> u64 {
        event.stream.as_ref().map_or(0, |r| r.start)
    }

    #[test]
    fn events_without_a_stream_are_never_duplicates() {
        let mut dedup = Dedup::default();
        let mut plain = event("f", 0, 10);
        plain.stream = None;
        let batch = [plain.clone(), plain];
        assert_eq!(accept(&mut dedup, "input:syslog", &batch), 2);
        assert_eq!(accept(&mut dedup, "input:syslog", &batch), 2);
        assert_eq!(dedup.num_streams(), 0);
    }

    #[test]
    fn resent_batch_is_all_duplicates() {
        let agent = "a";
        let mut dedup = Dedup::default();
        let batch = [event("f", 0, 10), event("f", 10, 20)];
        assert_eq!(accept(&mut dedup, agent, &batch), 2);
        assert_eq!(accept(&mut dedup, agent, &batch), 0);
    }

    #[test]
    fn earlier_batch_arriving_late_is_not_a_duplicate() {
        // Regression: a single high-water mark would drop batch 1 here.
        let agent = "a";
        let mut dedup = Dedup::default();
        assert_eq!(accept(&mut dedup, agent, &[event("f", 100, 200)]), 1);
        assert_eq!(accept(&mut dedup, agent, &[event("f", 0, 100)]), 1);
        assert_eq!(accept(&mut dedup, agent, &[event("f", 0, 100)]), 0);
        let ranges = dedup
            .streams
            .values()
            .next()
            .unwrap()
            .values()
            .next()
            .unwrap();
        assert_eq!(ranges.0.len(), 1, "ranges merged");
    }

    #[test]
    fn streams_are_per_agent_and_file() {
        let a = "a";
        let b = "b";
        let mut dedup = Dedup::default();
        assert_eq!(accept(&mut dedup, a, &[event("f", 0, 10)]), 1);
        assert_eq!(accept(&mut dedup, b, &[event("f", 0, 10)]), 1);
        assert_eq!(accept(&mut dedup, a, &[event("g", 0, 10)]), 1);
    }

    #[test]
    fn duplicates_inside_one_batch_count_once() {
        let a = "a";
        let mut dedup = Dedup::default();
        assert_eq!(
            accept(&mut dedup, a, &[event("f", 0, 10), event("f", 0, 10)]),
            1
        );
    }

    proptest! {
        /// Against a model (the set of every logged start offset): any
        /// sequence of line batches, re-sent in any order, logs each line
        /// exactly once, and snapshots preserve the state.
        #[test]
        fn prop_each_line_logged_once(
            lines in proptest::collection::vec(1u64..50, 1..40),
            sends in proptest::collection::vec((0usize..40, 1usize..6), 1..60),
        ) {
            let agent = "a";
            let mut offsets = vec![0u64];
            for len in &lines {
                offsets.push(offsets.last().unwrap() + len);
            }
            let all: Vec<InEvent> = offsets.windows(2).map(|w| event("f", w[0], w[1])).collect();
            let mut dedup = Dedup::default();
            let mut model = std::collections::BTreeSet::new();
            let mut logged = 0usize;
            for (start, len) in sends {
                let start = start % all.len();
                let end = (start + len).min(all.len());
                let batch = &all[start..end];
                let expected_new = batch.iter().filter(|e| !model.contains(&start_of(e))).count();
                let got = accept(&mut dedup, agent, batch);
                prop_assert_eq!(got, expected_new);
                model.extend(batch.iter().map(start_of));
                logged += got;
                dedup = Dedup::from_snapshot(dedup.snapshot());
            }
            prop_assert_eq!(logged, model.len());
        }
    }
}
