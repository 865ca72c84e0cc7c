//! What a group accumulates, and the values it is keyed by.

use std::cmp::Ordering;
use std::hash::Hash;

use rustc_hash::FxHashSet;
use sketches_ddsketch::{Config, DDSketch};

use crate::query::pipe::Function;

/// Values a group keeps for an exact percentile; past this, its values go
/// into a DDSketch (1 % relative error).
pub const EXACT_PERCENTILE_VALUES: usize = 100_000;

/// A value a group is keyed by, or counted as distinct, across segments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// The field is missing.
    Null,
    /// A string.
    Str(String),
    /// An integer (JSON integers up to `i64::MAX`).
    I64(i64),
    /// An integer above `i64::MAX`.
    U64(u64),
    /// A float, by its bits (so `Eq` and `Hash` hold; NaN never occurs in
    /// JSON).
    F64(u64),
    /// A boolean.
    Bool(bool),
}

impl Key {
    /// A float key; integral values below 2^53 become integers, so `200`
    /// and `200.0` are one group.
    pub fn float(value: f64) -> Key {
        if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
            Key::I64(value as i64)
        } else {
            Key::F64(value.to_bits())
        }
    }

    /// The JSON value a table shows.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Key::Null => serde_json::Value::Null,
            Key::Str(s) => serde_json::Value::String(s.clone()),
            Key::I64(n) => serde_json::Value::from(*n),
            Key::U64(n) => serde_json::Value::from(*n),
            Key::F64(bits) => number(f64::from_bits(*bits)),
            Key::Bool(b) => serde_json::Value::Bool(*b),
        }
    }
}

/// A number as JSON: integral values as integers, non-finite ones as null.
pub fn number(value: f64) -> serde_json::Value {
    if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
        serde_json::Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(serde_json::Value::Null, Into::into)
    }
}

/// Orders table cells: numbers (by value) before strings, then booleans;
/// `null` last.
pub fn compare_cells(a: &serde_json::Value, b: &serde_json::Value) -> Ordering {
    use serde_json::Value;
    fn rank(value: &Value) -> u8 {
        match value {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) | Value::Object(_) => 3,
            Value::Null => 4,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// One aggregate's running state; `K` is the key type of distinct values
/// (a segment's own before harvest, [`Key`] after).
#[derive(Debug, Clone)]
pub enum AggState<K> {
    /// Lines (or lines with the field set).
    Count(u64),
    /// Numeric values seen: how many, their sum, min and max.
    Numeric {
        /// How many numeric values.
        n: u64,
        /// Their sum.
        sum: f64,
        /// The smallest.
        min: f64,
        /// The largest.
        max: f64,
    },
    /// Distinct values.
    Distinct(FxHashSet<K>),
    /// Values for a percentile.
    Values(Values),
}

impl<K: Eq + Hash> AggState<K> {
    /// The empty state of `function`.
    pub fn new(function: Function) -> Self {
        match function {
            Function::Count => AggState::Count(0),
            Function::Sum | Function::Avg | Function::Min | Function::Max => AggState::Numeric {
                n: 0,
                sum: 0.0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
            },
            Function::CountDistinct => AggState::Distinct(FxHashSet::default()),
            Function::Percentile(_) => AggState::Values(Values::Exact(Vec::new())),
        }
    }

    /// Adds a number (numeric aggregates).
    pub fn add_number(&mut self, value: f64) {
        match self {
            AggState::Numeric { n, sum, min, max } => {
                *n += 1;
                *sum += value;
                *min = min.min(value);
                *max = max.max(value);
            }
            AggState::Values(values) => values.add(value),
            AggState::Count(_) | AggState::Distinct(_) => {}
        }
    }

    /// Changes the distinct keys' type.
    pub fn map_keys<L: Eq + Hash>(self, mut map: impl FnMut(K) -> L) -> AggState<L> {
        match self {
            AggState::Count(n) => AggState::Count(n),
            AggState::Numeric { n, sum, min, max } => AggState::Numeric { n, sum, min, max },
            AggState::Distinct(set) => AggState::Distinct(set.into_iter().map(&mut map).collect()),
            AggState::Values(values) => AggState::Values(values),
        }
    }

    /// Adds another state of the same aggregate.
    pub fn merge(&mut self, other: AggState<K>) {
        match (self, other) {
            (AggState::Count(a), AggState::Count(b)) => *a += b,
            (
                AggState::Numeric { n, sum, min, max },
                AggState::Numeric {
                    n: n2,
                    sum: sum2,
                    min: min2,
                    max: max2,
                },
            ) => {
                *n += n2;
                *sum += sum2;
                *min = min.min(min2);
                *max = max.max(max2);
            }
            (AggState::Distinct(a), AggState::Distinct(b)) => {
                if a.len() < b.len() {
                    let small = std::mem::replace(a, b);
                    a.extend(small);
                } else {
                    a.extend(b);
                }
            }
            (AggState::Values(a), AggState::Values(b)) => a.merge(b),
            _ => debug_assert!(false, "merging states of different aggregates"),
        }
    }
}

impl AggState<Key> {
    /// The final value of `function` over this state, and whether it is an
    /// estimate.
    pub fn finish(&mut self, function: Function) -> (serde_json::Value, bool) {
        use serde_json::Value;
        let value = match (function, &mut *self) {
            (_, AggState::Count(n)) => Value::from(*n),
            (_, AggState::Distinct(set)) => Value::from(set.len() as u64),
            (_, AggState::Numeric { n: 0, .. }) => Value::Null,
            (Function::Sum, AggState::Numeric { sum, .. }) => number(*sum),
            (Function::Avg, AggState::Numeric { n, sum, .. }) => number(*sum / *n as f64),
            (Function::Min, AggState::Numeric { min, .. }) => number(*min),
            (Function::Max, AggState::Numeric { max, .. }) => number(*max),
            (Function::Percentile(p), AggState::Values(values)) => {
                let estimated = matches!(values, Values::Sketch(_));
                return (
                    values.percentile(p / 100.0).map_or(Value::Null, number),
                    estimated,
                );
            }
            _ => Value::Null,
        };
        (value, false)
    }
}

/// A percentile's values: all of them while they are few, a sketch after.
#[derive(Clone)]
pub enum Values {
    /// Every value.
    Exact(Vec<f64>),
    /// A DDSketch of them.
    Sketch(Box<DDSketch>),
}

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Values::Exact(values) => write!(f, "Exact({} values)", values.len()),
            Values::Sketch(sketch) => write!(f, "Sketch({} values)", sketch.count()),
        }
    }
}

