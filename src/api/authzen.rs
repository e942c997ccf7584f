//! AuthZEN 1.0 endpoints: evaluation, evaluations (batch), subject /
//! resource / action search, and the discovery document. A deny is a 200
//! with `{"decision": false}`; a malformed request is a 400. Batches,
//! contexts and search results are bounded (see [`crate::pdp::Limits`]),
//! and long batches and searches yield to the scheduler every
//! [`YIELD_EVERY`] evaluations so the request timeout can fire.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::HOST;
use serde_json::{Value, json};
use std::sync::Arc;

use super::json::JsonBody;
use super::{ApiError, AppState, need};
use crate::auth::{Caller, Role};
use crate::intent::{Action, Decision, Resource, Subject};
use crate::pdp::request::{self, Evaluation, Semantic};
use crate::pdp::{PdpError, YIELD_EVERY};

impl From<PdpError> for ApiError {
    fn from(e: PdpError) -> Self {
        match e {
            PdpError::BadRequest(m) => ApiError::bad_request("invalid_request", m),
            PdpError::Policy(m) => ApiError::Internal(m),
            PdpError::Tracker(t) => t.into(),
        }
    }
}

/// `POST /access/v1/evaluation`.
pub async fn evaluation(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Decision>, ApiError> {
    need(&caller, &[Role::Pep])?;
    let e = request::single_with(&body, &state.pdp.limits().request)?;
    let outcome = state
        .pdp
        .evaluate(state.service.tracker(), &caller.tenant, &e)
        .await;
    if let Some((400, message)) = &outcome.error {
        return Err(ApiError::bad_request("invalid_request", message.clone()));
    }
    Ok(Json(outcome.single()))
}

/// `POST /access/v1/evaluations`.
pub async fn evaluations(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    need(&caller, &[Role::Pep])?;
    let batch = request::batch_with(&body, &state.pdp.limits().request)?;
    let tracker = state.service.tracker();
    if batch.items.is_empty() {
        let e = batch.defaults.complete(&request::Partial::default())?;
        let outcome = state.pdp.evaluate(tracker, &caller.tenant, &e).await;
        return Ok(Json(
            serde_json::to_value(outcome.single())
                .map_err(|e| ApiError::Internal(e.to_string()))?,
        ));
    }
    let mut out = Vec::with_capacity(batch.items.len());
    for (i, item) in batch.items.into_iter().enumerate() {
        if i > 0 && i % YIELD_EVERY == 0 {
            tokio::task::yield_now().await;
        }
        let decision = match item.complete(&batch.defaults) {
            Ok(e) => state.pdp.evaluate(tracker, &caller.tenant, &e).await.item(),
            Err(err) => Decision {
                decision: false,
                context: Some(
                    json!({"error": {"status": 400, "message": err.to_string()}})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                ),
            },
        };
        let stop = match batch.semantic {
            Semantic::ExecuteAll => false,
            Semantic::DenyOnFirstDeny => !decision.decision,
            Semantic::PermitOnFirstPermit => decision.decision,
        };
        out.push(decision);
        if stop {
            break;
        }
    }
    Ok(Json(json!({ "evaluations": out })))
}

fn page(body: &Value, total: usize) -> Result<(usize, usize), ApiError> {
    let p = body.get("page");
    let limit = match p.and_then(|p| p.get("limit")) {
        None | Some(Value::Null) => 50,
        Some(v) => v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::bad_request("invalid_request", "`page.limit` must be a positive integer")
        })? as usize,
    };
    let offset = match p.and_then(|p| p.get("token")) {
        None | Some(Value::Null) => 0,
        Some(Value::String(s)) if s.is_empty() => 0,
        Some(Value::String(s)) => {
            s.parse::<usize>()
                .ok()
                .filter(|o| *o <= total)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_request",
                        "`page.token` is not a token this PDP issued",
                    )
                })?
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "`page.token` must be a string",
            ));
        }
    };
    Ok((offset, limit.min(1000)))
}

/// The search candidates the caller's tenant is permitted, each evaluated
/// as `evaluation(candidate)` and kept as `hit(candidate)`, in order, at
/// most `max_search_results` of them; yields every [`YIELD_EVERY`]
/// candidates so the request timeout can fire.
async fn permitted(
    state: &AppState,
    caller: &Caller,
    candidates: Vec<String>,
    evaluation: impl Fn(&str) -> Evaluation,
    hit: impl Fn(&str) -> Value,
) -> Vec<Value> {
    let mut results = Vec::new();
    let max = state.pdp.limits().max_search_results;
    for (i, candidate) in candidates.iter().enumerate() {
        if results.len() >= max {
            break;
        }
        if i > 0 && i % YIELD_EVERY == 0 {
            tokio::task::yield_now().await;
        }
        if state
            .pdp
            .evaluate(
                state.service.tracker(),
                &caller.tenant,
                &evaluation(candidate),
            )
            .await
            .allowed
        {
            results.push(hit(candidate));
        }
    }
    results
}

