//! Route handlers.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::json::JsonBody;
use super::wire::{CatalogParams, CatalogSummary, CatalogView, IntentRequest, IntentResponse};
use super::{ApiError, AppState, need};
use crate::auth::{Caller, Role};
use crate::catalog::BadEntry;
use crate::intent::{Intent, Object};
use crate::service::CatalogSource;

/// `PUT /v1/catalogs/{name}`.
pub async fn put_catalog(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    params: Result<Query<CatalogParams>, QueryRejection>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<CatalogSummary>, ApiError> {
    need(&caller, &[Role::Admin])?;
    let Query(params) =
        params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let loaded = state
        .service
        .register_catalog(&caller.tenant, &name, &body, params.skip_invalid)
        .await?;
    let read_only = loaded
        .catalog
        .entries
        .iter()
        .filter(|e| e.read_only)
        .count();
    Ok(Json(CatalogSummary {
        name,
        entries: loaded.catalog.entries.len(),
        read_only,
        side_effecting: loaded.catalog.entries.len() - read_only,
        model_sha256: loaded.embeddings.model_sha256.clone(),
        skipped: loaded.skipped.clone(),
    }))
}

/// `GET /v1/catalogs/{name}`.
pub async fn get_catalog(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<CatalogView>, ApiError> {
    need(&caller, &[Role::Admin, Role::Frontend, Role::Analyst])?;
    let record = state
        .service
        .store()
        .get_catalog(&caller.tenant, &name)?
        .ok_or_else(|| ApiError::NotFound {
            code: "unknown_catalog",
            message: format!("unknown catalog `{name}`"),
        })?;
    Ok(Json(CatalogView {
        name,
        entries: record.catalog.entries,
        model_sha256: record.model_sha256,
    }))
}

/// Checks an intent request's prompt and catalog choice.
pub fn check_prompt<'a>(
    state: &AppState,
    req: &'a IntentRequest,
) -> Result<CatalogSource<'a>, ApiError> {
    let chars = req.prompt.chars().count();
    if chars > state.limits.max_prompt_chars {
        return Err(ApiError::TooLarge {
            code: "prompt_too_long",
            message: format!(
                "the prompt has {chars} characters, the limit is {} (set with --max-prompt-chars)",
                state.limits.max_prompt_chars
            ),
        });
    }
    if !req.prompt.chars().any(char::is_alphanumeric) {
        return Err(ApiError::Unprocessable {
            code: "empty_prompt",
            message: "the prompt is empty".into(),
        });
    }
    match (&req.catalog, &req.tools) {
        (Some(name), None) => Ok(CatalogSource::Named(name)),
        (None, Some(tools)) => Ok(CatalogSource::Inline {
            tools,
            skip_invalid: req.skip_invalid,
        }),
        _ => Err(ApiError::bad_request(
            "invalid_request",
            "give exactly one of `catalog` (a registered name) or `tools` (inline)",
        )),
    }
}

/// Checks an intent request and extracts its intent; also returns the
/// inline tools skipped as invalid.
pub async fn extract_intent(
    state: &AppState,
    tenant: &str,
    req: &IntentRequest,
) -> Result<(Intent, Vec<BadEntry>), ApiError> {
    let source = check_prompt(state, req)?;
    Ok(state
        .service
        .extract(tenant, req.subject.clone(), &req.prompt, source)
        .await?)
}

/// `POST /v1/intents`.
pub async fn post_intent(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<IntentRequest>,
) -> Result<Json<IntentResponse>, ApiError> {
    need(&caller, &[Role::Frontend])?;
    let (intent, skipped_tools) = extract_intent(&state, &caller.tenant, &req).await?;
    let mut authorization_details = intent.authorization_details(None);
    if let Some(ctx) = &req.context {
        for d in &mut authorization_details {
            merge_context(&mut d.request.context, ctx);
        }
    }
    Ok(Json(IntentResponse {
        intent,
        authorization_details,
        skipped_tools,
    }))
}

fn merge_context(into: &mut Object, from: &Object) {
    for (k, v) in from {
        into.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 once the model is loaded and warm, else 503.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.service.ready() {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "loading"})),
        )
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let depth = state
        .service
        .extractor()
        .map(|x| x.encoder().queue_depth())
        .unwrap_or(0);
    metrics::gauge!("telos_queue_depth").set(depth as f64);
    let body = state
        .prometheus
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
}

/// Unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::NotFound {
        code: "not_found",
        message: "no such route".into(),
    }
}
