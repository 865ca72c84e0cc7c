//! Tokens → an expression tree. Precedence: `NOT`/`-` bind tightest, then
//! `AND` (also implied between adjacent terms), then `OR`.
//!
//! ```text
//! query   := or? EOF
//! or      := and ("OR" and)*
//! and     := unary (["AND"] unary)*
//! unary   := ("NOT" | "-") unary | primary
//! primary := "(" or ")" | term
//! ```

use std::fmt;

use super::lexer::{tokenize, Token, TokenKind};
use super::QueryError;

/// How deeply parentheses and negations may nest. The parser and the
/// compiler recurse once per level, so this bounds their stack use.
pub const MAX_DEPTH: usize = 64;

/// A node of the tree with the character offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// 0-based character offset.
    pub position: usize,
}

/// The kinds of node.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// Every child matches (at least two children).
    And(Vec<Expr>),
    /// Any child matches (at least two children).
    Or(Vec<Expr>),
    /// The child does not match.
    Not(Box<Expr>),
    /// A word, phrase or field condition.
    Term(Term),
}

/// One condition: a value, optionally on a named field.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// `host` in `host:web3`; `None` searches the message.
    pub field: Option<Literal>,
    /// What to look for.
    pub value: Value,
    /// Character offset of the value.
    pub value_position: usize,
}

/// A piece of query text with its character offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    /// The text, unescaped.
    pub text: String,
    /// 0-based character offset.
    pub position: usize,
}

/// What a term looks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A bare word (a phrase when the analyzer splits it).
    Word(String),
    /// A `"quoted phrase"`, unescaped.
    Phrase(String),
    /// `time*`: the text before the `*`.
    Prefix(String),
    /// `*` alone: anything (on a field: the field is present).
    Any,
    /// `>500`, `<=warning`, …
    Compare(Comparison, Literal),
    /// `[low TO high]`, `{low TO high}`.
    Range {
        /// Lower end.
        lower: RangeEnd,
        /// Upper end.
        upper: RangeEnd,
    },
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
}

impl Comparison {
    /// How it is written.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
        }
    }
}

/// One end of a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeEnd {
    /// `*`
    Open,
    /// After `[` or before `]`.
    Included(Literal),
    /// After `{` or before `}`.
    Excluded(Literal),
}

