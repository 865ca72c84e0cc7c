//! `GET /api/v1/histogram`: match counts per time bucket.

use axum::extract::State;
use axum::Json;
use loghound_shared::api::{HistogramResponse, DEFAULT_HISTOGRAM_BUCKETS, MAX_HISTOGRAM_BUCKETS};
use serde::Deserialize;

use super::auth::RequireRead;
use super::extract::ApiQuery;
use super::params::{bounded_count, time_range};
use super::{AppError, AppState};
use crate::index::histogram::HistogramRequest;

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
            DEFAULT_HISTOGRAM_BUCKETS,
            1,
            MAX_HISTOGRAM_BUCKETS,
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
    _: RequireRead,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<HistogramParams>,
) -> Result<Json<HistogramResponse>, AppError> {
    let request = params.validate()?;
    let searcher = state.searcher.clone();
    let response = tokio::task::spawn_blocking(move || searcher.histogram(&request)).await??;
    Ok(Json(response))
}
