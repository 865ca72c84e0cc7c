//! Query pipes as a table: `QUERY | stats …`, `| timechart …`, `| top …`,
//! then `| sort …` and `| limit …`.
//!
//! The search part goes through [`Searcher::prepare_query`], the path
//! search and the histogram take, so `stats count()` agrees with a
//! search's `count`. The collector ([`collect`]) reads fast columns and
//! runs over each day's segments in parallel; groups are merged across
//! segments and days, then finished, sorted and cut here.

pub mod collect;
pub mod fields;
pub mod state;

use std::cmp::Ordering;
use std::sync::OnceLock;

use loghound_shared::api::{Column, ColumnKind, StatsResponse};
use tantivy::Executor;

use self::collect::{Found, Plan, Source, Stats, MAX_GROUPS};
use self::state::Key;
use super::histogram::{nice_width_ms, TimeSpan};
use super::search::{rfc3339, PreparedQuery, SearchError, Searcher};
use crate::query::pipe::{self, FieldRef, Function, Grouping, SortKey, Stage, MAX_ROWS};
use crate::query::{self, QueryError};

/// Buckets a timechart chooses when no span is given.
pub const TIMECHART_AUTO_BUCKETS: usize = 60;
/// Most buckets a timechart may have.
pub const MAX_TIMECHART_BUCKETS: i64 = 10_000;

/// A stats request, already validated.
#[derive(Debug, Clone)]
pub struct StatsRequest {
    /// The query with its pipes.
    pub query: String,
    /// Inclusive lower bound on the event time, ms.
    pub from_ms: Option<i64>,
    /// Exclusive upper bound, ms.
    pub to_ms: Option<i64>,
}

/// The table stage, normalised.
struct Table<'s> {
    grouping: Grouping,
    /// A timechart: its span (if given) and where it was written.
    timechart: Option<(Option<i64>, usize)>,
    /// `top`: sort by count, descending, and cut.
    top: Option<usize>,
    /// The stages after it.
    rest: &'s [Stage],
}

fn executor() -> &'static Executor {
    static EXECUTOR: OnceLock<Executor> = OnceLock::new();
    EXECUTOR.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Executor::multi_thread(threads, "loghound-stats-").unwrap_or(Executor::SingleThread)
    })
}

impl Searcher {
    /// Runs a query with pipes and answers its table.
    pub fn stats(&self, request: &StatsRequest) -> Result<StatsResponse, SearchError> {
        let piped = pipe::split(&request.query)?;
        let table = table(&piped.stages, request.query.chars().count())?;
        let fields = &self.indexes().fields;
        let by: Vec<Source> = table
            .grouping
            .by
            .iter()
            .map(|f| source(f, fields))
            .collect::<Result<_, _>>()?;
        let aggregates = table
            .grouping
            .aggregates
            .iter()
            .map(|a| {
                Ok((
                    a.function,
                    a.field.as_ref().map(|f| source(f, fields)).transpose()?,
                ))
            })
            .collect::<Result<Vec<_>, QueryError>>()?;
        let columns = columns(&table);
        for stage in table.rest {
            if let Stage::Sort(keys) = stage {
                for key in keys {
                    column_index(&columns, key)?;
                }
            }
        }
        let compiled = query::compile_search(piped.search, fields)?;
        let PreparedQuery {
            query, searchers, ..
        } = self.prepare_query(compiled, request.from_ms, request.to_ms);
        let exact_from = request.from_ms.unwrap_or(i64::MIN);
        let exact_to = request.to_ms.unwrap_or(i64::MAX);

        let mut buckets = None;
        if let Some((span_ms, position)) = table.timechart {
            let (from_ms, to_ms) = match (request.from_ms, request.to_ms) {
                (Some(from), Some(to)) => (from, to),
                (from, to) => {
                    let span = TimeSpan {
                        from_ms: exact_from,
                        to_ms: exact_to,
                    };
                    let mut oldest_newest: Option<(i64, i64)> = None;
                    for searcher in &searchers {
                        if let Some((o, n)) = searcher.search(query.as_ref(), &span)? {
                            let (o0, n0) = oldest_newest.unwrap_or((o, n));
                            oldest_newest = Some((o0.min(o), n0.max(n)));
                        }
                    }
                    match oldest_newest {
                        Some((oldest, newest)) => (
                            from.unwrap_or(oldest),
                            to.unwrap_or(newest.saturating_add(1)),
                        ),
                        None => (from.unwrap_or(0), to.unwrap_or(0)),
                    }
                }
            };
            let width =
                span_ms.unwrap_or_else(|| nice_width_ms(to_ms - from_ms, TIMECHART_AUTO_BUCKETS));
            let origin = from_ms.div_euclid(width) * width;
            let count = if to_ms > from_ms {
                (to_ms - origin - 1) / width + 1
            } else {
                0
            };
            if count > MAX_TIMECHART_BUCKETS {
                return Err(QueryError::new(
                    format!(
                        "the span makes {count} buckets over this time range; the most is \
                         {MAX_TIMECHART_BUCKETS}: use a wider span or a shorter range"
                    ),
                    position,
                )
                .into());
            }
            buckets = Some((origin, width, count, from_ms, to_ms));
        }

        let plan = Plan {
            by,
            aggregates,
            buckets: buckets.map(|(origin, width, ..)| (origin, width)),
            from_ms: exact_from,
            to_ms: exact_to,
            tags: fields.tags,
        };
        let collector = Stats { plan: &plan };
        let mut found = Found::default();
        for searcher in &searchers {
            found.merge(searcher.search_with_executor(
                query.as_ref(),
                &collector,
                executor(),
                tantivy::query::EnableScoring::disabled_from_searcher(searcher),
            )?);
        }
        if found.overflow {
            let position = table
                .grouping
                .by
                .first()
                .map_or(piped.pipe_position.unwrap_or(0), |f| f.position);
            return Err(QueryError::new(
                format!(
                    "more than {MAX_GROUPS} groups: group by fewer or coarser fields, or narrow \
                     the query"
                ),
                position,
            )
            .into());
        }
        let mut response = finish(&table, columns, found, buckets);
        response.interval_ms = buckets.map(|(_, width, ..)| width);
        apply(&mut response, table.rest)?;
        Ok(response)
    }
}

