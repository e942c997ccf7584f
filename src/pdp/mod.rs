//! The AuthZEN 1.0 policy decision point. A decision is the base policy
//! (Cedar, see [`cedar`]) AND, when `context.workflow_id` names a workflow,
//! the workflow's intent, judged by the same drift rules as step reports:
//! a step that would be divergent is denied before it runs.
//!
//! The MCP mapping is accepted — action `tools/call` with resource
//! `{"type": "tool", "id": TOOL, "properties": {"arguments": {…}}}` — and so
//! is action = the tool's name. The delegation chain may come in
//! `context.act` (an RFC 8693 claim), `context.token` (the delegated JWT) or
//! `context.sub`.
//!
//! The PDP fails closed: an evaluation that names no workflow is permitted
//! only when a base policy explicitly permits it (a Cedar `permit` matched
//! and no `forbid`); with no base policy loaded it is denied, unless the
//! operator opted out with `--allow-without-workflow`. An evaluation that
//! names a workflow the caller's tenant does not have is always denied.

mod cache;
pub mod cedar;
pub mod request;
mod slices;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::intent::{Decision, Object};
use crate::service::tracker::{Tracker, TrackerError};
use crate::workflow::{Judgement, Outcome as WorkflowOutcome, StepReport, Verdict};
pub use cedar::BasePolicy;
pub use request::Evaluation;

/// Errors of the PDP.
#[derive(Debug, thiserror::Error)]
pub enum PdpError {
    /// The request is not a valid AuthZEN request (400).
    #[error("{0}")]
    BadRequest(String),
    /// The policy directory cannot be loaded (start-up).
    #[error("policy: {0}")]
    Policy(String),
    /// The workflow tracker failed.
    #[error(transparent)]
    Tracker(#[from] TrackerError),
}

/// The PDP: base policies plus intents.
pub struct Pdp {
    base: Option<BasePolicy>,
    record_permits: bool,
    allow_without_workflow: bool,
    limits: Limits,
}

/// Bounds on AuthZEN requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Batch items and context size.
    pub request: request::Limits,
    /// Results of one search at most (candidates past it are not evaluated).
    pub max_search_results: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request: request::Limits::default(),
            max_search_results: 1000,
        }
    }
}

/// Batch items and search candidates evaluated between two yields to the
/// scheduler, so a long request shares its thread and its timeout can fire.
pub const YIELD_EVERY: usize = 16;

/// What one evaluation concluded, before it is put on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Permit or deny.
    pub allowed: bool,
    /// For the person (single-evaluation denies).
    pub reason_user: Option<String>,
    /// For the operator (single-evaluation denies).
    pub reason_admin: Option<Value>,
    /// An item that could not be evaluated: `(status, message)`.
    pub error: Option<(u16, String)>,
}

impl Outcome {
    fn deny(user: String, admin: Value) -> Self {
        Self {
            allowed: false,
            reason_user: Some(user),
            reason_admin: Some(admin),
            error: None,
        }
    }

    fn failed(status: u16, message: String) -> Self {
        Self {
            allowed: false,
            reason_user: None,
            reason_admin: None,
            error: Some((status, message)),
        }
    }

    /// The reason codes of a deny, as a client may see them (the codes of
    /// `reason_admin`, never its evidence): the drift reasons' codes,
    /// `base_policy_deny`, or `error` for an evaluation that failed.
    pub fn reason_codes(&self) -> Vec<String> {
        if self.error.is_some() {
            return vec!["error".into()];
        }
        let Some(admin) = &self.reason_admin else {
            return Vec::new();
        };
        if let Some(reasons) = admin.get("reasons").and_then(Value::as_array) {
            return reasons
                .iter()
                .filter_map(|r| r.get("code").and_then(Value::as_str).map(str::to_string))
                .collect();
        }
        match admin.get("base_policy").and_then(Value::as_str) {
            Some("deny") => vec!["base_policy_deny".into()],
            Some("none") => vec!["no_workflow".into()],
            _ => Vec::new(),
        }
    }

    /// The single-evaluation response: a deny carries its reasons.
    pub fn single(&self) -> Decision {
        if let Some((status, message)) = &self.error {
            return Decision {
                decision: false,
                context: Some(error_context(*status, message)),
            };
        }
        let mut ctx = Object::new();
        if !self.allowed {
            if let Some(u) = &self.reason_user {
                ctx.insert("reason_user".into(), json!({"403": u}));
            }
            if let Some(a) = &self.reason_admin {
                ctx.insert("reason_admin".into(), json!({"403": a}));
            }
        }
        Decision {
            decision: self.allowed,
            context: (!ctx.is_empty()).then_some(ctx),
        }
    }

