//! What arrived: the matches of a query among the events received in a
//! span of arrival, counted exactly, with the newest few. Alert rules use
//! it; arrival (event id, receive time) rather than a line's own time is
//! what they judge, so a line that arrives late with an old timestamp is
//! still seen, and seen once.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Bound;

use loghound_shared::api::Hit;
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, EnableScoring, Occur, Query, RangeQuery};
use tantivy::{
    DateTime, DocAddress, DocId, DocSet, SegmentOrdinal, TantivyDocument, Term, TERMINATED,
};

use super::search::{hit_from_doc, Cursor, SearchError, Searcher};

/// Most sample events one request returns.
pub const MAX_SAMPLES: usize = 100;

/// A span of arrivals to count a query over.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArrivalsRequest {
    /// Query text.
    pub query: String,
    /// Only events with a larger id (0: from the start).
    pub after_id: u64,
    /// Only events with this id or a smaller one: what the indexer has
    /// reported committed, so a count never depends on reload order.
    pub through_id: u64,
    /// Only events received at or after this time, ms.
    pub received_from_ms: Option<i64>,
    /// How many of the newest matches to return.
    pub samples: usize,
}

/// The answer.
#[derive(Debug, Clone, Default)]
pub struct Arrivals {
    /// Every match in the span.
    pub count: u64,
    /// The newest matches by arrival, newest first.
    pub newest: Vec<Hit>,
}

/// A kept match: id, event time, day, segment, document. A min-heap of
/// these keeps the largest ids.
type Kept = (u64, i64, usize, SegmentOrdinal, DocId);

/// The day indexes as of one moment, with each segment's id and receive
/// time bounds and its fast-field columns opened once: many requests (one
/// per alert rule) share it, so each pays only for its own query.
pub struct ArrivalsSnapshot {
    days: Vec<DaySnapshot>,
}

struct DaySnapshot {
    searcher: tantivy::Searcher,
    segments: Vec<SegmentSnapshot>,
}

struct SegmentSnapshot {
    ord: SegmentOrdinal,
    min_id: u64,
    max_id: u64,
    max_received_ms: i64,
    ids: Column<u64>,
    received: Column<DateTime>,
    timestamps: Column<DateTime>,
}

impl SegmentSnapshot {
    /// Whether the segment's bounds meet the request's span.
    fn meets(&self, request: &ArrivalsRequest) -> bool {
        self.max_id > request.after_id
            && self.min_id <= request.through_id
            && request
                .received_from_ms
                .is_none_or(|from| self.max_received_ms >= from)
    }
}

impl Searcher {
    /// Takes a snapshot for [`Searcher::arrivals_in`].
    pub fn arrivals_snapshot(&self) -> Result<ArrivalsSnapshot, SearchError> {
        let mut days = Vec::new();
        for day in self.indexes().days_from(None) {
            let searcher = day.reader.searcher();
            let mut segments = Vec::new();
            for (ord, reader) in searcher.segment_readers().iter().enumerate() {
                if reader.num_docs() == 0 {
                    continue;
                }
                let fast = reader.fast_fields();
                let ids = fast.u64("id")?;
                let received = fast.date("received_at")?;
                segments.push(SegmentSnapshot {
                    ord: ord as SegmentOrdinal,
                    min_id: ids.min_value(),
                    max_id: ids.max_value(),
                    max_received_ms: received.max_value().into_timestamp_millis(),
                    ids,
                    received,
                    timestamps: fast.date("timestamp")?,
                });
            }
            days.push(DaySnapshot { searcher, segments });
        }
        Ok(ArrivalsSnapshot { days })
    }

    /// Counts the matches of `request.query` that arrived in the span.
    pub fn arrivals(&self, request: &ArrivalsRequest) -> Result<Arrivals, SearchError> {
        self.arrivals_in(&self.arrivals_snapshot()?, request)
    }

    /// [`Searcher::arrivals`] over a snapshot taken before.
    pub fn arrivals_in(
        &self,
        snapshot: &ArrivalsSnapshot,
        request: &ArrivalsRequest,
    ) -> Result<Arrivals, SearchError> {
        // Parse first, so a broken query is reported on every call.
        let query = self.parse(&request.query)?;
        if request.after_id >= request.through_id {
            return Ok(Arrivals::default());
        }
        let fields = &self.indexes().fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, query)];
        clauses.push((
            Occur::Must,
            Box::new(RangeQuery::new(
                Bound::Excluded(Term::from_field_u64(fields.id, request.after_id)),
                Bound::Included(Term::from_field_u64(fields.id, request.through_id)),
            )),
        ));
        if let Some(from) = request.received_from_ms {
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_date(
                        fields.received_at,
                        DateTime::from_timestamp_millis(from),
                    )),
                    Bound::Unbounded,
                )),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let limit = request.samples.min(MAX_SAMPLES);
        let received_from = request.received_from_ms.unwrap_or(i64::MIN);
        let mut count = 0u64;
        let mut heap: BinaryHeap<Reverse<Kept>> = BinaryHeap::with_capacity(limit + 1);
        for (day_ord, day) in snapshot.days.iter().enumerate() {
            // Only segments that may hold the span: new arrivals sit in a
            // few small recent segments, so most of a large index is
            // skipped without building a scorer for it.
            let mut meeting = day.segments.iter().filter(|s| s.meets(request)).peekable();
            if meeting.peek().is_none() {
                continue;
            }
            let weight = query.weight(EnableScoring::disabled_from_searcher(&day.searcher))?;
            for segment in meeting {
                let reader = day.searcher.segment_reader(segment.ord);
                let alive = reader.alive_bitset();
                let mut scorer = weight.scorer(reader, 1.0)?;
                let mut doc = scorer.doc();
                while doc != TERMINATED {
                    let current = doc;
                    doc = scorer.advance();
                    if alive.is_some_and(|a| !a.is_alive(current)) {
                        continue;
                    }
                    let Some(id) = segment.ids.first(current) else {
                        continue;
                    };
                    if id <= request.after_id || id > request.through_id {
                        continue;
                    }
                    if received_from > i64::MIN {
                        let received = segment
                            .received
                            .first(current)
                            .map_or(i64::MIN, DateTime::into_timestamp_millis);
                        if received < received_from {
                            continue;
                        }
                    }
                    count += 1;
                    if limit == 0 {
                        continue;
                    }
                    let keep = heap.len() < limit
                        || heap.peek().is_some_and(|Reverse(smallest)| id > smallest.0);
                    if keep {
                        let timestamp_ms = segment
                            .timestamps
                            .first(current)
                            .map_or(0, DateTime::into_timestamp_millis);
                        heap.push(Reverse((id, timestamp_ms, day_ord, segment.ord, current)));
                        if heap.len() > limit {
                            heap.pop();
                        }
                    }
                }
            }
        }
        let mut newest: Vec<_> = heap.into_iter().map(|Reverse(entry)| entry).collect();
        newest.sort_unstable_by_key(|entry| Reverse(entry.0));
        let mut hits = Vec::with_capacity(newest.len());
        for (id, timestamp_ms, day_ord, segment_ord, doc) in newest {
            let doc: TantivyDocument = snapshot.days[day_ord]
                .searcher
                .doc(DocAddress::new(segment_ord, doc))?;
            hits.push(hit_from_doc(&doc, fields, Cursor { timestamp_ms, id }));
        }
        Ok(Arrivals {
            count,
            newest: hits,
        })
    }
}