impl Values {
    fn add(&mut self, value: f64) {
        match self {
            Values::Exact(values) => {
                values.push(value);
                if values.len() > EXACT_PERCENTILE_VALUES {
                    self.switch_to_sketch();
                }
            }
            Values::Sketch(sketch) => sketch.add(value),
        }
    }

    fn switch_to_sketch(&mut self) {
        if let Values::Exact(values) = self {
            let mut sketch = DDSketch::new(Config::defaults());
            for value in values.iter() {
                sketch.add(*value);
            }
            *self = Values::Sketch(Box::new(sketch));
        }
    }

    fn merge(&mut self, other: Values) {
        match other {
            Values::Exact(more) => {
                for value in more {
                    self.add(value);
                }
            }
            Values::Sketch(sketch) => {
                self.switch_to_sketch();
                if let Values::Sketch(mine) = self {
                    // Both use the default configuration, which is all
                    // merge checks.
                    let _ = mine.merge(&sketch);
                }
            }
        }
    }

    /// The value at rank ⌊q × (n − 1)⌋ of the sorted values (0-based), the
    /// rank DDSketch estimates.
    fn percentile(&mut self, q: f64) -> Option<f64> {
        match self {
            Values::Exact(values) => {
                if values.is_empty() {
                    return None;
                }
                let rank = (q * (values.len() - 1) as f64).floor() as usize;
                let rank = rank.min(values.len() - 1);
                let (_, value, _) = values.select_nth_unstable_by(rank, f64::total_cmp);
                Some(*value)
            }
            Values::Sketch(sketch) => sketch.quantile(q).ok().flatten(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn percentile_of(values: &[f64], p: f64) -> Option<f64> {
        let mut state = AggState::<Key>::new(Function::Percentile(p));
        for v in values {
            state.add_number(*v);
        }
        state.finish(Function::Percentile(p)).0.as_f64()
    }

    #[test]
    fn exact_percentiles_take_the_lower_rank() {
        let values: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        assert_eq!(percentile_of(&values, 0.0), Some(1.0));
        assert_eq!(percentile_of(&values, 50.0), Some(5.0));
        assert_eq!(percentile_of(&values, 90.0), Some(9.0));
        assert_eq!(percentile_of(&values, 99.0), Some(9.0));
        assert_eq!(percentile_of(&values, 100.0), Some(10.0));
        assert_eq!(percentile_of(&[], 50.0), None);
    }

    #[test]
    fn large_groups_are_estimated_within_one_percent() {
        let n = EXACT_PERCENTILE_VALUES * 3;
        let mut left = AggState::<Key>::new(Function::Percentile(99.0));
        let mut right = AggState::<Key>::new(Function::Percentile(99.0));
        for i in 0..n {
            let value = (i + 1) as f64;
            if i % 2 == 0 {
                left.add_number(value);
            } else {
                right.add_number(value);
            }
        }
        left.merge(right);
        let (value, estimated) = left.finish(Function::Percentile(99.0));
        assert!(estimated);
        let exact = (0.99 * (n - 1) as f64).floor() + 1.0;
        let got = value.as_f64().unwrap_or(0.0);
        assert!((got - exact).abs() / exact <= 0.01, "{got} vs {exact}");
    }

    #[test]
    fn merged_exact_states_stay_exact_up_to_the_limit() {
        let mut a = AggState::<Key>::new(Function::Percentile(50.0));
        let mut b = AggState::<Key>::new(Function::Percentile(50.0));
        for i in 0..1000 {
            a.add_number(f64::from(i));
            b.add_number(f64::from(i + 1000));
        }
        a.merge(b);
        assert_eq!(a.finish(Function::Percentile(50.0)), (number(999.0), false));
    }

    #[test]
    fn numeric_aggregates_and_empty_groups() {
        let mut state = AggState::<Key>::new(Function::Avg);
        assert_eq!(state.finish(Function::Avg).0, serde_json::Value::Null);
        for v in [1.0, 2.0, 4.5] {
            state.add_number(v);
        }
        assert_eq!(state.finish(Function::Sum).0, number(7.5));
        assert_eq!(state.finish(Function::Avg).0, number(2.5));
        assert_eq!(state.finish(Function::Min).0, serde_json::Value::from(1));
        assert_eq!(state.finish(Function::Max).0, number(4.5));
    }

    #[test]
    fn cells_sort_numbers_then_strings_then_null() {
        use serde_json::json;
        let mut cells = vec![json!(null), json!("b"), json!(10), json!("a"), json!(9.5)];
        cells.sort_by(compare_cells);
        assert_eq!(
            cells,
            vec![json!(9.5), json!(10), json!("a"), json!("b"), json!(null)]
        );
    }
}
