//! Highlights: where in a hit's message the query's words are.
//!
//! The words come from the compiled query ([`Query::query_terms`]) on the
//! `message` field, so they are exactly what the index matched on. The
//! message is split with the same analyzer the index used
//! ([`schema::TEXT_ANALYZER`]) and every token equal to one of those words
//! is marked. Ranges are `[start, end)` **UTF-8 byte offsets** into the
//! message (a browser slices the message's `TextEncoder` bytes, or converts).
//!
//! Limits, by design: words under a `NOT`/`-` are not marked; a phrase marks
//! each of its words wherever it occurs, not only inside the phrase; queries
//! that expose no terms (prefix, wildcard, regex, ranges) mark nothing.

use std::collections::HashSet;

use tantivy::query::{BooleanQuery, Occur, Query};
use tantivy::schema::Field;
use tantivy::tokenizer::{TextAnalyzer, TokenizerManager};

use super::schema;

/// Marks a query's message words in messages.
pub struct Highlighter {
    words: HashSet<String>,
    analyzer: TextAnalyzer,
}

impl Highlighter {
    /// A highlighter for the words `query` looks up in `message_field`.
    pub fn new(query: &dyn Query, message_field: Field) -> Self {
        let mut words = HashSet::new();
        visit_positive_terms(query, &mut |term| {
            if term.field() == message_field {
                if let Some(word) = term.value().as_str() {
                    words.insert(word.to_string());
                }
            }
        });
        let tokenizers = TokenizerManager::default();
        schema::register_analyzers(&tokenizers);
        let analyzer = tokenizers
            .get(schema::TEXT_ANALYZER)
            .expect("register_analyzers registers the text analyzer");
        Highlighter { words, analyzer }
    }

    /// `[start, end)` byte ranges of the matching words of `message`, in
    /// order, not overlapping.
    pub fn highlight(&mut self, message: &str) -> Vec<[usize; 2]> {
        let mut ranges = Vec::new();
        if self.words.is_empty() {
            return ranges;
        }
        let mut stream = self.analyzer.token_stream(message);
        while stream.advance() {
            let token = stream.token();
            if self.words.contains(&token.text) {
                ranges.push([token.offset_from, token.offset_to]);
            }
        }
        ranges
    }
}

/// Calls `visit` with every term of `query` except those under a
/// `MustNot` clause: a matching line cannot hold those words anyway, and
/// inside an `OR` they would mark words the line was not found by.
fn visit_positive_terms(query: &dyn Query, visit: &mut dyn FnMut(&tantivy::Term)) {
    if let Some(boolean) = query.downcast_ref::<BooleanQuery>() {
        for (occur, clause) in boolean.clauses() {
            if *occur != Occur::MustNot {
                visit_positive_terms(clause.as_ref(), visit);
            }
        }
        return;
    }
    query.query_terms(&mut |term, _needs_positions| visit(term));
}

#[cfg(test)]
mod tests {
    use tantivy::query::{PhraseQuery, TermQuery};
    use tantivy::schema::IndexRecordOption;
    use tantivy::Term;

    use super::*;

    fn term(field: Field, word: &str) -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(field, word),
            IndexRecordOption::Basic,
        ))
    }

    #[test]
    fn marks_every_occurrence_whatever_its_case() {
        let (_, fields) = schema::build();
        let query = BooleanQuery::new(vec![
            (Occur::Must, term(fields.message, "timeout")),
            (Occur::Must, term(fields.message, "db")),
            (Occur::MustNot, term(fields.message, "retry")),
            (Occur::Must, term(fields.host, "timeout")),
        ]);
        let mut highlighter = Highlighter::new(&query, fields.message);
        let message = "Timeout: DB-timeout (retry) TIMEOUTS timeout";
        let ranges = highlighter.highlight(message);
        let words: Vec<&str> = ranges.iter().map(|[s, e]| &message[*s..*e]).collect();
        assert_eq!(words, ["Timeout", "DB", "timeout", "timeout"]);
    }

    #[test]
    fn offsets_are_utf8_bytes() {
        let (_, fields) = schema::build();
        let query = PhraseQuery::new(vec![
            Term::from_field_text(fields.message, "café"),
            Term::from_field_text(fields.message, "ok"),
        ]);
        let mut highlighter = Highlighter::new(&query, fields.message);
        assert_eq!(highlighter.highlight("ünï Café ok"), [[6, 11], [12, 14]]);
    }

    #[test]
    fn queries_without_terms_mark_nothing() {
        let (_, fields) = schema::build();
        let mut highlighter = Highlighter::new(&tantivy::query::AllQuery, fields.message);
        assert!(highlighter.highlight("anything at all").is_empty());
    }
}
