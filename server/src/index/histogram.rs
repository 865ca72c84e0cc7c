//! Count histograms: how many matches fall in each time bucket.
//!
//! The query and the day indexes come from [`Searcher::prepare`], the path
//! search itself takes, and the collector applies search's exact bounds to
//! the `timestamp` fast field, so the buckets always sum to the `count` a
//! search with the same query and range answers. One pass over the matches
//! reads one fast field and loads no document; a second, equally cheap pass
//! runs first when `from` or `to` is open, to find the matches' time span.

use loghound_shared::api::{Bucket, HistogramResponse};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::{DateTime, DocId, Score, SegmentOrdinal, SegmentReader};

use super::search::{rfc3339, PreparedQuery, SearchError, Searcher};

/// Bucket widths a histogram rounds up to, in ms; past the last one, whole
/// weeks.
const NICE_WIDTHS_MS: &[i64] = &[
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    SECOND_MS,
    2 * SECOND_MS,
    5 * SECOND_MS,
    10 * SECOND_MS,
    15 * SECOND_MS,
    30 * SECOND_MS,
    MINUTE_MS,
    2 * MINUTE_MS,
    5 * MINUTE_MS,
    10 * MINUTE_MS,
    15 * MINUTE_MS,
    30 * MINUTE_MS,
    HOUR_MS,
    2 * HOUR_MS,
    3 * HOUR_MS,
    6 * HOUR_MS,
    12 * HOUR_MS,
    DAY_MS,
    2 * DAY_MS,
    WEEK_MS,
];
const SECOND_MS: i64 = 1000;
const MINUTE_MS: i64 = 60 * SECOND_MS;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
const WEEK_MS: i64 = 7 * DAY_MS;

/// A histogram request, already validated.
#[derive(Debug, Clone)]
pub struct HistogramRequest {
    /// The query text; empty matches everything.
    pub query: String,
    /// Inclusive lower bound on the event time, ms; open: the oldest match.
    pub from_ms: Option<i64>,
    /// Exclusive upper bound, ms; open: just after the newest match.
    pub to_ms: Option<i64>,
    /// Most buckets wanted (1 to [`loghound_shared::api::MAX_HISTOGRAM_BUCKETS`]); one more may come back
    /// when the range does not start on a bucket boundary.
    pub buckets: usize,
}

/// The smallest nice width at least `range_ms / buckets`.
pub fn nice_width_ms(range_ms: i64, buckets: usize) -> i64 {
    let buckets = i64::try_from(buckets.max(1)).unwrap_or(i64::MAX);
    let raw = (range_ms.max(1) + buckets - 1) / buckets;
    match NICE_WIDTHS_MS.iter().find(|w| **w >= raw) {
        Some(width) => *width,
        None => (raw + WEEK_MS - 1) / WEEK_MS * WEEK_MS,
    }
}

impl Searcher {
    /// Counts the matches of `request.query` per time bucket.
    pub fn histogram(&self, request: &HistogramRequest) -> Result<HistogramResponse, SearchError> {
        let PreparedQuery {
            query, searchers, ..
        } = self.prepare(&request.query, request.from_ms, request.to_ms)?;
        let exact_from = request.from_ms.unwrap_or(i64::MIN);
        let exact_to = request.to_ms.unwrap_or(i64::MAX);
        let (from_ms, to_ms) = match (request.from_ms, request.to_ms) {
            (Some(from), Some(to)) => (from, to),
            (from_opt, to_opt) => {
                let span = TimeSpan {
                    from_ms: exact_from,
                    to_ms: exact_to,
                };
                let mut oldest_newest: Option<(i64, i64)> = None;
                for searcher in &searchers {
                    if let Some((oldest, newest)) = searcher.search(query.as_ref(), &span)? {
                        let (o, n) = oldest_newest.unwrap_or((oldest, newest));
                        oldest_newest = Some((o.min(oldest), n.max(newest)));
                    }
                }
                let Some((oldest, newest)) = oldest_newest else {
                    return Ok(HistogramResponse {
                        buckets: Vec::new(),
                        count: 0,
                        interval_ms: 0,
                        from: from_opt.map(rfc3339),
                        to: to_opt.map(rfc3339),
                    });
                };
                (
                    from_opt.unwrap_or(oldest),
                    to_opt.unwrap_or(newest.saturating_add(1)),
                )
            }
        };
        let width_ms = nice_width_ms(to_ms.saturating_sub(from_ms), request.buckets);
        let origin_ms = from_ms.div_euclid(width_ms) * width_ms;
        let num_buckets = if to_ms > from_ms {
            usize::try_from((to_ms - origin_ms - 1) / width_ms + 1).unwrap_or(0)
        } else {
            0
        };
        let collector = BucketCounts {
            from_ms: exact_from.max(from_ms),
            to_ms: exact_to.min(to_ms),
            origin_ms,
            width_ms,
            num_buckets,
        };
        let mut counts = vec![0u64; num_buckets];
        for searcher in &searchers {
            let fruit = searcher.search(query.as_ref(), &collector)?;
            for (total, add) in counts.iter_mut().zip(fruit) {
                *total += add;
            }
        }
        let buckets = counts
            .iter()
            .enumerate()
            .map(|(i, count)| {
                let start = origin_ms + i as i64 * width_ms;
                Bucket {
                    start: rfc3339(start.max(from_ms)),
                    end: rfc3339(start.saturating_add(width_ms).min(to_ms)),
                    count: *count,
                }
            })
            .collect();
        Ok(HistogramResponse {
            buckets,
            count: counts.iter().sum(),
            interval_ms: width_ms,
            from: Some(rfc3339(from_ms)),
            to: Some(rfc3339(to_ms)),
        })
    }
}

