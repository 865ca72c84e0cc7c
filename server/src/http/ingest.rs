//! `POST /api/v1/ingest`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;
use http_body_util::BodyExt;
use loghound_shared::api::{IngestResponse, HEADER_AGENT, HEADER_PROTOCOL};
use loghound_shared::{AgentId, PROTOCOL_VERSION};

use super::auth::RequireIngest;
use super::{AppError, AppState};
use crate::log::LogPosition;

pub(super) async fn ingest(
    _: RequireIngest,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResponse>, AppError> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match text(HEADER_PROTOCOL) {
        Some(v) if v.trim() == PROTOCOL_VERSION.to_string() => {}
        Some(v) => {
            return Err(AppError::bad_request(format!(
                "unsupported protocol version {v:?} in {HEADER_PROTOCOL}; this server speaks {PROTOCOL_VERSION}"
            )))
        }
        None => return Err(AppError::bad_request(format!("missing {HEADER_PROTOCOL} header"))),
    }
    if let Some(encoding) = text(header::CONTENT_ENCODING.as_str()) {
        if !encoding.eq_ignore_ascii_case("zstd") {
            return Err(AppError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported content-encoding {encoding:?}; batches are zstd"),
            ));
        }
    }
    let agent = text(HEADER_AGENT)
        .ok_or_else(|| AppError::bad_request(format!("missing {HEADER_AGENT} header")))
        .and_then(|v| {
            AgentId::new(v).map_err(|e| AppError::bad_request(format!("{HEADER_AGENT}: {e}")))
        })?;

    let bytes = read_body(body, state.max_body_bytes, state.body_idle_timeout).await?;

    let ingest = state.ingest.clone();
    let received_at_ms = crate::timeparse::now_ms();
    let (response, position) =
        tokio::task::spawn_blocking(move || ingest.ingest(&agent, received_at_ms, &bytes))
            .await
            .map_err(AppError::internal)??;
    state.ingest.wait_durable(LogPosition(position)).await;
    Ok(Json(response))
}

/// Past the limit, how much more of a body is read and thrown away so that
/// the client, still sending, gets the 413 instead of a broken pipe.
const MAX_DRAIN_BYTES: usize = 64 << 20;

/// Reads the body, refusing more than `limit` bytes without holding them
/// and a client that sends nothing for `idle_timeout`.
pub(super) async fn read_body(
    mut body: Body,
    limit: usize,
    idle_timeout: std::time::Duration,
) -> Result<Vec<u8>, AppError> {
    let mut collected = Vec::new();
    let mut over_by = 0usize;
    loop {
        let Ok(next) = tokio::time::timeout(idle_timeout, body.frame()).await else {
            return Err(AppError::new(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                format!("request body stalled for {} ms", idle_timeout.as_millis()),
            ));
        };
        let Some(frame) = next else {
            break;
        };
        let frame = frame.map_err(|error| {
            AppError::bad_request(format!("could not read request body: {error}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if over_by == 0 && collected.len() + data.len() <= limit {
            collected.extend_from_slice(&data);
            continue;
        }
        if over_by == 0 {
            collected = Vec::new();
        }
        over_by += data.len();
        if over_by > MAX_DRAIN_BYTES {
            break;
        }
    }
    if over_by > 0 {
        return Err(AppError::too_large(
            format!("request body exceeds max_compressed_bytes ({limit})"),
            "max_compressed_bytes",
        ));
    }
    Ok(collected)
}
