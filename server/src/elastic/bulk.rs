//! A `_bulk` body: NDJSON pairs of an action line (`{"create": {…}}`)
//! and, except for `delete`, the document line after it.
//!
//! An action line that cannot be read makes the whole request invalid, as
//! in Elasticsearch: after it, which line is a document is unknown. A
//! document that cannot be read, and an action Loghound does not do
//! (`update`, `delete`), refuse only their own item.

use serde_json::{Map, Value};

use super::document::to_event;
use super::ElasticConfig;
use crate::ingest::InEvent;

/// What an item asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Add or replace a document (added: logs are append-only).
    Index,
    /// Add a document.
    Create,
    /// Change a document: refused.
    Update,
    /// Remove a document: refused.
    Delete,
}

impl Action {
    /// The action's name, which also keys its item in the answer.
    pub fn name(self) -> &'static str {
        match self {
            Action::Index => "index",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }

    fn from_name(name: &str) -> Option<Action> {
        Some(match name {
            "index" => Action::Index,
            "create" => Action::Create,
            "update" => Action::Update,
            "delete" => Action::Delete,
            _ => return None,
        })
    }
}

/// One item of a request.
#[derive(Debug)]
pub struct Item {
    /// Its action.
    pub action: Action,
    /// The index it names, or the request path's.
    pub index: Option<String>,
    /// The `_id` it names.
    pub id: Option<String>,
    /// The event, or why the item is refused.
    pub outcome: Outcome,
}

/// What becomes of an item.
#[derive(Debug)]
// Nearly every item is an event: boxing it would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// Its document, to be stored.
    Event(InEvent),
    /// Refused, with an Elasticsearch error type and a reason.
    Refused {
        /// The item's HTTP status.
        status: u16,
        /// The error type (`document_parsing_exception`, …).
        kind: &'static str,
        /// What was wrong.
        reason: String,
    },
}

/// Why a whole request is refused; nothing of it is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BulkError {
    /// No lines at all.
    #[error(
        "the request body is empty: a bulk request holds NDJSON lines, an action such as \
         {{\"create\":{{}}}} and then its document"
    )]
    Empty,
    /// An action line that is not one.
    #[error("Malformed action/metadata line [{line}], {reason}")]
    Action {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The body ends where a document should be.
    #[error("line [{line}]: the {action} action is the last line; its document line is missing")]
    MissingDocument {
        /// 1-based line number of the action.
        line: usize,
        /// Its name.
        action: &'static str,
    },
    /// More items than `max_events`.
    #[error("the request has more than {max} items (limits.max_events)")]
    TooManyItems {
        /// The limit.
        max: usize,
    },
    /// An action line past `max_line_bytes`.
    #[error("line [{line}] is {bytes} bytes, more than limits.max_line_bytes ({max})")]
    LineTooLong {
        /// 1-based line number.
        line: usize,
        /// Its length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
}

/// What a request's documents need besides themselves.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The index in the request's path (`/es/{index}/_bulk`).
    pub path_index: Option<&'a str>,
    /// Host of documents that name none.
    pub default_host: &'a str,
    /// How documents map to events.
    pub config: &'a ElasticConfig,
    /// When the request arrived.
    pub received_at_ms: i64,
    /// `limits.max_events`.
    pub max_items: usize,
    /// `limits.max_line_bytes`.
    pub max_line_bytes: usize,
}

/// Reads the items of a decompressed `_bulk` body.
pub fn parse(body: &[u8], context: &Context<'_>) -> Result<Vec<Item>, BulkError> {
    let mut lines = lines(body).peekable();
    let mut items = Vec::new();
    while let Some((number, line)) = lines.next() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        check_length(number, line, context.max_line_bytes)?;
        if items.len() == context.max_items {
            return Err(BulkError::TooManyItems {
                max: context.max_items,
            });
        }
        let (action, metadata) = action_line(number, line)?;
        let index = metadata
            .index
            .or_else(|| context.path_index.map(str::to_string));
        let outcome = match action {
            Action::Index | Action::Create => {
                let Some((doc_number, document)) = lines.next() else {
                    return Err(BulkError::MissingDocument {
                        line: number,
                        action: action.name(),
                    });
                };
                if document.len() > context.max_line_bytes {
                    too_long(doc_number, document.len(), context.max_line_bytes)
                } else {
                    document_outcome(document, index.as_deref(), context)
                }
            }
            Action::Update => {
                // Its document line is skipped with it.
                if lines.next().is_none() {
                    return Err(BulkError::MissingDocument {
                        line: number,
                        action: action.name(),
                    });
                }
                append_only(action)
            }
            Action::Delete => append_only(action),
        };
        items.push(Item {
            action,
            index,
            id: metadata.id,
            outcome,
        });
    }
    if items.is_empty() {
        return Err(BulkError::Empty);
    }
    Ok(items)
}

