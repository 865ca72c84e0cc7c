//! Searching the day indexes: parse the query, collect matches newest
//! first (event time, then arrival order), count them exactly, and page
//! with a cursor.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Bound;
use std::sync::Arc;

use loghound_shared::api::{Hit, SearchResponse};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Cardinality, Column};
use tantivy::query::{
    AllQuery, BooleanQuery, EnableScoring, Occur, Query, RangeQuery, TermQuery, Weight,
};
use tantivy::schema::{Field, Value};
use tantivy::Term;
use tantivy::{DateTime, DocAddress, DocId, Score, SegmentOrdinal, SegmentReader, TantivyDocument};

use super::highlight::Highlighter;
use super::indexer::document::derived_fields;
use super::{schema, IndexSet};
use crate::query::{self, QueryError};

/// A search request, already validated.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// The query text; empty matches everything.
    pub query: String,
    /// Inclusive lower bound on the event time, ms.
    pub from_ms: Option<i64>,
    /// Exclusive upper bound on the event time, ms.
    pub to_ms: Option<i64>,
    /// Hits per page.
    pub limit: usize,
    /// Only hits older than this position (from a previous page).
    pub before: Option<Cursor>,
}

/// A position in newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    /// Event time, ms.
    pub timestamp_ms: i64,
    /// Event id.
    pub id: u64,
}

impl Cursor {
    /// The opaque text form used in the API.
    pub fn encode(self) -> String {
        format!("{}.{}", self.timestamp_ms, self.id)
    }

    /// Parses [`Cursor::encode`]'s output.
    pub fn decode(text: &str) -> Option<Cursor> {
        let (ts, id) = text.split_once('.')?;
        Some(Cursor {
            timestamp_ms: ts.parse().ok()?,
            id: id.parse().ok()?,
        })
    }
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query text is malformed.
    #[error("invalid query: {0}")]
    Query(#[from] QueryError),
    /// The index could not be read.
    #[error("index error: {0}")]
    Index(#[from] tantivy::TantivyError),
}

/// Parses queries; shared by every search.
pub struct Searcher {
    indexes: Arc<IndexSet>,
}

impl Searcher {
    /// A searcher over the index set.
    pub fn new(indexes: Arc<IndexSet>) -> Self {
        Searcher { indexes }
    }

    pub(super) fn parse(&self, text: &str) -> Result<Box<dyn Query>, SearchError> {
        Ok(query::compile(text, &self.indexes.fields)?)
    }

    /// Runs a search.
    ///
    /// Segments are visited newest first (by their latest event time), so
    /// the page fills from the segments that can hold it; a segment that
    /// lies wholly inside the time range and can add nothing to the page is
    /// only counted, which for a word or an empty query needs no visit of
    /// its documents at all.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResponse, SearchError> {
        let (from_ms, to_ms) = (
            request.from_ms.unwrap_or(i64::MIN),
            request.to_ms.unwrap_or(i64::MAX),
        );
        let PreparedQuery {
            query,
            core,
            searchers,
        } = self.prepare(&request.query, request.from_ms, request.to_ms)?;
        let mut parts = Vec::new();
        let mut weights = Vec::with_capacity(searchers.len());
        for (day_ord, searcher) in searchers.iter().enumerate() {
            let scoring = EnableScoring::disabled_from_searcher(searcher);
            weights.push((query.weight(scoring)?, core.weight(scoring)?));
            for (segment_ord, reader) in searcher.segment_readers().iter().enumerate() {
                parts.push(SegmentPart::new(day_ord, segment_ord, reader)?);
            }
        }
        parts.sort_by_key(|part| Reverse(part.max_ms));

        let mut count = 0u64;
        // The page so far: a min-heap of the `limit` newest matches.
        let mut page: BinaryHeap<Reverse<(Cursor, usize, DocAddress)>> = BinaryHeap::new();
        for part in &parts {
            let reader = searchers[part.day_ord].segment_reader(part.segment_ord as u32);
            let (weight, core_weight) = &weights[part.day_ord];
            let floor = (page.len() == request.limit)
                .then(|| page.peek().map(|Reverse((cursor, _, _))| *cursor))
                .flatten();
            let inside = part.inside(from_ms, to_ms);
            let adds_nothing = request.limit == 0
                || floor.is_some_and(|floor| part.max_ms < floor.timestamp_ms)
                || request
                    .before
                    .is_some_and(|before| part.min_ms > before.timestamp_ms);
            if inside && adds_nothing {
                count += u64::from(count_matches(core.as_ref(), core_weight.as_ref(), reader)?);
                continue;
            }
            let collector = NewestFirst {
                limit: request.limit,
                from_ms,
                to_ms,
                before: request.before,
                floor,
            };
            let weight = if inside { core_weight } else { weight };
            let fruit =
                collector.collect_segment(weight.as_ref(), part.segment_ord as u32, reader)?;
            count += fruit.count;
            for (cursor, address) in fruit.top {
                page.push(Reverse((cursor, part.day_ord, address)));
                if page.len() > request.limit {
                    page.pop();
                }
            }
        }
        let mut top: Vec<(Cursor, usize, DocAddress)> =
            page.into_iter().map(|Reverse(entry)| entry).collect();
        top.sort_by_key(|entry| Reverse(entry.0));
        let mut highlighter = Highlighter::new(query.as_ref(), self.indexes.fields.message);
        let fields = &self.indexes.fields;
        let mut hits = Vec::with_capacity(top.len());
        for (cursor, day_ord, address) in &top {
            let doc: TantivyDocument = searchers[*day_ord].doc(*address)?;
            let mut hit = hit_from_doc(&doc, fields, *cursor);
            hit.highlights = highlighter.highlight(&hit.message);
            hits.push(hit);
        }
        let next = (top.len() == request.limit)
            .then(|| top.last().map(|(c, _, _)| c.encode()))
            .flatten();
        Ok(SearchResponse {
            hits,
            count,
            cursor: next,
        })
    }
}

/// One segment of one day, with the span of its event times.
struct SegmentPart {
    day_ord: usize,
    segment_ord: usize,
    min_ms: i64,
    max_ms: i64,
    /// Whether every document has an event time.
    every_doc_timed: bool,
}

impl SegmentPart {
    fn new(day_ord: usize, segment_ord: usize, reader: &SegmentReader) -> tantivy::Result<Self> {
        let times = reader.fast_fields().date("timestamp")?;
        Ok(SegmentPart {
            day_ord,
            segment_ord,
            min_ms: times.min_value().into_timestamp_millis(),
            max_ms: times.max_value().into_timestamp_millis(),
            every_doc_timed: matches!(times.get_cardinality(), Cardinality::Full),
        })
    }

