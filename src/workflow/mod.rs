//! Workflows and their steps. A workflow is a subject, the intent extracted
//! from the person's request, the catalog it was matched against (frozen at
//! creation) and an ordered list of steps. A step is what a PEP saw an agent
//! execute: the actor, the full RFC 8693 delegation chain, the tool or
//! skill, its arguments and outcome, and the verdict telos gave it. Steps
//! of a workflow form a hash chain that commits to the intent.

pub mod act;
pub mod graph;
pub mod observe;
pub mod verdict;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::intent::{Intent, Object, Subject};
pub use act::{ChainActor, ReadToken, TokenClaims, TokenVerifier, parse_act};
pub use graph::{DelegationGraph, GraphEdge, GraphNode, chain_principals};
pub use observe::{StepReport, observe};
pub use verdict::{Judgement, Reason, ReasonCode, Verdict};

/// Errors of workflow input.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum WorkflowError {
    /// The `act` claim is malformed.
    #[error("invalid `act` claim: {0}")]
    InvalidAct(String),
    /// The token is not a well-formed JWT.
    #[error("malformed token: {0}")]
    MalformedToken(String),
    /// The token failed verification (signature, expiry, issuer).
    #[error("token rejected: {0}")]
    InvalidToken(String),
    /// The JWKS file is unusable.
    #[error("invalid JWKS: {0}")]
    Jwks(String),
    /// The step names neither a tool nor a skill, or both.
    #[error("a step names exactly one of `tool` or `skill`")]
    ToolOrSkill,
    /// A step field is invalid.
    #[error("invalid step field `{field}`: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// A stored workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    /// Its id.
    pub id: Uuid,
    /// The tenant that owns it.
    pub tenant: String,
    /// The person the agents act for.
    pub subject: Subject,
    /// The extracted intent.
    pub intent: Intent,
    /// Name of the registered catalog, when one was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_name: Option<String>,
    /// The catalog as it was when the workflow started.
    pub catalog: Catalog,
    /// Best cosine of every catalog entry to any clause of the request, in
    /// entry order; decides whether an unrequested read is related.
    pub entry_scores: Vec<f32>,
    /// Agents allowed to act in this workflow; empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_agents: Vec<String>,
    /// Extra context from the front-end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Object>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Whether the workflow is closed.
    pub closed: bool,
    /// When it was closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
    /// The hash every step chain starts from: it commits to the id, the
    /// subject and the intent.
    pub genesis: String,
}

impl Workflow {
    /// The genesis hash of a workflow's chain.
    pub fn genesis_hash(id: &Uuid, subject: &Subject, intent: &Intent) -> String {
        let mut h = Sha256::new();
        h.update(b"telos-workflow-v1\0");
        h.update(id.as_bytes());
        h.update(serde_json::to_vec(subject).unwrap_or_default());
        h.update(serde_json::to_vec(intent).unwrap_or_default());
        hex::encode(h.finalize())
    }
}

/// Whether a step called a tool or a skill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// An MCP tool (`tools/call` `params.name`).
    Tool,
    /// An Agent Skill or A2A skill.
    Skill,
}

/// The outcome of a step: executed (with MCP `isError`), or blocked by
/// the PEP before it reached the tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// MCP `isError` (a blocked step is an error to its caller).
    pub is_error: bool,
    /// The PEP refused the call: it never reached the tool.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blocked: bool,
}

/// A step as observed, before it is judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// The actor the PEP reported.
    pub actor: Subject,
    /// The delegation chain, oldest first, without the subject.
    pub chain: Vec<ChainActor>,
    /// The `sub` of the token or report, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Whether the chain came from a verified token.
    pub token_verified: bool,
    /// Tool or skill.
    pub kind: StepKind,
    /// Its name.
    pub name: String,
    /// The arguments it was called with.
    pub arguments: Object,
    /// Its outcome, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// When it ran (RFC 3339), as reported or as received.
    pub at: String,
}

/// A stored, judged step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Position in the workflow, from 1.
    pub seq: u64,
    /// What was observed.
    #[serde(flatten)]
    pub observed: Observed,
    /// When telos received it (RFC 3339).
    pub received_at: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why.
    pub reasons: Vec<Reason>,
    /// Hash of the previous step (the genesis hash for the first).
    pub prev_hash: String,
    /// Hash of this step: sha256 over `prev_hash` and the step without
    /// its own hash.
    pub hash: String,
}

impl Step {
    /// Computes the hash of this step's content chained to `prev_hash`.
    pub fn compute_hash(&self) -> String {
        let mut body = self.clone();
        body.hash = String::new();
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(serde_json::to_vec(&body).unwrap_or_default());
        hex::encode(h.finalize())
    }
}

/// Checks a chain of steps against a workflow's genesis; returns the seq of
/// the first broken link.
pub fn verify_chain(workflow: &Workflow, steps: &[Step]) -> Result<(), u64> {
    if Workflow::genesis_hash(&workflow.id, &workflow.subject, &workflow.intent) != workflow.genesis
    {
        return Err(0);
    }
    let mut prev = workflow.genesis.clone();
    for (i, s) in steps.iter().enumerate() {
        if s.seq != i as u64 + 1 || s.prev_hash != prev || s.compute_hash() != s.hash {
            return Err(i as u64 + 1);
        }
        prev = s.hash.clone();
    }
    Ok(())
}

/// Reads a value as RFC 3339, or fails naming the field.
pub fn parse_time(field: &'static str, v: &str) -> Result<time::OffsetDateTime, WorkflowError> {
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).map_err(|e| {
        WorkflowError::Field {
            field,
            reason: e.to_string(),
        }
    })
}

/// Nanoseconds since the epoch, clamped to `u64` (before 1970 is 0, after
/// 2554 is `u64::MAX`).
pub fn epoch_nanos(t: time::OffsetDateTime) -> u64 {
    let n = t.unix_timestamp_nanos();
    u64::try_from(n.max(0)).unwrap_or(u64::MAX)
}

/// Now, as RFC 3339.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The JSON value of an argument map, for evidence.
pub fn arguments_value(args: &Object) -> Value {
    Value::Object(args.clone())
}
