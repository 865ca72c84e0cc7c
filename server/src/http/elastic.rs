//! The Elasticsearch-compatible API under `/es` (on when `[elasticsearch]`
//! is set): `_bulk`, and the few calls shippers make at start (`GET /`,
//! `_license`, `_xpack`, `_cluster/health`, templates and ILM policies)
//! answered as a cluster that has nothing to set up would.
//!
//! Every answer, errors included, has Elasticsearch's shape and its
//! `X-Elastic-Product` header, which the official clients check. The
//! credential is an ingest token: as the password of basic auth (any user
//! name, or the token as the user name with no password), as `ApiKey
//! <token>` (or Elasticsearch's `ApiKey base64(<id>:<token>)`) or as
//! `Bearer <token>`. 401s carry no `WWW-Authenticate` challenge, so that
//! a browser never prompts for, and then sends by itself, credentials
//! for this API.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use base64::Engine as _;
use serde_json::{json, Value};

use super::body::{decompress, encoding_of, read_body};
use super::{AppError, AppState, Peer};
use crate::elastic::bulk::{self, BulkError, Item, Outcome};
use crate::elastic::ElasticConfig;
use crate::ingest::{IngestError, Origin, Submission};
use crate::log::LogPosition;
use crate::tokens::{hash, AuthError, Scope};

/// Where the API is served.
pub const PREFIX: &str = "/es";

/// The origin of every document sent here.
pub const INPUT_NAME: &str = "elasticsearch";

/// Longest wait of `?refresh=true` or `wait_for` for the items to become
/// searchable; past it the answer goes out anyway (they are durable).
const REFRESH_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// The routes, for [`super::app`] to merge.
pub(super) fn routes() -> Router<AppState> {
    let setup = || {
        get(absent)
            .head(absent)
            .put(acknowledged)
            .post(acknowledged)
            .fallback(method_not_allowed)
    };
    let info = || get(info).head(info).fallback(method_not_allowed);
    Router::new()
        .route(PREFIX, info())
        .route("/es/", info())
        .route(
            "/es/_bulk",
            post(bulk_all).put(bulk_all).fallback(method_not_allowed),
        )
        .route(
            "/es/{index}/_bulk",
            post(bulk_index)
                .put(bulk_index)
                .fallback(method_not_allowed),
        )
        .route("/es/_license", get(license).fallback(method_not_allowed))
        .route("/es/_xpack", get(xpack).fallback(method_not_allowed))
        .route(
            "/es/_cluster/health",
            get(cluster_health).fallback(method_not_allowed),
        )
        .route("/es/_index_template/{name}", setup())
        .route("/es/_template/{name}", setup())
        .route("/es/_component_template/{name}", setup())
        .route("/es/_ilm/policy/{name}", setup())
        .route("/es/_ingest/pipeline/{name}", setup())
}

async fn method_not_allowed(method: Method, uri: Uri) -> EsError {
    EsError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "illegal_argument_exception",
        format!(
            "Incorrect HTTP method for uri [{}] and method [{method}]",
            uri.path()
        ),
    )
}

