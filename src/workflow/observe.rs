//! Observing a step: a PEP's step report checked and turned into the
//! [`Observed`] step the drift rules judge.

use serde_json::Value;

use super::{
    ChainActor, Observed, Outcome, StepKind, TokenVerifier, WorkflowError, now_rfc3339, parse_act,
    parse_time,
};
use crate::intent::{Object, Subject};

/// A step as a PEP reports it (the API reads it from `StepInput`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepReport {
    /// The actor the PEP saw.
    pub actor: Option<Subject>,
    /// The RFC 8693 `act` claim of the delegated token.
    pub act: Option<Value>,
    /// The delegated JWT itself (`sub` and `act` are read from it).
    pub token: Option<String>,
    /// The person the token is for, when no token is given.
    pub sub: Option<String>,
    /// MCP `tools/call` `params.name`.
    pub tool: Option<String>,
    /// A skill's name.
    pub skill: Option<String>,
    /// The call's arguments.
    pub arguments: Object,
    /// The outcome.
    pub outcome: Option<Outcome>,
    /// When it ran (RFC 3339).
    pub at: Option<String>,
}

/// Turns a step report into an observed step: exactly one of tool or
/// skill, the token read (and verified when `verifier` has keys), the `act`
/// claim parsed to at most `max_act_depth` levels, the time checked.
pub fn observe(
    input: StepReport,
    verifier: &TokenVerifier,
    max_act_depth: usize,
) -> Result<Observed, WorkflowError> {
    let (kind, name) = match (input.tool, input.skill) {
        (Some(t), None) => (StepKind::Tool, t),
        (None, Some(s)) => (StepKind::Skill, s),
        _ => return Err(WorkflowError::ToolOrSkill),
    };
    if name.is_empty() || name.len() > 128 {
        return Err(WorkflowError::Field {
            field: "tool",
            reason: "must have 1-128 characters".into(),
        });
    }
    let (sub, act, verified) = match &input.token {
        Some(token) => {
            let read = verifier.read(token)?;
            (Some(read.claims.sub), read.claims.act, read.verified)
        }
        None => (input.sub, input.act, false),
    };
    let chain: Vec<ChainActor> = match &act {
        Some(a) => parse_act(a, max_act_depth)?,
        None => vec![],
    };
    let actor = match (input.actor, chain.last()) {
        (Some(a), _) => a,
        (None, Some(current)) => Subject::new("agent", current.sub.clone()),
        (None, None) => {
            return Err(WorkflowError::Field {
                field: "actor",
                reason: "give `actor`, or an `act` claim or token naming one".into(),
            });
        }
    };
    let at = match input.at {
        Some(at) => {
            parse_time("at", &at)?;
            at
        }
        None => now_rfc3339(),
    };
    Ok(Observed {
        actor,
        chain,
        sub,
        token_verified: verified,
        kind,
        name,
        arguments: input.arguments,
        outcome: input.outcome,
        at,
    })
}