    /// The batch-item response: exactly `{"decision": …}` unless it failed.
    pub fn item(&self) -> Decision {
        match &self.error {
            Some((status, message)) => Decision {
                decision: false,
                context: Some(error_context(*status, message)),
            },
            None => Decision {
                decision: self.allowed,
                context: None,
            },
        }
    }
}

fn error_context(status: u16, message: &str) -> Object {
    let mut ctx = Object::new();
    ctx.insert(
        "error".into(),
        json!({"status": status, "message": message}),
    );
    ctx
}

/// The tool and arguments an evaluation asks about.
pub fn tool_call(e: &Evaluation) -> (String, Object) {
    let props = e.resource.properties.clone().unwrap_or_default();
    let args = match props.get("arguments") {
        Some(Value::Object(a)) => a.clone(),
        _ if e.action.name == "tools/call" => Object::new(),
        _ => props,
    };
    let tool = if e.action.name == "tools/call" {
        e.resource.id.clone()
    } else {
        e.action.name.clone()
    };
    (tool, args)
}

impl Pdp {
    /// A PDP; without base policies what a workflow's intent allows is
    /// permitted, and an evaluation without a workflow is denied.
    pub fn new(base: Option<BasePolicy>, record_permits: bool) -> Self {
        Self {
            base,
            record_permits,
            allow_without_workflow: false,
            limits: Limits::default(),
        }
    }

    /// Sets the request bounds.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The request bounds.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Permits evaluations that name no workflow when no base policy is
    /// loaded (`--allow-without-workflow`; fail open, for PEPs that only
    /// ask about workflows and trust their own callers).
    pub fn allow_without_workflow(mut self, allow: bool) -> Self {
        self.allow_without_workflow = allow;
        self
    }

    /// The base policy, if one is loaded.
    pub fn base(&self) -> Option<&BasePolicy> {
        self.base.as_ref()
    }

    /// Decides one evaluation for `tenant`; with `--record-evaluations` a
    /// permitted evaluation that names a workflow is recorded as its step.
    pub async fn evaluate(&self, tracker: &Tracker, tenant: &str, e: &Evaluation) -> Outcome {
        self.decide(tracker, tenant, e, self.record_permits, false)
            .await
    }

    /// Decides one call a PEP is about to block or forward on this answer
    /// (forward auth): a call the workflow's drift rules deny is recorded
    /// as a blocked step, so the attempt shows in the ledger and in
    /// `/v1/drift`; a permitted one is recorded as [`Pdp::evaluate`] does.
    pub async fn enforce(&self, tracker: &Tracker, tenant: &str, e: &Evaluation) -> Outcome {
        self.decide(tracker, tenant, e, self.record_permits, true)
            .await
    }

    /// Decides one evaluation for `tenant` and never records it (token
    /// issuance asks about steps that have not been attempted).
    pub async fn check(&self, tracker: &Tracker, tenant: &str, e: &Evaluation) -> Outcome {
        self.decide(tracker, tenant, e, false, false).await
    }