/// Whether `path` is under [`PREFIX`], for the router's fallback.
pub(super) fn is_under(path: &str) -> bool {
    path.strip_prefix(PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// An answer in Elasticsearch's shape.
fn answer(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

/// An error in Elasticsearch's shape: `{"error": {"type", "reason", …},
/// "status"}`.
#[derive(Debug)]
pub(super) struct EsError {
    status: StatusCode,
    kind: &'static str,
    reason: String,
    retry_after_secs: Option<u64>,
}

impl EsError {
    fn new(status: StatusCode, kind: &'static str, reason: impl Into<String>) -> Self {
        EsError {
            status,
            kind,
            reason: reason.into(),
            retry_after_secs: None,
        }
    }

    fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            reason,
        )
    }
}

impl IntoResponse for EsError {
    fn into_response(self) -> Response {
        let cause = json!({"type": self.kind, "reason": self.reason});
        let mut response = answer(
            self.status,
            json!({
                "error": {"root_cause": [cause], "type": self.kind, "reason": self.reason},
                "status": self.status.as_u16(),
            }),
        );
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<AppError> for EsError {
    fn from(error: AppError) -> Self {
        let (status, message, retry_after_secs) = error.parts();
        let kind = match status {
            StatusCode::TOO_MANY_REQUESTS => "es_rejected_execution_exception",
            StatusCode::PAYLOAD_TOO_LARGE => "content_too_long_exception",
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "security_exception",
            s if s.is_server_error() => "exception",
            _ => "illegal_argument_exception",
        };
        EsError {
            status,
            kind,
            reason: message.to_string(),
            retry_after_secs,
        }
    }
}

impl From<IngestError> for EsError {
    fn from(error: IngestError) -> Self {
        AppError::from(error).into()
    }
}

impl From<BulkError> for EsError {
    fn from(error: BulkError) -> Self {
        match error {
            BulkError::TooManyItems { .. } | BulkError::LineTooLong { .. } => EsError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "content_too_long_exception",
                error.to_string(),
            ),
            BulkError::Action { .. } => EsError::new(
                StatusCode::BAD_REQUEST,
                "x_content_parse_exception",
                error.to_string(),
            ),
            BulkError::Empty | BulkError::MissingDocument { .. } => EsError::new(
                StatusCode::BAD_REQUEST,
                "parse_exception",
                error.to_string(),
            ),
        }
    }
}

/// The request carries an ingest token; the API's settings.
pub(super) struct EsIngest(Arc<ElasticConfig>);

impl FromRequestParts<AppState> for EsIngest {
    type Rejection = EsError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, EsError> {
        let config = state.elastic.clone().ok_or_else(|| {
            EsError::new(
                StatusCode::NOT_FOUND,
                "resource_not_found_exception",
                "the Elasticsearch API is off: set [elasticsearch] in server.toml",
            )
        })?;
        let token = token_of(&parts.headers)?;
        let tokens = state.tokens.clone();
        tokio::task::spawn_blocking(move || tokens.authorize_hash(&hash(&token), Scope::Ingest))
            .await
            .map_err(AppError::from)?
            .map_err(|error| match error {
                AuthError::Store(e) => EsError::from(AppError::internal(e)),
                other => EsError::new(
                    match other {
                        AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
                        _ => StatusCode::UNAUTHORIZED,
                    },
                    "security_exception",
                    other.to_string(),
                ),
            })?;
        Ok(EsIngest(config))
    }
}

/// The token in `Authorization`, by any of the schemes shippers send.
fn token_of(headers: &HeaderMap) -> Result<String, EsError> {
    let unauthenticated = |reason: &str| {
        EsError::new(
            StatusCode::UNAUTHORIZED,
            "security_exception",
            format!(
                "{reason}: send an ingest token as the basic-auth password, \
                 as `Authorization: ApiKey <token>` or as `Authorization: Bearer <token>`"
            ),
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthenticated("missing credentials"))?
        .to_str()
        .map_err(|_| unauthenticated("the Authorization header is not text"))?
        .trim();
    let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
    let credential = credential.trim();
    let token = if scheme.eq_ignore_ascii_case("bearer") {
        credential.to_string()
    } else if scheme.eq_ignore_ascii_case("apikey") {
        // Elasticsearch's own form is base64 of `id:key`, which the
        // shippers' `api_key: "id:key"` settings send; the key is the
        // token. Tokens themselves are never valid base64 (`lh_…`).
        base64::engine::general_purpose::STANDARD
            .decode(credential)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|pair| pair.split_once(':').map(|(_, key)| key.to_string()))
            .unwrap_or_else(|| credential.to_string())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credential)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| unauthenticated("malformed basic credentials"))?;
        match decoded.split_once(':') {
            Some((user, "")) => user.to_string(),
            Some((_, password)) => password.to_string(),
            None => decoded,
        }
    } else {
        return Err(unauthenticated(&format!(
            "unsupported Authorization scheme {scheme:?}"
        )));
    };
    if token.is_empty() {
        return Err(unauthenticated("empty credentials"));
    }
    Ok(token)
}

async fn info(EsIngest(config): EsIngest) -> Response {
    answer(
        StatusCode::OK,
        json!({
            "name": "loghound",
            "cluster_name": "loghound",
            "cluster_uuid": "loghound",
            "version": {
                "number": config.version,
                "build_flavor": "default",
                "build_type": "loghound",
                "build_hash": env!("CARGO_PKG_VERSION"),
                "build_date": "1970-01-01T00:00:00Z",
                "build_snapshot": false,
                "lucene_version": "9.12.0",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0",
            },
            "tagline": "You Know, for Search",
        }),
    )
}

async fn license(_: EsIngest) -> Response {
    answer(
        StatusCode::OK,
        json!({"license": {
            "status": "active", "uid": "loghound", "type": "basic", "mode": "basic",
            "issue_date_in_millis": 0, "issued_to": "loghound", "issuer": "loghound",
            "max_nodes": 1000, "start_date_in_millis": -1,
        }}),
    )
}

async fn xpack(_: EsIngest) -> Response {
    answer(
        StatusCode::OK,
        json!({
            "build": {"hash": env!("CARGO_PKG_VERSION"), "date": "1970-01-01T00:00:00Z"},
            "license": {"uid": "loghound", "type": "basic", "mode": "basic", "status": "active"},
            "features": {},
        }),
    )
}

async fn cluster_health(_: EsIngest) -> Response {
    answer(
        StatusCode::OK,
        json!({
            "cluster_name": "loghound", "status": "green", "timed_out": false,
            "number_of_nodes": 1, "number_of_data_nodes": 1,
            "active_primary_shards": 0, "active_shards": 0, "relocating_shards": 0,
            "initializing_shards": 0, "unassigned_shards": 0,
        }),
    )
}

/// A template, ILM policy or pipeline asked for: there are none (the
/// shipper then creates it, which is acknowledged and has no effect).
async fn absent(_: EsIngest, method: Method, Path(name): Path<String>) -> Response {
    if method == Method::HEAD {
        let mut response = StatusCode::NOT_FOUND.into_response();
        response.headers_mut().insert(
            "x-elastic-product",
            HeaderValue::from_static("Elasticsearch"),
        );
        return response;
    }
    EsError::new(
        StatusCode::NOT_FOUND,
        "resource_not_found_exception",
        format!("[{name}] not found: Loghound keeps no templates, policies or pipelines"),
    )
    .into_response()
}

