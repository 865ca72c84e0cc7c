//! Pipes after a query: `QUERY | stats … | sort … | limit …`.
//!
//! [`split`] cuts the text at its first `|` outside quotes: what comes
//! before is an ordinary query (compiled by [`compile`](super::compile)),
//! what comes after is a list of [`Stage`]s. Every error carries the
//! character offset in the whole text, so the UI marks the same place for
//! a bad pipe as for a bad query.

use super::QueryError;

/// Most rows a `limit` or `top` may ask for.
pub const MAX_ROWS: usize = 10_000;

/// A query split into its search and its pipes.
#[derive(Debug, Clone, PartialEq)]
pub struct Piped<'a> {
    /// The search part, before the first `|`.
    pub search: &'a str,
    /// The stages, in order; empty when the text has no `|`.
    pub stages: Vec<Stage>,
    /// Character offset of the first `|`, if any.
    pub pipe_position: Option<usize>,
}

/// One stage of a pipe.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// `stats AGG, … [by (FIELD, …)]`: one row per group.
    Stats(Grouping),
    /// `timechart [span=DURATION] AGG, … [by (FIELD, …)]`: one row per time
    /// bucket and group.
    Timechart {
        /// Bucket width in ms; `None`: chosen from the time range.
        span_ms: Option<i64>,
        /// What is computed per bucket and group.
        grouping: Grouping,
    },
    /// `top [N] by FIELD, …`: the N most frequent value combinations.
    Top {
        /// How many rows.
        limit: usize,
        /// The fields whose values are counted.
        by: Vec<FieldRef>,
    },
    /// `sort COLUMN [asc|desc], …`.
    Sort(Vec<SortKey>),
    /// `limit N`.
    Limit(usize),
}

impl Stage {
    /// Whether this stage makes the table (the others reorder or cut it).
    pub fn makes_table(&self) -> bool {
        matches!(
            self,
            Stage::Stats(_) | Stage::Timechart { .. } | Stage::Top { .. }
        )
    }
}

/// Aggregates and the fields they are grouped by.
#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    /// What is computed, in column order.
    pub aggregates: Vec<Aggregate>,
    /// The group fields, in column order; empty: one group.
    pub by: Vec<FieldRef>,
}

/// A field named in a pipe, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldRef {
    /// The name as written (`status`, `host`, `fields.user.id`).
    pub name: String,
    /// 0-based character offset.
    pub position: usize,
}

/// A computed column.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// What is computed.
    pub function: Function,
    /// Its argument; `None` only for `count()`.
    pub field: Option<FieldRef>,
    /// The column's name: `as NAME`, else the aggregate as written in
    /// canonical form (`count()`, `p99(duration_ms)`).
    pub column: String,
    /// Where the aggregate starts.
    pub position: usize,
}

/// The aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Function {
    /// Matching lines (`count()`), or lines where the field is set
    /// (`count(f)`).
    Count,
    /// Sum of the numeric values.
    Sum,
    /// Mean of the numeric values.
    Avg,
    /// Smallest numeric value.
    Min,
    /// Largest numeric value.
    Max,
    /// How many different values.
    CountDistinct,
    /// A percentile, 0 to 100.
    Percentile(f64),
}

impl Function {
    fn name(self) -> String {
        match self {
            Function::Count => "count".into(),
            Function::Sum => "sum".into(),
            Function::Avg => "avg".into(),
            Function::Min => "min".into(),
            Function::Max => "max".into(),
            Function::CountDistinct => "count_distinct".into(),
            Function::Percentile(p) => format!("p{p}"),
        }
    }

    /// Whether the function reads numbers (the others take any value).
    pub fn is_numeric(self) -> bool {
        !matches!(self, Function::Count | Function::CountDistinct)
    }
}

/// One key of a `sort`.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// The column's name.
    pub column: String,
    /// Largest first.
    pub descending: bool,
    /// Where the column was named.
    pub position: usize,
}

