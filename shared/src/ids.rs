//! Identifier newtypes. An agent id, a file id and a byte offset are not
//! interchangeable strings and integers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest accepted agent or file identifier, in bytes.
pub const MAX_ID_BYTES: usize = 128;

/// An identifier that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct InvalidId {
    /// Which identifier (`agent id`, `file id`).
    pub kind: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn validate(kind: &'static str, value: &str) -> Result<(), InvalidId> {
    let fail = |reason: String| Err(InvalidId { kind, reason });
    if value.is_empty() {
        return fail("empty".into());
    }
    if value.len() > MAX_ID_BYTES {
        return fail(format!("{} bytes, at most {MAX_ID_BYTES}", value.len()));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return fail(format!(
            "character {c:?} not allowed (use A-Z a-z 0-9 - _ .)"
        ));
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an identifier.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                validate($kind, &value)?;
                Ok(Self(value))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, InvalidId> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// Names one agent installation; chosen once by the agent and kept in
    /// its state directory, so it survives restarts and host renames.
    AgentId,
    "agent id"
);

string_id!(
    /// Names one file's content stream as the agent sees it: stable across
    /// renames, different for a new file that reuses an inode, and new
    /// after the file is truncated.
    FileId,
    "file id"
);

/// A byte position in a followed file.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ByteOffset(pub u64);

impl fmt::Display for ByteOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_plain_names_and_reject_others() {
        assert!(AgentId::new("web3-7f2a.prod_1").is_ok());
        assert!(AgentId::new("").is_err());
        assert!(FileId::new("a b").is_err());
        assert!(FileId::new("x".repeat(MAX_ID_BYTES + 1)).is_err());
        let err = AgentId::new("ü").unwrap_err();
        assert_eq!(err.kind, "agent id");
    }

    #[test]
    fn ids_validate_when_deserialized() {
        assert!(serde_json::from_str::<FileId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<FileId>("\"not ok\"").is_err());
    }
}
