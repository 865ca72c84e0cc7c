//! Query text → tokens. Terms are lexed whole here, `field:value`,
//! comparisons and `[low TO high]` ranges included, because their syntax
//! is lexical: a range spans spaces, a `-` only negates at a term's start.

use super::parser::{Comparison, Literal, RangeEnd, Term, Value};
use super::QueryError;

/// One token with the character offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// 0-based character offset.
    pub position: usize,
}

/// The kinds of token.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// `(`
    LeftParen,
    /// `)`
    RightParen,
    /// `AND` (uppercase only).
    And,
    /// `OR` (uppercase only).
    Or,
    /// `NOT` (uppercase only).
    Not,
    /// `-` directly before a term or `(`.
    Minus,
    /// A word, phrase or field term.
    Term(Term),
}

/// Splits `text` into tokens.
pub fn tokenize(text: &str) -> Result<Vec<Token>, QueryError> {
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        position: 0,
    };
    let mut tokens = Vec::new();
    while let Some(token) = lexer.next_token()? {
        tokens.push(token);
    }
    Ok(tokens)
}

struct Lexer {
    chars: Vec<char>,
    position: usize,
}

/// Characters that end a bare word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"')
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || matches!(c, '_' | '@')
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '@' | '.' | '-')
}

impl Lexer {
    fn peek_at(&self, index: usize) -> Option<char> {
        self.chars.get(index).copied()
    }

    fn next_token(&mut self) -> Result<Option<Token>, QueryError> {
        while self.peek_at(self.position).is_some_and(char::is_whitespace) {
            self.position += 1;
        }
        let start = self.position;
        let Some(c) = self.peek_at(start) else {
            return Ok(None);
        };
        let kind = match c {
            '(' => {
                self.position += 1;
                TokenKind::LeftParen
            }
            ')' => {
                self.position += 1;
                TokenKind::RightParen
            }
            '-' if self
                .peek_at(start + 1)
                .is_some_and(|next| !next.is_whitespace() && next != ')') =>
            {
                self.position += 1;
                TokenKind::Minus
            }
            '"' => {
                let text = self.quoted()?;
                TokenKind::Term(Term {
                    field: None,
                    value: Value::Phrase(text),
                    value_position: start,
                })
            }
            _ => self.word_or_field_term(start)?,
        };
        Ok(Some(Token {
            kind,
            position: start,
        }))
    }

    /// A `"…"` phrase starting at `self.position`; `\` escapes any character.
    fn quoted(&mut self) -> Result<String, QueryError> {
        let start = self.position;
        let mut text = String::new();
        let mut index = start + 1;
        loop {
            match self.peek_at(index) {
                None => return Err(QueryError::new("unclosed quote", start)),
                Some('"') => break,
                Some('\\') => match self.peek_at(index + 1) {
                    Some(escaped) => {
                        text.push(escaped);
                        index += 2;
                    }
                    None => return Err(QueryError::new("unclosed quote", start)),
                },
                Some(c) => {
                    text.push(c);
                    index += 1;
                }
            }
        }
        self.position = index + 1;
        Ok(text)
    }

    /// Reads up to the end of a bare word from `self.position`.
    fn bare(&mut self) -> Literal {
        let start = self.position;
        while self.peek_at(self.position).is_some_and(|c| !ends_word(c)) {
            self.position += 1;
        }
        Literal {
            text: self.chars[start..self.position].iter().collect(),
            position: start,
        }
    }

    /// The length of a field name followed by `:` at `start`, if there is one.
    fn field_name_len(&self, start: usize) -> Option<usize> {
        if !self.peek_at(start).is_some_and(is_name_start) {
            return None;
        }
        let mut end = start + 1;
        while self.peek_at(end).is_some_and(is_name_char) {
            end += 1;
        }
        (self.peek_at(end) == Some(':')).then_some(end - start)
    }

