//! The HTTP API: routes, shared state and handlers.
//!
//! A handler names what it needs in its signature: a scope extractor
//! (`auth.rs`: [`RequireRead`], [`RequireAdmin`], [`RequireIngest`]) and
//! the request's parts through `extract.rs`, whose rejections are JSON
//! error bodies; it returns `Result<_, AppError>`, and `error.rs` is the
//! one place where errors become answers. The answers' types are the API's
//! own, in `loghound_shared::api`.

mod alerts;
mod auth;
mod body;
mod context;
mod csrf;
mod elastic;
mod error;
mod extract;
mod fields;
mod histogram;
mod ingest;
mod otlp;
mod params;
mod search;
mod session;
mod stats;
mod tail;
mod ui;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::Router;
use loghound_shared::api::{FIELDS_PATH, INGEST_PATH, STATS_PATH, TAIL_PATH};

pub use self::auth::{RequireAdmin, RequireIngest, RequireRead};
pub use self::csrf::CSRF_HEADER;
pub use self::error::AppError;
pub use self::session::SESSION_PATH;
pub use self::tail::{TailLimits, Tails};
use crate::index::search::Searcher;
use crate::ingest::Ingest;
use crate::sessions::Sessions;
use crate::tokens::{Scope, TokenStore};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Where batches go: the entry point every input calls.
    pub ingest: Arc<Ingest>,
    /// Queries the indexes.
    pub searcher: Arc<Searcher>,
    /// Checks bearer tokens.
    pub tokens: TokenStore,
    /// Largest accepted request body (compressed).
    pub max_body_bytes: usize,
    /// Longest wait for the next piece of a request body; a client that
    /// stalls longer gets 408 and its connection back.
    pub body_idle_timeout: std::time::Duration,
    /// Longest time a connection may take to send a request's headers;
    /// applied by `serve::serve_until` to every connection.
    pub header_read_timeout: std::time::Duration,
    /// The WAL sequence number the indexer has committed through: every
    /// event of a record up to it is searchable. Changes on each commit.
    pub committed: tokio::sync::watch::Receiver<u64>,
    /// Live tails: their limits, gauges and shutdown.
    pub tails: Arc<Tails>,
    /// Saved searches, alert rules and their delivery.
    pub alerts: Arc<crate::alerts::Alerts>,
    /// The web UI's signed-in browsers.
    pub sessions: Sessions,
    /// The Elasticsearch-compatible API's settings, when it is on.
    pub elastic: Option<Arc<crate::elastic::ElasticConfig>>,
    /// OTLP logs' settings, when `POST /v1/logs` is on.
    pub otlp: Option<Arc<crate::otlp::OtlpConfig>>,
}

/// The address a request's connection comes from, set by the server on
/// each request (absent when the router is called directly).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

impl AppState {
    /// Checks that the request may do what needs `scope`: by its bearer
    /// token or, without one, by its session cookie (which has its token's
    /// scopes). Cookie requests that change state have already passed the
    /// CSRF guard of [`app`]. Handlers take a scope extractor
    /// ([`RequireRead`], …), which calls this, rather than calling it.
    pub async fn authorize(
        &self,
        headers: &axum::http::HeaderMap,
        scope: Scope,
    ) -> Result<(), AppError> {
        let authorization = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let session_id = match authorization {
            None => session::session_cookie(headers),
            Some(_) => None,
        };
        let tokens = self.tokens.clone();
        let sessions = self.sessions.clone();
        tokio::task::spawn_blocking(move || match session_id {
            Some(id) => sessions.authorize(&tokens, &id, scope),
            None => tokens.authorize(authorization.as_deref(), scope),
        })
        .await??;
        Ok(())
    }
}

/// Any request no route takes.
async fn no_route(
    State(state): State<AppState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if state.elastic.is_some() && elastic::is_under(uri.path()) {
        return elastic::unsupported(&method, &uri).into_response();
    }
    AppError::new(axum::http::StatusCode::NOT_FOUND, "no such route").into_response()
}

/// The router, without a socket, so tests can call it directly.
pub fn app(state: AppState) -> Router {
    // The ingest handler reads the body itself to answer oversize bodies
    // with the JSON error every client expects.
    let router = Router::new()
        .route(
            INGEST_PATH,
            post(ingest::ingest).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/search", get(search::search))
        .route(TAIL_PATH, get(tail::tail))
        .route("/api/v1/histogram", get(histogram::histogram))
        .route(STATS_PATH, get(stats::stats))
        .route(FIELDS_PATH, get(fields::fields))
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
        .route(
            SESSION_PATH,
            post(session::sign_in)
                .get(session::current)
                .delete(session::sign_out),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .route("/assets/{*path}", get(ui::asset));
    let router = ui::PAGE_PATHS
        .iter()
        .fold(router, |router, path| router.route(path, get(ui::page)));
    let router = match state.elastic {
        Some(_) => router.merge(elastic::routes()),
        None => router,
    };
    let router = match state.otlp {
        Some(_) => router.merge(otlp::routes()),
        None => router,
    };
    router
        .fallback(no_route)
        .layer(axum::middleware::from_fn(csrf::guard))
        .with_state(state)
}
