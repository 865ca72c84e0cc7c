//! The tantivy schema of a day index and the analyzers it relies on.

use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, IndexRecordOption, JsonObjectOptions, NumericOptions,
    Schema, TextFieldIndexing, TextOptions, FAST, STORED,
};
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::tokenizer::{
    LowerCaser, RawTokenizer, SimpleTokenizer, TextAnalyzer, TokenizerManager,
};
use tantivy::IndexSettings;

/// Analyzer of `message`: words split on non-alphanumerics, lowercased.
/// Unlike tantivy's `default` it drops no long token, so hashes and trace
/// ids of any length are found.
pub const TEXT_ANALYZER: &str = "loghound_text";
/// Analyzer of keyword fields (`host`, `source`, …): the whole value,
/// lowercased, so `host:Web3` finds `web3`.
pub const KEYWORD_ANALYZER: &str = "loghound_keyword";

/// Handles on every field of the schema.
#[derive(Debug, Clone)]
pub struct Fields {
    /// Unique event id: WAL sequence number and position in the batch.
    pub id: Field,
    /// The event's own time (ms precision).
    pub timestamp: Field,
    /// When the server received it.
    pub received_at: Field,
    /// Host the line was read on.
    pub host: Field,
    /// File path on that host.
    pub source: Field,
    /// The `app` tag, if any.
    pub app: Field,
    /// Normalised severity (syslog names), when the line has one.
    pub severity: Field,
    /// Fields parsed from the line (JSON members, access-log parts) and
    /// those its sender gave, indexed and in fast columns. Days written
    /// before [`Fields::sent_fields`] also store them; newer days derive
    /// the parsed ones from the stored line again when they show a hit.
    pub fields: Field,
    /// The line.
    pub message: Field,
    /// All tags as a JSON object.
    pub tags: Field,
    /// Sending agent.
    pub agent: Field,
    /// File identity on that agent.
    pub file_id: Field,
    /// Byte offset of the line in that file.
    pub offset: Field,
    /// The agent cut the line at its length limit (only set when true).
    pub truncated: Field,
    /// The line was not valid UTF-8 (only set when true).
    pub invalid_utf8: Field,
    /// Stored only: the fields the sender gave with the line (a journal
    /// entry's, a container's), which the line itself does not hold.
    pub sent_fields: Field,
    /// Stored only: the sender's format hint, when it gave one, so the
    /// line parses again as it did when indexed.
    pub format: Field,
}

/// Builds the schema and its field handles.
pub fn build() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // Only what searches use is indexed: every indexed value is a term
    // written, sorted and merged for every line. Nothing keeps field
    // norms: results are ordered by time, never scored by length, and a
    // norm costs a byte per line per indexed field.
    let fast_date = DateOptions::default()
        .set_fast()
        .set_precision(DateTimePrecision::Milliseconds);
    let keyword = TextOptions::default().set_stored().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(KEYWORD_ANALYZER)
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    );
    // What stats group by is also a fast column, of the value as sent
    // (not lowercased), so groups show it as it was written.
    let fast_keyword = keyword.clone().set_fast(None);
    let text = TextOptions::default().set_stored().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TEXT_ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions)
            .set_fieldnorms(false),
    );
    let stored_keyword = TextOptions::default().set_stored();
    let flag = NumericOptions::default().set_indexed().set_stored();
    let fields = Fields {
        // Found by range queries on its column (one id is the range
        // [id, id]): a term per line would cost more than the column.
        id: builder.add_u64_field("id", FAST),
        timestamp: builder.add_date_field("timestamp", fast_date.clone()),
        received_at: builder.add_date_field("received_at", fast_date.set_stored()),
        host: builder.add_text_field("host", fast_keyword.clone()),
        source: builder.add_text_field("source", fast_keyword.clone()),
        app: builder.add_text_field("app", fast_keyword.clone()),
        severity: builder.add_text_field("severity", fast_keyword),
        // Not stored: the parsed fields are the line's own, derived again
        // from the stored line (see `sent_fields`).
        fields: builder.add_json_field(
            "fields",
            JsonObjectOptions::default()
                .set_fast(None)
                .set_expand_dots_enabled()
                .set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer(TEXT_ANALYZER)
                        .set_index_option(IndexRecordOption::WithFreqsAndPositions)
                        .set_fieldnorms(false),
                ),
        ),
        message: builder.add_text_field("message", text),
        tags: builder.add_json_field(
            "tags",
            JsonObjectOptions::default()
                .set_stored()
                .set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer(KEYWORD_ANALYZER)
                        .set_fieldnorms(false),
                ),
        ),
        agent: builder.add_text_field("agent", stored_keyword.clone()),
        file_id: builder.add_text_field("file_id", keyword),
        offset: builder.add_u64_field("offset", FAST | STORED),
        truncated: builder.add_bool_field("truncated", flag.clone()),
        invalid_utf8: builder.add_bool_field("invalid_utf8", flag),
        sent_fields: builder
            .add_json_field("sent_fields", JsonObjectOptions::default().set_stored()),
        format: builder.add_text_field("format", stored_keyword),
    };
    (builder.build(), fields)
}

/// Stored lines: zstd blocks. A block is decompressed whole to read one
/// line, so its size trades disk for the cost of loading a hit; lines of
/// a day repeat their hosts, paths and message shapes, which zstd's
/// window finds. Existing indexes keep the settings they were created
/// with (lz4 before these).
pub const STORE_BLOCK_BYTES: usize = 128 << 10;
/// zstd level of the stored lines.
pub const STORE_ZSTD_LEVEL: i32 = 3;

/// The settings of a new day index.
pub fn settings() -> IndexSettings {
    IndexSettings {
        docstore_compression: Compressor::Zstd(ZstdCompressor {
            compression_level: Some(STORE_ZSTD_LEVEL),
        }),
        docstore_blocksize: STORE_BLOCK_BYTES,
        ..IndexSettings::default()
    }
}

/// Whether an existing index's schema can be used with [`build`]'s
/// handles: its fields are the first of [`build`]'s, in the same order, of
/// the same types. Options may differ: indexes written before a field
/// became fast lack only that column, which stats then read from stored
/// documents. Indexes written before `sent_fields` and `format` lack
/// them, and store the parsed fields instead ([`derives_fields`]).
pub fn compatible(existing: &Schema, current: &Schema) -> bool {
    let existing: Vec<_> = existing.fields().collect();
    let current: Vec<_> = current.fields().collect();
    existing.len() <= current.len()
        && existing
            .iter()
            .zip(&current)
            .all(|((a_field, a), (b_field, b))| {
                a_field == b_field
                    && a.name() == b.name()
                    && a.field_type().value_type() == b.field_type().value_type()
            })
}

/// Whether an index's documents derive their parsed fields from the
/// stored line (and store only the sender's), or store them all.
pub fn derives_fields(schema: &Schema) -> bool {
    schema.get_field("sent_fields").is_ok()
}

/// Registers Loghound's analyzers in a tokenizer manager.
pub fn register_analyzers(manager: &TokenizerManager) {
    manager.register(
        TEXT_ANALYZER,
        TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .build(),
    );
    manager.register(
        KEYWORD_ANALYZER,
        TextAnalyzer::builder(RawTokenizer::default())
            .filter(LowerCaser)
            .build(),
    );
}
