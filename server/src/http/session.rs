//! `/api/v1/session`: the web UI's sign-in. `POST` exchanges a token for an
//! HttpOnly, SameSite=Strict session cookie, `GET` tells whether the
//! cookie is still good and what it may do, `DELETE` signs out.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::csrf::SameOrigin;
use super::extract::ApiJson;
use super::{AppError, AppState};
use crate::serve::ServedOverTls;
use crate::sessions::SESSION_COOKIE;
use crate::tokens::{AuthError, Scope};

/// The route.
pub const SESSION_PATH: &str = "/api/v1/session";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignIn {
    token: String,
}

/// What a session may do.
#[derive(Debug, Serialize)]
pub(super) struct SessionInfo {
    scopes: Vec<&'static str>,
}

/// The session id in the request's cookies, if any.
pub(super) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

/// Whether the browser reached us over HTTPS (the server's own TLS, or a
/// proxy that says so), in which case the cookie is also `Secure`.
fn over_https(headers: &HeaderMap, tls: Option<ServedOverTls>) -> bool {
    if tls.is_some() {
        return true;
    }
    let header_is = |name: &str, prefix: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with(prefix))
    };
    header_is("x-forwarded-proto", "https") || header_is("origin", "https://")
}

fn cookie(
    headers: &HeaderMap,
    tls: Option<ServedOverTls>,
    value: &str,
    max_age_secs: u64,
) -> Result<HeaderValue, AppError> {
    let secure = if over_https(headers, tls) {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::try_from(format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .map_err(AppError::internal)
}

pub(super) async fn sign_in(
    State(state): State<AppState>,
    tls: Option<Extension<ServedOverTls>>,
    // Even without a cookie yet: a forged sign-in would put the victim in
    // the attacker's session.
    _: SameOrigin,
    headers: HeaderMap,
    ApiJson(SignIn { token }): ApiJson<SignIn>,
) -> Result<Response, AppError> {
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(AuthError::Unauthenticated("token: missing").into());
    }
    let tokens = state.tokens.clone();
    let checked = token.clone();
    let scopes = tokio::task::spawn_blocking(move || tokens.scopes_of(&checked)).await??;
    if !scopes.allows(Scope::Read) {
        return Err(AuthError::Forbidden(Scope::Read).into());
    }
    if let Some(old) = session_cookie(&headers) {
        state.sessions.remove(&old);
    }
    let session = state.sessions.create(&token);
    let tls = tls.map(|Extension(tls)| tls);
    let set_cookie = cookie(&headers, tls, &session.id, session.ttl.as_secs())?;
    let info = SessionInfo {
        scopes: scopes.names(),
    };
    Ok(([(header::SET_COOKIE, set_cookie)], Json(info)).into_response())
}

pub(super) async fn current(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SessionInfo>, AppError> {
    let id = session_cookie(&headers)
        .ok_or(AppError::from(AuthError::Unauthenticated("not signed in")))?;
    let (tokens, sessions) = (state.tokens.clone(), state.sessions.clone());
    let scopes = tokio::task::spawn_blocking(move || sessions.scopes(&tokens, &id)).await??;
    Ok(Json(SessionInfo {
        scopes: scopes.names(),
    }))
}

pub(super) async fn sign_out(
    State(state): State<AppState>,
    tls: Option<Extension<ServedOverTls>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Some(id) = session_cookie(&headers) {
        state.sessions.remove(&id);
    }
    let clear = cookie(&headers, tls.map(|Extension(tls)| tls), "", 0)?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        assert_eq!(session_cookie(&headers), None);
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; loghound_session=abc123 ; x=y"),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc123"));
        let mut empty = HeaderMap::new();
        empty.append(
            header::COOKIE,
            HeaderValue::from_static("loghound_session="),
        );
        assert_eq!(session_cookie(&empty), None);
    }
}