    async fn decide(
        &self,
        tracker: &Tracker,
        tenant: &str,
        e: &Evaluation,
        record_permit: bool,
        record_denial: bool,
    ) -> Outcome {
        let base = match &self.base {
            None => None,
            Some(b) => match b.decide(tenant, e) {
                Ok(d) => Some(d),
                Err(PdpError::BadRequest(m)) => return Outcome::failed(400, m),
                Err(other) => return Outcome::failed(500, other.to_string()),
            },
        };
        if let Some(d) = &base
            && !d.allowed
        {
            return Outcome::deny(
                format!(
                    "{} may not {} {}",
                    e.subject.id, e.action.name, e.resource.id
                ),
                json!({"base_policy": "deny", "policies": d.policies, "errors": d.errors}),
            );
        }
        let Some(wf) = e.context.get("workflow_id") else {
            // Here a loaded base policy has permitted (a deny returned above).
            if base.is_some() || self.allow_without_workflow {
                return Outcome {
                    allowed: true,
                    reason_user: None,
                    reason_admin: None,
                    error: None,
                };
            }
            return Outcome::deny(
                format!(
                    "{} may not {} {} outside a workflow",
                    e.subject.id, e.action.name, e.resource.id
                ),
                json!({"base_policy": "none", "workflow_id": null,
                       "reason": "no workflow_id and no base policy permits it"}),
            );
        };
        let Some(id) = wf.as_str().and_then(|s| s.parse::<Uuid>().ok()) else {
            return Outcome::failed(404, format!("unknown workflow `{wf}`"));
        };
        let (tool, arguments) = tool_call(e);
        let input = StepReport {
            actor: Some(e.subject.clone()),
            act: e.context.get("act").cloned(),
            token: e
                .context
                .get("token")
                .and_then(Value::as_str)
                .map(str::to_string),
            sub: e
                .context
                .get("sub")
                .and_then(Value::as_str)
                .map(str::to_string),
            tool: Some(tool),
            arguments,
            ..StepReport::default()
        };
        let mut observed = match tracker.observe(input) {
            Ok(o) => o,
            Err(err) => return Outcome::failed(400, err.to_string()),
        };
        let judgement: Judgement = match tracker.evaluate(tenant, &id, &observed).await {
            Ok(j) => j,
            Err(TrackerError::UnknownWorkflow(w)) => {
                return Outcome::failed(404, format!("unknown workflow `{w}`"));
            }
            Err(err) => return Outcome::failed(500, err.to_string()),
        };
        if judgement.verdict == Verdict::Divergent {
            let divergent: Vec<_> = judgement
                .reasons
                .iter()
                .filter(|r| r.code.verdict() == Verdict::Divergent)
                .collect();
            let user = divergent.first().map_or_else(
                || "not part of the request".to_string(),
                |r| r.message.clone(),
            );
            let admin_reasons: Vec<_> = divergent
                .iter()
                .map(|r| json!({"code": r.code, "evidence": r.evidence}))
                .collect();
            if record_denial {
                observed.outcome = Some(WorkflowOutcome {
                    is_error: true,
                    blocked: true,
                    ..WorkflowOutcome::default()
                });
                if let Err(err) = tracker.record(tenant, &id, observed).await {
                    return Outcome::failed(500, err.to_string());
                }
            }
            return Outcome::deny(
                user,
                json!({"workflow_id": id.to_string(), "verdict": "divergent",
                       "reasons": admin_reasons}),
            );
        }
        if record_permit && let Err(err) = tracker.record(tenant, &id, observed).await {
            return Outcome::failed(500, err.to_string());
        }
        Outcome {
            allowed: true,
            reason_user: None,
            reason_admin: None,
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::{Action, Resource, Subject};

    fn eval(action: &str, resource: Resource) -> Evaluation {
        Evaluation {
            subject: Subject::new("agent", "a"),
            action: Action::new(action),
            resource,
            context: Default::default(),
        }
    }

    #[test]
    fn maps_mcp_tool_calls_and_tool_named_actions() {
        let mcp = eval(
            "tools/call",
            Resource {
                kind: "tool".into(),
                id: "send_email".into(),
                properties: json!({"arguments": {"to": "bob@example.com"}})
                    .as_object()
                    .cloned(),
            },
        );
        let (tool, args) = tool_call(&mcp);
        assert_eq!(
            (tool.as_str(), args["to"].as_str()),
            ("send_email", Some("bob@example.com"))
        );
        let named = eval(
            "send_email",
            Resource {
                kind: "email".into(),
                id: "x".into(),
                properties: json!({"to": "bob@example.com"}).as_object().cloned(),
            },
        );
        let (tool, args) = tool_call(&named);
        assert_eq!(
            (tool.as_str(), args["to"].as_str()),
            ("send_email", Some("bob@example.com"))
        );
    }

    #[test]
    fn batch_items_stay_bare_unless_they_fail() {
        let deny = Outcome::deny("no".into(), json!({}));
        assert_eq!(
            serde_json::to_value(deny.item()).unwrap(),
            json!({"decision": false})
        );
        let single = serde_json::to_value(deny.single()).unwrap();
        assert_eq!(single["context"]["reason_user"]["403"], "no");
        let failed = Outcome::failed(404, "unknown workflow".into());
        assert_eq!(
            serde_json::to_value(failed.item()).unwrap(),
            json!({"decision": false, "context": {"error": {"status": 404, "message": "unknown workflow"}}})
        );
    }
}
