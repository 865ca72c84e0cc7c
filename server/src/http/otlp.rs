//! `POST /v1/logs` (on when `[otlp]` is set): OTLP/HTTP logs, protobuf
//! (`application/x-protobuf`) or JSON (`application/json`), plain, gzip
//! or zstd. The credential is an ingest token as `Authorization: Bearer
//! <token>` (`OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20<token>`).
//!
//! Answers are in the request's encoding: an `ExportLogsServiceResponse`,
//! or a `google.rpc.Status` with the reason. 429 and 503 carry
//! `Retry-After`, which exporters honour; 400s are not retried.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message as _;

use super::body::{decompress, encoding_of, read_body};
use super::{AppError, AppState, Peer};
use crate::ingest::{Origin, Submission};
use crate::tokens::Scope;

/// The route.
pub const PATH: &str = "/v1/logs";

/// The route, for [`super::app`] to merge.
pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new().route(PATH, axum::routing::post(logs))
}

/// The origin of every record sent here.
pub const INPUT_NAME: &str = "otlp";

/// How the request, and so the answer, is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// `google.rpc.Status`, the body of OTLP's error answers.
#[derive(Clone, PartialEq, prost::Message)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The answer `status` with `message` in `format`.
fn error_answer(format: Format, error: AppError) -> Response {
    let (status, message, retry_after) = error.parts();
    // The gRPC code that OTLP/HTTP pairs with each status.
    let code = match status {
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::FORBIDDEN => 7,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::INSUFFICIENT_STORAGE => 8,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        s if s.is_server_error() => 13,
        _ => 3,
    };
    let body = match format {
        Format::Protobuf => Status {
            code,
            message: message.to_string(),
        }
        .encode_to_vec(),
        Format::Json => serde_json::json!({"code": code, "message": message})
            .to_string()
            .into_bytes(),
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Some(secs) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn format_of(headers: &HeaderMap) -> Result<Format, AppError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Format::Protobuf),
        "application/json" => Ok(Format::Json),
        _ => Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported content-type {content_type:?}: OTLP/HTTP is application/x-protobuf or application/json"
            ),
        )),
    }
}

pub(super) async fn logs(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let format = match format_of(&headers) {
        Ok(format) => format,
        Err(error) => return error_answer(Format::Json, error),
    };
    match export(state, peer, format, &headers, body).await {
        Ok(answer) => {
            debug_assert!(answer.partial_success.is_none());
            let body = match format {
                Format::Protobuf => answer.encode_to_vec(),
                // Every record was taken: no `partialSuccess`.
                Format::Json => b"{}".to_vec(),
            };
            ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
        }
        Err(error) => error_answer(format, error),
    }
}

async fn export(
    state: AppState,
    peer: Option<Extension<Peer>>,
    format: Format,
    headers: &HeaderMap,
    body: Body,
) -> Result<ExportLogsServiceResponse, AppError> {
    let config = state.otlp.clone().ok_or_else(|| {
        AppError::new(
            StatusCode::NOT_FOUND,
            "OTLP is off: set [otlp] in server.toml",
        )
    })?;
    state.authorize(headers, Scope::Ingest).await?;
    let encoding = encoding_of(headers)?;
    let body = read_body(body, state.max_body_bytes, state.body_idle_timeout).await?;
    let default_host = match (&config.default_host, peer) {
        (Some(host), _) => host.clone(),
        (None, Some(Extension(Peer(address)))) => address.ip().to_string(),
        (None, None) => "unknown".to_string(),
    };
    let received_at_ms = crate::timeparse::now_ms();
    let ingest = Arc::clone(&state.ingest);
    let receipt = tokio::task::spawn_blocking(move || {
        ingest.admit()?;
        let limits = ingest.limits();
        let body = decompress(body, encoding, limits.max_decompressed_bytes)?;
        let request = match format {
            Format::Protobuf => ExportLogsServiceRequest::decode(body.as_slice())
                .map_err(|e| AppError::bad_request(format!("invalid OTLP protobuf: {e}")))?,
            Format::Json => serde_json::from_slice(&body)
                .map_err(|e| AppError::bad_request(format!("invalid OTLP JSON: {e}")))?,
        };
        let count = crate::otlp::record_count(&request);
        if count > limits.max_events {
            return Err(AppError::too_large(
                format!(
                    "the request has {count} log records, more than max_events ({})",
                    limits.max_events
                ),
                "max_events",
            ));
        }
        if count == 0 {
            return Ok(None);
        }
        let events = crate::otlp::to_events(request, &default_host);
        let receipt = ingest.submit(Submission {
            origin: Origin::Input(INPUT_NAME.to_string()),
            received_at_ms,
            events,
            agent_body: None,
        })?;
        Ok::<_, AppError>(Some(receipt))
    })
    .await
    .map_err(AppError::from)??;
    if let Some(receipt) = receipt {
        state.ingest.wait_durable(receipt.durable_at).await;
    }
    Ok(ExportLogsServiceResponse {
        partial_success: None,
    })
}
