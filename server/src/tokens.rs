//! API tokens and their scopes. Only a SHA-256 hash of each token is
//! stored; a token is shown once, when it is created.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngCore;
use rusqlite::OptionalExtension;
use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Send batches (agents).
    Ingest,
    /// Search and tail.
    Read,
    /// Manage rules and tokens; also allows everything `read` does.
    Admin,
}

impl Scope {
    /// The scope's name on the command line and in storage.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ingest" => Ok(Scope::Ingest),
            "read" => Ok(Scope::Read),
            "admin" => Ok(Scope::Admin),
            other => Err(format!(
                "unknown scope {other:?} (expected ingest, read or admin)"
            )),
        }
    }
}

/// The scopes a token holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    /// Whether these scopes allow an action that needs `needed`.
    pub fn allows(&self, needed: Scope) -> bool {
        self.0.contains(&needed) || (needed == Scope::Read && self.0.contains(&Scope::Admin))
    }

    fn encode(&self) -> String {
        self.0
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(",")
    }

    fn decode(text: &str) -> Self {
        Scopes(text.split(',').filter_map(|s| s.parse().ok()).collect())
    }

    /// The scopes' names, in a fixed order.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|s| s.name()).collect()
    }
}

/// Why a request is not authorized.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token, or one this server does not know.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// A valid token without the needed scope.
    #[error("token lacks the `{0}` scope")]
    Forbidden(Scope),
    /// The token store could not be read.
    #[error("token store: {0}")]
    Store(#[from] rusqlite::Error),
}

/// Why creating, listing or revoking tokens failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// A token needs at least one scope.
    #[error("at least one --scope is needed")]
    NoScopes,
    /// No token has this id, or it was revoked already.
    #[error("no active token with id {0}")]
    NoActiveToken(i64),
    /// `meta.sqlite` could not be read or written.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// The SHA-256 of a secret (a token or a session id), as stored.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Creates a token with the given scopes, stores its hash, and returns it.
pub fn create(data_dir: &Path, scopes: &[Scope]) -> Result<String, TokenError> {
    if scopes.is_empty() {
        return Err(TokenError::NoScopes);
    }
    let mut secret = [0u8; 24];
    rand::rng().fill_bytes(&mut secret);
    let token = format!("lh_{}", hex::encode(secret));
    let scopes = Scopes(scopes.iter().copied().collect());
    let conn = crate::meta::open(data_dir)?;
    conn.execute(
        "INSERT INTO tokens (hash, scopes, created_at) VALUES (?1, ?2, ?3)",
        rusqlite::params![hash(&token), scopes.encode(), now_unix()],
    )?;
    Ok(token)
}

