//! The expression tree → a tantivy query over the day index schema.
//!
//! Words go through the same analyzers as indexing, so case and
//! punctuation behave the same on both sides. Numbers on parsed fields are
//! matched as numbers: tantivy indexes a JSON integer as `i64` (or `u64`
//! above `i64::MAX`) and a float as `f64`, so an equality looks for every
//! variant, and comparisons use the fast-field range query, which
//! converts its bounds to whatever numeric column the path has.

use std::ops::Bound;

use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, ExistsQuery, Occur, PhrasePrefixQuery, PhraseQuery, Query,
    RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::{TextAnalyzer, TokenizerManager};

use super::parser::{parse, Comparison, Expr, ExprKind, Literal, RangeEnd, Term, Value};
use super::QueryError;
use crate::index::schema::{self, Fields};
use crate::parse::severity::Severity;

/// How many index words the last word of a split prefix (`foo-ba*`) may
/// expand to.
const PHRASE_PREFIX_MAX_EXPANSIONS: u32 = 1000;

/// Compiles query text into a tantivy query; an empty query matches
/// everything. The single entry point of the query language for what
/// answers lines (search, histogram, tail, alerts on matches): a query
/// with pipes is refused at its first `|`.
pub fn compile(text: &str, fields: &Fields) -> Result<Box<dyn Query>, QueryError> {
    if let Some(position) = super::pipe::split(text)?.pipe_position {
        return Err(QueryError::new(
            "a query with pipes ('| stats …') answers a table, not lines: \
             run it as stats (GET /api/v1/stats, `loghound stats`)",
            position,
        ));
    }
    compile_search(text, fields)
}

/// Compiles the search part of a query (the text before its pipes).
pub fn compile_search(text: &str, fields: &Fields) -> Result<Box<dyn Query>, QueryError> {
    let Some(expr) = parse(text)? else {
        return Ok(Box::new(AllQuery));
    };
    let mut compiler = Compiler::new(fields);
    Ok(compiler.expr(&expr)?.unwrap_or_else(|| Box::new(AllQuery)))
}

type Compiled = Option<Box<dyn Query>>;

/// Where a term looks.
enum Target<'t> {
    Message,
    Keyword(Field),
    Severity,
    /// A path in the `fields` JSON.
    Parsed(&'t str),
    /// A key in the `tags` JSON.
    Tag(&'t str),
}

/// A number from the query, in the types tantivy indexes JSON numbers as.
#[derive(Debug, Clone, Copy)]
enum Number {
    I64(i64),
    U64(u64),
    F64(f64),
}

impl Number {
    fn as_f64(self) -> f64 {
        match self {
            Number::I64(n) => n as f64,
            Number::U64(n) => n as f64,
            Number::F64(n) => n,
        }
    }

    fn parse(text: &str) -> Option<Number> {
        if let Ok(n) = text.parse::<i64>() {
            return Some(Number::I64(n));
        }
        if let Ok(n) = text.parse::<u64>() {
            return Some(Number::U64(n));
        }
        // Rust also reads `inf` and `NaN`: those are words here.
        let looks_numeric = text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
        text.parse::<f64>()
            .ok()
            .filter(|n| looks_numeric && n.is_finite())
            .map(Number::F64)
    }

    /// The values an equal JSON number may be indexed as.
    fn equal_variants(self) -> Vec<Number> {
        match self {
            Number::I64(n) => vec![self, Number::F64(n as f64)],
            Number::U64(n) => vec![self, Number::F64(n as f64)],
            Number::F64(n) if n.fract() == 0.0 && n.abs() < 9.0e18 => {
                vec![self, Number::I64(n as i64)]
            }
            Number::F64(_) => vec![self],
        }
    }
}

struct Compiler<'a> {
    fields: &'a Fields,
    text_analyzer: TextAnalyzer,
    keyword_analyzer: TextAnalyzer,
}

impl<'a> Compiler<'a> {
    fn new(fields: &'a Fields) -> Self {
        let manager = TokenizerManager::new();
        schema::register_analyzers(&manager);
        let analyzer = |name| manager.get(name).expect("registered just above");
        Compiler {
            fields,
            text_analyzer: analyzer(schema::TEXT_ANALYZER),
            keyword_analyzer: analyzer(schema::KEYWORD_ANALYZER),
        }
    }

