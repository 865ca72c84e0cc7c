//! `GET /api/v1/search`.

use axum::extract::State;
use axum::Json;
use loghound_shared::api::{SearchResponse, DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT};
use serde::Deserialize;

use super::auth::RequireRead;
use super::extract::ApiQuery;
use super::params::{bounded_count, time_range};
use super::{AppError, AppState};
use crate::index::search::{Cursor, SearchRequest};

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
        let limit = bounded_count(
            "limit",
            self.limit.as_deref(),
            DEFAULT_SEARCH_LIMIT,
            0,
            MAX_SEARCH_LIMIT,
        )?;
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
    _: RequireRead,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<SearchResponse>, AppError> {
    let request = params.validate()?;
    let searcher = state.searcher.clone();
    let response = tokio::task::spawn_blocking(move || searcher.search(&request)).await??;
    Ok(Json(response))
}
