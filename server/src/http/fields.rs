//! `GET /api/v1/fields`: the fields of a search's matches.

use axum::extract::State;
use axum::Json;
use loghound_shared::api::{FieldsResponse, DEFAULT_FIELD_VALUES, MAX_FIELD_VALUES};
use serde::Deserialize;

use super::auth::RequireRead;
use super::extract::ApiQuery;
use super::params::{bounded_count, time_range};
use super::{AppError, AppState};
use crate::index::stats::fields::FieldsRequest;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FieldsParams {
    #[serde(default)]
    q: String,
    from: Option<String>,
    to: Option<String>,
    top: Option<String>,
}

pub(super) async fn fields(
    _: RequireRead,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<FieldsParams>,
) -> Result<Json<FieldsResponse>, AppError> {
    let (from_ms, to_ms) = time_range(params.from, params.to)?;
    let top = bounded_count(
        "top",
        params.top.as_deref(),
        DEFAULT_FIELD_VALUES,
        1,
        MAX_FIELD_VALUES,
    )?;
    let request = FieldsRequest {
        query: params.q,
        from_ms,
        to_ms,
        top,
    };
    let searcher = state.searcher.clone();
    let response = tokio::task::spawn_blocking(move || searcher.fields(&request)).await??;
    Ok(Json(response))
}
