//! Field summaries for a search (`GET /api/v1/fields`): every field of the
//! matches with its most frequent values and, for numeric fields, min,
//! avg, max and p99. Each field is a [`Plan`] of the stats collector (its
//! values counted, its numbers aggregated), and all plans run in one pass
//! over the matches ([`Many`]).

use std::collections::BTreeMap;

use loghound_shared::api::{FieldSummary, FieldsResponse, NumericSummary, ValueCount};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::schema::Type;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use super::collect::{Found, Plan, SegmentStats, Source, Stats, MAX_GROUPS};
use super::executor;
use super::state::Key;
use crate::index::search::{PreparedQuery, SearchError, Searcher};
use crate::query;
use crate::query::pipe::{self, Function};

/// Most parsed fields summarised; past this, the first by name.
pub const MAX_FIELDS: usize = 100;

/// A fields request, already validated.
#[derive(Debug, Clone)]
pub struct FieldsRequest {
    /// The query; pipes, if any, are ignored (the summary is of the
    /// lines the search part matches).
    pub query: String,
    /// Inclusive lower bound on the event time, ms.
    pub from_ms: Option<i64>,
    /// Exclusive upper bound, ms.
    pub to_ms: Option<i64>,
    /// Values listed per field.
    pub top: usize,
}

/// Several plans in one pass.
struct Many<'p> {
    plans: &'p [Plan],
}

struct ManySegments(Vec<SegmentStats>);

impl Collector for Many<'_> {
    type Fruit = Vec<Found>;
    type Child = ManySegments;

    fn for_segment(
        &self,
        ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<ManySegments> {
        self.plans
            .iter()
            .map(|plan| Stats { plan }.for_segment(ord, segment))
            .collect::<tantivy::Result<_>>()
            .map(ManySegments)
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Found>>) -> tantivy::Result<Vec<Found>> {
        let mut merged: Vec<Found> = self.plans.iter().map(|_| Found::default()).collect();
        for fruit in fruits {
            for (total, part) in merged.iter_mut().zip(fruit) {
                total.merge(part);
            }
        }
        Ok(merged)
    }
}

impl SegmentCollector for ManySegments {
    type Fruit = Vec<Found>;

    fn collect(&mut self, doc: DocId, score: Score) {
        for child in &mut self.0 {
            child.collect(doc, score);
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        for child in &mut self.0 {
            child.collect_block(docs);
        }
    }

    fn harvest(self) -> Vec<Found> {
        self.0.into_iter().map(SegmentStats::harvest).collect()
    }
}

/// The parsed fields of the searched segments by name, and whether any
/// segment holds numbers in them.
fn parsed_fields(searchers: &[tantivy::Searcher]) -> Result<BTreeMap<String, bool>, SearchError> {
    let mut names: BTreeMap<String, bool> = BTreeMap::new();
    for searcher in searchers {
        for segment in searcher.segment_readers() {
            for field in segment.fields_metadata()? {
                let Some(path) = field.field_name.strip_prefix("fields.") else {
                    continue;
                };
                if field.fast_size.is_none() {
                    continue;
                }
                let numeric = matches!(field.typ, Type::I64 | Type::U64 | Type::F64);
                *names.entry(path.to_owned()).or_default() |= numeric;
            }
        }
    }
    Ok(names)
}

impl Searcher {
    /// Summarises the fields of the lines `request.query` matches.
    pub fn fields(&self, request: &FieldsRequest) -> Result<FieldsResponse, SearchError> {
        let piped = pipe::split(&request.query)?;
        let fields = &self.indexes().fields;
        let compiled = query::compile_search(piped.search, fields)?;
        let PreparedQuery {
            query, searchers, ..
        } = self.prepare_query(compiled, request.from_ms, request.to_ms);
        let mut names: Vec<(String, Source, bool)> = [
            ("host", fields.host),
            ("source", fields.source),
            ("app", fields.app),
            ("severity", fields.severity),
        ]
        .into_iter()
        .map(|(name, field)| (name.to_owned(), Source::Keyword { field, name }, false))
        .collect();
        names.extend(
            parsed_fields(&searchers)?
                .into_iter()
                .take(MAX_FIELDS)
                .map(|(path, numeric)| (path.clone(), Source::Parsed(path), numeric)),
        );
        let plan = |by: Vec<Source>, aggregates: Vec<(Function, Option<Source>)>| Plan {
            by,
            aggregates,
            buckets: None,
            from_ms: request.from_ms.unwrap_or(i64::MIN),
            to_ms: request.to_ms.unwrap_or(i64::MAX),
            tags: fields.tags,
        };
        let mut plans = Vec::new();
        for (_, source, numeric) in &names {
            plans.push(plan(vec![source.clone()], Vec::new()));
            if *numeric {
                let of = || Some(source.clone());
                plans.push(plan(
                    Vec::new(),
                    vec![
                        (Function::Min, of()),
                        (Function::Avg, of()),
                        (Function::Max, of()),
                        (Function::Percentile(99.0), of()),
                    ],
                ));
            }
        }
        let collector = Many { plans: &plans };
        let mut found: Vec<Found> = plans.iter().map(|_| Found::default()).collect();
        for searcher in &searchers {
            let fruits = searcher.search_with_executor(
                query.as_ref(),
                &collector,
                executor(),
                tantivy::query::EnableScoring::disabled_from_searcher(searcher),
            )?;
            for (total, part) in found.iter_mut().zip(fruits) {
                total.merge(part);
            }
        }
        let count = found.first().map_or(0, |f| f.matched);
        let mut results = found.into_iter();
        let mut summaries = Vec::new();
        for (name, _, numeric) in names {
            let Some(values) = results.next() else { break };
            let numbers = if numeric { results.next() } else { None };
            let mut counted: Vec<(Key, u64)> = values
                .groups
                .into_iter()
                .filter_map(|(mut key, group)| key.pop().map(|k| (k, group.count)))
                .filter(|(key, _)| *key != Key::Null)
                .collect();
            if counted.is_empty() {
                continue;
            }
            let set: u64 = counted.iter().map(|(_, n)| n).sum();
            let distinct = if values.overflow {
                MAX_GROUPS as u64
            } else {
                counted.len() as u64
            };
            counted.sort_by(|(ka, a), (kb, b)| {
                b.cmp(a)
                    .then_with(|| super::state::compare_cells(&ka.to_json(), &kb.to_json()))
            });
            let top = counted
                .into_iter()
                .take(request.top)
                .map(|(key, count)| ValueCount {
                    value: key.to_json(),
                    count,
                })
                .collect();
            let numeric = numbers.and_then(|mut numbers| {
                let (_, mut group) = numbers.groups.drain().next()?;
                let mut finish = |i: usize, function| {
                    group
                        .aggregates
                        .get_mut(i)
                        .and_then(|state| state.finish(function).0.as_f64())
                };
                Some(NumericSummary {
                    min: finish(0, Function::Min),
                    avg: finish(1, Function::Avg),
                    max: finish(2, Function::Max),
                    p99: finish(3, Function::Percentile(99.0)),
                })
            });
            summaries.push(FieldSummary {
                name,
                count: set,
                distinct,
                top,
                numeric: numeric.filter(|n| n.min.is_some()),
            });
        }
        Ok(FieldsResponse {
            count,
            fields: summaries,
        })
    }
}