/// A stored token as `loghound token list` shows it; the secret itself is
/// not stored, so it cannot be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The token's number, for `loghound token revoke`.
    pub id: i64,
    /// Its scopes, comma-separated.
    pub scopes: String,
    /// When it was created, seconds since the Unix epoch.
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// Every token, oldest first.
pub fn list(data_dir: &Path) -> Result<Vec<TokenInfo>, TokenError> {
    let conn = crate::meta::open(data_dir)?;
    let mut statement =
        conn.prepare("SELECT id, scopes, created_at, revoked_at FROM tokens ORDER BY id")?;
    let rows = statement.query_map([], |row| {
        Ok(TokenInfo {
            id: row.get(0)?,
            scopes: row.get(1)?,
            created_at: row.get(2)?,
            revoked_at: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revokes token `id`. A running server stops accepting it within
/// [`CACHE_TTL`]. Fails if there is no such token or it was revoked already.
pub fn revoke(data_dir: &Path, id: i64) -> Result<(), TokenError> {
    let conn = crate::meta::open(data_dir)?;
    let changed = conn.execute(
        "UPDATE tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
        rusqlite::params![now_unix(), id],
    )?;
    if changed != 1 {
        return Err(TokenError::NoActiveToken(id));
    }
    Ok(())
}

/// The id of the token most recently created, for messages.
pub fn last_id(data_dir: &Path) -> Result<i64, TokenError> {
    let conn = crate::meta::open(data_dir)?;
    Ok(conn.query_row("SELECT MAX(id) FROM tokens", [], |row| row.get(0))?)
}

/// How long a looked-up token is trusted before it is read again, so that
/// tokens created or revoked while the server runs take effect soon.
const CACHE_TTL: Duration = Duration::from_secs(10);

/// Token hash → its scopes (`None`: unknown) and when that was read.
type TokenCache = HashMap<String, (Option<Scopes>, Instant)>;

/// Checks bearer tokens against `meta.sqlite`, with a short-lived cache.
#[derive(Clone)]
pub struct TokenStore {
    data_dir: PathBuf,
    cache: Arc<Mutex<TokenCache>>,
}

impl TokenStore {
    /// A store over the data directory's `meta.sqlite`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            cache: Arc::default(),
        }
    }

    /// Authorizes a request carrying `authorization` (the raw header value)
    /// for an action needing `needed`. Blocking: call from a blocking context.
    pub fn authorize(&self, authorization: Option<&str>, needed: Scope) -> Result<(), AuthError> {
        let header = authorization.ok_or(AuthError::Unauthenticated(
            "missing token: send `Authorization: Bearer <token>`",
        ))?;
        let token = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Unauthenticated(
                "malformed Authorization header: expected `Bearer <token>`",
            ))?;
        // Lookup is by hash, so the comparison never touches the secret itself.
        self.authorize_hash(&hash(token), needed)
    }

    /// The scopes of a live (known, not revoked) token, given the token
    /// itself. Blocking.
    pub fn scopes_of(&self, token: &str) -> Result<Scopes, AuthError> {
        self.scopes_of_hash(&hash(token))
    }

    /// The scopes of a live token known by its hash. Blocking.
    pub fn scopes_of_hash(&self, token_hash: &str) -> Result<Scopes, AuthError> {
        self.lookup(token_hash)?
            .ok_or(AuthError::Unauthenticated("unknown or revoked token"))
    }

    /// Like [`TokenStore::authorize`], for a token known by its hash (a
    /// session remembers only that). Blocking.
    pub fn authorize_hash(&self, token_hash: &str, needed: Scope) -> Result<(), AuthError> {
        if self.scopes_of_hash(token_hash)?.allows(needed) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(needed))
        }
    }

    fn lookup(&self, token_hash: &str) -> Result<Option<Scopes>, AuthError> {
        if let Ok(cache) = self.cache.lock() {
            if let Some((scopes, at)) = cache.get(token_hash) {
                if at.elapsed() < CACHE_TTL {
                    return Ok(scopes.clone());
                }
            }
        }
        let conn = crate::meta::open(&self.data_dir)?;
        let scopes = conn
            .query_row(
                "SELECT scopes FROM tokens WHERE hash = ?1 AND revoked_at IS NULL",
                [token_hash],
                |row| row.get::<_, String>(0),
            )
            .optional()?
            .map(|text| Scopes::decode(&text));
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(token_hash.to_string(), (scopes.clone(), Instant::now()));
        }
        Ok(scopes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let ingest = create(dir.path(), &[Scope::Ingest]).unwrap();
        let read = create(dir.path(), &[Scope::Read]).unwrap();
        let admin = create(dir.path(), &[Scope::Admin]).unwrap();
        let store = TokenStore::new(dir.path());
        let auth = |t: &str, s| store.authorize(Some(&format!("Bearer {t}")), s);
        assert!(auth(&ingest, Scope::Ingest).is_ok());
        assert!(matches!(
            auth(&ingest, Scope::Read),
            Err(AuthError::Forbidden(_))
        ));
        assert!(auth(&read, Scope::Read).is_ok());
        assert!(matches!(
            auth(&read, Scope::Ingest),
            Err(AuthError::Forbidden(_))
        ));
        assert!(auth(&admin, Scope::Read).is_ok());
        assert!(matches!(
            auth("lh_nope", Scope::Read),
            Err(AuthError::Unauthenticated(_))
        ));
        assert!(matches!(
            store.authorize(None, Scope::Read),
            Err(AuthError::Unauthenticated(_))
        ));
        assert!(matches!(
            store.authorize(Some("Basic abc"), Scope::Read),
            Err(AuthError::Unauthenticated(_))
        ));
    }

    #[test]
    fn revoked_tokens_are_listed_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keep = create(dir.path(), &[Scope::Read]).unwrap();
        let drop = create(dir.path(), &[Scope::Ingest, Scope::Admin]).unwrap();
        let listed = list(dir.path()).unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].scopes, "ingest,admin");
        revoke(dir.path(), listed[1].id).unwrap();
        assert!(revoke(dir.path(), listed[1].id).is_err(), "twice");
        assert!(revoke(dir.path(), 999).is_err(), "unknown id");
        let listed = list(dir.path()).unwrap();
        assert!(listed[0].revoked_at.is_none() && listed[1].revoked_at.is_some());
        let store = TokenStore::new(dir.path());
        let auth = |t: &str, s| store.authorize(Some(&format!("Bearer {t}")), s);
        assert!(auth(&keep, Scope::Read).is_ok());
        assert!(matches!(
            auth(&drop, Scope::Ingest),
            Err(AuthError::Unauthenticated(_))
        ));
    }

    #[test]
    fn only_the_hash_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let token = create(dir.path(), &[Scope::Read]).unwrap();
        let needle = token.as_bytes();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let raw = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(!raw.windows(needle.len()).any(|w| w == needle));
        }
    }
}
