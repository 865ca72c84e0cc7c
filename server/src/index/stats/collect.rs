//! The collector behind stats: per segment, each match's group key and
//! aggregate inputs from fast columns (stored documents only for fields
//! that have no column: `file_id`, tags, and keyword fields of indexes
//! written before they became fast), grouped in a hash map keyed by
//! segment-local values (string ordinals), turned into [`Key`]s once per
//! group at harvest.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, DynamicColumn, StrColumn};
use tantivy::schema::{Field, OwnedValue, Value};
use tantivy::store::StoreReader;
use tantivy::{DateTime, DocId, Score, SegmentOrdinal, SegmentReader, TantivyDocument};

use super::state::{AggState, Key};
use crate::query::pipe::Function;

/// Most groups a stats query may make; past this it is refused.
pub const MAX_GROUPS: usize = 1_000_000;

/// Where a field named in a pipe is read from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A built-in keyword field (`host`, `source`, `app`, `severity`): its
    /// fast column, or stored documents in segments written without one.
    Keyword {
        /// The field.
        field: Field,
        /// Its name, which is also its column's.
        name: &'static str,
    },
    /// A keyword field kept only in stored documents (`file_id`).
    StoredKeyword(Field),
    /// A key of the `tags` object (stored documents).
    Tag(String),
    /// A path in the `fields` object: its fast columns (`fields.PATH`).
    Parsed(String),
}

/// What to compute: the group fields, the aggregates and the time buckets.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The group fields.
    pub by: Vec<Source>,
    /// Each aggregate and its field.
    pub aggregates: Vec<(Function, Option<Source>)>,
    /// A timechart's buckets: `(origin_ms, width_ms)`.
    pub buckets: Option<(i64, i64)>,
    /// Inclusive lower bound on the event time, ms.
    pub from_ms: i64,
    /// Exclusive upper bound, ms.
    pub to_ms: i64,
    /// The `tags` field.
    pub tags: Field,
}

/// A group's count and aggregate states.
#[derive(Debug, Clone)]
pub struct Group<K> {
    /// Matching lines in the group.
    pub count: u64,
    /// One state per aggregate.
    pub aggregates: Vec<AggState<K>>,
}

impl<K: Eq + std::hash::Hash> Group<K> {
    fn new(plan: &Plan) -> Self {
        Group {
            count: 0,
            aggregates: plan
                .aggregates
                .iter()
                .map(|(f, _)| AggState::new(*f))
                .collect(),
        }
    }

    /// Adds another group's states.
    pub fn merge(&mut self, other: Group<K>) {
        self.count += other.count;
        for (mine, theirs) in self.aggregates.iter_mut().zip(other.aggregates) {
            mine.merge(theirs);
        }
    }
}

/// What one segment (or all, merged) found.
#[derive(Debug, Default)]
pub struct Found {
    /// Groups by key (the bucket's index first for a timechart).
    pub groups: FxHashMap<Vec<Key>, Group<Key>>,
    /// Matches within the exact time bounds.
    pub matched: u64,
    /// More than [`MAX_GROUPS`] groups were seen.
    pub overflow: bool,
}

impl Found {
    /// Adds what another segment or day found.
    pub fn merge(&mut self, other: Found) {
        self.matched += other.matched;
        self.overflow |= other.overflow;
        for (key, group) in other.groups {
            match self.groups.get_mut(&key) {
                Some(mine) => mine.merge(group),
                None => {
                    self.groups.insert(key, group);
                }
            }
        }
        self.overflow |= self.groups.len() > MAX_GROUPS;
    }
}

/// The collector.
pub struct Stats<'p> {
    /// What to compute.
    pub plan: &'p Plan,
}