/// Parses query text; `None` for a query without terms (matches everything).
pub fn parse(text: &str) -> Result<Option<Expr>, QueryError> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Ok(None);
    }
    let mut parser = Parser {
        tokens,
        next: 0,
        end: text.chars().count(),
        depth: 0,
    };
    let expr = parser.or()?;
    match parser.peek() {
        None => Ok(Some(expr)),
        Some(token) => Err(QueryError::new("unmatched ')'", token.position)),
    }
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    end: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn peek_kind(&self) -> Option<&TokenKind> {
        self.peek().map(|token| &token.kind)
    }

    fn position(&self) -> usize {
        self.peek().map_or(self.end, |token| token.position)
    }

    fn starts_operand(&self) -> bool {
        matches!(
            self.peek_kind(),
            Some(TokenKind::Term(_) | TokenKind::LeftParen | TokenKind::Not | TokenKind::Minus)
        )
    }

    /// After a binary or unary operator at `position`: there must be an operand.
    fn expect_operand(&self, operator: &str, position: usize) -> Result<(), QueryError> {
        if self.starts_operand() {
            Ok(())
        } else {
            Err(QueryError::new(
                format!("'{operator}' needs a term after it"),
                position,
            ))
        }
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let first = self.and()?;
        let mut children = vec![first];
        while let Some(TokenKind::Or) = self.peek_kind() {
            let position = self.position();
            self.next += 1;
            self.expect_operand("OR", position)?;
            children.push(self.and()?);
        }
        Ok(combine(children, ExprKind::Or))
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let first = self.unary()?;
        let mut children = vec![first];
        loop {
            match self.peek_kind() {
                Some(TokenKind::And) => {
                    let position = self.position();
                    self.next += 1;
                    self.expect_operand("AND", position)?;
                }
                _ if self.starts_operand() => {}
                _ => break,
            }
            children.push(self.unary()?);
        }
        Ok(combine(children, ExprKind::And))
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        self.depth += 1;
        let result = self.unary_inner();
        self.depth -= 1;
        result
    }

    fn unary_inner(&mut self) -> Result<Expr, QueryError> {
        let position = self.position();
        if self.depth > MAX_DEPTH {
            return Err(QueryError::new(
                format!("query nested too deeply (more than {MAX_DEPTH} levels)"),
                position,
            ));
        }
        let Some(token) = self.peek().cloned() else {
            return Err(QueryError::new("expected a term", position));
        };
        match token.kind {
            TokenKind::Not | TokenKind::Minus => {
                self.next += 1;
                let operator = if token.kind == TokenKind::Not {
                    "NOT"
                } else {
                    "-"
                };
                self.expect_operand(operator, position)?;
                let child = self.unary()?;
                Ok(Expr {
                    kind: ExprKind::Not(Box::new(child)),
                    position,
                })
            }
            TokenKind::And | TokenKind::Or => {
                let operator = if token.kind == TokenKind::And {
                    "AND"
                } else {
                    "OR"
                };
                Err(QueryError::new(
                    format!("'{operator}' needs a term before it"),
                    position,
                ))
            }
            TokenKind::LeftParen => {
                self.next += 1;
                if let Some(TokenKind::RightParen) = self.peek_kind() {
                    return Err(QueryError::new("empty parentheses", position));
                }
                let inner = self.or()?;
                match self.peek_kind() {
                    Some(TokenKind::RightParen) => {
                        self.next += 1;
                        Ok(inner)
                    }
                    _ => Err(QueryError::new("unclosed '('", position)),
                }
            }
            TokenKind::RightParen => Err(QueryError::new("unmatched ')'", position)),
            TokenKind::Term(term) => {
                self.next += 1;
                Ok(Expr {
                    kind: ExprKind::Term(term),
                    position,
                })
            }
        }
    }
}

fn combine(mut children: Vec<Expr>, kind: fn(Vec<Expr>) -> ExprKind) -> Expr {
    if children.len() == 1 {
        return children.pop().expect("one child");
    }
    let position = children[0].position;
    Expr {
        kind: kind(children),
        position,
    }
}

/// A compact, unambiguous form for tests and logs: `(OR (AND a b) c)`.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, name: &str, children: &[Expr]| {
            write!(f, "({name}")?;
            for child in children {
                write!(f, " {child}")?;
            }
            write!(f, ")")
        };
        match &self.kind {
            ExprKind::And(children) => list(f, "AND", children),
            ExprKind::Or(children) => list(f, "OR", children),
            ExprKind::Not(child) => write!(f, "(NOT {child})"),
            ExprKind::Term(term) => write!(f, "{term}"),
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(field) = &self.field {
            write!(f, "{}:", field.text)?;
        }
        match &self.value {
            Value::Word(word) => write!(f, "{word}"),
            Value::Phrase(phrase) => write!(f, "{phrase:?}"),
            Value::Prefix(prefix) => write!(f, "{prefix}*"),
            Value::Any => write!(f, "*"),
            Value::Compare(comparison, bound) => write!(f, "{}{}", comparison.symbol(), bound.text),
            Value::Range { lower, upper } => {
                let (open, low) = match lower {
                    RangeEnd::Open => ('[', "*"),
                    RangeEnd::Included(l) => ('[', l.text.as_str()),
                    RangeEnd::Excluded(l) => ('{', l.text.as_str()),
                };
                let (close, high) = match upper {
                    RangeEnd::Open => (']', "*"),
                    RangeEnd::Included(l) => (']', l.text.as_str()),
                    RangeEnd::Excluded(l) => ('}', l.text.as_str()),
                };
                write!(f, "{open}{low} TO {high}{close}")
            }
        }
    }
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