async fn acknowledged(_: EsIngest) -> Response {
    answer(StatusCode::OK, json!({"acknowledged": true}))
}

/// A path under [`PREFIX`] that no route takes.
pub(super) fn unsupported(method: &Method, uri: &Uri) -> EsError {
    EsError::bad_request(format!(
        "no handler found for uri [{}] and method [{method}]: Loghound's Elasticsearch API \
         takes documents through _bulk; search them with Loghound's own API and UI",
        uri.path()
    ))
}

async fn bulk_all(
    auth: EsIngest,
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, EsError> {
    bulk(auth, state, None, peer, query, headers, body).await
}

async fn bulk_index(
    auth: EsIngest,
    State(state): State<AppState>,
    Path(index): Path<String>,
    peer: Option<Extension<Peer>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, EsError> {
    bulk(auth, state, Some(index), peer, query, headers, body).await
}

/// `?refresh=true` or `?refresh=wait_for` (or a bare `?refresh`).
fn wants_refresh(query: Option<&str>) -> bool {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .any(|(key, value)| key == "refresh" && matches!(&*value, "" | "true" | "wait_for"))
}

async fn bulk(
    EsIngest(config): EsIngest,
    state: AppState,
    path_index: Option<String>,
    peer: Option<Extension<Peer>>,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, EsError> {
    let started = std::time::Instant::now();
    let encoding = encoding_of(&headers)?;
    let body = read_body(body, state.max_body_bytes, state.body_idle_timeout).await?;
    let received_at_ms = crate::timeparse::now_ms();
    let default_host = match (&config.default_host, peer) {
        (Some(host), _) => host.clone(),
        (None, Some(Extension(Peer(address)))) => address.ip().to_string(),
        (None, None) => "unknown".to_string(),
    };
    let ingest = Arc::clone(&state.ingest);
    let (items, receipt) = tokio::task::spawn_blocking(move || {
        ingest.admit()?;
        let limits = ingest.limits();
        let body = decompress(body, encoding, limits.max_decompressed_bytes)?;
        let context = bulk::Context {
            path_index: path_index.as_deref(),
            default_host: &default_host,
            config: &config,
            received_at_ms,
            max_items: limits.max_events,
            max_line_bytes: limits.max_line_bytes,
        };
        let mut items = bulk::parse(&body, &context)?;
        let events: Vec<_> = items
            .iter_mut()
            .filter_map(|item| match &mut item.outcome {
                Outcome::Event(event) => Some(std::mem::take(event)),
                Outcome::Refused { .. } => None,
            })
            .collect();
        let receipt = if events.is_empty() {
            None
        } else {
            Some(ingest.submit(Submission {
                origin: Origin::Input(INPUT_NAME.to_string()),
                received_at_ms,
                events,
                agent_body: None,
            })?)
        };
        Ok::<_, EsError>((items, receipt))
    })
    .await
    .map_err(AppError::from)??;
    if let Some(receipt) = &receipt {
        state.ingest.wait_durable(receipt.durable_at).await;
        if wants_refresh(query.as_deref()) {
            wait_searchable(&state, receipt.durable_at).await;
        }
    }
    let position = receipt.map(|r| r.durable_at);
    Ok(answer(
        StatusCode::OK,
        bulk_answer(&items, position, started.elapsed().as_millis() as u64),
    ))
}

async fn wait_searchable(state: &AppState, position: LogPosition) {
    let mut committed = state.committed.clone();
    let _ = tokio::time::timeout(
        REFRESH_PATIENCE,
        committed.wait_for(|&through| through >= position.get()),
    )
    .await;
}

/// The answer to a bulk request whose stored items were logged at
/// `position`, in the order sent.
fn bulk_answer(items: &[Item], position: Option<LogPosition>, took_ms: u64) -> Value {
    let mut stored = 0usize;
    let mut errors = false;
    let answers: Vec<Value> = items
        .iter()
        .map(|item| {
            let index = item.index.as_deref().unwrap_or("");
            let result = match &item.outcome {
                Outcome::Event(_) => {
                    let id = position.map_or(0, |p| crate::index::event_id(p.get(), stored));
                    stored += 1;
                    json!({
                        "_index": index,
                        "_id": item.id.clone().unwrap_or_else(|| id.to_string()),
                        "_version": 1,
                        "result": "created",
                        "_shards": {"total": 1, "successful": 1, "failed": 0},
                        "_seq_no": id,
                        "_primary_term": 1,
                        "status": 201,
                    })
                }
                Outcome::Refused {
                    status,
                    kind,
                    reason,
                } => {
                    errors = true;
                    json!({
                        "_index": index,
                        "_id": item.id,
                        "status": status,
                        "error": {"type": kind, "reason": reason},
                    })
                }
            };
            json!({ item.action.name(): result })
        })
        .collect();
    json!({"took": took_ms, "errors": errors, "items": answers})
}