/// Splits `text` at its first `|` outside quotes and parses the pipes.
pub fn split(text: &str) -> Result<Piped<'_>, QueryError> {
    let Some((byte, char_position)) = first_pipe(text) else {
        return Ok(Piped {
            search: text,
            stages: Vec::new(),
            pipe_position: None,
        });
    };
    let tokens = tokenize(&text[byte..], char_position)?;
    let mut parser = Parser {
        tokens,
        next: 0,
        end: char_position + text[byte..].chars().count(),
    };
    let stages = parser.stages()?;
    Ok(Piped {
        search: &text[..byte],
        stages,
        pipe_position: Some(char_position),
    })
}

/// The byte and character offsets of the first `|` outside `"…"`.
fn first_pipe(text: &str) -> Option<(usize, usize)> {
    let mut quoted = false;
    let mut escaped = false;
    for (char_index, (byte, c)) in text.char_indices().enumerate() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '|' if !quoted => return Some((byte, char_index)),
            _ => {}
        }
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Pipe,
    LeftParen,
    RightParen,
    Comma,
    Equals,
    /// A name or a number (`count`, `duration_ms`, `p99`, `10`, `1m`).
    Word(String),
}

fn tokenize(text: &str, offset: usize) -> Result<Vec<(Tok, usize)>, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut index = 0;
    while let Some(&c) = chars.get(index) {
        let position = offset + index;
        let single = match c {
            _ if c.is_whitespace() => {
                index += 1;
                continue;
            }
            '|' => Some(Tok::Pipe),
            '(' => Some(Tok::LeftParen),
            ')' => Some(Tok::RightParen),
            ',' => Some(Tok::Comma),
            '=' => Some(Tok::Equals),
            _ => None,
        };
        if let Some(token) = single {
            tokens.push((token, position));
            index += 1;
            continue;
        }
        if !is_word_char(c) {
            return Err(QueryError::new(
                format!("unexpected '{c}' in a pipe"),
                position,
            ));
        }
        let start = index;
        while chars.get(index).copied().is_some_and(is_word_char) {
            index += 1;
        }
        let word: String = chars[start..index].iter().collect();
        tokens.push((Tok::Word(word), position));
    }
    Ok(tokens)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '@' | '.' | '-')
}

