//! Cross-site request forgery: a browser attaches the session cookie to
//! whatever request a page makes, so a request that changes state and is
//! authenticated only by that cookie must prove it comes from our own
//! page. It does so with the header `X-Loghound-CSRF: 1` (a page on
//! another origin cannot add a custom header without a CORS preflight,
//! which this server never grants) or an `Origin` naming this server.
//! Requests with `Authorization: Bearer` carry no ambient credential and
//! pass; so do requests without a session cookie (the handler answers 401).
//! `SameSite=Strict` on the cookie is a second line of defence, not the
//! only one: older browsers and same-site subdomains do not honour it.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::session::session_cookie;
use super::AppError;

/// The header the web UI sends on every request.
pub const CSRF_HEADER: &str = "x-loghound-csrf";

/// Refuses cookie-authenticated state-changing requests without proof of
/// origin, before any handler runs.
pub(super) async fn guard(request: Request, next: Next) -> Response {
    if needs_proof(request.method(), request.headers()) {
        if let Err(error) = require_same_origin(request.headers()) {
            return error.into_response();
        }
    }
    next.run(request).await
}

/// The request proved it comes from our own page ([`require_same_origin`]),
/// whatever its credential: what sign-in needs before it reads its body.
#[derive(Debug, Clone, Copy)]
pub(super) struct SameOrigin;

impl<S: Send + Sync> FromRequestParts<S> for SameOrigin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        require_same_origin(&parts.headers)?;
        Ok(SameOrigin)
    }
}

fn needs_proof(method: &Method, headers: &HeaderMap) -> bool {
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    !safe && !headers.contains_key(header::AUTHORIZATION) && session_cookie(headers).is_some()
}

/// Passes when the request carries `X-Loghound-CSRF: 1` or an `Origin`
/// whose host is this request's `Host`.
fn require_same_origin(headers: &HeaderMap) -> Result<(), AppError> {
    let has_header = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "1");
    if has_header || origin_matches_host(headers) {
        return Ok(());
    }
    Err(AppError::new(
        StatusCode::FORBIDDEN,
        "cross-site request refused: a request signed in by cookie that changes \
         state must send `X-Loghound-CSRF: 1` or an `Origin` of this server",
    ))
}

fn origin_matches_host(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(origin), Some(host)) = (text(header::ORIGIN), text(header::HOST)) else {
        return false;
    };
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    origin_host.is_some_and(|h| h.eq_ignore_ascii_case(host.trim()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn only_cookie_requests_that_change_state_need_proof() {
        let cookie = ("cookie", "loghound_session=abc");
        assert!(needs_proof(&Method::POST, &headers(&[cookie])));
        assert!(needs_proof(&Method::DELETE, &headers(&[cookie])));
        assert!(!needs_proof(&Method::GET, &headers(&[cookie])));
        assert!(!needs_proof(&Method::POST, &headers(&[])));
        assert!(!needs_proof(
            &Method::POST,
            &headers(&[cookie, ("authorization", "Bearer lh_x")])
        ));
    }

    #[test]
    fn proof_is_the_header_or_our_own_origin() {
        assert!(require_same_origin(&headers(&[("x-loghound-csrf", "1")])).is_ok());
        assert!(require_same_origin(&headers(&[("x-loghound-csrf", "0")])).is_err());
        let ours = [("origin", "http://logs:7700"), ("host", "logs:7700")];
        assert!(require_same_origin(&headers(&ours)).is_ok());
        let theirs = [("origin", "http://evil.example"), ("host", "logs:7700")];
        assert!(require_same_origin(&headers(&theirs)).is_err());
        let null = [("origin", "null"), ("host", "logs:7700")];
        assert!(require_same_origin(&headers(&null)).is_err());
        let port = [("origin", "http://logs:7701"), ("host", "logs:7700")];
        assert!(require_same_origin(&headers(&port)).is_err());
    }
}