    /// `None`: the expression constrains nothing (e.g. a word without
    /// letters or digits) and is left out.
    fn expr(&mut self, expr: &Expr) -> Result<Compiled, QueryError> {
        Ok(match &expr.kind {
            ExprKind::Term(term) => self.term(term)?,
            ExprKind::Not(child) => self.expr(child)?.map(not),
            ExprKind::Or(children) => {
                let mut should = Vec::new();
                for child in children {
                    should.extend(self.expr(child)?);
                }
                any_of(should)
            }
            ExprKind::And(children) => {
                let mut clauses = Vec::new();
                for child in children {
                    if let ExprKind::Not(negated) = &child.kind {
                        clauses.extend(self.expr(negated)?.map(|q| (Occur::MustNot, q)));
                    } else {
                        clauses.extend(self.expr(child)?.map(|q| (Occur::Must, q)));
                    }
                }
                all_of(clauses)
            }
        })
    }

    fn term(&mut self, term: &Term) -> Result<Compiled, QueryError> {
        let target = match &term.field {
            None => Target::Message,
            Some(field) => self.target(field)?,
        };
        match target {
            Target::Message => self.message(term),
            Target::Keyword(field) => self.keyword(field, term),
            Target::Severity => self.severity(term),
            Target::Parsed(path) => self.parsed(path, term),
            Target::Tag(key) => self.tag(key, term),
        }
    }

