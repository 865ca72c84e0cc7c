//! The HTTP API: routes, shared state and handlers.

mod alerts;
mod context;
mod error;
mod histogram;
mod ingest;
mod params;
mod search;
mod tail;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use loghound_shared::api::INGEST_PATH;

pub use self::error::AppError;
pub use self::tail::{TailLimits, Tails, TAIL_PATH};
use crate::index::search::Searcher;
use crate::ingest::IngestBackend;
use crate::tokens::{Scope, TokenStore};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Where batches go.
    pub ingest: Arc<dyn IngestBackend>,
    /// Queries the indexes.
    pub searcher: Arc<Searcher>,
    /// Checks bearer tokens.
    pub tokens: TokenStore,
    /// Largest accepted request body (compressed).
    pub max_body_bytes: usize,
    /// Longest wait for the next piece of a request body; a client that
    /// stalls longer gets 408 and its connection back.
    pub body_idle_timeout: std::time::Duration,
    /// The WAL sequence number the indexer has committed through: every
    /// event of a record up to it is searchable. Changes on each commit.
    pub committed: tokio::sync::watch::Receiver<u64>,
    /// Live tails: their limits, gauges and shutdown.
    pub tails: Arc<Tails>,
    /// Saved searches, alert rules and their delivery.
    pub alerts: Arc<crate::alerts::Alerts>,
}

impl AppState {
    /// Checks the request's token for `scope`.
    pub async fn authorize(
        &self,
        headers: &axum::http::HeaderMap,
        scope: Scope,
    ) -> Result<(), AppError> {
        let authorization = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let tokens = self.tokens.clone();
        tokio::task::spawn_blocking(move || tokens.authorize(authorization.as_deref(), scope))
            .await
            .map_err(AppError::internal)??;
        Ok(())
    }
}

/// The router, without a socket, so tests can call it directly.
pub fn app(state: AppState) -> Router {
    // The ingest handler reads the body itself to answer oversize bodies
    // with the JSON error every client expects.
    Router::new()
        .route(
            INGEST_PATH,
            post(ingest::ingest).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/search", get(search::search))
        .route(TAIL_PATH, get(tail::tail))
        .route("/api/v1/histogram", get(histogram::histogram))
        .route("/api/v1/context", get(context::context))
        .route(
            "/api/v1/searches",
            get(alerts::list_searches).post(alerts::create_search),
        )
        .route(
            "/api/v1/searches/{id}",
            get(alerts::get_search)
                .put(alerts::update_search)
                .delete(alerts::delete_search),
        )
        .route(
            "/api/v1/alerts",
            get(alerts::list_rules).post(alerts::create_rule),
        )
        .route(
            "/api/v1/alerts/{id}",
            get(alerts::get_rule)
                .put(alerts::update_rule)
                .delete(alerts::delete_rule),
        )
        .route("/api/v1/alerts/{id}/history", get(alerts::history))
        .route("/api/v1/alerts/{id}/test", post(alerts::test))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .fallback(|| async { AppError::new(axum::http::StatusCode::NOT_FOUND, "no such route") })
        .with_state(state)
}
