//! `POST /v1/workflows/{id}/authorization_details`: what an authorization
//! server asks at RFC 8693 token-exchange time. Given the actor the token
//! is for, each quad of the workflow's intent is decided as that actor
//! would call it — the base policy AND the intent, by the same decision
//! code as `POST /access/v1/evaluation`, without recording anything — and
//! the answer is the RFC 9396 `authorization_details` holding only the
//! permitted quads, plus the denied ones with their reasons.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

use super::json::JsonBody;
use super::workflows::workflow_id;
use super::{ApiError, AppState, need};
use crate::auth::{Caller, Role};
use crate::intent::{Object, Subject};
use crate::pdp::Evaluation;

/// The request body.
#[derive(Debug, Clone, Deserialize)]
pub struct IssuanceRequest {
    /// The agent the token is for (the token's current actor).
    pub actor: Subject,
    /// The RFC 8693 `act` claim the token will carry (outermost = the
    /// actor), when the delegation chain is longer than the actor alone.
    #[serde(default)]
    pub act: Option<Value>,
}

/// `POST /v1/workflows/{id}/authorization_details`.
pub async fn authorization_details(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    JsonBody(req): JsonBody<IssuanceRequest>,
) -> Result<Json<Value>, ApiError> {
    need(&caller, &[Role::Frontend, Role::Pep])?;
    let id = workflow_id(&raw)?;
    let tracker = state.service.tracker();
    let wf = tracker.workflow(&caller.tenant, &id)?;
    let id = wf.id.to_string();
    let mut details = wf.intent.authorization_details(Some(&id));
    let mut context = Object::new();
    context.insert("workflow_id".into(), Value::String(id.clone()));
    context.insert("sub".into(), Value::String(wf.subject.id.clone()));
    if let Some(act) = &req.act {
        context.insert("act".into(), act.clone());
    }
    let context = Arc::new(context);
    let mut denied = Vec::new();
    for detail in &mut details {
        let mut permitted = Vec::with_capacity(detail.request.evaluations.len());
        for quad in std::mem::take(&mut detail.request.evaluations) {
            let e = Evaluation {
                subject: req.actor.clone(),
                action: quad.action.clone(),
                resource: quad.resource.clone(),
                context: Arc::clone(&context),
            };
            let outcome = state.pdp.check(tracker, &caller.tenant, &e).await;
            match &outcome.error {
                Some((400, message)) => {
                    return Err(ApiError::bad_request("invalid_request", message.clone()));
                }
                Some((_, message)) => return Err(ApiError::Internal(message.clone())),
                None => {}
            }
            if outcome.allowed {
                permitted.push(quad);
            } else {
                denied.push(json!({
                    "action": quad.action,
                    "resource": quad.resource,
                    "reasons": outcome.reason_codes(),
                    "reason_user": outcome.reason_user,
                    "reason_admin": outcome.reason_admin,
                }));
            }
        }
        detail.request.evaluations = permitted;
    }
    Ok(Json(json!({
        "workflow_id": id,
        "actor": req.actor,
        "authorization_details": details,
        "denied": denied,
    })))
}