struct Parser {
    tokens: Vec<(Tok, usize)>,
    next: usize,
    /// Character offset just past the text, for "expected … at the end".
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.next).map(|(t, _)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.next).map_or(self.end, |(_, p)| *p)
    }

    fn eat(&mut self, token: &Tok) -> bool {
        let found = self.peek() == Some(token);
        self.next += usize::from(found);
        found
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word));
        self.next += usize::from(found);
        found
    }

    fn expect(&mut self, token: &Tok, what: &str) -> Result<(), QueryError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(format!("expected {what}")))
        }
    }

    fn error(&self, message: String) -> QueryError {
        let message = match self.tokens.get(self.next) {
            Some(_) => message,
            None => format!("{message} at the end of the pipe"),
        };
        QueryError::new(message, self.position())
    }

    fn word(&mut self, what: &str) -> Result<(String, usize), QueryError> {
        match self.tokens.get(self.next).cloned() {
            Some((Tok::Word(word), position)) => {
                self.next += 1;
                Ok((word, position))
            }
            _ => Err(self.error(format!("expected {what}"))),
        }
    }

    fn stages(&mut self) -> Result<Vec<Stage>, QueryError> {
        let mut stages = Vec::new();
        while self.eat(&Tok::Pipe) {
            let (name, position) = self.word("a pipe: stats, timechart, top, sort or limit")?;
            let stage = match name.to_ascii_lowercase().as_str() {
                "stats" => Stage::Stats(self.grouping()?),
                "timechart" => self.timechart()?,
                "top" => self.top()?,
                "sort" => Stage::Sort(self.sort()?),
                "limit" | "head" => Stage::Limit(self.count("limit")?),
                _ => {
                    return Err(QueryError::new(
                        format!("unknown pipe '{name}': use stats, timechart, top, sort or limit"),
                        position,
                    ))
                }
            };
            if stage.makes_table() && stages.iter().any(Stage::makes_table) {
                return Err(QueryError::new(
                    format!(
                        "only one of stats, timechart and top per query; '{name}' is the second"
                    ),
                    position,
                ));
            }
            if !stage.makes_table() && !stages.iter().any(Stage::makes_table) {
                return Err(QueryError::new(
                    format!("'{name}' needs a table: put stats, timechart or top before it"),
                    position,
                ));
            }
            stages.push(stage);
            if self.peek().is_some_and(|t| *t != Tok::Pipe) {
                return Err(self.error(format!("unexpected text after the '{name}' pipe")));
            }
        }
        if self.peek().is_some() {
            return Err(self.error("expected '|'".into()));
        }
        Ok(stages)
    }

    fn grouping(&mut self) -> Result<Grouping, QueryError> {
        let mut aggregates: Vec<Aggregate> = Vec::new();
        loop {
            match self.peek() {
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("by") => break,
                Some(Tok::Word(_)) => {}
                _ => break,
            }
            let aggregate = self.aggregate()?;
            if aggregates.iter().any(|a| a.column == aggregate.column) {
                return Err(QueryError::new(
                    format!(
                        "column '{}' twice; name one with `as NAME`",
                        aggregate.column
                    ),
                    aggregate.position,
                ));
            }
            aggregates.push(aggregate);
            self.eat(&Tok::Comma);
        }
        if aggregates.is_empty() {
            return Err(self.error(
                "expected an aggregate: count(), sum(f), avg(f), min(f), max(f), \
                 count_distinct(f) or a percentile like p99(f)"
                    .into(),
            ));
        }
        let by = if self.eat_word("by") {
            self.field_list()?
        } else {
            Vec::new()
        };
        for field in &by {
            if aggregates.iter().any(|a| a.column == field.name) {
                return Err(QueryError::new(
                    format!("column '{}' is both a group and an aggregate", field.name),
                    field.position,
                ));
            }
        }
        Ok(Grouping { aggregates, by })
    }

    fn aggregate(&mut self) -> Result<Aggregate, QueryError> {
        let (name, position) = self.word("an aggregate")?;
        let function = function(&name, position)?;
        self.expect(&Tok::LeftParen, &format!("'(' after {name}"))?;
        let field = if self.peek() == Some(&Tok::RightParen) {
            None
        } else {
            Some(self.field("a field name")?)
        };
        self.expect(&Tok::RightParen, "')'")?;
        if field.is_none() && function != Function::Count {
            return Err(QueryError::new(
                format!("{name}() needs a field, like {name}(duration_ms)"),
                position,
            ));
        }
        let mut column = format!(
            "{}({})",
            function.name(),
            field.as_ref().map_or("", |f| f.name.as_str())
        );
        if self.eat_word("as") {
            column = self.word("a column name after 'as'")?.0;
        }
        Ok(Aggregate {
            function,
            field,
            column,
            position,
        })
    }

    fn field(&mut self, what: &str) -> Result<FieldRef, QueryError> {
        let (name, position) = self.word(what)?;
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '@')
            && !name.split('.').any(str::is_empty);
        if !valid {
            return Err(QueryError::new(
                format!("invalid field name '{name}'"),
                position,
            ));
        }
        Ok(FieldRef { name, position })
    }

    /// `(a, b)` or `a, b`.
    fn field_list(&mut self) -> Result<Vec<FieldRef>, QueryError> {
        let parenthesised = self.eat(&Tok::LeftParen);
        let mut fields: Vec<FieldRef> = Vec::new();
        loop {
            let field = self.field("a field name")?;
            if fields.iter().any(|f| f.name == field.name) {
                return Err(QueryError::new(
                    format!("field '{}' twice", field.name),
                    field.position,
                ));
            }
            fields.push(field);
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        if parenthesised {
            self.expect(&Tok::RightParen, "')' after the fields")?;
        }
        Ok(fields)
    }

    fn timechart(&mut self) -> Result<Stage, QueryError> {
        let mut span_ms = None;
        if self.eat_word("span") {
            self.expect(&Tok::Equals, "'=' after span")?;
            let (text, position) = self.word("a duration like 1m")?;
            span_ms = Some(duration_ms(&text).ok_or_else(|| {
                QueryError::new(
                    format!("invalid span '{text}': use a number and ms, s, m, h or d, like 5m"),
                    position,
                )
            })?);
        }
        Ok(Stage::Timechart {
            span_ms,
            grouping: self.grouping()?,
        })
    }

    fn top(&mut self) -> Result<Stage, QueryError> {
        let limit = match self.peek() {
            Some(Tok::Word(w)) if w.chars().all(|c| c.is_ascii_digit()) => self.count("top")?,
            _ => 10,
        };
        if !self.eat_word("by") {
            return Err(self.error("expected 'by' and the fields, like top 10 by client_ip".into()));
        }
        Ok(Stage::Top {
            limit,
            by: self.field_list()?,
        })
    }

    fn sort(&mut self) -> Result<Vec<SortKey>, QueryError> {
        self.eat_word("by");
        let parenthesised = self.eat(&Tok::LeftParen);
        let mut keys = Vec::new();
        loop {
            let (column, position) = self.column()?;
            let descending = if self.eat_word("desc") {
                true
            } else {
                self.eat_word("asc");
                false
            };
            keys.push(SortKey {
                column,
                descending,
                position,
            });
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        if parenthesised {
            self.expect(&Tok::RightParen, "')' after the sort keys")?;
        }
        Ok(keys)
    }

    /// A column name: a word, or an aggregate as written (`count()`).
    fn column(&mut self) -> Result<(String, usize), QueryError> {
        let (word, position) = self.word("a column name")?;
        if !self.eat(&Tok::LeftParen) {
            return Ok((word, position));
        }
        let function = function(&word, position)?;
        let field = if self.peek() == Some(&Tok::RightParen) {
            String::new()
        } else {
            self.field("a field name")?.name
        };
        self.expect(&Tok::RightParen, "')'")?;
        Ok((format!("{}({field})", function.name()), position))
    }

    fn count(&mut self, pipe: &str) -> Result<usize, QueryError> {
        let (text, position) = self.word(&format!("a number after {pipe}"))?;
        text.parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_ROWS).contains(n))
            .ok_or_else(|| {
                QueryError::new(
                    format!("{pipe}: expected a number from 1 to {MAX_ROWS}, got '{text}'"),
                    position,
                )
            })
    }
}

fn function(name: &str, position: usize) -> Result<Function, QueryError> {
    let lower = name.to_ascii_lowercase();
    let function = match lower.as_str() {
        "count" => Function::Count,
        "sum" => Function::Sum,
        "avg" | "mean" => Function::Avg,
        "min" => Function::Min,
        "max" => Function::Max,
        "count_distinct" | "dc" => Function::CountDistinct,
        "median" => Function::Percentile(50.0),
        _ => match lower
            .strip_prefix('p')
            .filter(|digits| digits.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .and_then(|digits| digits.parse::<f64>().ok())
        {
            Some(p) if (0.0..=100.0).contains(&p) => Function::Percentile(p),
            Some(_) => {
                return Err(QueryError::new(
                    format!("percentile '{name}' must be from p0 to p100"),
                    position,
                ))
            }
            None => {
                return Err(QueryError::new(
                    format!(
                        "unknown aggregate '{name}': use count, sum, avg, min, max, \
                         count_distinct or a percentile like p99"
                    ),
                    position,
                ))
            }
        },
    };
    Ok(function)
}

/// `500ms`, `10s`, `5m`, `1h`, `1d` in ms.
fn duration_ms(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().ok()?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(unit_ms).filter(|ms| *ms > 0)
}