impl Collector for Stats<'_> {
    type Fruit = Found;
    type Child = SegmentStats;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<SegmentStats> {
        let by = self
            .plan
            .by
            .iter()
            .map(|source| Reader::open(source, segment))
            .collect::<tantivy::Result<Vec<_>>>()?;
        let aggregates = self
            .plan
            .aggregates
            .iter()
            .map(|(_, source)| {
                source
                    .as_ref()
                    .map(|s| Reader::open(s, segment))
                    .transpose()
            })
            .collect::<tantivy::Result<Vec<_>>>()?;
        let needs_store = by
            .iter()
            .chain(aggregates.iter().flatten())
            .any(|r| matches!(r, Reader::Stored(_)));
        Ok(SegmentStats {
            plan: self.plan.clone(),
            timestamps: segment.fast_fields().date("timestamp")?,
            values: Values {
                by,
                aggregates,
                stored: Stored {
                    store: needs_store
                        .then(|| segment.get_store_reader(10))
                        .transpose()?,
                    tags: self.plan.tags,
                    current: None,
                    strings: Vec::new(),
                    ids: HashMap::new(),
                },
                numbers: HashMap::new(),
            },
            groups: FxHashMap::default(),
            key: Vec::new(),
            block_times: Vec::new(),
            matched: 0,
            overflow: false,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Found>) -> tantivy::Result<Found> {
        let mut merged = Found::default();
        for fruit in fruits {
            merged.merge(fruit);
        }
        Ok(merged)
    }
}

/// A value local to a segment: strings by their column ordinal (or their
/// index among the strings read from stored documents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Local {
    Null,
    Ord(u64),
    Interned(u32),
    I64(i64),
    U64(u64),
    F64(u64),
    Bool(bool),
}

/// How one field is read in one segment.
enum Reader {
    /// A fast string column.
    Str(StrColumn),
    /// The fast columns of a JSON path, one per type it was seen with.
    Json(Box<JsonColumns>),
    /// Stored documents.
    Stored(StoredValue),
    /// Nothing in this segment has the field.
    Missing,
}

enum StoredValue {
    Keyword(Field),
    Tag(String),
}

#[derive(Default)]
struct JsonColumns {
    str: Option<StrColumn>,
    i64: Option<Column<i64>>,
    u64: Option<Column<u64>>,
    f64: Option<Column<f64>>,
    bool: Option<Column<bool>>,
}

impl Reader {
    fn open(source: &Source, segment: &SegmentReader) -> tantivy::Result<Reader> {
        Ok(match source {
            Source::Keyword { field, name } => {
                if segment.schema().get_field_entry(*field).is_fast() {
                    segment
                        .fast_fields()
                        .str(name)?
                        .map_or(Reader::Missing, Reader::Str)
                } else {
                    Reader::Stored(StoredValue::Keyword(*field))
                }
            }
            Source::StoredKeyword(field) => Reader::Stored(StoredValue::Keyword(*field)),
            Source::Tag(key) => Reader::Stored(StoredValue::Tag(key.clone())),
            Source::Parsed(path) => {
                let mut columns = JsonColumns::default();
                let mut any = false;
                for handle in segment
                    .fast_fields()
                    .dynamic_column_handles(&format!("fields.{path}"))?
                {
                    any = true;
                    match handle.open()? {
                        DynamicColumn::Str(c) => columns.str = Some(c),
                        DynamicColumn::I64(c) => columns.i64 = Some(c),
                        DynamicColumn::U64(c) => columns.u64 = Some(c),
                        DynamicColumn::F64(c) => columns.f64 = Some(c),
                        DynamicColumn::Bool(c) => columns.bool = Some(c),
                        _ => {}
                    }
                }
                if any {
                    Reader::Json(Box::new(columns))
                } else {
                    Reader::Missing
                }
            }
        })
    }

    fn str_column(&self) -> Option<&StrColumn> {
        match self {
            Reader::Str(c) => Some(c),
            Reader::Json(j) => j.str.as_ref(),
            _ => None,
        }
    }
}

/// Which reader: a group field's or an aggregate's.
#[derive(Debug, Clone, Copy)]
enum ReaderRef {
    By(usize),
    Aggregate(usize),
}