    /// Whether each of its documents is inside `[from_ms, to_ms)`: the
    /// time range then takes nothing away from a query's matches here.
    fn inside(&self, from_ms: i64, to_ms: i64) -> bool {
        self.every_doc_timed && self.min_ms >= from_ms && self.max_ms < to_ms
    }
}

/// How many live documents of a segment match `query`, from the term
/// dictionary where the query allows (a word, everything, everything but
/// a word) and by walking its matches otherwise.
fn count_matches(
    query: &dyn Query,
    weight: &dyn Weight,
    reader: &SegmentReader,
) -> tantivy::Result<u32> {
    if query.downcast_ref::<AllQuery>().is_some() {
        return Ok(reader.num_docs());
    }
    if let Some(boolean) = query.downcast_ref::<BooleanQuery>() {
        let clauses = boolean.clauses();
        let mut excluded = clauses.iter().filter(|(occur, _)| *occur == Occur::MustNot);
        let only_everything = clauses.iter().all(|(occur, clause)| {
            *occur == Occur::MustNot
                || (*occur == Occur::Must && clause.downcast_ref::<AllQuery>().is_some())
        });
        if let (true, Some((_, negated)), None) =
            (only_everything, excluded.next(), excluded.next())
        {
            if let Some(term) = negated.downcast_ref::<TermQuery>() {
                let scoring = EnableScoring::disabled_from_schema(reader.schema());
                let matched = term.weight(scoring)?.count(reader)?;
                return Ok(reader.num_docs().saturating_sub(matched));
            }
        }
    }
    weight.count(reader)
}

/// Shared by search, histogram, context and tail (kept apart from `new`
/// and `parse`, which belong to the query language).
impl Searcher {
    /// The day indexes searched.
    pub(super) fn indexes(&self) -> &IndexSet {
        &self.indexes
    }