    fn target<'t>(&self, field: &'t Literal) -> Result<Target<'t>, QueryError> {
        let name = field.text.as_str();
        let target = match name {
            "message" => Target::Message,
            "host" => Target::Keyword(self.fields.host),
            "source" => Target::Keyword(self.fields.source),
            "app" => Target::Keyword(self.fields.app),
            "file_id" => Target::Keyword(self.fields.file_id),
            "severity" => Target::Severity,
            "fields" | "tags" => {
                return Err(QueryError::new(
                    format!("name a member of '{name}', like {name}.NAME:value"),
                    field.position,
                ))
            }
            _ => match name.strip_prefix("tags.") {
                Some(key) => Target::Tag(key),
                None => Target::Parsed(name.strip_prefix("fields.").unwrap_or(name)),
            },
        };
        let path = match target {
            Target::Parsed(path) | Target::Tag(path) => path,
            _ => return Ok(target),
        };
        if path.split('.').any(str::is_empty) {
            return Err(QueryError::new(
                format!("invalid field name '{name}'"),
                field.position,
            ));
        }
        Ok(target)
    }

    fn message(&mut self, term: &Term) -> Result<Compiled, QueryError> {
        let field = self.fields.message;
        let make = |token: &str| tantivy::Term::from_field_text(field, token);
        Ok(match &term.value {
            Value::Word(text) | Value::Phrase(text) => {
                exact(analyze(&mut self.text_analyzer, text, make))
            }
            Value::Prefix(text) => prefix(analyze(&mut self.text_analyzer, text, make)),
            Value::Any => Some(Box::new(AllQuery)),
            Value::Compare(..) | Value::Range { .. } => return Err(not_numeric(term)),
        })
    }

    fn keyword(&mut self, field: Field, term: &Term) -> Result<Compiled, QueryError> {
        let make = |token: &str| tantivy::Term::from_field_text(field, token);
        self.keyword_value(term, make)
    }

    /// Keyword values are whole, lowercased: `host:Web-3` is `web-3`.
    fn keyword_value(
        &mut self,
        term: &Term,
        make: impl Fn(&str) -> tantivy::Term,
    ) -> Result<Compiled, QueryError> {
        Ok(match &term.value {
            Value::Word(text) | Value::Phrase(text) => {
                exact(analyze(&mut self.keyword_analyzer, text, make))
            }
            Value::Prefix(text) => prefix(analyze(&mut self.keyword_analyzer, text, make)),
            // Every value starts with the empty prefix: the field is set.
            Value::Any => prefix(vec![make("")]),
            Value::Compare(..) | Value::Range { .. } => return Err(not_numeric(term)),
        })
    }

    fn severity(&mut self, term: &Term) -> Result<Compiled, QueryError> {
        let field = self.fields.severity;
        let level = |literal: &Literal| {
            Severity::from_word(&literal.text).ok_or_else(|| {
                QueryError::new(
                    format!(
                        "unknown severity '{}'; use emergency, alert, critical, error, \
                         warning, notice, info or debug (or an alias: panic, fatal, crit, \
                         err, warn, trace, …)",
                        literal.text
                    ),
                    literal.position,
                )
            })
        };
        // Syslog order: 0 emergency (most severe) … 7 debug.
        let codes: Vec<u8> = match &term.value {
            Value::Word(text) | Value::Phrase(text) => {
                let literal = Literal {
                    text: text.clone(),
                    position: term.value_position,
                };
                vec![level(&literal)?.syslog_code()]
            }
            Value::Prefix(_) | Value::Any => {
                let make = |token: &str| tantivy::Term::from_field_text(field, token);
                return self.keyword_value(term, make);
            }
            Value::Compare(comparison, bound) => {
                let bound = level(bound)?.syslog_code();
                (0..8)
                    .filter(|&code| match comparison {
                        Comparison::Less => code < bound,
                        Comparison::LessOrEqual => code <= bound,
                        Comparison::Greater => code > bound,
                        Comparison::GreaterOrEqual => code >= bound,
                    })
                    .collect()
            }
            Value::Range { lower, upper } => {
                let mut ends = Vec::new();
                for end in [lower, upper] {
                    ends.push(match end {
                        RangeEnd::Open => None,
                        RangeEnd::Included(l) => Some((level(l)?.syslog_code(), true)),
                        RangeEnd::Excluded(l) => Some((level(l)?.syslog_code(), false)),
                    });
                }
                // Either order: [error TO warning] and [warning TO error].
                if let [Some((a, _)), Some((b, _))] = ends[..] {
                    if a > b {
                        ends.swap(0, 1);
                    }
                }
                (0..8)
                    .filter(|&code| {
                        let above =
                            ends[0].is_none_or(|(low, incl)| code > low || incl && code == low);
                        let below =
                            ends[1].is_none_or(|(high, incl)| code < high || incl && code == high);
                        above && below
                    })
                    .collect()
            }
        };
        let terms: Vec<_> = codes
            .into_iter()
            .map(|code| {
                let name = Severity::from_syslog_pri(u16::from(code)).name();
                tantivy::Term::from_field_text(field, name)
            })
            .collect();
        Ok(Some(match terms.len() {
            0 => Box::new(EmptyQuery),
            1 => Box::new(TermQuery::new(terms[0].clone(), IndexRecordOption::Basic)),
            _ => Box::new(TermSetQuery::new(terms)),
        }))
    }

    fn parsed(&mut self, path: &str, term: &Term) -> Result<Compiled, QueryError> {
        let field = self.fields.fields;
        let path_term = || tantivy::Term::from_field_json_path(field, path, true);
        let make = |token: &str| {
            let mut term = path_term();
            term.append_type_and_str(token);
            term
        };
        let number_term = |number: Number| {
            let mut term = path_term();
            match number {
                Number::I64(n) => term.append_type_and_fast_value(n),
                Number::U64(n) => term.append_type_and_fast_value(n),
                Number::F64(n) => term.append_type_and_fast_value(n),
            }
            term
        };
        let exists =
            || -> Box<dyn Query> { Box::new(ExistsQuery::new(format!("fields.{path}"), true)) };
        Ok(match &term.value {
            Value::Word(text) | Value::Phrase(text) => {
                let mut should: Vec<Box<dyn Query>> = Vec::new();
                should.extend(exact(analyze(&mut self.text_analyzer, text, make)));
                for number in Number::parse(text)
                    .map(Number::equal_variants)
                    .unwrap_or_default()
                {
                    should.push(Box::new(TermQuery::new(
                        number_term(number),
                        IndexRecordOption::Basic,
                    )));
                }
                for (word, value) in [("true", true), ("false", false)] {
                    if text.eq_ignore_ascii_case(word) {
                        let mut term = path_term();
                        term.append_type_and_fast_value(value);
                        should.push(Box::new(TermQuery::new(term, IndexRecordOption::Basic)));
                    }
                }
                any_of(should)
            }
            Value::Prefix(text) => prefix(analyze(&mut self.text_analyzer, text, make)),
            Value::Any => Some(exists()),
            Value::Compare(comparison, literal) => {
                let bound = number_term(number(literal)?);
                let (lower, upper) = match comparison {
                    Comparison::Less => (Bound::Unbounded, Bound::Excluded(bound)),
                    Comparison::LessOrEqual => (Bound::Unbounded, Bound::Included(bound)),
                    Comparison::Greater => (Bound::Excluded(bound), Bound::Unbounded),
                    Comparison::GreaterOrEqual => (Bound::Included(bound), Bound::Unbounded),
                };
                Some(Box::new(RangeQuery::new(lower, upper)))
            }
            Value::Range { lower, upper } => {
                let low = range_number(lower)?;
                let high = range_number(upper)?;
                // Both bounds must have one type: tantivy reads them as the type
                // of the first.
                let same_type = match (low, high) {
                    (Some(Number::I64(_)), Some(Number::I64(_))) => true,
                    (Some(_), Some(_)) => false,
                    _ => true,
                };
                let bound = |end: &RangeEnd, number: Option<Number>| {
                    let number = number.map(|n| {
                        if same_type {
                            n
                        } else {
                            Number::F64(n.as_f64())
                        }
                    });
                    match (end, number) {
                        (RangeEnd::Included(_), Some(n)) => Bound::Included(number_term(n)),
                        (RangeEnd::Excluded(_), Some(n)) => Bound::Excluded(number_term(n)),
                        _ => Bound::Unbounded,
                    }
                };
                match (bound(lower, low), bound(upper, high)) {
                    (Bound::Unbounded, Bound::Unbounded) => Some(exists()),
                    (lower, upper) => Some(Box::new(RangeQuery::new(lower, upper))),
                }
            }
        })
    }

    fn tag(&mut self, key: &str, term: &Term) -> Result<Compiled, QueryError> {
        let field = self.fields.tags;
        // Tags do not expand dots: a dotted key is one path segment.
        let path = key.replace('.', "\\.");
        let make = |token: &str| {
            let mut term = tantivy::Term::from_field_json_path(field, &path, false);
            term.append_type_and_str(token);
            term
        };
        self.keyword_value(term, make)
    }
}

