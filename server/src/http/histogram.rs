//! `GET /api/v1/histogram`: match counts per time bucket.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

use super::params::{bounded_count, time_range};
use super::{AppError, AppState};
use crate::index::histogram::{HistogramRequest, HistogramResponse, DEFAULT_BUCKETS, MAX_BUCKETS};
use crate::tokens::Scope;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistogramParams {
    #[serde(default)]
    q: String,
    from: Option<String>,
    to: Option<String>,
    buckets: Option<String>,
}

impl HistogramParams {
    fn validate(self) -> Result<HistogramRequest, AppError> {
        let (from_ms, to_ms) = time_range(self.from, self.to)?;
        let buckets = bounded_count(
            "buckets",
            self.buckets.as_deref(),
            DEFAULT_BUCKETS,
            1,
            MAX_BUCKETS,
        )?;
        Ok(HistogramRequest {
            query: self.q,
            from_ms,
            to_ms,
            buckets,
        })
    }
}

pub(super) async fn histogram(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<HistogramParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<HistogramResponse>, AppError> {
    state.authorize(&headers, Scope::Read).await?;
    let Query(params) = params.map_err(|e| AppError::bad_request(e.body_text()))?;
    let request = params.validate()?;
    let searcher = state.searcher.clone();
    let response = tokio::task::spawn_blocking(move || searcher.histogram(&request))
        .await
        .map_err(AppError::internal)??;
    Ok(Json(response))
}
