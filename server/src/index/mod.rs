//! The searchable store: one tantivy index per UTC day of *receipt* under
//! `indexes/<YYYY-MM-DD>/`, so retention drops whole directories, and the
//! live stream and a back-fill of old files share one writer whatever times
//! their lines carry. A line's own time is at most a day after its receipt,
//! so a search from time T opens only the days received since T − 1 day;
//! inside an index, segments whose time range misses the query are skipped
//! by their fast-field bounds.
//!
//! - [`schema`]: fields and analyzers;
//! - [`indexer`]: the thread that turns logged batches into documents and
//!   commits them about once a second;
//! - [`search`]: queries, newest-first collection and cursors;
//! - [`highlight`]: where a hit's message matches the query;
//! - [`histogram`]: match counts per time bucket;
//! - [`context`]: the lines around an event in its file.
//! - [`stats`]: a query's pipes (`| stats …`, `| timechart …`, `| top …`)
//!   as a table;
//! - [`tail`]: what matched after a given event, for live tail;
//! - [`arrivals`]: what matched among the events received in a span, for
//!   alert rules.

pub mod arrivals;
pub mod context;
pub mod highlight;
pub mod histogram;
pub mod indexer;
pub mod schema;
pub mod search;
pub mod stats;
pub mod tail;
pub mod usage;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tantivy::directory::MmapDirectory;
use tantivy::{Index, IndexReader, ReloadPolicy};
use time::{Date, OffsetDateTime};

use self::schema::Fields;

/// How far after its receipt a line's own time may be and still be
/// believed; later times are taken as a wrong clock.
pub const MAX_CLOCK_SKEW_MS: i64 = 24 * 3600 * 1000;

/// Bits of an event id that hold the event's position in its batch; the
/// rest hold the WAL sequence number. Ids thus grow in arrival order.
pub const EVENT_INDEX_BITS: u32 = 20;

/// The id of the `index`-th event of the batch logged as record `seq`.
pub fn event_id(seq: u64, index: usize) -> u64 {
    (seq << EVENT_INDEX_BITS) | index as u64
}

/// Why a day index could not be opened. The cause stays the error's
/// source, so a full disk is still recognised through it
/// (`storage::is_disk_full`).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A directory could not be created or listed.
    #[error("cannot {action} {}", path.display())]
    Dir {
        /// `create` or `list`.
        action: &'static str,
        /// The directory.
        path: PathBuf,
        /// What the file system answered.
        #[source]
        source: std::io::Error,
    },
    /// tantivy could not open (or create) the day's index.
    #[error("cannot open index {}", path.display())]
    Open {
        /// The day's directory.
        path: PathBuf,
        /// What tantivy answered.
        #[source]
        source: tantivy::TantivyError,
    },
}

/// One day's index and its reader.
pub struct DayIndex {
    /// The UTC day.
    pub day: Date,
    /// The tantivy index.
    pub index: Index,
    /// Reloaded after each commit.
    pub reader: IndexReader,
    /// Its documents store only the sender's fields and derive the parsed
    /// ones from the line ([`schema::derives_fields`]).
    pub derives_fields: bool,
    /// WAL sequence number this index has committed everything up to.
    committed_seq: AtomicU64,
}

impl DayIndex {
    /// Highest WAL record fully committed to this day.
    pub fn committed_seq(&self) -> u64 {
        self.committed_seq.load(Ordering::Acquire)
    }

    fn set_committed_seq(&self, seq: u64) {
        self.committed_seq.store(seq, Ordering::Release);
    }
}

/// Every day index, shared by the indexer (which adds days) and searches.
pub struct IndexSet {
    root: PathBuf,
    /// The schema every day uses.
    pub schema: tantivy::schema::Schema,
    /// Its fields.
    pub fields: Fields,
    days: RwLock<BTreeMap<Date, Arc<DayIndex>>>,
}

