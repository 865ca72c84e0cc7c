//! How a day's segments are merged.

use tantivy::merge_policy::LogMergePolicy;

/// Segments of one size level that are merged into one. A level holds at
/// most `MERGE_MIN_SEGMENTS - 1` segments once its merges are done.
pub const MERGE_MIN_SEGMENTS: usize = 12;
/// Segments below this many documents all count as the smallest level.
pub const MERGE_MIN_LAYER_DOCS: u32 = 50_000;

/// Merging: a commit a second makes many small segments, and every merge
/// rewrites its documents. Waiting for more segments per level before
/// merging rewrites each document fewer times.
///
/// The bound on one day's segments, once merges have finished: each level
/// (segments within a factor 2^0.75 in size of each other; everything
/// below [`MERGE_MIN_LAYER_DOCS`] is the first level) keeps at most
/// `MERGE_MIN_SEGMENTS - 1` = 11, and there are about
/// 1 + log2(largest segment / 50,000) / 0.75 levels (tantivy stops merging
/// segments past 10 million documents). So a day under 50,000 lines × 12
/// has at most 11 segments, and a day of 100 million lines a few dozen,
/// however many commits made it. While merges run, the segments being
/// merged are still counted.
pub(super) fn merge_policy() -> LogMergePolicy {
    let mut policy = LogMergePolicy::default();
    policy.set_min_num_segments(MERGE_MIN_SEGMENTS);
    policy.set_min_layer_size(MERGE_MIN_LAYER_DOCS);
    policy
}
