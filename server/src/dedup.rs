//! The rule that makes retries harmless: per (agent, file id), the byte
//! ranges already logged. An event whose start offset falls inside a known
//! range is a duplicate.
//!
//! Ranges rather than one high-water mark, because an agent keeps several
//! batches of one file in flight: a later batch may be logged while an
//! earlier one is still being retried, and the earlier one must not then be
//! mistaken for a duplicate. Adjacent ranges merge, so a stream read in
//! order costs one range.

use std::collections::{BTreeMap, HashMap};

use loghound_shared::{AgentId, Event, FileId};
use serde::{Deserialize, Serialize};

/// Known byte ranges of every stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dedup {
    streams: HashMap<AgentId, HashMap<FileId, Ranges>>,
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

/// One stream's state in a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamSnapshot {
    agent: AgentId,
    file_id: FileId,
    ranges: Vec<(u64, u64)>,
}

impl Dedup {
    /// Which events of a batch are new, by index. Events repeated inside the
    /// batch itself count once. Does not change the state: call
    /// [`Dedup::record`] once the new events are logged.
    pub fn new_events(&self, agent: &AgentId, events: &[Event]) -> Vec<usize> {
        let mut seen_in_batch: HashMap<&FileId, Ranges> = HashMap::new();
        let mut fresh = Vec::new();
        let files = self.streams.get(agent);
        for (index, event) in events.iter().enumerate() {
            let offset = event.offset.0;
            let known = files
                .and_then(|files| files.get(&event.file_id))
                .is_some_and(|r| r.contains(offset));
            let in_batch = seen_in_batch.entry(&event.file_id).or_default();
            if known || in_batch.contains(offset) {
                continue;
            }
            in_batch.insert(offset, event.end_offset.0);
            fresh.push(index);
        }
        fresh
    }

    /// Records the given (new) events as logged.
    pub fn record<'a>(&mut self, agent: &AgentId, events: impl IntoIterator<Item = &'a Event>) {
        let files = self.streams.entry(agent.clone()).or_default();
        for event in events {
            match files.get_mut(&event.file_id) {
                Some(ranges) => ranges.insert(event.offset.0, event.end_offset.0),
                None => {
                    let mut ranges = Ranges::default();
                    ranges.insert(event.offset.0, event.end_offset.0);
                    files.insert(event.file_id.clone(), ranges);
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
    use loghound_shared::ByteOffset;
    use proptest::prelude::*;

    use super::*;

    fn event(file: &str, start: u64, end: u64) -> Event {
        Event {
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
        }
    }

    fn accept(dedup: &mut Dedup, agent: &AgentId, events: &[Event]) -> usize {
        let fresh = dedup.new_events(agent, events);
        dedup.record(agent, fresh.iter().map(|&i| &events[i]));
        fresh.len()
    }

    #[test]
    fn resent_batch_is_all_duplicates() {
        let agent = AgentId::new("a").unwrap();
        let mut dedup = Dedup::default();
        let batch = [event("f", 0, 10), event("f", 10, 20)];
        assert_eq!(accept(&mut dedup, &agent, &batch), 2);
        assert_eq!(accept(&mut dedup, &agent, &batch), 0);
    }

    #[test]
    fn earlier_batch_arriving_late_is_not_a_duplicate() {
        // Regression: a single high-water mark would drop batch 1 here.
        let agent = AgentId::new("a").unwrap();
        let mut dedup = Dedup::default();
        assert_eq!(accept(&mut dedup, &agent, &[event("f", 100, 200)]), 1);
        assert_eq!(accept(&mut dedup, &agent, &[event("f", 0, 100)]), 1);
        assert_eq!(accept(&mut dedup, &agent, &[event("f", 0, 100)]), 0);
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
        let a = AgentId::new("a").unwrap();
        let b = AgentId::new("b").unwrap();
        let mut dedup = Dedup::default();
        assert_eq!(accept(&mut dedup, &a, &[event("f", 0, 10)]), 1);
        assert_eq!(accept(&mut dedup, &b, &[event("f", 0, 10)]), 1);
        assert_eq!(accept(&mut dedup, &a, &[event("g", 0, 10)]), 1);
    }

    #[test]
    fn duplicates_inside_one_batch_count_once() {
        let a = AgentId::new("a").unwrap();
        let mut dedup = Dedup::default();
        assert_eq!(
            accept(&mut dedup, &a, &[event("f", 0, 10), event("f", 0, 10)]),
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
            let agent = AgentId::new("a").unwrap();
            let mut offsets = vec![0u64];
            for len in &lines {
                offsets.push(offsets.last().unwrap() + len);
            }
            let all: Vec<Event> = offsets.windows(2).map(|w| event("f", w[0], w[1])).collect();
            let mut dedup = Dedup::default();
            let mut model = std::collections::BTreeSet::new();
            let mut logged = 0usize;
            for (start, len) in sends {
                let start = start % all.len();
                let end = (start + len).min(all.len());
                let batch = &all[start..end];
                let expected_new = batch.iter().filter(|e| !model.contains(&e.offset.0)).count();
                let got = accept(&mut dedup, &agent, batch);
                prop_assert_eq!(got, expected_new);
                model.extend(batch.iter().map(|e| e.offset.0));
                logged += got;
                dedup = Dedup::from_snapshot(dedup.snapshot());
            }
            prop_assert_eq!(logged, model.len());
        }
    }
}