    fn word_or_field_term(&mut self, start: usize) -> Result<TokenKind, QueryError> {
        let Some(name_len) = self.field_name_len(start) else {
            let word = self.bare();
            return Ok(match word.text.as_str() {
                "AND" => TokenKind::And,
                "OR" => TokenKind::Or,
                "NOT" => TokenKind::Not,
                _ => TokenKind::Term(Term {
                    field: None,
                    value_position: word.position,
                    value: classify(word)?,
                }),
            });
        };
        let field = Literal {
            text: self.chars[start..start + name_len].iter().collect(),
            position: start,
        };
        let value_start = start + name_len + 1;
        self.position = value_start;
        let value = match self.peek_at(value_start) {
            None => return Err(missing_value(&field, value_start)),
            Some(c) if c.is_whitespace() || c == ')' => {
                return Err(missing_value(&field, value_start))
            }
            Some('(') => {
                return Err(QueryError::new(
                    format!(
                        "parentheses after '{0}:' are not supported; write ({0}:a OR {0}:b)",
                        field.text
                    ),
                    value_start,
                ))
            }
            Some('"') => Value::Phrase(self.quoted()?),
            Some(open @ ('[' | '{')) => self.range(open)?,
            Some('<' | '>') => self.comparison()?,
            Some(_) => classify(self.bare())?,
        };
        Ok(TokenKind::Term(Term {
            field: Some(field),
            value,
            value_position: value_start,
        }))
    }

    fn comparison(&mut self) -> Result<Value, QueryError> {
        let start = self.position;
        let with_equals = self.peek_at(start + 1) == Some('=');
        let comparison = match (self.chars[start], with_equals) {
            ('<', false) => Comparison::Less,
            ('<', true) => Comparison::LessOrEqual,
            ('>', false) => Comparison::Greater,
            _ => Comparison::GreaterOrEqual,
        };
        self.position = start + 1 + usize::from(with_equals);
        let bound = self.bare();
        if bound.text.is_empty() {
            return Err(QueryError::new(
                format!("missing value after '{}'", comparison.symbol()),
                bound.position,
            ));
        }
        Ok(Value::Compare(comparison, bound))
    }

    /// `[low TO high]`, `{low TO high}` or a mix; `*` is an open end.
    fn range(&mut self, open: char) -> Result<Value, QueryError> {
        let start = self.position;
        let mut close = start + 1;
        loop {
            match self.peek_at(close) {
                None => return Err(QueryError::new("unclosed range", start)),
                Some(']' | '}') => break,
                Some(_) => close += 1,
            }
        }
        let mut parts = Vec::new();
        let mut index = start + 1;
        while index < close {
            if self.chars[index].is_whitespace() {
                index += 1;
                continue;
            }
            let part_start = index;
            while index < close && !self.chars[index].is_whitespace() {
                index += 1;
            }
            parts.push(Literal {
                text: self.chars[part_start..index].iter().collect(),
                position: part_start,
            });
        }
        let syntax = || QueryError::new("expected a range like [low TO high]", start);
        let [low, to, high] = <[Literal; 3]>::try_from(parts).map_err(|_| syntax())?;
        if to.text != "TO" {
            return Err(syntax());
        }
        self.position = close + 1;
        if self.peek_at(self.position).is_some_and(|c| !ends_word(c)) {
            return Err(QueryError::new(
                "unexpected text after the range",
                self.position,
            ));
        }
        let end = |literal: Literal, inclusive: bool| match literal.text.as_str() {
            "*" => RangeEnd::Open,
            _ if inclusive => RangeEnd::Included(literal),
            _ => RangeEnd::Excluded(literal),
        };
        Ok(Value::Range {
            lower: end(low, open == '['),
            upper: end(high, self.chars[close] == ']'),
        })
    }
}

fn missing_value(field: &Literal, position: usize) -> QueryError {
    QueryError::new(format!("missing value after '{}:'", field.text), position)
}

/// A bare word: plain, a `prefix*`, or `*` alone.
fn classify(word: Literal) -> Result<Value, QueryError> {
    if word.text == "*" {
        return Ok(Value::Any);
    }
    let star_count = word.text.chars().filter(|&c| c == '*').count();
    let Some(star_index) = word.text.chars().position(|c| c == '*') else {
        return Ok(Value::Word(word.text));
    };
    if star_index == 0 {
        return Err(QueryError::new(
            "a leading '*' is not supported (it would scan every word in the index); \
             start with at least one letter or digit, like time*",
            word.position,
        ));
    }
    if star_count > 1 || !word.text.ends_with('*') {
        return Err(QueryError::new(
            "'*' is only supported at the end of a word, like time*",
            word.position + star_index,
        ));
    }
    let mut text = word.text;
    text.pop();
    Ok(Value::Prefix(text))
}