/// The oldest and newest time of the matches within search's bounds.
pub(super) struct TimeSpan {
    pub(super) from_ms: i64,
    pub(super) to_ms: i64,
}

pub(super) struct TimeSpanSegment {
    timestamps: Column<DateTime>,
    from_ms: i64,
    to_ms: i64,
    span: Option<(i64, i64)>,
}

fn merge_spans(a: Option<(i64, i64)>, b: Option<(i64, i64)>) -> Option<(i64, i64)> {
    match (a, b) {
        (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
        (a, b) => a.or(b),
    }
}

impl Collector for TimeSpan {
    type Fruit = Option<(i64, i64)>;
    type Child = TimeSpanSegment;

    fn for_segment(
        &self,
        _segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<TimeSpanSegment> {
        Ok(TimeSpanSegment {
            timestamps: segment.fast_fields().date("timestamp")?,
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            span: None,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Option<(i64, i64)>>) -> tantivy::Result<Self::Fruit> {
        Ok(fruits.into_iter().fold(None, merge_spans))
    }
}

impl SegmentCollector for TimeSpanSegment {
    type Fruit = Option<(i64, i64)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(timestamp) = self.timestamps.first(doc) else {
            return;
        };
        let ms = timestamp.into_timestamp_millis();
        if ms >= self.from_ms && ms < self.to_ms {
            self.span = merge_spans(self.span, Some((ms, ms)));
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.span
    }
}

/// Counts matches per bucket `origin_ms + i × width_ms`, within the exact
/// bounds.
struct BucketCounts {
    from_ms: i64,
    to_ms: i64,
    origin_ms: i64,
    width_ms: i64,
    num_buckets: usize,
}

struct BucketCountsSegment {
    timestamps: Column<DateTime>,
    from_ms: i64,
    to_ms: i64,
    origin_ms: i64,
    width_ms: i64,
    counts: Vec<u64>,
    block_times: Vec<Option<DateTime>>,
}

impl Collector for BucketCounts {
    type Fruit = Vec<u64>;
    type Child = BucketCountsSegment;

    fn for_segment(
        &self,
        _segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<BucketCountsSegment> {
        Ok(BucketCountsSegment {
            timestamps: segment.fast_fields().date("timestamp")?,
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            origin_ms: self.origin_ms,
            width_ms: self.width_ms,
            counts: vec![0; self.num_buckets],
            block_times: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<u64>>) -> tantivy::Result<Vec<u64>> {
        let mut counts = vec![0; self.num_buckets];
        for fruit in fruits {
            for (total, add) in counts.iter_mut().zip(fruit) {
                *total += add;
            }
        }
        Ok(counts)
    }
}

impl SegmentCollector for BucketCountsSegment {
    type Fruit = Vec<u64>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(timestamp) = self.timestamps.first(doc) {
            self.count(timestamp.into_timestamp_millis());
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        let mut times = std::mem::take(&mut self.block_times);
        super::block_times(&self.timestamps, docs, &mut times);
        for time in times.iter().flatten() {
            self.count(time.into_timestamp_millis());
        }
        self.block_times = times;
    }

    fn harvest(self) -> Vec<u64> {
        self.counts
    }
}

impl BucketCountsSegment {
    fn count(&mut self, ms: i64) {
        if ms < self.from_ms || ms >= self.to_ms {
            return;
        }
        // In range, so from ≥ origin and the bucket exists.
        let bucket = ((ms - self.origin_ms) / self.width_ms) as usize;
        debug_assert!(bucket < self.counts.len(), "bucket {bucket} out of range");
        if let Some(count) = self.counts.get_mut(bucket) {
            *count += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_round_up_to_nice_values() {
        assert_eq!(nice_width_ms(HOUR_MS, 60), MINUTE_MS);
        assert_eq!(nice_width_ms(HOUR_MS + 1, 60), 2 * MINUTE_MS);
        assert_eq!(nice_width_ms(DAY_MS, 60), 30 * MINUTE_MS);
        assert_eq!(nice_width_ms(7 * DAY_MS, 60), 3 * HOUR_MS);
        assert_eq!(nice_width_ms(1, 60), 1);
        assert_eq!(nice_width_ms(0, 60), 1);
        assert_eq!(nice_width_ms(400 * DAY_MS, 10), 6 * WEEK_MS);
        assert_eq!(nice_width_ms(100 * SECOND_MS, 1000), 100);
    }
}