/// The readers of a segment.
struct Values {
    by: Vec<Reader>,
    aggregates: Vec<Option<Reader>>,
    stored: Stored,
    /// Strings of a column ordinal parsed as numbers, per aggregate.
    numbers: HashMap<(usize, u64), Option<f64>>,
}

/// Stored documents, for fields without a fast column, and the strings
/// read from them.
struct Stored {
    store: Option<StoreReader>,
    tags: Field,
    /// The document last loaded.
    current: Option<(DocId, TantivyDocument)>,
    strings: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Stored {
    fn intern(&mut self, text: &str) -> Local {
        if let Some(id) = self.ids.get(text) {
            return Local::Interned(*id);
        }
        let id = u32::try_from(self.strings.len()).unwrap_or(u32::MAX);
        self.strings.push(text.to_owned());
        self.ids.insert(text.to_owned(), id);
        Local::Interned(id)
    }

    fn value(&mut self, how: &StoredValue, doc: DocId) -> Local {
        if self.current.as_ref().map(|(d, _)| *d) != Some(doc) {
            let Some(store) = &self.store else {
                return Local::Null;
            };
            match store.get::<TantivyDocument>(doc) {
                Ok(document) => self.current = Some((doc, document)),
                Err(error) => {
                    tracing::warn!(%error, doc, "stats: cannot read a stored document");
                    return Local::Null;
                }
            }
        }
        let Some((_, document)) = &self.current else {
            return Local::Null;
        };
        let value = match how {
            StoredValue::Keyword(field) => document
                .get_first(*field)
                .and_then(|v| v.as_str())
                .map(|s| OwnedValue::Str(s.to_owned())),
            StoredValue::Tag(key) => match document.get_first(self.tags).map(OwnedValue::from) {
                Some(OwnedValue::Object(members)) => members
                    .into_iter()
                    .find(|(name, _)| name == key)
                    .map(|(_, value)| value),
                _ => None,
            },
        };
        match value {
            Some(OwnedValue::Str(s)) => self.intern(&s),
            Some(OwnedValue::I64(n)) => Local::I64(n),
            Some(OwnedValue::U64(n)) => Local::U64(n),
            Some(OwnedValue::F64(n)) => Local::F64(n.to_bits()),
            Some(OwnedValue::Bool(b)) => Local::Bool(b),
            _ => Local::Null,
        }
    }
}

fn json_value(columns: &JsonColumns, doc: DocId) -> Local {
    if let Some(ord) = columns.str.as_ref().and_then(|c| c.ords().first(doc)) {
        return Local::Ord(ord);
    }
    if let Some(n) = columns.i64.as_ref().and_then(|c| c.first(doc)) {
        return Local::I64(n);
    }
    if let Some(n) = columns.u64.as_ref().and_then(|c| c.first(doc)) {
        return match i64::try_from(n) {
            Ok(n) => Local::I64(n),
            Err(_) => Local::U64(n),
        };
    }
    if let Some(n) = columns.f64.as_ref().and_then(|c| c.first(doc)) {
        return Local::F64(n.to_bits());
    }
    if let Some(b) = columns.bool.as_ref().and_then(|c| c.first(doc)) {
        return Local::Bool(b);
    }
    Local::Null
}

impl Values {
    fn reader(&self, which: ReaderRef) -> Option<&Reader> {
        match which {
            ReaderRef::By(i) => self.by.get(i),
            ReaderRef::Aggregate(i) => self.aggregates.get(i).and_then(Option::as_ref),
        }
    }

    fn read(&mut self, which: ReaderRef, doc: DocId) -> Local {
        let reader = match which {
            ReaderRef::By(i) => self.by.get(i),
            ReaderRef::Aggregate(i) => self.aggregates.get(i).and_then(Option::as_ref),
        };
        match reader {
            None | Some(Reader::Missing) => Local::Null,
            Some(Reader::Str(column)) => column.ords().first(doc).map_or(Local::Null, Local::Ord),
            Some(Reader::Json(columns)) => json_value(columns, doc),
            Some(Reader::Stored(how)) => self.stored.value(how, doc),
        }
    }