    /// Compiles `text`, adds the time range and takes a snapshot of the
    /// day indexes that may hold matches: the one query path that search,
    /// histogram and tail share, so their counts agree. Callers still apply
    /// the exact bounds to the `timestamp` fast field (the range query is
    /// widened by a second).
    pub(super) fn prepare(
        &self,
        text: &str,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<PreparedQuery, SearchError> {
        let query = self.parse(text)?;
        Ok(self.prepare_query(query, from_ms, to_ms))
    }

    /// [`Searcher::prepare`] for a query already compiled (the search
    /// part of a query with pipes).
    pub(super) fn prepare_query(
        &self,
        query: Box<dyn Query>,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> PreparedQuery {
        let core = query.box_clone();
        let query = with_time_range(query, self.indexes.fields.timestamp, from_ms, to_ms);
        let searchers = self
            .indexes
            .days_from(from_ms)
            .iter()
            .map(|day| day.reader.searcher())
            .collect();
        PreparedQuery {
            query,
            core,
            searchers,
        }
    }
}

/// A compiled query and a snapshot of the day indexes it runs over,
/// newest day first.
pub(super) struct PreparedQuery {
    /// The query, time range included.
    pub(super) query: Box<dyn Query>,
    /// The query without the time range.
    pub(super) core: Box<dyn Query>,
    /// One searcher per day index that may hold matches.
    pub(super) searchers: Vec<tantivy::Searcher>,
}

/// Adds the time range as a fast-field range query, which skips whole
/// segments by their time bounds. It is widened by a second, so that
/// precision never drops a match; the collector applies the exact bounds.
fn with_time_range(
    query: Box<dyn Query>,
    field: Field,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
) -> Box<dyn Query> {
    if from_ms.is_none() && to_ms.is_none() {
        return query;
    }
    let bound = |ms: Option<i64>, widen: i64| match ms {
        Some(ms) => Bound::Included(Term::from_field_date(
            field,
            DateTime::from_timestamp_millis(ms.saturating_add(widen)),
        )),
        None => Bound::Unbounded,
    };
    let range = RangeQuery::new(bound(from_ms, -1000), bound(to_ms, 1000));
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, query),
        (Occur::Must, Box::new(range)),
    ]))
}

/// A time in ms as RFC 3339 UTC with milliseconds, as the API writes it.
pub(super) fn rfc3339(ms: i64) -> String {
    crate::timeparse::rfc3339_ms(ms)
}

