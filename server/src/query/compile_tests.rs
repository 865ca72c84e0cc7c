//! Compiled queries run against a small in-RAM index built with the real
//! schema and analyzers, documents added the way the indexer adds them.

use proptest::prelude::*;
use serde_json::json;
use tantivy::collector::DocSetCollector;
use tantivy::schema::OwnedValue;
use tantivy::{DateTime, Index, IndexReader, TantivyDocument};

use super::compile;
use crate::index::schema::{self, Fields};

const HEX_TRACE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Corpus {
    reader: IndexReader,
    fields: Fields,
    size: u32,
}

/// Events 0..=5; each test names the ids it expects.
fn corpus() -> Corpus {
    let events = [
        json!({"message": "GET /api/v1/items 200 took 12ms", "host": "web-1", "app": "api",
               "severity": "info",
               "fields": {"status": 200, "method": "GET", "path": "/api/v1/items",
                          "bytes": 1200, "duration_ms": 12.5, "user": {"id": 42}},
               "tags": {"env": "prod"}}),
        json!({"message": "POST /api/v1/items 503 Timeout waiting for upstream",
               "host": "Web-2", "app": "api", "severity": "error",
               "fields": {"status": 503, "method": "POST", "path": "/api/v1/items",
                          "bytes": 5000, "duration_ms": 1500.0, "user.id": 7},
               "tags": {"env": "staging"}}),
        json!({"message": "healthcheck ok from 10.0.0.1", "host": "lb-1", "severity": "debug",
               "fields": {"status": 200, "bytes": 0, "duration_ms": 0}}),
        json!({"message": "connection reset by peer; timeouts climbing", "host": "db-1",
               "severity": "warning", "fields": {"status": "n/a", "ok": false},
               "tags": {"env": "prod", "team.name": "core"}}),
        json!({"message": format!("fatal: disk full trace={HEX_TRACE}"), "host": "db-1",
               "severity": "critical", "fields": {"bytes": u64::MAX, "ok": true}}),
        json!({"message": "user logged in: Foo-Bar baz", "host": "web-1"}),
    ];
    let (schema, fields) = schema::build();
    let index = Index::create_in_ram(schema);
    schema::register_analyzers(index.tokenizers());
    let mut writer = index
        .writer_with_num_threads::<TantivyDocument>(1, 15_000_000)
        .expect("writer");
    for (id, event) in events.iter().enumerate() {
        let mut doc = TantivyDocument::new();
        doc.add_u64(fields.id, id as u64);
        doc.add_date(fields.timestamp, DateTime::from_timestamp_millis(id as i64));
        let text = |name: &str| event[name].as_str();
        doc.add_text(fields.message, text("message").expect("message"));
        doc.add_text(fields.host, text("host").expect("host"));
        doc.add_text(fields.source, "/var/log/app.log");
        doc.add_text(fields.file_id, "F1");
        if let Some(app) = text("app") {
            doc.add_text(fields.app, app);
        }
        if let Some(severity) = text("severity") {
            doc.add_text(fields.severity, severity);
        }
        // As the indexer does: a serde_json object converted whole.
        if let Some(object) = event.get("fields") {
            doc.add_field_value(fields.fields, &OwnedValue::from(object.clone()));
        }
        if let Some(tags) = event["tags"].as_object() {
            let tags = tags
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        OwnedValue::Str(v.as_str().expect("str").to_string()),
                    )
                })
                .collect();
            doc.add_object(fields.tags, tags);
        }
        writer.add_document(doc).expect("add");
    }
    writer.commit().expect("commit");
    Corpus {
        reader: index.reader().expect("reader"),
        fields,
        size: events.len() as u32,
    }
}

impl Corpus {
    fn ids(&self, text: &str) -> Vec<u32> {
        let query = compile(text, &self.fields).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let searcher = self.reader.searcher();
        let found = searcher
            .search(query.as_ref(), &DocSetCollector)
            .unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let mut ids: Vec<u32> = found.into_iter().map(|address| address.doc_id).collect();
        ids.sort_unstable();
        ids
    }