    /// The value as a number: numeric values as they are, strings parsed.
    fn number(&mut self, aggregate: usize, value: Local) -> Option<f64> {
        match value {
            Local::Null | Local::Bool(_) => None,
            Local::I64(n) => Some(n as f64),
            Local::U64(n) => Some(n as f64),
            Local::F64(bits) => Some(f64::from_bits(bits)),
            Local::Interned(id) => self
                .stored
                .strings
                .get(id as usize)
                .and_then(|s| parse_number(s)),
            Local::Ord(ord) => {
                if let Some(known) = self.numbers.get(&(aggregate, ord)) {
                    return *known;
                }
                let mut text = String::new();
                let parsed = self
                    .reader(ReaderRef::Aggregate(aggregate))
                    .and_then(Reader::str_column)
                    .and_then(|c| c.ord_to_str(ord, &mut text).ok())
                    .filter(|found| *found)
                    .and_then(|_| parse_number(&text));
                self.numbers.insert((aggregate, ord), parsed);
                parsed
            }
        }
    }

    /// The strings of `ords` (sorted, distinct) in `which`'s column, read
    /// in one pass over its dictionary.
    fn resolve(&self, which: ReaderRef, ords: &[u64]) -> FxHashMap<u64, String> {
        let mut names = FxHashMap::with_capacity_and_hasher(ords.len(), Default::default());
        let Some(column) = self.reader(which).and_then(Reader::str_column) else {
            return names;
        };
        let mut next = ords.iter();
        let result = column
            .dictionary()
            .sorted_ords_to_term_cb(ords.iter().copied(), |bytes| {
                if let Some(ord) = next.next() {
                    names.insert(*ord, String::from_utf8_lossy(bytes).into_owned());
                }
                Ok(())
            });
        if let Err(error) = result {
            tracing::warn!(%error, "stats: cannot read a column's dictionary");
        }
        names
    }

    /// The value across segments; `names` holds the strings of the
    /// reader's ordinals.
    fn key(&self, value: Local, names: &FxHashMap<u64, String>) -> Key {
        match value {
            Local::Null => Key::Null,
            Local::I64(n) => Key::I64(n),
            Local::U64(n) => Key::U64(n),
            Local::F64(bits) => Key::float(f64::from_bits(bits)),
            Local::Bool(b) => Key::Bool(b),
            Local::Interned(id) => self
                .stored
                .strings
                .get(id as usize)
                .map_or(Key::Null, |s| Key::Str(s.clone())),
            Local::Ord(ord) => names.get(&ord).map_or(Key::Null, |s| Key::Str(s.clone())),
        }
    }
}

/// The distinct ordinals among `values`, sorted.
fn ords_of<'a>(values: impl Iterator<Item = &'a Local>) -> Vec<u64> {
    let mut ords: Vec<u64> = values
        .filter_map(|v| match v {
            Local::Ord(ord) => Some(*ord),
            _ => None,
        })
        .collect();
    ords.sort_unstable();
    ords.dedup();
    ords
}

/// A string as a number, when it is one (`"812"`, `"0.25"`).
fn parse_number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// One segment's part of the stats.
pub struct SegmentStats {
    plan: Plan,
    timestamps: Column<DateTime>,
    values: Values,
    groups: FxHashMap<Vec<Local>, Group<Local>>,
    key: Vec<Local>,
    block_times: Vec<Option<DateTime>>,
    matched: u64,
    overflow: bool,
}

impl SegmentCollector for SegmentStats {
    type Fruit = Found;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(time) = self.timestamps.first(doc) {
            self.collect_at(doc, time.into_timestamp_millis());
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        let mut times = std::mem::take(&mut self.block_times);
        crate::index::block_times(&self.timestamps, docs, &mut times);
        for (doc, time) in docs.iter().zip(&times) {
            if let Some(time) = time {
                self.collect_at(*doc, time.into_timestamp_millis());
            }
        }
        self.block_times = times;
    }