fn paged(body: &Value, results: Vec<Value>) -> Result<Json<Value>, ApiError> {
    let total = results.len();
    let (offset, limit) = page(body, total)?;
    let end = (offset + limit).min(total);
    let next = if end < total {
        end.to_string()
    } else {
        String::new()
    };
    let slice: Vec<Value> = results[offset..end].to_vec();
    Ok(Json(
        json!({"page": {"next_token": next, "count": slice.len(), "total": total}, "results": slice}),
    ))
}

fn required<'a>(body: &'a Value, key: &str) -> Result<&'a Value, ApiError> {
    body.get(key)
        .ok_or_else(|| ApiError::bad_request("invalid_request", format!("`{key}` is required")))
}

fn type_only(body: &Value, key: &str) -> Result<String, ApiError> {
    required(body, key)?
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::bad_request("invalid_request", format!("`{key}.type` must be a string"))
        })
}

fn context_of(state: &AppState, body: &Value) -> Result<Arc<crate::intent::Object>, ApiError> {
    match body.get("context") {
        None | Some(Value::Null) => Ok(Default::default()),
        Some(v @ Value::Object(o)) => {
            let max = state.pdp.limits().request.max_context_bytes;
            if request::json_size(v, max) > max {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    format!("`context` is larger than {max} bytes"),
                ));
            }
            Ok(Arc::new(o.clone()))
        }
        Some(_) => Err(ApiError::bad_request(
            "invalid_request",
            "`context` must be an object",
        )),
    }
}

/// `POST /access/v1/search/subject`: subjects of the entities file that
/// may perform the action on the resource.
pub async fn search_subject(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    need(&caller, &[Role::Pep])?;
    let kind = type_only(&body, "subject")?;
    let action = request::action(required(&body, "action")?, "action")?;
    let resource = request::resource(required(&body, "resource")?, "resource")?;
    let context = context_of(&state, &body)?;
    let candidates = state
        .pdp
        .base()
        .map(|b| b.entities_of(&caller.tenant, &kind))
        .unwrap_or_default();
    let results = permitted(
        &state,
        &caller,
        candidates,
        |id| Evaluation {
            subject: Subject::new(kind.clone(), id.to_string()),
            action: action.clone(),
            resource: resource.clone(),
            context: Arc::clone(&context),
        },
        |id| json!({"type": kind, "id": id}),
    )
    .await;
    paged(&body, results)
}

/// `POST /access/v1/search/resource`: resources of the entities file the
/// subject may act on.
pub async fn search_resource(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    need(&caller, &[Role::Pep])?;
    let subject = request::subject(required(&body, "subject")?, "subject")?;
    let action = request::action(required(&body, "action")?, "action")?;
    let kind = type_only(&body, "resource")?;
    let context = context_of(&state, &body)?;
    let candidates = state
        .pdp
        .base()
        .map(|b| b.entities_of(&caller.tenant, &kind))
        .unwrap_or_default();
    let results = permitted(
        &state,
        &caller,
        candidates,
        |id| Evaluation {
            subject: subject.clone(),
            action: action.clone(),
            resource: Resource::new(kind.clone(), id.to_string()),
            context: Arc::clone(&context),
        },
        |id| json!({"type": kind, "id": id}),
    )
    .await;
    paged(&body, results)
}

/// `POST /access/v1/search/action`: "which tools may this agent call in
/// workflow W?" — the workflow's catalog entries (and the entities file's
/// `Action` entities) that the base policy and the intent both permit. The
/// resource is required; `{"type": "tool", "id": "*"}` stands for each tool.
pub async fn search_action(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    need(&caller, &[Role::Pep])?;
    let subject = request::subject(required(&body, "subject")?, "subject")?;
    let resource = request::resource(required(&body, "resource")?, "resource")?;
    let context = context_of(&state, &body)?;
    let mut names: Vec<String> = state
        .pdp
        .base()
        .map(|b| b.entities_of(&caller.tenant, "Action"))
        .unwrap_or_default();
    if let Some(id) = context.get("workflow_id").and_then(Value::as_str) {
        let id = id.parse().map_err(|_| ApiError::NotFound {
            code: "unknown_workflow",
            message: format!("unknown workflow `{id}`"),
        })?;
        let wf = state.service.tracker().workflow(&caller.tenant, &id)?;
        names.extend(wf.catalog.entries.iter().map(|e| e.name.clone()));
    }
    names.sort();
    names.dedup();
    let results = permitted(
        &state,
        &caller,
        names,
        |name| {
            let mut r = resource.clone();
            if r.kind == "tool" && r.id == "*" {
                r.id = name.to_string();
            }
            Evaluation {
                subject: subject.clone(),
                action: Action::new(name.to_string()),
                resource: r,
                context: Arc::clone(&context),
            }
        },
        |name| json!({"name": name}),
    )
    .await;
    paged(&body, results)
}

/// `GET /.well-known/authzen-configuration`.
pub async fn configuration(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let base = state.public_url.clone().unwrap_or_else(|| {
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}")
    });
    let base = base.trim_end_matches('/').to_string();
    Json(json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
        "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
        "search_subject_endpoint": format!("{base}/access/v1/search/subject"),
        "search_resource_endpoint": format!("{base}/access/v1/search/resource"),
        "search_action_endpoint": format!("{base}/access/v1/search/action"),
    }))
}
