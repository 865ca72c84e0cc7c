//! `POST /api/v1/ingest`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;
use loghound_shared::api::{IngestResponse, HEADER_AGENT, HEADER_PROTOCOL};
use loghound_shared::{AgentId, PROTOCOL_VERSION};

use super::auth::RequireIngest;
use super::body::read_body;
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
