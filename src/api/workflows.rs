//! Workflow routes: open a workflow, read it, report steps, close it, read
//! its drift report, and query drift across workflows.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use uuid::Uuid;

use super::handlers::check_prompt;
use super::json::JsonBody;
use super::wire::{
    DriftParams, IntentRequest, StepInput, StepRecorded, StepsParams, WorkflowCreated, WorkflowView,
};
use super::{ApiError, AppState, need};
use crate::auth::{Caller, Role};
use crate::service::WorkflowRequest;
use crate::service::tracker::{DriftPage, DriftQuery};

pub(super) fn workflow_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound {
        code: "unknown_workflow",
        message: format!("unknown workflow `{raw}`"),
    })
}

/// `POST /v1/workflows`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<IntentRequest>,
) -> Result<(StatusCode, Json<WorkflowCreated>), ApiError> {
    need(&caller, &[Role::Frontend])?;
    let source = check_prompt(&state, &req)?;
    let (wf, skipped_tools) = state
        .service
        .create_workflow(WorkflowRequest {
            tenant: &caller.tenant,
            subject: req.subject.clone(),
            prompt: &req.prompt,
            source,
            allowed_agents: req.agents.clone(),
            context: req.context.clone(),
        })
        .await?;
    let id = wf.id.to_string();
    let mut authorization_details = wf.intent.authorization_details(Some(&id));
    if let Some(ctx) = &req.context {
        for d in &mut authorization_details {
            for (k, v) in ctx {
                d.request
                    .context
                    .entry(k.clone())
                    .or_insert_with(|| v.clone());
            }
        }
    }
    Ok((
        StatusCode::CREATED,
        Json(WorkflowCreated {
            workflow_id: id,
            intent: wf.intent,
            authorization_details,
            skipped_tools,
        }),
    ))
}

/// `GET /v1/workflows/{id}?limit=&cursor=`: the workflow and one page of
/// its steps.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(p): Query<StepsParams>,
) -> Result<Json<WorkflowView>, ApiError> {
    need(&caller, &[Role::Analyst])?;
    let id = workflow_id(&raw)?;
    let (from, limit) = p
        .page()
        .map_err(|m| ApiError::bad_request("invalid_query", m))?;
    let (wf, steps, next) = state
        .service
        .tracker()
        .steps(&caller.tenant, &id, from, limit)?;
    Ok(Json(WorkflowView {
        workflow_id: wf.id.to_string(),
        subject: wf.subject,
        intent: wf.intent,
        steps,
        closed: wf.closed,
        created_at: wf.created_at,
        closed_at: wf.closed_at,
        allowed_agents: wf.allowed_agents,
        catalog: wf.catalog_name,
        next_cursor: next.map(|n| n.to_string()),
    }))
}

/// `POST /v1/workflows/{id}/steps`.
pub async fn report_step(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    JsonBody(input): JsonBody<StepInput>,
) -> Result<(StatusCode, Json<StepRecorded>), ApiError> {
    need(&caller, &[Role::Pep])?;
    let id = workflow_id(&raw)?;
    let size = serde_json::to_vec(&input.arguments)
        .map(|v| v.len())
        .unwrap_or(0);
    if size > state.limits.max_arguments_bytes {
        return Err(ApiError::TooLarge {
            code: "arguments_too_large",
            message: format!(
                "the arguments take {size} bytes, the limit is {}",
                state.limits.max_arguments_bytes
            ),
        });
    }
    let tracker = state.service.tracker();
    let observed = tracker.observe(input.into())?;
    let step = tracker.record(&caller.tenant, &id, observed).await?;
    Ok((
        StatusCode::CREATED,
        Json(StepRecorded {
            step: step.seq,
            verdict: step.verdict,
            reasons: step.reasons,
            hash: step.hash,
        }),
    ))
}

/// `POST /v1/workflows/{id}/close`.
pub async fn close(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    need(&caller, &[Role::Frontend, Role::Pep])?;
    let id = workflow_id(&raw)?;
    let wf = state.service.tracker().close(&caller.tenant, &id).await?;
    Ok(Json(serde_json::json!({
        "workflow_id": wf.id.to_string(),
        "closed": wf.closed,
        "closed_at": wf.closed_at,
    })))
}

/// `GET /v1/workflows/{id}/report?limit=&cursor=`: JSON, or HTML for
/// `Accept: text/html`; one page of steps, counts and chain over all.
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(p): Query<StepsParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    need(&caller, &[Role::Analyst])?;
    let id = workflow_id(&raw)?;
    let (from, limit) = p
        .page()
        .map_err(|m| ApiError::bad_request("invalid_query", m))?;
    let report = state
        .service
        .tracker()
        .report(&caller.tenant, &id, from, limit)?;
    let wants_html = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    Ok(if wants_html {
        Html(report.to_html()).into_response()
    } else {
        Json(report).into_response()
    })
}

/// `GET /v1/drift`.
pub async fn drift(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<DriftParams>,
) -> Result<Json<DriftPage>, ApiError> {
    need(&caller, &[Role::Analyst])?;
    let since_nanos = match &p.since {
        Some(s) => Some(
            crate::workflow::parse_time("since", s)
                .map(crate::workflow::epoch_nanos)
                .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?,
        ),
        None => None,
    };
    if let Some(c) = &p.cursor
        && (c.len() != 64 || !c.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`cursor` is not a cursor this API returned",
        ));
    }
    let page = state.service.tracker().drift(
        &caller.tenant,
        &DriftQuery {
            since_nanos,
            subject: p.subject,
            actor: p.actor,
            limit: p.limit.unwrap_or(100),
            cursor: p.cursor,
        },
    )?;
    Ok(Json(page))
}