/// The table-making stage, first in the pipes (the parser guarantees it).
fn table(stages: &[Stage], end: usize) -> Result<Table<'_>, QueryError> {
    let Some((first, rest)) = stages.split_first() else {
        return Err(QueryError::new(
            "stats needs pipes after the query, like `| stats count() by (host)`",
            end,
        ));
    };
    Ok(match first {
        Stage::Stats(grouping) => Table {
            grouping: grouping.clone(),
            timechart: None,
            top: None,
            rest,
        },
        Stage::Timechart { span_ms, grouping } => Table {
            grouping: grouping.clone(),
            timechart: Some((
                *span_ms,
                grouping.aggregates.first().map_or(0, |a| a.position),
            )),
            top: None,
            rest,
        },
        Stage::Top { limit, by } => Table {
            grouping: Grouping {
                aggregates: vec![pipe::Aggregate {
                    function: Function::Count,
                    field: None,
                    column: "count()".into(),
                    position: by.first().map_or(0, |f| f.position),
                }],
                by: by.clone(),
            },
            timechart: None,
            top: Some(*limit),
            rest,
        },
        Stage::Sort(_) | Stage::Limit(_) => {
            return Err(QueryError::new(
                "the first pipe must be stats, timechart or top",
                0,
            ))
        }
    })
}

/// Where a pipe's field is read from.
fn source(field: &FieldRef, fields: &super::schema::Fields) -> Result<Source, QueryError> {
    let name = field.name.as_str();
    Ok(match name {
        "host" => Source::Keyword {
            field: fields.host,
            name: "host",
        },
        "source" => Source::Keyword {
            field: fields.source,
            name: "source",
        },
        "app" => Source::Keyword {
            field: fields.app,
            name: "app",
        },
        "severity" => Source::Keyword {
            field: fields.severity,
            name: "severity",
        },
        "file_id" => Source::StoredKeyword(fields.file_id),
        "message" | "fields" | "tags" | "_time" => {
            return Err(QueryError::new(
                format!(
                    "'{name}' cannot be grouped or aggregated: use host, source, app, severity, \
                     file_id, tags.NAME or a parsed field"
                ),
                field.position,
            ))
        }
        _ => match name.strip_prefix("tags.") {
            Some(key) => Source::Tag(key.to_owned()),
            None => Source::Parsed(name.strip_prefix("fields.").unwrap_or(name).to_owned()),
        },
    })
}

/// The table's columns: `_time` for a timechart, the groups, the
/// aggregates.
fn columns(table: &Table<'_>) -> Vec<Column> {
    let grouping = &table.grouping;
    let mut columns = Vec::new();
    if table.timechart.is_some() {
        columns.push(Column {
            name: "_time".into(),
            kind: ColumnKind::Time,
        });
    }
    columns.extend(grouping.by.iter().map(|f| Column {
        name: f.name.clone(),
        kind: ColumnKind::Group,
    }));
    columns.extend(grouping.aggregates.iter().map(|a| Column {
        name: a.column.clone(),
        kind: ColumnKind::Aggregate,
    }));
    columns
}

