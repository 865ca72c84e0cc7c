//! Live tail's query: the matches of a search that arrived after a given
//! event, in arrival order.
//!
//! Event ids grow with arrival (`seq << 20 | index`), so "what arrived
//! after event X" is `id > X`, and arrival order is id order. Days are per
//! day of receipt, so new ids sit in the newest days; any day whose largest
//! id is at or below the cursor is skipped by its fast-field bounds.

use std::collections::BinaryHeap;
use std::ops::Bound;

use loghound_shared::api::Hit;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, Occur, RangeQuery};
use tantivy::{
    DateTime, DocAddress, DocId, Score, SegmentOrdinal, SegmentReader, TantivyDocument, Term,
};

use super::highlight::Highlighter;
use super::search::{hit_from_doc, Cursor, PreparedQuery, SearchError, Searcher};
use super::EVENT_INDEX_BITS;

/// Largest page [`Searcher::tail_page`] returns.
pub const MAX_TAIL_PAGE: usize = 1000;

/// The highest event id a WAL record `seq` can hold: every id at or below
/// it belongs to a record committed once `seq` is.
pub fn last_id_of_seq(seq: u64) -> u64 {
    match seq.checked_add(1) {
        Some(next) if next <= u64::MAX >> EVENT_INDEX_BITS => (next << EVENT_INDEX_BITS) - 1,
        _ => u64::MAX,
    }
}

/// One match of a tail query.
#[derive(Debug, Clone)]
pub struct TailHit {
    /// The event id, as a number (the hit carries it as a string).
    pub id: u64,
    /// The event, as searches return it.
    pub hit: Hit,
}

impl Searcher {
    /// Checks that `query` parses, so a tail can refuse it up front.
    pub fn check_query(&self, query: &str) -> Result<(), SearchError> {
        self.prepare(query, None, None).map(drop)
    }

    /// Checks a query that may have pipes (a saved search): the pipes'
    /// syntax and the search part's.
    pub fn check_query_with_pipes(&self, query: &str) -> Result<(), SearchError> {
        let piped = crate::query::pipe::split(query)?;
        crate::query::compile_search(piped.search, &self.indexes().fields)?;
        Ok(())
    }

    /// The first `limit` matches of `query` with `after_id < id <=
    /// through_id`, by ascending id. `through_id` keeps a page to what the
    /// indexer has reported committed: a commit reloads one day after the
    /// other, so ids above it may be visible in one day before smaller
    /// ones are in another, and a tail must never step over those.
    pub fn tail_page(
        &self,
        query: &str,
        after_id: u64,
        through_id: u64,
        limit: usize,
    ) -> Result<Vec<TailHit>, SearchError> {
        let limit = limit.min(MAX_TAIL_PAGE);
        if after_id >= through_id || limit == 0 {
            return Ok(Vec::new());
        }
        // The same compiled query as search, over every day: ids say
        // nothing about event time, so no time range applies.
        let PreparedQuery {
            query, searchers, ..
        } = self.prepare(query, None, None)?;
        let fields = &self.indexes().fields;
        let range = RangeQuery::new(
            Bound::Excluded(Term::from_field_u64(fields.id, after_id)),
            Bound::Included(Term::from_field_u64(fields.id, through_id)),
        );
        let mut highlighter = Highlighter::new(query.as_ref(), fields.message);
        let query = BooleanQuery::new(vec![(Occur::Must, query), (Occur::Must, Box::new(range))]);
        let collector = OldestAfter {
            after_id,
            through_id,
            limit,
        };
        let mut found: Vec<(u64, i64, usize, DocAddress)> = Vec::new();
        for (day_ord, searcher) in searchers.iter().enumerate() {
            if !may_hold_ids_after(searcher, after_id) {
                continue;
            }
            let fruit = searcher.search(&query, &collector)?;
            found.extend(
                fruit
                    .into_iter()
                    .map(|(id, ts, address)| (id, ts, day_ord, address)),
            );
        }
        found.sort_unstable_by_key(|entry| entry.0);
        found.truncate(limit);
        let mut hits = Vec::with_capacity(found.len());
        for (id, timestamp_ms, day_ord, address) in found {
            let doc: TantivyDocument = searchers[day_ord].doc(address)?;
            let mut hit = hit_from_doc(&doc, fields, Cursor { timestamp_ms, id });
            hit.highlights = highlighter.highlight(&hit.message);
            hits.push(TailHit { id, hit });
        }
        Ok(hits)
    }
}

/// Whether any segment of the day holds an id above `after_id`, read from
/// the fast field's bounds without touching documents.
fn may_hold_ids_after(searcher: &tantivy::Searcher, after_id: u64) -> bool {
    searcher.segment_readers().iter().any(|segment| {
        segment.num_docs() > 0
            && segment
                .fast_fields()
                .u64("id")
                .map_or(true, |ids| ids.max_value() > after_id)
    })
}

/// Keeps the `limit` smallest ids in `(after_id, through_id]`.
struct OldestAfter {
    after_id: u64,
    through_id: u64,
    limit: usize,
}

struct OldestAfterSegment {
    segment_ord: SegmentOrdinal,
    ids: Column<u64>,
    timestamps: Column<DateTime>,
    after_id: u64,
    through_id: u64,
    limit: usize,
    /// Max-heap: the largest kept id is the first to go.
    heap: BinaryHeap<(u64, DocId)>,
}

type Found = Vec<(u64, i64, DocAddress)>;

impl Collector for OldestAfter {
    type Fruit = Found;
    type Child = OldestAfterSegment;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<OldestAfterSegment> {
        Ok(OldestAfterSegment {
            segment_ord,
            ids: segment.fast_fields().u64("id")?,
            timestamps: segment.fast_fields().date("timestamp")?,
            after_id: self.after_id,
            through_id: self.through_id,
            limit: self.limit,
            heap: BinaryHeap::with_capacity(self.limit + 1),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Found>) -> tantivy::Result<Found> {
        let mut all: Found = fruits.into_iter().flatten().collect();
        all.sort_unstable_by_key(|entry| entry.0);
        all.truncate(self.limit);
        Ok(all)
    }
}

impl SegmentCollector for OldestAfterSegment {
    type Fruit = Found;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(id) = self.ids.first(doc) else {
            return;
        };
        if id <= self.after_id || id > self.through_id {
            return;
        }
        if self.heap.len() < self.limit {
            self.heap.push((id, doc));
        } else if self.heap.peek().is_some_and(|(largest, _)| id < *largest) {
            self.heap.pop();
            self.heap.push((id, doc));
        }
    }

    fn harvest(self) -> Found {
        self.heap
            .into_iter()
            .map(|(id, doc)| {
                let timestamp_ms = self
                    .timestamps
                    .first(doc)
                    .map_or(0, DateTime::into_timestamp_millis);
                (id, timestamp_ms, DocAddress::new(self.segment_ord, doc))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_id_of_seq_covers_every_event_of_the_record() {
        assert_eq!(last_id_of_seq(0), (1 << EVENT_INDEX_BITS) - 1);
        assert_eq!(
            last_id_of_seq(7),
            super::super::event_id(7, (1 << EVENT_INDEX_BITS) - 1)
        );
        assert!(last_id_of_seq(7) < super::super::event_id(8, 0));
        assert_eq!(last_id_of_seq(u64::MAX), u64::MAX);
    }
}
