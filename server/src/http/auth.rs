//! Who may call a route, in its handler's signature: an extractor per
//! scope that checks the request's credential before the handler runs
//! (and before any other extractor that reads the request), so a caller
//! without the scope learns nothing from the route.
//!
//! The credential is the bearer token or, without an `Authorization`
//! header, the web UI's session cookie, which has its token's scopes
//! ([`AppState::authorize`]). Cookie requests that change state have
//! passed the CSRF guard (`csrf.rs`) before they get here.
//!
//! | extractor | scope | routes |
//! |---|---|---|
//! | [`RequireIngest`] | `ingest` | ingest |
//! | [`RequireRead`] | `read` (or `admin`) | search, histogram, context, tail, reading saved searches |
//! | [`RequireAdmin`] | `admin` | changing saved searches, every alert rule route |

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::{AppError, AppState};
use crate::tokens::Scope;

/// The request may send batches.
#[derive(Debug, Clone, Copy)]
pub struct RequireIngest;

/// The request may search and tail.
#[derive(Debug, Clone, Copy)]
pub struct RequireRead;

/// The request may manage saved searches and alert rules.
#[derive(Debug, Clone, Copy)]
pub struct RequireAdmin;

impl FromRequestParts<AppState> for RequireIngest {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        state.authorize(&parts.headers, Scope::Ingest).await?;
        Ok(RequireIngest)
    }
}

impl FromRequestParts<AppState> for RequireRead {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        state.authorize(&parts.headers, Scope::Read).await?;
        Ok(RequireRead)
    }
}

impl FromRequestParts<AppState> for RequireAdmin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        state.authorize(&parts.headers, Scope::Admin).await?;
        Ok(RequireAdmin)
    }
}