/// Finished groups as rows, in the table's default order: time then
/// groups for a timechart, count (largest first) for `top`, else groups.
fn finish(
    table: &Table<'_>,
    columns: Vec<Column>,
    found: Found,
    buckets: Option<(i64, i64, i64, i64, i64)>,
) -> StatsResponse {
    let grouping = &table.grouping;
    let mut groups: Vec<_> = found.groups.into_iter().collect();
    // A timechart without groups has a row for every bucket, zero or not.
    if let Some((_, _, count, _, _)) = buckets {
        if grouping.by.is_empty() {
            for bucket in 0..count {
                let key = vec![Key::I64(bucket)];
                if !groups.iter().any(|(k, _)| *k == key) {
                    let empty = collect::Group {
                        count: 0,
                        aggregates: grouping
                            .aggregates
                            .iter()
                            .map(|a| state::AggState::new(a.function))
                            .collect(),
                    };
                    groups.push((key, empty));
                }
            }
        }
    }
    let mut estimated = Vec::new();
    let mut rows: Vec<(u64, Vec<serde_json::Value>)> = groups
        .into_iter()
        .map(|(key, mut group)| {
            let mut row = Vec::with_capacity(columns.len());
            let mut keys = key.iter();
            if let Some((origin, width, _, from_ms, _)) = buckets {
                let start = match keys.next() {
                    Some(Key::I64(bucket)) => origin.saturating_add(bucket.saturating_mul(width)),
                    _ => origin,
                };
                // Buckets start at the range's start, as the histogram's do.
                row.push(serde_json::Value::String(rfc3339(start.max(from_ms))));
            }
            row.extend(keys.map(Key::to_json));
            for (aggregate, state) in grouping.aggregates.iter().zip(&mut group.aggregates) {
                let (value, estimate) = match (aggregate.function, &aggregate.field) {
                    (Function::Count, None) => (serde_json::Value::from(group.count), false),
                    (function, _) => state.finish(function),
                };
                if estimate && !estimated.contains(&aggregate.column) {
                    estimated.push(aggregate.column.clone());
                }
                row.push(value);
            }
            (group.count, row)
        })
        .collect();
    let ordered_by_cells = |a: &[serde_json::Value], b: &[serde_json::Value]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| state::compare_cells(x, y))
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    };
    let keys = usize::from(buckets.is_some()) + grouping.by.len();
    match table.top {
        Some(_) => rows.sort_by(|(ca, a), (cb, b)| {
            cb.cmp(ca)
                .then_with(|| ordered_by_cells(&a[..keys], &b[..keys]))
        }),
        None => rows.sort_by(|(_, a), (_, b)| ordered_by_cells(&a[..keys], &b[..keys])),
    }
    let groups = rows.len() as u64;
    let mut rows: Vec<_> = rows.into_iter().map(|(_, row)| row).collect();
    if let Some(limit) = table.top {
        rows.truncate(limit);
    }
    StatsResponse {
        columns,
        rows,
        count: found.matched,
        groups,
        interval_ms: None,
        estimated,
    }
}

/// `sort` and `limit`, in order; at most [`MAX_ROWS`] rows stay.
fn apply(response: &mut StatsResponse, stages: &[Stage]) -> Result<(), QueryError> {
    for stage in stages {
        match stage {
            Stage::Sort(keys) => {
                let indexes = keys
                    .iter()
                    .map(|key| column_index(&response.columns, key))
                    .collect::<Result<Vec<_>, _>>()?;
                response.rows.sort_by(|a, b| {
                    keys.iter()
                        .zip(&indexes)
                        .map(|(key, &i)| {
                            let order = match (a.get(i), b.get(i)) {
                                (Some(x), Some(y)) => state::compare_cells(x, y),
                                _ => Ordering::Equal,
                            };
                            let nulls = (
                                a.get(i).is_some_and(|v| v.is_null()),
                                b.get(i).is_some_and(|v| v.is_null()),
                            );
                            match nulls {
                                // Missing values go last either way.
                                (true, false) | (false, true) => order,
                                _ if key.descending => order.reverse(),
                                _ => order,
                            }
                        })
                        .find(|o| *o != Ordering::Equal)
                        .unwrap_or(Ordering::Equal)
                });
            }
            Stage::Limit(n) => response.rows.truncate(*n),
            Stage::Stats(_) | Stage::Timechart { .. } | Stage::Top { .. } => {}
        }
    }
    response.rows.truncate(MAX_ROWS);
    Ok(())
}

fn column_index(columns: &[Column], key: &SortKey) -> Result<usize, QueryError> {
    columns
        .iter()
        .position(|c| c.name == key.column)
        .ok_or_else(|| {
            let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            QueryError::new(
                format!(
                    "no column '{}' to sort by; the columns are {}",
                    key.column,
                    names.join(", ")
                ),
                key.position,
            )
        })
}