/// Lines with their 1-based numbers, without `\n` or `\r\n`.
fn lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    body.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .filter(move |_| !body.is_empty())
}

/// A document line past `max_line_bytes` refuses its own item: resending
/// the request would not make it fit.
fn too_long(line: usize, bytes: usize, max: usize) -> Outcome {
    Outcome::Refused {
        status: 413,
        kind: "content_too_long_exception",
        reason: format!("line [{line}] is {bytes} bytes, more than limits.max_line_bytes ({max})"),
    }
}

fn check_length(line: usize, bytes: &[u8], max: usize) -> Result<(), BulkError> {
    if bytes.len() > max {
        return Err(BulkError::LineTooLong {
            line,
            bytes: bytes.len(),
            max,
        });
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Metadata {
    index: Option<String>,
    id: Option<String>,
}

fn action_line(number: usize, line: &[u8]) -> Result<(Action, Metadata), BulkError> {
    let malformed = |reason: String| BulkError::Action {
        line: number,
        reason,
    };
    let object: Map<String, Value> = serde_json::from_slice(line)
        .map_err(|e| malformed(format!("expected a JSON object: {e}")))?;
    let mut members = object.into_iter();
    let (Some((name, metadata)), None) = (members.next(), members.next()) else {
        return Err(malformed(
            "expected one member, [create], [delete], [index] or [update]".into(),
        ));
    };
    let action = Action::from_name(&name).ok_or_else(|| {
        malformed(format!(
            "expected field [create], [delete], [index] or [update] but found [{name}]"
        ))
    })?;
    let metadata = match metadata {
        Value::Object(metadata) => metadata,
        Value::Null => Map::new(),
        other => {
            return Err(malformed(format!(
                "the [{name}] action's metadata must be an object, not {other}"
            )))
        }
    };
    let text = |key: &str| -> Result<Option<String>, BulkError> {
        match metadata.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if !text.is_empty() => Ok(Some(text.clone())),
            Some(Value::Number(number)) if key == "_id" => Ok(Some(number.to_string())),
            Some(other) => Err(malformed(format!(
                "[{key}] must be a non-empty string, not {other}"
            ))),
        }
    };
    Ok((
        action,
        Metadata {
            index: text("_index")?,
            id: text("_id")?,
        },
    ))
}

fn document_outcome(document: &[u8], index: Option<&str>, context: &Context<'_>) -> Outcome {
    match serde_json::from_slice::<Value>(document) {
        Ok(Value::Object(document)) => Outcome::Event(to_event(
            document,
            index,
            context.default_host,
            context.config,
            context.received_at_ms,
        )),
        Ok(other) => Outcome::Refused {
            status: 400,
            kind: "document_parsing_exception",
            reason: format!(
                "the document must be a JSON object, not {}",
                kind_of(&other)
            ),
        },
        Err(error) => Outcome::Refused {
            status: 400,
            kind: "document_parsing_exception",
            reason: format!("failed to parse the document: {error}"),
        },
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn append_only(action: Action) -> Outcome {
    Outcome::Refused {
        status: 400,
        kind: "illegal_argument_exception",
        reason: format!(
            "Loghound keeps logs append-only: [{}] is not supported; use [index] or [create]",
            action.name()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_body(body: &str) -> Result<Vec<Item>, BulkError> {
        let config = ElasticConfig::default();
        let context = Context {
            path_index: Some("from-path"),
            default_host: "peer",
            config: &config,
            received_at_ms: 1_765_000_000_000,
            max_items: 4,
            max_line_bytes: 200,
        };
        parse(body.as_bytes(), &context)
    }

    fn message(item: &Item) -> &str {
        match &item.outcome {
            Outcome::Event(event) => &event.message,
            Outcome::Refused { reason, .. } => panic!("refused: {reason}"),
        }
    }

    fn refusal(item: &Item) -> (u16, &'static str) {
        match &item.outcome {
            Outcome::Refused { status, kind, .. } => (*status, kind),
            Outcome::Event(event) => panic!("stored: {}", event.message),
        }
    }

    #[test]
    fn items_keep_their_order_index_and_id() {
        let items = parse_body(concat!(
            "{\"index\":{\"_index\":\"web\",\"_id\":\"a1\"}}\n",
            "{\"message\":\"one\"}\r\n",
            "{\"create\":{}}\n",
            "{\"message\":\"two\"}\n",
            "\n",
            "{\"create\":null}\n",
            "{\"message\":\"three\"}",
        ))
        .unwrap_or_default();
        assert_eq!(items.len(), 3);
        assert_eq!(message(&items[0]), "one");
        assert_eq!(items[0].index.as_deref(), Some("web"));
        assert_eq!(items[0].id.as_deref(), Some("a1"));
        assert_eq!(items[0].action, Action::Index);
        assert_eq!(message(&items[1]), "two");
        assert_eq!(items[1].index.as_deref(), Some("from-path"));
        assert_eq!(items[1].action, Action::Create);
        assert_eq!(message(&items[2]), "three");
    }

    #[test]
    fn a_bad_document_or_action_refuses_its_item_only() {
        let items = parse_body(concat!(
            "{\"create\":{}}\n",
            "{\"message\": oops}\n",
            "{\"delete\":{\"_id\":\"x\"}}\n",
            "{\"update\":{\"_id\":\"x\"}}\n",
            "{\"doc\":{\"a\":1}}\n",
            "{\"create\":{}}\n",
            "[1,2]\n",
        ))
        .unwrap_or_default();
        assert_eq!(items.len(), 4);
        assert_eq!(refusal(&items[0]), (400, "document_parsing_exception"));
        assert_eq!(refusal(&items[1]), (400, "illegal_argument_exception"));
        assert_eq!(items[1].action, Action::Delete);
        assert_eq!(refusal(&items[2]), (400, "illegal_argument_exception"));
        assert_eq!(refusal(&items[3]), (400, "document_parsing_exception"));
    }

    #[test]
    fn requests_that_cannot_be_read_are_refused_whole() {
        let action = |body: &str| match parse_body(body) {
            Err(BulkError::Action { line, .. }) => line,
            other => panic!("{body:?}: {other:?}"),
        };
        assert_eq!(
            action("{\"create\":{}}\n{\"m\":1}\n{\"upsert\":{}}\n{}\n"),
            3
        );
        assert_eq!(action("not json\n"), 1);
        assert_eq!(action("{\"create\":{},\"index\":{}}\n{}\n"), 1);
        assert_eq!(action("{\"create\":\"web\"}\n{}\n"), 1);
        assert_eq!(action("{\"create\":{\"_index\":7}}\n{}\n"), 1);
        assert_eq!(parse_body("").err(), Some(BulkError::Empty));
        assert_eq!(parse_body("\n\n").err(), Some(BulkError::Empty));
        assert_eq!(
            parse_body("{\"index\":{}}\n").err(),
            Some(BulkError::MissingDocument {
                line: 1,
                action: "index"
            })
        );
        let five = "{\"create\":{}}\n{}\n".repeat(5);
        assert_eq!(
            parse_body(&five).err(),
            Some(BulkError::TooManyItems { max: 4 })
        );
        let long = format!("{{\"create\":{{\"_id\":\"{}\"}}}}\n{{}}\n", "x".repeat(300));
        assert!(matches!(
            parse_body(&long),
            Err(BulkError::LineTooLong { line: 1, .. })
        ));
    }

    #[test]
    fn a_document_too_long_refuses_its_own_item() {
        let body = format!(
            "{{\"create\":{{}}}}\n{{\"message\":\"{}\"}}\n{{\"create\":{{}}}}\n{{\"message\":\"fits\"}}\n",
            "x".repeat(300)
        );
        let items = parse_body(&body).unwrap_or_default();
        assert_eq!(items.len(), 2);
        assert_eq!(refusal(&items[0]), (413, "content_too_long_exception"));
        assert_eq!(message(&items[1]), "fits");
    }
}
