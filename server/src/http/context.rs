//! `GET /api/v1/context`: the lines around an event in its file.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use loghound_shared::api::{ContextResponse, DEFAULT_CONTEXT_LINES, MAX_CONTEXT_LINES};
use serde::Deserialize;

use super::auth::RequireRead;
use super::extract::ApiQuery;
use super::params::bounded_count;
use super::{AppError, AppState};
use crate::index::context::ContextRequest;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ContextParams {
    id: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

impl ContextParams {
    fn validate(self) -> Result<ContextRequest, AppError> {
        let id = match self.id.as_deref().map(str::trim) {
            None | Some("") => return Err(AppError::bad_request("id: missing")),
            Some(text) => text.parse::<u64>().map_err(|_| {
                AppError::bad_request(format!("id: expected an event id, got {text:?}"))
            })?,
        };
        let count = |name, value: Option<String>| {
            bounded_count(
                name,
                value.as_deref(),
                DEFAULT_CONTEXT_LINES,
                0,
                MAX_CONTEXT_LINES,
            )
        };
        Ok(ContextRequest {
            id,
            before: count("before", self.before)?,
            after: count("after", self.after)?,
        })
    }
}

pub(super) async fn context(
    _: RequireRead,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ContextParams>,
) -> Result<Json<ContextResponse>, AppError> {
    let request = params.validate()?;
    let searcher = state.searcher.clone();
    let response = tokio::task::spawn_blocking(move || searcher.context(&request)).await??;
    response.map(Json).ok_or_else(|| {
        AppError::new(
            StatusCode::NOT_FOUND,
            format!("no event with id {}", request.id),
        )
    })
}
