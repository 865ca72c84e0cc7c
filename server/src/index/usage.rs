//! Where an index's bytes go: per day, per part of tantivy's segment
//! format and per field, read from the segments' own space accounting.
//! `loghound disk-usage` prints it; benchmarks use it to show what a
//! schema or store change saved.

use std::collections::BTreeMap;
use std::path::Path;

use tantivy::directory::MmapDirectory;
use tantivy::schema::Schema;
use tantivy::space_usage::PerFieldSpaceUsage;
use tantivy::Index;
use time::Date;

use super::{day_dirs, IndexError};

/// The parts of a segment, in the order a report lists them.
pub const PARTS: [&str; 7] = [
    "terms",
    "postings",
    "positions",
    "fast",
    "fieldnorms",
    "store",
    "other",
];

/// One day index's bytes.
#[derive(Debug, Clone, Default)]
pub struct DayUsage {
    /// Documents in the day.
    pub docs: u64,
    /// Segments the day has now.
    pub segments: usize,
    /// Bytes of the day's directory as the file system lists them
    /// (segment files, metadata, files of merges not yet cleaned up).
    pub files: u64,
    /// Bytes per part (see [`PARTS`]), per field name; the store and
    /// "other" (deletes) are under the field name `*`.
    pub parts: BTreeMap<(&'static str, String), u64>,
}

impl DayUsage {
    /// Bytes of one part, all fields together.
    pub fn part(&self, part: &str) -> u64 {
        self.parts
            .iter()
            .filter(|((p, _), _)| *p == part)
            .map(|(_, bytes)| bytes)
            .sum()
    }

    /// Bytes of one field, all parts together.
    pub fn field(&self, field: &str) -> u64 {
        self.parts
            .iter()
            .filter(|((_, f), _)| f == field)
            .map(|(_, bytes)| bytes)
            .sum()
    }

    /// Adds another day's figures to these.
    pub fn add(&mut self, other: &DayUsage) {
        self.docs += other.docs;
        self.segments += other.segments;
        self.files += other.files;
        for (key, bytes) in &other.parts {
            *self.parts.entry(key.clone()).or_default() += bytes;
        }
    }
}

/// The usage of every day index under `root` (a data directory's
/// `indexes`), oldest day first.
pub fn usage(root: &Path) -> Result<Vec<(Date, DayUsage)>, IndexError> {
    let mut days = Vec::new();
    for (day, path) in day_dirs(root)? {
        days.push((day, day_usage(&path)?));
    }
    days.sort_by_key(|(day, _)| *day);
    Ok(days)
}

fn day_usage(dir: &Path) -> Result<DayUsage, IndexError> {
    let open_error = |source| IndexError::Open {
        path: dir.to_path_buf(),
        source,
    };
    let directory =
        MmapDirectory::open(dir).map_err(|e| open_error(tantivy::TantivyError::from(e)))?;
    let index = Index::open(directory).map_err(open_error)?;
    let schema = index.schema();
    let searcher = index.reader().map_err(open_error)?.searcher();
    let space = searcher
        .space_usage()
        .map_err(|e| open_error(tantivy::TantivyError::from(e)))?;
    let mut usage = DayUsage {
        docs: searcher.num_docs(),
        segments: space.segments().len(),
        files: directory_bytes(dir).map_err(|e| IndexError::Dir {
            action: "list",
            path: dir.to_path_buf(),
            source: e,
        })?,
        parts: BTreeMap::new(),
    };
    let mut add = |part: &'static str, field: String, bytes: u64| {
        *usage.parts.entry((part, field)).or_default() += bytes;
    };
    for segment in space.segments() {
        for (part, per_field) in [
            ("terms", segment.termdict()),
            ("postings", segment.postings()),
            ("positions", segment.positions()),
            ("fast", segment.fast_fields()),
            ("fieldnorms", segment.fieldnorms()),
        ] {
            for (name, bytes) in field_bytes(&schema, per_field) {
                add(part, name, bytes);
            }
        }
        add("store", "*".into(), segment.store().total().get_bytes());
        add("other", "*".into(), segment.deletes().get_bytes());
    }
    Ok(usage)
}

fn field_bytes<'a>(
    schema: &'a Schema,
    usage: &'a PerFieldSpaceUsage,
) -> impl Iterator<Item = (String, u64)> + 'a {
    usage.fields().map(|(field, field_usage)| {
        (
            schema.get_field_name(*field).to_string(),
            field_usage.total().get_bytes(),
        )
    })
}

fn directory_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let metadata = entry?.metadata()?;
        if metadata.is_file() {
            total += metadata.len();
        }
    }
    Ok(total)
}

/// The report `loghound disk-usage` prints: a line per day, then the
/// days together by part and by field, each with its share of the total.
pub fn report(days: &[(Date, DayUsage)]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut all = DayUsage::default();
    let _ = writeln!(
        out,
        "{:<12} {:>12} {:>9} {:>14} {:>10}",
        "day", "docs", "segments", "bytes", "bytes/doc"
    );
    for (day, usage) in days {
        let _ = writeln!(
            out,
            "{:<12} {:>12} {:>9} {:>14} {:>10.1}",
            day.to_string(),
            usage.docs,
            usage.segments,
            usage.files,
            per_doc(usage.files, usage.docs)
        );
        all.add(usage);
    }
    let accounted: u64 = all.parts.values().sum();
    let share = |bytes: u64| 100.0 * bytes as f64 / accounted.max(1) as f64;
    let _ = writeln!(
        out,
        "{:<12} {:>12} {:>9} {:>14} {:>10.1}",
        "all",
        all.docs,
        all.segments,
        all.files,
        per_doc(all.files, all.docs)
    );
    let _ = writeln!(
        out,
        "\n{:<12} {:>14} {:>7} {:>10}",
        "part", "bytes", "%", "bytes/doc"
    );
    for part in PARTS {
        let bytes = all.part(part);
        let _ = writeln!(
            out,
            "{part:<12} {bytes:>14} {:>6.1}% {:>10.1}",
            share(bytes),
            per_doc(bytes, all.docs)
        );
    }
    let mut fields: BTreeMap<&str, u64> = BTreeMap::new();
    for ((_, field), bytes) in &all.parts {
        *fields.entry(field).or_default() += bytes;
    }
    let mut fields: Vec<_> = fields.into_iter().filter(|(_, b)| *b > 0).collect();
    fields.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let _ = writeln!(out, "\n{:<12} {:>14} {:>7}  by part", "field", "bytes", "%");
    for (field, bytes) in fields {
        let parts: Vec<String> = PARTS
            .iter()
            .filter_map(|part| {
                let b = all.parts.get(&(*part, field.to_string())).copied()?;
                (b > 0).then(|| format!("{part} {:.1}%", share(b)))
            })
            .collect();
        let name = if field == "*" { "(all)" } else { field };
        let _ = writeln!(
            out,
            "{name:<12} {bytes:>14} {:>6.1}%  {}",
            share(bytes),
            parts.join(", ")
        );
    }
    out
}

fn per_doc(bytes: u64, docs: u64) -> f64 {
    bytes as f64 / docs.max(1) as f64
}