    fn harvest(self) -> Found {
        let SegmentStats {
            plan,
            values,
            groups,
            matched,
            overflow,
            ..
        } = self;
        let offset = usize::from(plan.buckets.is_some());
        let mut found = Found {
            groups: FxHashMap::with_capacity_and_hasher(groups.len(), Default::default()),
            matched,
            overflow,
        };
        let by_names: Vec<FxHashMap<u64, String>> = (0..plan.by.len())
            .map(|i| {
                let ords = ords_of(groups.keys().filter_map(|k| k.get(offset + i)));
                values.resolve(ReaderRef::By(i), &ords)
            })
            .collect();
        let aggregate_names: Vec<FxHashMap<u64, String>> = (0..plan.aggregates.len())
            .map(|i| {
                let ords = ords_of(groups.values().flat_map(|g| {
                    match g.aggregates.get(i) {
                        Some(AggState::Distinct(set)) => Some(set.iter()),
                        _ => None,
                    }
                    .into_iter()
                    .flatten()
                }));
                values.resolve(ReaderRef::Aggregate(i), &ords)
            })
            .collect();
        let no_names = FxHashMap::default();
        for (local_key, group) in groups {
            let key: Vec<Key> = local_key
                .iter()
                .enumerate()
                .map(|(i, value)| match i.checked_sub(offset) {
                    None => match value {
                        Local::I64(bucket) => Key::I64(*bucket),
                        _ => Key::Null,
                    },
                    Some(i) => values.key(*value, by_names.get(i).unwrap_or(&no_names)),
                })
                .collect();
            let aggregates = group
                .aggregates
                .into_iter()
                .enumerate()
                .map(|(i, state)| {
                    state.map_keys(|v| values.key(v, aggregate_names.get(i).unwrap_or(&no_names)))
                })
                .collect();
            let group = Group {
                count: group.count,
                aggregates,
            };
            match found.groups.get_mut(&key) {
                Some(mine) => mine.merge(group),
                None => {
                    found.groups.insert(key, group);
                }
            }
        }
        found
    }
}

impl SegmentStats {
    /// One match at event time `ms`.
    fn collect_at(&mut self, doc: DocId, ms: i64) {
        if ms < self.plan.from_ms || ms >= self.plan.to_ms {
            return;
        }
        self.matched += 1;
        self.key.clear();
        if let Some((origin, width)) = self.plan.buckets {
            self.key.push(Local::I64((ms - origin).div_euclid(width)));
        }
        for i in 0..self.plan.by.len() {
            let value = self.values.read(ReaderRef::By(i), doc);
            self.key.push(value);
        }
        let group = match self.groups.get_mut(self.key.as_slice()) {
            Some(group) => group,
            None => {
                if self.groups.len() >= MAX_GROUPS {
                    self.overflow = true;
                    return;
                }
                self.groups
                    .entry(self.key.clone())
                    .or_insert_with(|| Group::new(&self.plan))
            }
        };
        group.count += 1;
        for (i, (function, source)) in self.plan.aggregates.iter().enumerate() {
            if source.is_none() {
                if let Some(AggState::Count(n)) = group.aggregates.get_mut(i) {
                    *n += 1;
                }
                continue;
            }
            let value = self.values.read(ReaderRef::Aggregate(i), doc);
            if value == Local::Null {
                continue;
            }
            let Some(state) = group.aggregates.get_mut(i) else {
                continue;
            };
            match state {
                AggState::Count(n) => *n += 1,
                AggState::Distinct(set) => {
                    set.insert(value);
                }
                AggState::Numeric { .. } | AggState::Values(_) => {
                    if let Some(number) = self.values.number(i, value) {
                        state.add_number(number);
                    }
                }
            }
            debug_assert!(function.is_numeric() || !matches!(state, AggState::Numeric { .. }));
        }
    }
}