fn day_dir_name(day: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

fn parse_day_dir_name(name: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(name, &format).ok()
}

/// Reads the event times of a block of documents in one batched fast-field
/// access into `buffer` (one entry per document), for collectors'
/// `collect_block`.
pub(crate) fn block_times(
    column: &tantivy::columnar::Column<tantivy::DateTime>,
    docs: &[tantivy::DocId],
    buffer: &mut Vec<Option<tantivy::DateTime>>,
) {
    buffer.clear();
    buffer.resize(docs.len(), None);
    column.first_vals(docs, buffer);
}

/// The day index directories under `root`, in no particular order.
fn day_dirs(root: &Path) -> Result<Vec<(Date, PathBuf)>, IndexError> {
    let list_error = |source| IndexError::Dir {
        action: "list",
        path: root.to_path_buf(),
        source,
    };
    let mut days = Vec::new();
    for entry in std::fs::read_dir(root).map_err(list_error)? {
        let path = entry.map_err(list_error)?.path();
        if let Some(day) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_day_dir_name)
        {
            days.push((day, path));
        }
    }
    Ok(days)
}

/// The UTC day of a time in ms since the epoch.
pub fn day_of_ms(ms: i64) -> Date {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(|t| t.date())
        .unwrap_or(Date::MIN)
}

impl IndexSet {
    /// Opens every day index under `root`.
    pub fn open(root: &Path) -> Result<Arc<IndexSet>, IndexError> {
        let dir_error = |action, source| IndexError::Dir {
            action,
            path: root.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(root).map_err(|e| dir_error("create", e))?;
        let (schema, fields) = schema::build();
        let set = IndexSet {
            root: root.to_path_buf(),
            schema,
            fields,
            days: RwLock::default(),
        };
        for (day, _) in day_dirs(root)? {
            set.open_day(day)?;
        }
        Ok(Arc::new(set))
    }

    /// The day's index, created if it does not exist yet.
    pub fn open_day(&self, day: Date) -> Result<Arc<DayIndex>, IndexError> {
        if let Some(existing) = self.read_days().get(&day) {
            return Ok(Arc::clone(existing));
        }
        let dir = self.root.join(day_dir_name(day));
        std::fs::create_dir_all(&dir).map_err(|source| IndexError::Dir {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        let open_error = |source| IndexError::Open {
            path: dir.clone(),
            source,
        };
        let directory =
            MmapDirectory::open(&dir).map_err(|e| open_error(tantivy::TantivyError::from(e)))?;
        let exists = Index::exists(&directory).map_err(|e| open_error(e.into()))?;
        let index = if exists {
            let index = Index::open(directory).map_err(open_error)?;
            if !schema::compatible(&index.schema(), &self.schema) {
                return Err(open_error(tantivy::TantivyError::SchemaError(
                    "the index's fields are not the ones this server writes".into(),
                )));
            }
            index
        } else {
            Index::create(directory, self.schema.clone(), schema::settings()).map_err(open_error)?
        };
        schema::register_analyzers(index.tokenizers());
        let reader: IndexReader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(open_error)?;
        let committed_seq = index
            .load_metas()
            .map_err(open_error)?
            .payload
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let derives_fields = schema::derives_fields(&index.schema());
        let day_index = Arc::new(DayIndex {
            day,
            index,
            reader,
            derives_fields,
            committed_seq: AtomicU64::new(committed_seq),
        });
        let mut days = self.days.write().unwrap_or_else(|p| p.into_inner());
        Ok(Arc::clone(days.entry(day).or_insert(day_index)))
    }

    /// The directory of a day's index.
    pub fn day_dir(&self, day: Date) -> PathBuf {
        self.root.join(day_dir_name(day))
    }

    /// The days that have an index, oldest first.
    pub fn days(&self) -> Vec<Date> {
        self.read_days().keys().copied().collect()
    }

    /// Takes a day out of the set: searches that start after this no
    /// longer see it. Searches already running keep their handle, which
    /// the caller can wait for (`Arc::strong_count`) before deleting the
    /// directory.
    pub fn remove_day(&self, day: Date) -> Option<Arc<DayIndex>> {
        self.days
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&day)
    }

    fn read_days(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Date, Arc<DayIndex>>> {
        self.days.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Days that may hold events timed at or after `from_ms`, newest
    /// first. Any later day may hold older events (a back-fill), so there is
    /// no upper cut; a line's time is at most a day after its receipt, so
    /// days received before `from_ms` − 1 day cannot match.
    pub fn days_from(&self, from_ms: Option<i64>) -> Vec<Arc<DayIndex>> {
        let first = from_ms
            .map(|ms| day_of_ms(ms.saturating_sub(MAX_CLOCK_SKEW_MS)))
            .unwrap_or(Date::MIN);
        self.read_days()
            .range(first..)
            .rev()
            .map(|(_, day)| Arc::clone(day))
            .collect()
    }
}
