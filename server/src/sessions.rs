//! Browser sessions: what the web UI's cookie stands for.
//!
//! Signing in exchanges a token for a random session id, which the browser
//! keeps in an HttpOnly cookie. The server keeps only the id's SHA-256, the
//! hash of the token it was made from and an expiry, in memory: a restart
//! signs everyone out, which is cheap since signing in again takes the same
//! token. Every request made with a session is checked against the token
//! store again, so a session has its token's scopes and ends when the token
//! is revoked (within the store's cache time).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::tokens::{hash, AuthError, Scope, Scopes, TokenStore};

/// How long a session lasts after signing in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most sessions held at once; signing in past it ends the session closest
/// to its expiry.
const MAX_SESSIONS: usize = 10_000;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "loghound_session";

#[derive(Debug, Clone)]
struct Session {
    token_hash: String,
    expires_at: Instant,
}

/// A new session as the sign-in answer reports it.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The secret session id, for the cookie only.
    pub id: String,
    /// How long it lasts.
    pub ttl: Duration,
}

/// Live sessions, keyed by the SHA-256 of their id.
#[derive(Clone, Default)]
pub struct Sessions {
    by_hash: Arc<Mutex<HashMap<String, Session>>>,
}

impl Sessions {
    /// Starts a session for `token` (already checked by the caller).
    pub fn create(&self, token: &str) -> NewSession {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let id = hex::encode(secret);
        let now = Instant::now();
        let session = Session {
            token_hash: hash(token),
            expires_at: now + SESSION_TTL,
        };
        let mut map = self.lock();
        map.retain(|_, s| s.expires_at > now);
        if map.len() >= MAX_SESSIONS {
            let soonest = map
                .iter()
                .min_by_key(|(_, s)| s.expires_at)
                .map(|(key, _)| key.clone());
            if let Some(key) = soonest {
                map.remove(&key);
            }
        }
        map.insert(hash(&id), session);
        NewSession {
            id,
            ttl: SESSION_TTL,
        }
    }

    /// Ends the session with this id; ending an unknown one is not an error.
    pub fn remove(&self, id: &str) {
        self.lock().remove(&hash(id));
    }

    /// Authorizes a request made with session `id` for `needed`: the
    /// session must be live and its token still valid with that scope.
    /// Blocking (the token store may read `meta.sqlite`).
    pub fn authorize(&self, tokens: &TokenStore, id: &str, needed: Scope) -> Result<(), AuthError> {
        let token_hash = self.token_hash(id).ok_or(AuthError::Unauthenticated(
            "session expired or signed out: sign in again",
        ))?;
        tokens.authorize_hash(&token_hash, needed)
    }

    /// The scopes of a live session (its token's). Blocking.
    pub fn scopes(&self, tokens: &TokenStore, id: &str) -> Result<Scopes, AuthError> {
        let token_hash = self.token_hash(id).ok_or(AuthError::Unauthenticated(
            "session expired or signed out: sign in again",
        ))?;
        tokens.scopes_of_hash(&token_hash)
    }

    /// The hash of the token behind a live session.
    fn token_hash(&self, id: &str) -> Option<String> {
        let key = hash(id);
        let mut map = self.lock();
        match map.get(&key) {
            Some(session) if session.expires_at > Instant::now() => {
                Some(session.token_hash.clone())
            }
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Sessions held now, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding this lock leaves the map consistent (every
        // change is one insert or remove), so a poisoned lock is still usable.
        self.by_hash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::{create, list, revoke};

    #[test]
    fn a_session_has_its_tokens_scopes_and_ends_on_sign_out() {
        let dir = tempfile::tempdir().unwrap();
        let read = create(dir.path(), &[Scope::Read]).unwrap();
        let tokens = TokenStore::new(dir.path());
        let sessions = Sessions::default();
        let session = sessions.create(&read);
        assert_eq!(session.id.len(), 64);
        assert!(sessions
            .authorize(&tokens, &session.id, Scope::Read)
            .is_ok());
        assert!(matches!(
            sessions.authorize(&tokens, &session.id, Scope::Admin),
            Err(AuthError::Forbidden(Scope::Admin))
        ));
        assert!(matches!(
            sessions.authorize(&tokens, "not-a-session", Scope::Read),
            Err(AuthError::Unauthenticated(_))
        ));
        sessions.remove(&session.id);
        assert!(matches!(
            sessions.authorize(&tokens, &session.id, Scope::Read),
            Err(AuthError::Unauthenticated(_))
        ));
        assert!(sessions.is_empty());
    }

    #[test]
    fn a_session_ends_with_its_token() {
        let dir = tempfile::tempdir().unwrap();
        let read = create(dir.path(), &[Scope::Read]).unwrap();
        let sessions = Sessions::default();
        let session = sessions.create(&read);
        revoke(dir.path(), list(dir.path()).unwrap()[0].id).unwrap();
        // A fresh store has no cache, as a running one has after its TTL.
        let tokens = TokenStore::new(dir.path());
        assert!(matches!(
            sessions.authorize(&tokens, &session.id, Scope::Read),
            Err(AuthError::Unauthenticated(_))
        ));
    }

    #[test]
    fn only_hashes_are_kept() {
        let sessions = Sessions::default();
        let session = sessions.create("lh_secret");
        let map = sessions.lock();
        assert!(!map.contains_key(&session.id));
        assert!(map.values().all(|s| s.token_hash != "lh_secret"));
    }
}
