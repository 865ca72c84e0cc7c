//! The one place where errors become HTTP answers: tokens, ingest,
//! search, the alert store and axum's own rejections (of a JSON body, a
//! query string, a path parameter) each have one conversion here. Client
//! errors carry their precise message; server errors are logged with their
//! cause and answered generically.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use loghound_shared::api::ErrorBody;
use loghound_shared::DecodeError;

use crate::alerts::store::StoreError;
use crate::index::search::SearchError;
use crate::ingest::IngestError;
use crate::tokens::AuthError;

/// `Retry-After` of a 429: the indexer frees room at its next commit,
/// about a second away.
const BUSY_RETRY_AFTER_SECS: u64 = 1;
/// `Retry-After` of a 507: space comes back when an operator frees it.
const DISK_FULL_RETRY_AFTER_SECS: u64 = 5;

/// An error answer.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    message: String,
    limit: Option<String>,
    retry_after_secs: Option<u64>,
    position: Option<usize>,
}

impl AppError {
    /// A client error with a precise message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        AppError {
            status,
            message: message.into(),
            limit: None,
            retry_after_secs: None,
            position: None,
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 413 for an exceeded limit, naming it.
    pub fn too_large(message: impl Into<String>, limit: &str) -> Self {
        AppError {
            limit: Some(limit.to_string()),
            ..Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
        }
    }

    /// Adds a `Retry-After` header to the answer.
    pub fn retry_after(self, secs: u64) -> Self {
        AppError {
            retry_after_secs: Some(secs),
            ..self
        }
    }

    /// A server-side failure: logged in full, answered generically.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }

    /// 507: the data directory is full. `what_happened` says what was
    /// (not) done.
    pub fn insufficient_storage(what_happened: &str) -> Self {
        AppError {
            retry_after_secs: Some(DISK_FULL_RETRY_AFTER_SECS),
            ..Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                format!(
                    "the server's data directory is full (no space left on device); {what_happened}"
                ),
            )
        }
    }

    /// 400 for a path parameter that does not parse, naming it.
    pub(super) fn bad_path_param(name: &str, rejection: &PathRejection) -> Self {
        Self::bad_request(format!("{name}: {}", rejection.body_text()))
    }

    /// The status, the message and the `Retry-After` seconds, for an
    /// API that answers errors in a shape of its own.
    pub(super) fn parts(&self) -> (StatusCode, &str, Option<u64>) {
        (self.status, &self.message, self.retry_after_secs)
    }

    fn unavailable(message: impl Into<String>, retry_after_secs: u64) -> Self {
        AppError {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            limit: self.limit,
            position: self.position,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<AuthError> for AppError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthenticated(message) => Self::new(StatusCode::UNAUTHORIZED, message),
            AuthError::Forbidden(_) => Self::new(StatusCode::FORBIDDEN, error.to_string()),
            AuthError::Store(e) => Self::internal(e),
        }
    }
}

impl From<IngestError> for AppError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Invalid(decode) => match &decode {
                DecodeError::TooLarge { limit, .. } => {
                    Self::too_large(decode.to_string(), limit.name())
                }
                _ => Self::bad_request(decode.to_string()),
            },
            IngestError::StorageFull(e) => {
                tracing::warn!(error = %e, "ingest refused a batch: the data directory is full");
                Self::insufficient_storage("the batch was not stored, retry later")
            }
            IngestError::Overloaded { .. } => AppError {
                retry_after_secs: Some(BUSY_RETRY_AFTER_SECS),
                limit: Some("index_queue_max_bytes".into()),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, error.to_string())
            },
            IngestError::Unavailable(e) => {
                tracing::error!(error = %e, "ingest could not write the log");
                Self::unavailable("server cannot store batches right now; retry later", 5)
            }
            IngestError::ShuttingDown => Self::unavailable("server is shutting down", 1),
        }
    }
}

impl From<SearchError> for AppError {
    fn from(error: SearchError) -> Self {
        match error {
            SearchError::Query(query) => AppError {
                position: Some(query.position),
                ..Self::bad_request(format!(
                    "invalid query: {} at character {}",
                    query.message, query.position
                ))
            },
            SearchError::Index(e) => Self::internal(e),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        if error.is_disk_full() {
            return Self::insufficient_storage("nothing was changed, retry later");
        }
        match error {
            StoreError::NotFound(what) => {
                Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
            }
            StoreError::Conflict(message) => Self::new(StatusCode::CONFLICT, message),
            StoreError::Sqlite(e) => Self::internal(e),
        }
    }
}

/// A blocking task that panicked or was cancelled.
impl From<tokio::task::JoinError> for AppError {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::internal(error)
    }
}

/// Any malformed JSON body, including a missing or wrong content type.
impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;
    use crate::query::QueryError;

    #[tokio::test]
    async fn query_errors_are_400_with_a_position() {
        let error = SearchError::Query(QueryError::new("unclosed quote", 6));
        let response = AppError::from(error).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body.position, Some(6));
        assert_eq!(body.error, "invalid query: unclosed quote at character 6");
    }
}