/// The JSON object a stored document holds in `field`, as the API shows
/// it; empty when it holds none.
pub(crate) fn stored_object(
    doc: &TantivyDocument,
    field: Field,
) -> serde_json::Map<String, serde_json::Value> {
    doc.get_first(field)
        .map(tantivy::schema::OwnedValue::from)
        .and_then(|v| serde_json::to_value(v).ok())
        .and_then(|v| match v {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default()
}

/// The API's view of a stored document; `cursor` carries its fast-field
/// time and id. `highlights` is left empty.
pub(super) fn hit_from_doc(doc: &TantivyDocument, fields: &schema::Fields, cursor: Cursor) -> Hit {
    let text = |field| {
        doc.get_first(field)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let flag = |field| {
        doc.get_first(field)
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    };
    let received_ms = doc
        .get_first(fields.received_at)
        .and_then(|v| v.as_datetime())
        .map(|d| d.into_timestamp_millis())
        .unwrap_or(cursor.timestamp_ms);
    let object = |field| stored_object(doc, field);
    Hit {
        id: cursor.id.to_string(),
        timestamp: rfc3339(cursor.timestamp_ms),
        received_at: rfc3339(received_ms),
        host: text(fields.host),
        source: text(fields.source),
        app: doc
            .get_first(fields.app)
            .and_then(|v| v.as_str())
            .map(str::to_string),
        severity: doc
            .get_first(fields.severity)
            .and_then(|v| v.as_str())
            .map(str::to_string),
        fields: match doc.get_first(fields.fields) {
            // Written before `sent_fields`: every field is stored.
            Some(_) => object(fields.fields),
            None => derived_fields(
                &text(fields.message),
                doc.get_first(fields.format).and_then(|v| v.as_str()),
                received_ms,
                object(fields.sent_fields),
            ),
        },
        message: text(fields.message),
        tags: object(fields.tags),
        truncated: flag(fields.truncated),
        invalid_utf8: flag(fields.invalid_utf8),
        highlights: Vec::new(),
    }
}

/// Counts every match in the time range and keeps the `limit` newest that
/// are older than `before` and newer than `floor` (the oldest hit of a page
/// already full).
struct NewestFirst {
    limit: usize,
    from_ms: i64,
    to_ms: i64,
    before: Option<Cursor>,
    floor: Option<Cursor>,
}

struct NewestFirstFruit {
    count: u64,
    top: Vec<(Cursor, DocAddress)>,
}

struct NewestFirstSegment {
    segment_ord: SegmentOrdinal,
    timestamps: Column<DateTime>,
    ids: Column<u64>,
    limit: usize,
    from_ms: i64,
    to_ms: i64,
    before: Option<Cursor>,
    floor: Option<Cursor>,
    count: u64,
    heap: BinaryHeap<Reverse<(Cursor, DocId)>>,
    block_times: Vec<Option<DateTime>>,
}

impl Collector for NewestFirst {
    type Fruit = NewestFirstFruit;
    type Child = NewestFirstSegment;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<NewestFirstSegment> {
        Ok(NewestFirstSegment {
            segment_ord,
            timestamps: segment.fast_fields().date("timestamp")?,
            ids: segment.fast_fields().u64("id")?,
            limit: self.limit,
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            before: self.before,
            floor: self.floor,
            count: 0,
            heap: BinaryHeap::with_capacity(self.limit + 1),
            block_times: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<NewestFirstFruit>) -> tantivy::Result<NewestFirstFruit> {
        let mut count = 0;
        let mut top = Vec::new();
        for fruit in fruits {
            count += fruit.count;
            top.extend(fruit.top);
        }
        top.sort_by_key(|entry| Reverse(entry.0));
        top.truncate(self.limit);
        Ok(NewestFirstFruit { count, top })
    }
}

impl NewestFirstSegment {
    /// Counts and ranks one matching document whose time is known.
    fn consider(&mut self, doc: DocId, timestamp_ms: i64) {
        if timestamp_ms < self.from_ms || timestamp_ms >= self.to_ms {
            return;
        }
        self.count += 1;
        if self.limit == 0 {
            return;
        }
        // Most documents of a large result are older than everything kept:
        // decide on the time alone before reading the id.
        if self
            .floor
            .is_some_and(|floor| timestamp_ms < floor.timestamp_ms)
        {
            return;
        }
        if self.heap.len() == self.limit {
            if let Some(Reverse((smallest, _))) = self.heap.peek() {
                if timestamp_ms < smallest.timestamp_ms {
                    return;
                }
            }
        }
        let cursor = Cursor {
            timestamp_ms,
            id: self.ids.first(doc).unwrap_or(0),
        };
        if self.before.is_some_and(|before| cursor >= before)
            || self.floor.is_some_and(|floor| cursor <= floor)
        {
            return;
        }
        if self.heap.len() < self.limit {
            self.heap.push(Reverse((cursor, doc)));
        } else if let Some(Reverse((smallest, _))) = self.heap.peek() {
            if cursor > *smallest {
                self.heap.pop();
                self.heap.push(Reverse((cursor, doc)));
            }
        }
    }
}

impl SegmentCollector for NewestFirstSegment {
    type Fruit = NewestFirstFruit;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(timestamp) = self.timestamps.first(doc) {
            self.consider(doc, timestamp.into_timestamp_millis());
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        // One batched fast-field read per block instead of one per document.
        let mut times = std::mem::take(&mut self.block_times);
        super::block_times(&self.timestamps, docs, &mut times);
        for (&doc, time) in docs.iter().zip(&times) {
            if let Some(time) = time {
                self.consider(doc, time.into_timestamp_millis());
            }
        }
        self.block_times = times;
    }

    fn harvest(self) -> NewestFirstFruit {
        let segment_ord = self.segment_ord;
        NewestFirstFruit {
            count: self.count,
            top: self
                .heap
                .into_iter()
                .map(|Reverse((cursor, doc))| (cursor, DocAddress::new(segment_ord, doc)))
                .collect(),
        }
    }
}
