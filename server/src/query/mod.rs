//! Loghound's query language: one syntax for the web UI, the CLI, saved
//! searches and alerts (reference: `docs/QUERY.md`).
//!
//! Text goes through three steps, each in its own module:
//! - [`lexer`]: characters → tokens (words, `field:value` terms, quoted
//!   phrases, ranges, parentheses and the `AND`/`OR`/`NOT`/`-` operators);
//! - [`parser`]: tokens → an [`Expr`] tree with character positions,
//!   precedence `NOT` > `AND` > `OR`;
//! - [`compile`](mod@compile): the tree → a tantivy query over the day
//!   index schema, analysing words exactly as the indexer does.
//!
//! After the search, `| stats …`, `| timechart …`, `| top …`, `| sort …`
//! and `| limit …` turn matches into a table; [`pipe`] parses them.
//!
//! [`compile()`] is the single entry point for queries that answer lines.
//! Every malformed query is a [`QueryError`] with the 0-based character
//! offset of the problem; no input panics.

pub mod compile;
pub mod lexer;
pub mod parser;
pub mod pipe;

#[cfg(test)]
mod compile_tests;
#[cfg(test)]
mod pipe_tests;

pub use compile::{compile, compile_search};
pub use parser::{parse, Comparison, Expr, ExprKind, Literal, RangeEnd, Term, Value};

/// A malformed query: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {position})")]
pub struct QueryError {
    /// What is wrong, precisely enough to fix it.
    pub message: String,
    /// 0-based offset, in characters (not bytes), of the problem.
    pub position: usize,
}

impl QueryError {
    /// An error at a character offset.
    pub fn new(message: impl Into<String>, position: usize) -> Self {
        QueryError {
            message: message.into(),
            position,
        }
    }
}
