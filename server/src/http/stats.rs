//! `GET /api/v1/stats`: a query's pipes as a table.

use axum::extract::State;
use axum::Json;
use loghound_shared::api::StatsResponse;
use serde::Deserialize;

use super::auth::RequireRead;
use super::extract::ApiQuery;
use super::params::time_range;
use super::{AppError, AppState};
use crate::index::stats::StatsRequest;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatsParams {
    #[serde(default)]
    q: String,
    from: Option<String>,
    to: Option<String>,
}

pub(super) async fn stats(
    _: RequireRead,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Json<StatsResponse>, AppError> {
    let (from_ms, to_ms) = time_range(params.from, params.to)?;
    let request = StatsRequest {
        query: params.q,
        from_ms,
        to_ms,
    };
    let searcher = state.searcher.clone();
    let response = tokio::task::spawn_blocking(move || searcher.stats(&request)).await??;
    Ok(Json(response))
}
