//! `GET /api/v1/search`.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

use super::{AppError, AppState};
use crate::index::search::{Cursor, SearchRequest, SearchResponse, MAX_LIMIT};
use crate::timeparse::{now_ms, parse_time};
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
        let now = now_ms();
        let time = |name: &str, value: Option<String>| {
            value
                .filter(|v| !v.trim().is_empty())
                .map(|v| {
                    parse_time(&v, now).map_err(|e| AppError::bad_request(format!("{name}: {e}")))
                })
                .transpose()
        };
        let from_ms = time("from", self.from)?;
        let to_ms = time("to", self.to)?;
        if let (Some(from), Some(to)) = (from_ms, to_ms) {
            if from > to {
                return Err(AppError::bad_request("from: must not be after `to`"));
            }
        }
        let limit = match self.limit.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= MAX_LIMIT)
                .ok_or_else(|| {
                    AppError::bad_request(format!(
                        "limit: expected a number from 0 to {MAX_LIMIT}, got {text:?}"
                    ))
                })?,
        };
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