    fn check(&self, cases: &[(&str, &[u32])]) {
        let mut failures = Vec::new();
        for (text, expected) in cases {
            let got = self.ids(text);
            if got != *expected {
                failures.push(format!("{text:?}: expected {expected:?}, got {got:?}"));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    fn all_but(&self, excluded: &[u32]) -> Vec<u32> {
        (0..self.size).filter(|id| !excluded.contains(id)).collect()
    }
}

fn error(text: &str) -> (String, usize) {
    let (_, fields) = schema::build();
    match compile(text, &fields) {
        Ok(query) => panic!("{text:?} compiled to {query:?}"),
        Err(error) => (error.message, error.position),
    }
}

#[test]
fn words_are_case_insensitive_and_anded() {
    corpus().check(&[
        ("TIMEOUT", &[1]),
        ("timeout", &[1]),
        ("get 200", &[0]),
        ("api 503", &[1]),
        ("api AND 503", &[1]),
        ("message:TimeOut", &[1]),
        // `or` in lowercase is a word, not an operator.
        ("healthcheck or fatal", &[]),
    ]);
}

#[test]
fn empty_and_negation_only_match_everything_else() {
    let corpus = corpus();
    let all = corpus.all_but(&[]);
    let cases: Vec<(&str, Vec<u32>)> = vec![
        ("", all.clone()),
        ("  ", all.clone()),
        ("*", all.clone()),
        ("-healthcheck", corpus.all_but(&[2])),
        ("NOT healthcheck", corpus.all_but(&[2])),
        ("-healthcheck -fatal", corpus.all_but(&[2, 4])),
        ("-\"reset by peer\"", corpus.all_but(&[3])),
        ("-host:web-1", corpus.all_but(&[0, 5])),
        ("NOT NOT healthcheck", vec![2]),
        ("-*", vec![]),
        // Words without letters or digits constrain nothing.
        ("!!!", all.clone()),
        ("api !!!", vec![0, 1]),
    ];
    for (text, expected) in cases {
        assert_eq!(corpus.ids(text), expected, "{text:?}");
    }
}

#[test]
fn or_not_and_parentheses() {
    corpus().check(&[
        ("healthcheck OR fatal", &[2, 4]),
        ("healthcheck OR fatal disk", &[2, 4]),
        ("healthcheck OR fatal peer", &[2]),
        ("(healthcheck OR fatal) disk", &[4]),
        ("api -POST", &[0]),
        ("api NOT post", &[0]),
        ("healthcheck OR -api", &[2, 3, 4, 5]),
        ("NOT api OR healthcheck", &[2, 3, 4, 5]),
        ("-(api OR healthcheck)", &[3, 4, 5]),
        ("api AND (get OR healthcheck)", &[0]),
    ]);
}

#[test]
fn phrases_and_split_words() {
    corpus().check(&[
        ("\"reset by peer\"", &[3]),
        ("\"RESET BY PEER\"", &[3]),
        ("\"peer by reset\"", &[]),
        ("foo-bar", &[5]),
        ("bar-foo", &[]),
        ("10.0.0.1", &[2]),
        ("10.0.1.0", &[]),
        ("/api/v1", &[0, 1]),
        ("v1/api", &[]),
        ("\"say \\\"hi\\\"\"", &[]),
    ]);
}

#[test]
fn long_tokens_and_prefixes() {
    corpus().check(&[
        (&HEX_TRACE.to_uppercase(), &[4]),
        (&format!("trace={HEX_TRACE}"), &[4]),
        ("0123456789ABCDEF*", &[4]),
        ("timeout*", &[1, 3]),
        ("TimeOut*", &[1, 3]),
        ("time*", &[1, 3]),
        ("reset by pe*", &[3]),
        ("\"reset by\" pe*", &[3]),
        ("foo-ba*", &[5]),
        ("ba-fo*", &[]),
        ("health* -ok*", &[]),
    ]);
}

#[test]
fn keyword_fields_are_whole_values_any_case() {
    corpus().check(&[
        ("host:WEB-2", &[1]),
        ("host:web-2", &[1]),
        ("host:web", &[]),
        ("host:web*", &[0, 1, 5]),
        ("host:\"DB-1\"", &[3, 4]),
        ("host:*", &[0, 1, 2, 3, 4, 5]),
        ("app:api", &[0, 1]),
        ("app:*", &[0, 1]),
        ("source:/var/log/app.log", &[0, 1, 2, 3, 4, 5]),
        ("file_id:f1", &[0, 1, 2, 3, 4, 5]),
        ("app:API host:web-1", &[0]),
    ]);
}

#[test]
fn severity_aliases_and_order() {
    corpus().check(&[
        ("severity:error", &[1]),
        ("severity:ERR", &[1]),
        ("severity:warn", &[3]),
        ("severity:fatal", &[4]),
        ("severity:crit", &[4]),
        ("severity:trace", &[2]),
        ("severity:emerg", &[]),
        // "At least as severe": syslog codes, 0 emergency … 7 debug.
        ("severity:<=warning", &[1, 3, 4]),
        ("severity:<=warn", &[1, 3, 4]),
        ("severity:<warning", &[1, 4]),
        ("severity:>=info", &[0, 2]),
        ("severity:>info", &[2]),
        ("severity:<emergency", &[]),
        ("severity:[error TO warning]", &[1, 3]),
        ("severity:[warning TO error]", &[1, 3]),
        ("severity:{critical TO warning]", &[1, 3]),
        ("severity:[* TO err]", &[1, 4]),
        ("severity:*", &[0, 1, 2, 3, 4]),
        ("severity:w*", &[3]),
        ("-severity:*", &[5]),
    ]);
}

#[test]
fn numbers_on_parsed_fields_compare_as_numbers() {
    corpus().check(&[
        // Equality: integers are indexed as i64, floats as f64.
        ("status:503", &[1]),
        ("status:200", &[0, 2]),
        ("status:200.0", &[0, 2]),
        ("duration_ms:1500", &[1]),
        ("duration_ms:12.5", &[0]),
        ("bytes:18446744073709551615", &[4]),
        // Comparisons and ranges through the fast field; `duration_ms` mixes
        // an integer with floats, so its column is coerced to f64.
        ("status:>=500", &[1]),
        ("status:>500", &[1]),
        ("status:<500", &[0, 2]),
        ("status:<=200", &[0, 2]),
        ("status:[200 TO 503}", &[0, 2]),
        ("status:{200 TO 503]", &[1]),
        ("status:>=199.5", &[0, 1, 2]),
        // Mixed bound types are compared as f64.
        ("status:[199.5 TO 503]", &[0, 1, 2]),
        ("duration_ms:>1000", &[1]),
        ("duration_ms:>12", &[0, 1]),
        ("duration_ms:<=12.5", &[0, 2]),
        ("duration_ms:[0 TO 1]", &[2]),
        ("duration_ms:<1", &[2]),
        ("bytes:[1000 TO 5000]", &[0, 1]),
        ("bytes:{1000 TO 5000}", &[0]),
        ("bytes:{1200 TO 5000}", &[]),
        ("bytes:[1000 TO *]", &[0, 1, 4]),
        ("bytes:[* TO 1200]", &[0, 2]),
        ("bytes:>18446744073709551614", &[4]),
        ("bytes:[1000 TO 18446744073709551615]", &[0, 1, 4]),
        ("bytes:[5000 TO 1000]", &[]),
        ("bytes:[* TO *]", &[0, 1, 2, 4]),
        ("status:>-1", &[0, 1, 2]),
        // Nested and dotted keys are one path.
        ("user.id:42", &[0]),
        ("fields.user.id:7", &[1]),
        ("user.id:>10", &[0]),
        ("user.id:*", &[0, 1]),
        ("ok:true", &[4]),
        ("ok:FALSE", &[3]),
        ("missing:>1", &[]),
    ]);
}

#[test]
fn text_on_parsed_fields() {
    corpus().check(&[
        ("method:post", &[1]),
        ("fields.method:POST", &[1]),
        ("method:PO*", &[1]),
        ("method:get OR method:post", &[0, 1]),
        ("path:/api/v1/items", &[0, 1]),
        ("path:\"/api/v1/items\"", &[0, 1]),
        ("path:/api/v1/item", &[]),
        ("path:/api/v1/it*", &[0, 1]),
        ("status:n/a", &[3]),
        ("status:*", &[0, 1, 2, 3]),
        ("-method:*", &[2, 3, 4, 5]),
    ]);
}

#[test]
fn tags() {
    corpus().check(&[
        ("tags.env:PROD", &[0, 3]),
        ("tags.env:prod*", &[0, 3]),
        ("tags.env:*", &[0, 1, 3]),
        ("tags.team.name:core", &[3]),
        ("tags.env:staging -api", &[]),
    ]);
}

#[test]
fn compile_errors_have_positions() {
    let cases: &[(&str, &str, usize)] = &[
        ("status:>=abc", "expected a number, found 'abc'", 9),
        ("x bytes:[1 TO many]", "expected a number, found 'many'", 14),
        ("status:>NaN", "expected a number", 8),
        ("status:>inf", "expected a number", 8),
        ("severity:loud", "unknown severity 'loud'", 9),
        ("severity:<=loud", "unknown severity 'loud'", 11),
        ("a host:>5", "comparisons and ranges work on", 7),
        ("message:[1 TO 2]", "comparisons and ranges work on", 8),
        ("tags.env:>1", "comparisons and ranges work on", 9),
        ("tags:prod", "name a member of 'tags'", 0),
        ("a fields:1", "name a member of 'fields'", 2),
        ("user..id:1", "invalid field name", 0),
        ("\"unclosed", "unclosed quote", 0),
    ];
    for (text, message, position) in cases {
        let (got_message, got_position) = error(text);
        assert!(
            got_message.starts_with(message),
            "{text:?}: {got_message:?} does not start with {message:?}"
        );
        assert_eq!(got_position, *position, "{text:?}: {got_message}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any text compiles or fails cleanly, and what compiles also runs.
    #[test]
    fn prop_any_text_compiles_or_errs(
        text in prop_oneof![
            "[a-zA-Z0-9 :*\"()\\\\\\-\\[\\]{}<>=./_é!]{0,40}",
            proptest::collection::vec(
                prop_oneof![
                    Just("AND "), Just("OR "), Just("NOT "), Just("-"), Just("("), Just(")"),
                    Just("\""), Just("status:"), Just("severity:"), Just("tags.env:"),
                    Just(">="), Just("<"), Just("[1 TO 5]"), Just("{* TO *}"), Just("*"),
                    Just("web "), Just("503 "), Just("ti*"), Just(" "), Just("user.id:"),
                    Just("host:"), Just("1.5"), Just("warn"), Just("[* TO err]"),
                ],
                0..12,
            ).prop_map(|parts| parts.concat()),
            any::<String>(),
        ]
    ) {
        let corpus = CORPUS.with(|c| c.clone());
        if let Ok(query) = compile(&text, &corpus.0) {
            let searcher = corpus.1.searcher();
            prop_assert!(searcher.search(query.as_ref(), &DocSetCollector).is_ok(), "{text:?}");
        }
    }
}

thread_local! {
    static CORPUS: (Fields, IndexReader) = {
        let corpus = corpus();
        (corpus.fields, corpus.reader)
    };
}
