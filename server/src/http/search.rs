//! `GET /api/v1/search`.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

use super::params::{bounded_count, time_range};
use super::{AppError, AppState};
use crate::index::search::{Cursor, SearchRequest, SearchResponse, MAX_LIMIT};
use crate::tokens::Scope;

const DEFAULT_LIMIT: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchParams {
    #[serde(default)]
    q: String,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl SearchParams {
    fn validate(self) -> Result<SearchRequest, AppError> {
        let (from_ms, to_ms) = time_range(self.from, self.to)?;
        let limit = bounded_count("limit", self.limit.as_deref(), DEFAULT_LIMIT, 0, MAX_LIMIT)?;
        let before = self
            .cursor
            .filter(|c| !c.is_empty())
            .map(|c| {
                Cursor::decode(&c).ok_or_else(|| {
                    AppError::bad_request("cursor: not a cursor from a previous answer")
                })
            })
            .transpose()?;
        Ok(SearchRequest {
            query: self.q,
            from_ms,
            to_ms,
            limit,
            before,
        })
    }
}

pub(super) async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SearchResponse>, AppError> {
    state.authorize(&headers, Scope::Read).await?;
    let Query(params) = params.map_err(|e| AppError::bad_request(e.body_text()))?;
    let request = params.validate()?;
    let searcher = state.searcher.clone();
    let response = tokio::task::spawn_blocking(move || searcher.search(&request))
        .await
        .map_err(AppError::internal)??;
    Ok(Json(response))
}