fn analyze(
    analyzer: &mut TextAnalyzer,
    text: &str,
    make: impl Fn(&str) -> tantivy::Term,
) -> Vec<tantivy::Term> {
    let mut terms = Vec::new();
    let mut stream = analyzer.token_stream(text);
    stream.process(&mut |token| terms.push(make(&token.text)));
    terms
}

/// One term, or the phrase of several; nothing for no term.
fn exact(mut terms: Vec<tantivy::Term>) -> Compiled {
    match terms.len() {
        0 => None,
        1 => Some(Box::new(TermQuery::new(
            terms.pop().expect("one term"),
            IndexRecordOption::Basic,
        ))),
        _ => Some(Box::new(PhraseQuery::new(terms))),
    }
}

/// The last term is a prefix; the others precede it as a phrase.
fn prefix(terms: Vec<tantivy::Term>) -> Compiled {
    if terms.is_empty() {
        return None;
    }
    let mut query = PhrasePrefixQuery::new(terms);
    query.set_max_expansions(PHRASE_PREFIX_MAX_EXPANSIONS);
    Some(Box::new(query))
}

fn number(literal: &Literal) -> Result<Number, QueryError> {
    Number::parse(&literal.text).ok_or_else(|| {
        QueryError::new(
            format!("expected a number, found '{}'", literal.text),
            literal.position,
        )
    })
}

fn range_number(end: &RangeEnd) -> Result<Option<Number>, QueryError> {
    match end {
        RangeEnd::Open => Ok(None),
        RangeEnd::Included(literal) | RangeEnd::Excluded(literal) => number(literal).map(Some),
    }
}

fn not_numeric(term: &Term) -> QueryError {
    QueryError::new(
        "comparisons and ranges work on numeric parsed fields (like status:>=500) \
         and on severity",
        term.value_position,
    )
}

/// Everything except what `query` matches.
fn not(query: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, Box::new(AllQuery)),
        (Occur::MustNot, query),
    ]))
}

fn any_of(mut queries: Vec<Box<dyn Query>>) -> Compiled {
    match queries.len() {
        0 => None,
        1 => queries.pop(),
        _ => Some(Box::new(BooleanQuery::new(
            queries.into_iter().map(|q| (Occur::Should, q)).collect(),
        ))),
    }
}

/// A conjunction; only negations means "everything except".
fn all_of(mut clauses: Vec<(Occur, Box<dyn Query>)>) -> Compiled {
    if clauses.is_empty() {
        return None;
    }
    if clauses.len() == 1 && clauses[0].0 == Occur::Must {
        return clauses.pop().map(|(_, query)| query);
    }
    if clauses.iter().all(|(occur, _)| *occur == Occur::MustNot) {
        clauses.push((Occur::Must, Box::new(AllQuery)));
    }
    Some(Box::new(BooleanQuery::new(clauses)))
}
