//! What arrived: the matches of a query among the events received in a
//! span of arrival, counted exactly, with the newest few. Alert rules use
//! it; arrival (event id, receive time) rather than a line's own time is
//! what they judge, so a line that arrives late with an old timestamp is
//! still seen, and seen once.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Bound;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, EnableScoring, Occur, Query, RangeQuery};
use tantivy::{
    DateTime, DocAddress, DocId, Score, SegmentOrdinal, SegmentReader, TantivyDocument, Term,
};

use super::search::{hit_from_doc, Cursor, Hit, PreparedQuery, SearchError, Searcher};
use super::tail::may_hold_ids_after;

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

impl Searcher {
    /// Counts the matches of `request.query` that arrived in the span.
    pub fn arrivals(&self, request: &ArrivalsRequest) -> Result<Arrivals, SearchError> {
        if request.after_id >= request.through_id {
            // Still parse, so a broken query is reported on every call.
            self.check_query(&request.query)?;
            return Ok(Arrivals::default());
        }
        let PreparedQuery { query, searchers } = self.prepare(&request.query, None, None)?;
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
        let collector = NewestArrivals {
            after_id: request.after_id,
            through_id: request.through_id,
            received_from_ms: request.received_from_ms.unwrap_or(i64::MIN),
            limit: request.samples.min(MAX_SAMPLES),
        };
        let mut count = 0;
        let mut newest: Vec<(u64, i64, usize, DocAddress)> = Vec::new();
        for (day_ord, searcher) in searchers.iter().enumerate() {
            if !may_hold_ids_after(searcher, request.after_id) {
                continue;
            }
            // Only segments that may hold the span: new arrivals sit in a
            // few small recent segments, so most of a large index is
            // skipped without building a scorer for it.
            let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
            let mut fruits = Vec::new();
            for (ord, segment) in searcher.segment_readers().iter().enumerate() {
                if segment_may_hold(segment, request) {
                    fruits.push(collector.collect_segment(
                        weight.as_ref(),
                        ord as SegmentOrdinal,
                        segment,
                    )?);
                }
            }
            let fruit = collector.merge_fruits(fruits)?;
            count += fruit.count;
            newest.extend(
                fruit
                    .newest
                    .into_iter()
                    .map(|(id, ts, address)| (id, ts, day_ord, address)),
            );
        }
        newest.sort_unstable_by_key(|entry| Reverse(entry.0));
        newest.truncate(collector.limit);
        let mut hits = Vec::with_capacity(newest.len());
        for (id, timestamp_ms, day_ord, address) in newest {
            let doc: TantivyDocument = searchers[day_ord].doc(address)?;
            hits.push(hit_from_doc(&doc, fields, Cursor { timestamp_ms, id }));
        }
        Ok(Arrivals {
            count,
            newest: hits,
        })
    }
}

/// Whether a segment's id and receive-time bounds meet the span, read
/// from its fast-field metadata without touching documents.
fn segment_may_hold(segment: &SegmentReader, request: &ArrivalsRequest) -> bool {
    if segment.num_docs() == 0 {
        return false;
    }
    let fast = segment.fast_fields();
    let ids_meet = fast.u64("id").map_or(true, |ids| {
        ids.max_value() > request.after_id && ids.min_value() <= request.through_id
    });
    let received_meets = match request.received_from_ms {
        None => true,
        Some(from) => fast.date("received_at").map_or(true, |received| {
            received.max_value().into_timestamp_millis() >= from
        }),
    };
    ids_meet && received_meets
}

struct NewestArrivals {
    after_id: u64,
    through_id: u64,
    received_from_ms: i64,
    limit: usize,
}

struct Fruit {
    count: u64,
    newest: Vec<(u64, i64, DocAddress)>,
}

struct NewestArrivalsSegment {
    segment_ord: SegmentOrdinal,
    ids: Column<u64>,
    received: Column<DateTime>,
    timestamps: Column<DateTime>,
    after_id: u64,
    through_id: u64,
    received_from_ms: i64,
    limit: usize,
    count: u64,
    /// Min-heap of the largest ids kept.
    heap: BinaryHeap<Reverse<(u64, DocId)>>,
}

impl Collector for NewestArrivals {
    type Fruit = Fruit;
    type Child = NewestArrivalsSegment;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<NewestArrivalsSegment> {
        Ok(NewestArrivalsSegment {
            segment_ord,
            ids: segment.fast_fields().u64("id")?,
            received: segment.fast_fields().date("received_at")?,
            timestamps: segment.fast_fields().date("timestamp")?,
            after_id: self.after_id,
            through_id: self.through_id,
            received_from_ms: self.received_from_ms,
            limit: self.limit,
            count: 0,
            heap: BinaryHeap::with_capacity(self.limit + 1),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Fruit>) -> tantivy::Result<Fruit> {
        let count = fruits.iter().map(|f| f.count).sum();
        let mut newest: Vec<_> = fruits.into_iter().flat_map(|f| f.newest).collect();
        newest.sort_unstable_by_key(|entry| Reverse(entry.0));
        newest.truncate(self.limit);
        Ok(Fruit { count, newest })
    }
}

impl SegmentCollector for NewestArrivalsSegment {
    type Fruit = Fruit;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(id) = self.ids.first(doc) else {
            return;
        };
        if id <= self.after_id || id > self.through_id {
            return;
        }
        if self.received_from_ms > i64::MIN {
            let received = self
                .received
                .first(doc)
                .map_or(i64::MIN, DateTime::into_timestamp_millis);
            if received < self.received_from_ms {
                return;
            }
        }
        self.count += 1;
        if self.limit == 0 {
            return;
        }
        if self.heap.len() < self.limit {
            self.heap.push(Reverse((id, doc)));
        } else if self
            .heap
            .peek()
            .is_some_and(|Reverse((smallest, _))| id > *smallest)
        {
            self.heap.pop();
            self.heap.push(Reverse((id, doc)));
        }
    }

    fn harvest(self) -> Fruit {
        let newest = self
            .heap
            .into_iter()
            .map(|Reverse((id, doc))| {
                let timestamp_ms = self
                    .timestamps
                    .first(doc)
                    .map_or(0, DateTime::into_timestamp_millis);
                (id, timestamp_ms, DocAddress::new(self.segment_ord, doc))
            })
            .collect();
        Fruit {
            count: self.count,
            newest,
        }
    }
}
