//! Context: the lines around an event in its file, in file order.
//!
//! An event is found by its id; its neighbours are the events with the
//! same host and the same file id (which already names one file, and one
//! truncation generation of it, on that host), ordered by byte offset.
//! They are looked for in every day index, since a file's lines may have
//! been received over several days. One collector pass per day reads the
//! `offset` fast field and keeps only the nearest offsets on each side;
//! only those documents are loaded.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Bound;

use loghound_shared::api::{ContextResponse, Hit};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader, TantivyDocument, Term};

use super::search::{hit_from_doc, Cursor, SearchError, Searcher};

/// A context request, already validated.
#[derive(Debug, Clone, Copy)]
pub struct ContextRequest {
    /// The event's id.
    pub id: u64,
    /// Lines wanted before it.
    pub before: usize,
    /// Lines wanted after it.
    pub after: usize,
}

impl Searcher {
    /// The lines around event `request.id`; `None` when no event has it.
    pub fn context(
        &self,
        request: &ContextRequest,
    ) -> Result<Option<ContextResponse>, SearchError> {
        let indexes = self.indexes();
        let fields = &indexes.fields;
        let searchers: Vec<tantivy::Searcher> = indexes
            .days_from(None)
            .iter()
            .map(|d| d.reader.searcher())
            .collect();
        // The id column: segments whose id range misses it are skipped
        // whole.
        let id = || Bound::Included(Term::from_field_u64(fields.id, request.id));
        let by_id = RangeQuery::new(id(), id());
        let mut found = None;
        for searcher in &searchers {
            let addresses = searcher.search(&by_id, &tantivy::collector::DocSetCollector)?;
            if let Some(address) = addresses.into_iter().next() {
                found = Some((searcher, address));
                break;
            }
        }
        let Some((searcher, address)) = found else {
            return Ok(None);
        };
        let event = load_hit(searcher, address, fields)?;
        let doc: TantivyDocument = searcher.doc(address)?;
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let Some(offset) = doc.get_first(fields.offset).and_then(|v| v.as_u64()) else {
            // Every indexed event has an offset; without one it has no file
            // position, hence no neighbours.
            return Ok(Some(ContextResponse {
                event,
                before: Vec::new(),
                after: Vec::new(),
            }));
        };
        // Keyword fields are indexed lowercased.
        let keyword = |field, value: String| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, &value.to_lowercase()),
                IndexRecordOption::Basic,
            ))
        };
        let same_file = BooleanQuery::new(vec![
            (Occur::Must, keyword(fields.host, text(fields.host))),
            (Occur::Must, keyword(fields.file_id, text(fields.file_id))),
        ]);
        let collector = Nearest {
            offset,
            before: request.before,
            after: request.after,
        };
        let mut before: Vec<(u64, usize, DocAddress)> = Vec::new();
        let mut after: Vec<(u64, usize, DocAddress)> = Vec::new();
        for (day_ord, searcher) in searchers.iter().enumerate() {
            let fruit = searcher.search(&same_file, &collector)?;
            before.extend(fruit.before.into_iter().map(|(o, a)| (o, day_ord, a)));
            after.extend(fruit.after.into_iter().map(|(o, a)| (o, day_ord, a)));
        }
        before.sort_by_key(|entry| Reverse(entry.0));
        before.truncate(request.before);
        before.reverse();
        after.sort_by_key(|entry| entry.0);
        after.truncate(request.after);
        let load = |entries: Vec<(u64, usize, DocAddress)>| {
            entries
                .into_iter()
                .map(|(_, day_ord, address)| load_hit(&searchers[day_ord], address, fields))
                .collect::<Result<Vec<Hit>, SearchError>>()
        };
        Ok(Some(ContextResponse {
            event,
            before: load(before)?,
            after: load(after)?,
        }))
    }
}

fn load_hit(
    searcher: &tantivy::Searcher,
    address: DocAddress,
    fields: &super::schema::Fields,
) -> Result<Hit, SearchError> {
    let segment = searcher.segment_reader(address.segment_ord);
    let timestamp_ms = segment
        .fast_fields()
        .date("timestamp")?
        .first(address.doc_id)
        .map(|t| t.into_timestamp_millis())
        .unwrap_or_default();
    let id = segment
        .fast_fields()
        .u64("id")?
        .first(address.doc_id)
        .unwrap_or_default();
    let doc: TantivyDocument = searcher.doc(address)?;
    Ok(hit_from_doc(&doc, fields, Cursor { timestamp_ms, id }))
}

/// Keeps the `before` largest offsets below `offset` and the `after`
/// smallest above it.
struct Nearest {
    offset: u64,
    before: usize,
    after: usize,
}

struct NearestFruit {
    before: Vec<(u64, DocAddress)>,
    after: Vec<(u64, DocAddress)>,
}

struct NearestSegment {
    segment_ord: SegmentOrdinal,
    offsets: Column<u64>,
    offset: u64,
    before_limit: usize,
    after_limit: usize,
    /// Kept offsets below `offset`; the top is the smallest, dropped first.
    before: BinaryHeap<Reverse<(u64, DocId)>>,
    /// Kept offsets above `offset`; the top is the largest, dropped first.
    after: BinaryHeap<(u64, DocId)>,
}

/// Pushes into a heap bounded to `limit` whose top is the worst entry.
fn push_bounded<T: Ord>(heap: &mut BinaryHeap<T>, entry: T, limit: usize) {
    if heap.len() < limit {
        heap.push(entry);
    } else if heap.peek().is_some_and(|worst| entry < *worst) {
        heap.pop();
        heap.push(entry);
    }
}

impl Collector for Nearest {
    type Fruit = NearestFruit;
    type Child = NearestSegment;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<NearestSegment> {
        Ok(NearestSegment {
            segment_ord,
            offsets: segment.fast_fields().u64("offset")?,
            offset: self.offset,
            before_limit: self.before,
            after_limit: self.after,
            before: BinaryHeap::new(),
            after: BinaryHeap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<NearestFruit>) -> tantivy::Result<NearestFruit> {
        let mut before = Vec::new();
        let mut after = Vec::new();
        for fruit in fruits {
            before.extend(fruit.before);
            after.extend(fruit.after);
        }
        before.sort_by_key(|entry| Reverse(entry.0));
        before.truncate(self.before);
        after.sort_by_key(|entry| entry.0);
        after.truncate(self.after);
        Ok(NearestFruit { before, after })
    }
}

impl SegmentCollector for NearestSegment {
    type Fruit = NearestFruit;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(offset) = self.offsets.first(doc) else {
            return;
        };
        if offset < self.offset {
            push_bounded(&mut self.before, Reverse((offset, doc)), self.before_limit);
        } else if offset > self.offset {
            push_bounded(&mut self.after, (offset, doc), self.after_limit);
        }
    }

    fn harvest(self) -> NearestFruit {
        let address = |doc| DocAddress::new(self.segment_ord, doc);
        NearestFruit {
            before: self
                .before
                .into_iter()
                .map(|Reverse((offset, doc))| (offset, address(doc)))
                .collect(),
            after: self
                .after
                .into_iter()
                .map(|(offset, doc)| (offset, address(doc)))
                .collect(),
        }
    }
}
