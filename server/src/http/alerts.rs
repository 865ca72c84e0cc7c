//! Saved searches (`/api/v1/searches`) and alert rules
//! (`/api/v1/alerts`): create, list, read, replace, delete; a rule's
//! delivery history and a test notification.
//!
//! Saved searches are read with the `read` scope and changed with `admin`.
//! Rules hold channel secrets, so every rule route needs `admin`. Each
//! handler's scope extractor comes first, so who may not use a route learns
//! nothing from its path or body.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use loghound_shared::api::{SavedSearchInput, SavedSearchList};
use serde::Deserialize;
use serde_json::json;

use super::auth::{RequireAdmin, RequireRead};
use super::extract::{ApiJson, ApiQuery, PathId};
use super::params::bounded_count;
use super::{AppError, AppState};
use crate::alerts::model::{check_kind_and_query, validate_search, Channel, Rule, RuleInput};
use crate::alerts::notify::{Notification, NotificationEvent};
use crate::alerts::store::{Store, StoreError};
use crate::timeparse::now_ms;

/// Runs a store call off the async threads.
async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    call: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, AppError> {
    let store = Arc::clone(store);
    Ok(tokio::task::spawn_blocking(move || call(&store)).await??)
}

async fn check_search(state: &AppState, input: &SavedSearchInput) -> Result<(), AppError> {
    validate_search(input).map_err(AppError::bad_request)?;
    let searcher = state.searcher.clone();
    let query = input.query.clone();
    tokio::task::spawn_blocking(move || searcher.check_query_with_pipes(&query)).await??;
    Ok(())
}

async fn check_rule(state: &AppState, input: &RuleInput) -> Result<(), AppError> {
    input.validate().map_err(AppError::bad_request)?;
    let search_id = input.search_id;
    let search = blocking(&state.alerts.store, move |s| s.get_search(search_id)).await?;
    check_kind_and_query(input.kind, &search.query).map_err(AppError::bad_request)?;
    let wants_email = input
        .channels
        .iter()
        .any(|c| matches!(c, Channel::Email { .. }));
    if wants_email && !state.alerts.email_enabled {
        return Err(AppError::bad_request(
            "channels: email needs an SMTP relay, and this server has none ([alerts.smtp] in server.toml)",
        ));
    }
    Ok(())
}

/// A rule with the in-memory part of its state.
fn with_runtime(state: &AppState, mut rule: Rule) -> Rule {
    let runtime = state.alerts.engine.runtime(rule.id);
    rule.state.last_evaluated_ms = runtime.last_evaluated_ms;
    rule.state.last_error = runtime.last_error;
    rule.state.evaluated_through = runtime.evaluated_through;
    rule
}

// ---- saved searches ----

pub(super) async fn list_searches(
    _: RequireRead,
    State(state): State<AppState>,
) -> Result<impl IntoResponse, AppError> {
    let searches = blocking(&state.alerts.store, Store::list_searches).await?;
    Ok(Json(SavedSearchList { searches }))
}

pub(super) async fn create_search(
    _: RequireAdmin,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<SavedSearchInput>,
) -> Result<impl IntoResponse, AppError> {
    check_search(&state, &input).await?;
    let search = blocking(&state.alerts.store, move |s| {
        s.create_search(&input, now_ms())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(search)))
}

pub(super) async fn get_search(
    _: RequireRead,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(
        blocking(&state.alerts.store, move |s| s.get_search(id)).await?,
    ))
}

pub(super) async fn update_search(
    _: RequireAdmin,
    State(state): State<AppState>,
    PathId(id): PathId,
    ApiJson(input): ApiJson<SavedSearchInput>,
) -> Result<impl IntoResponse, AppError> {
    check_search(&state, &input).await?;
    let search = blocking(&state.alerts.store, move |s| s.update_search(id, &input)).await?;
    state.alerts.engine.rules_changed.notify_one();
    Ok(Json(search))
}

pub(super) async fn delete_search(
    _: RequireAdmin,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<impl IntoResponse, AppError> {
    blocking(&state.alerts.store, move |s| s.delete_search(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- alert rules ----

pub(super) async fn list_rules(
    _: RequireAdmin,
    State(state): State<AppState>,
) -> Result<impl IntoResponse, AppError> {
    let rules = blocking(&state.alerts.store, Store::list_rules).await?;
    let rules: Vec<Rule> = rules.into_iter().map(|r| with_runtime(&state, r)).collect();
    Ok(Json(json!({ "alerts": rules })))
}

pub(super) async fn create_rule(
    _: RequireAdmin,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<RuleInput>,
) -> Result<impl IntoResponse, AppError> {
    check_rule(&state, &input).await?;
    let watermark = state.alerts.engine.through_id();
    let rule = blocking(&state.alerts.store, move |s| {
        s.create_rule(&input, watermark, now_ms())
    })
    .await?;
    state.alerts.engine.rules_changed.notify_one();
    Ok((StatusCode::CREATED, Json(with_runtime(&state, rule))))
}

pub(super) async fn get_rule(
    _: RequireAdmin,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<impl IntoResponse, AppError> {
    let rule = blocking(&state.alerts.store, move |s| s.get_rule(id)).await?;
    Ok(Json(with_runtime(&state, rule)))
}

pub(super) async fn update_rule(
    _: RequireAdmin,
    State(state): State<AppState>,
    PathId(id): PathId,
    ApiJson(input): ApiJson<RuleInput>,
) -> Result<impl IntoResponse, AppError> {
    check_rule(&state, &input).await?;
    let rule = blocking(&state.alerts.store, move |s| s.update_rule(id, &input)).await?;
    state.alerts.engine.rules_changed.notify_one();
    Ok(Json(with_runtime(&state, rule)))
}

pub(super) async fn delete_rule(
    _: RequireAdmin,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<impl IntoResponse, AppError> {
    blocking(&state.alerts.store, move |s| s.delete_rule(id)).await?;
    state.alerts.engine.rules_changed.notify_one();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryParams {
    limit: Option<String>,
}

pub(super) async fn history(
    _: RequireAdmin,
    State(state): State<AppState>,
    PathId(id): PathId,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> Result<impl IntoResponse, AppError> {
    let limit = bounded_count("limit", params.limit.as_deref(), 50, 1, 1000)?;
    let deliveries = blocking(&state.alerts.store, move |s| s.history(id, limit)).await?;
    Ok(Json(json!({ "deliveries": deliveries })))
}

pub(super) async fn test(
    _: RequireAdmin,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<impl IntoResponse, AppError> {
    let public_url = state.alerts.public_url.get();
    let ids = blocking(&state.alerts.store, move |s| {
        let rule = s.get_rule(id)?;
        if rule.channels.is_empty() {
            return Err(StoreError::Conflict(format!(
                "alert rule {id} has no channels to test"
            )));
        }
        let now = now_ms();
        let notification = Notification::new(
            &rule,
            NotificationEvent::Test,
            0,
            now,
            now,
            Vec::new(),
            &public_url,
            now,
        );
        s.enqueue_test(&notification, &rule.channels, now)
    })
    .await?;
    state.alerts.outbox_wake.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "delivery_id": ids.first(), "delivery_ids": ids })),
    ))
}
