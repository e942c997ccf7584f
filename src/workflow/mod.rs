//! Workflows and their steps. A workflow is a subject, the intent extracted
//! from the person's request, the catalog it was matched against (frozen at
//! creation) and an ordered list of steps. A step is what a PEP saw an agent
//! execute: the actor, the full RFC 8693 delegation chain, the tool or
//! skill, its arguments and outcome, and the verdict telos gave it. Steps
//! of a workflow form a hash chain that commits to the intent.

pub mod act;
pub mod graph;
pub mod observe;
pub mod provenance;
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
pub use provenance::{FoundValue, ValueSources};
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
    /// The hash every step chain starts from (see [`Workflow::genesis_hash`]).
    pub genesis: String,
    /// The ledger format the record was written in: 2 (the genesis commits
    /// to everything the verdicts depend on), or 1 for records written
    /// before format 2, whose genesis commits to the id, subject and intent
    /// only. Absent in format-1 records.
    #[serde(default = "legacy_ledger")]
    pub ledger: u32,
}

/// The ledger format new workflows are written in.
pub const LEDGER_VERSION: u32 = 2;

fn legacy_ledger() -> u32 {
    1
}

impl Workflow {
    /// The genesis hash of this workflow's chain, in its ledger format.
    /// Format 2 hashes the id, tenant, subject, intent, catalog name, a
    /// SHA-256 digest of the frozen catalog, the allowed agents, the
    /// context and the creation time, so changing any of them in the
    /// stored record breaks the chain at its genesis. Format 1 hashes the
    /// id, subject and intent.
    pub fn genesis_hash(&self) -> String {
        let mut h = Sha256::new();
        if self.ledger < 2 {
            h.update(b"telos-workflow-v1\0");
            h.update(self.id.as_bytes());
            h.update(serde_json::to_vec(&self.subject).unwrap_or_default());
            h.update(serde_json::to_vec(&self.intent).unwrap_or_default());
            return hex::encode(h.finalize());
        }
        let committed = serde_json::json!({
            "id": self.id,
            "tenant": self.tenant,
            "subject": self.subject,
            "intent": self.intent,
            "catalog_name": self.catalog_name,
            "catalog_sha256": catalog_digest(&self.catalog),
            "allowed_agents": self.allowed_agents,
            "context": self.context,
            "created_at": self.created_at,
        });
        h.update(b"telos-workflow-v2\0");
        h.update(serde_json::to_vec(&committed).unwrap_or_default());
        hex::encode(h.finalize())
    }
}

/// SHA-256 (hex) of a catalog's JSON encoding.
pub fn catalog_digest(catalog: &Catalog) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(catalog).unwrap_or_default(),
    ))
}

/// The head of a workflow's chain: the last step's seq and hash (seq 0 and
/// the genesis hash before the first step). Stored next to the workflow
/// record and updated in the same write as every step, so removing the
/// last steps leaves a head that points past the end of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The last step's seq.
    pub seq: u64,
    /// The last step's hash.
    pub hash: String,
}

/// Why a workflow's ledger does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerBreak {
    /// The first step concerned (0: the workflow record or its genesis).
    pub at: u64,
    /// What is wrong, for an operator.
    pub reason: String,
}

/// A stored step as read back for verification: its key's seq and the
/// record, or why it does not decode.
pub type StoredStep = (u64, Result<Step, String>);

/// Checks a workflow's ledger one step at a time (so a long chain can be
/// read in pages): the genesis against the record, every step's seq, link
/// and hash in key order, and finally the stored head against the last
/// step.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    prev: String,
    before_last: String,
    last: u64,
    broken: Option<LedgerBreak>,
}

impl ChainCheck {
    /// Starts at the workflow's genesis (checking it).
    pub fn new(workflow: &Workflow) -> Self {
        let broken = (workflow.genesis_hash() != workflow.genesis).then(|| LedgerBreak {
            at: 0,
            reason: "the genesis hash does not match the workflow record (its tenant, subject, \
                     intent, catalog, allowed agents or context changed)"
                .into(),
        });
        Self {
            prev: workflow.genesis.clone(),
            before_last: String::new(),
            last: 0,
            broken,
        }
    }

    /// Checks the next stored step (`key_seq` is the seq in its key).
    pub fn push(&mut self, key_seq: u64, step: Result<&Step, &str>) {
        if self.broken.is_some() {
            return;
        }
        let want = self.last + 1;
        let reason = if key_seq != want {
            Some(format!(
                "step {want} is missing (the next stored step is {key_seq}): steps were removed"
            ))
        } else {
            match step {
                Err(e) => Some(format!("step {want} does not decode: {e}")),
                Ok(s) if s.seq != want => Some(format!(
                    "the step stored at {want} says it is step {}: steps were moved",
                    s.seq
                )),
                Ok(s) if s.prev_hash != self.prev => Some(format!(
                    "step {want} does not link to the step before it: steps were reordered or replaced"
                )),
                Ok(s) if s.compute_hash() != s.hash => Some(format!(
                    "step {want} does not match its hash: it was edited"
                )),
                Ok(s) => {
                    self.before_last = std::mem::replace(&mut self.prev, s.hash.clone());
                    self.last = want;
                    None
                }
            }
        };
        if let Some(reason) = reason {
            self.broken = Some(LedgerBreak { at: want, reason });
        }
    }

    /// The first problem, with the stored head checked against the last
    /// step. `Ok(Some(seq))`: the chain goes exactly one linked step past
    /// its head, the trace of an append interrupted between its step and
    /// its head write (see [`crate::storage::Store::append_step`]); that
    /// step was never acknowledged.
    pub fn finish(self, head: Option<&Head>) -> Result<Option<u64>, LedgerBreak> {
        if let Some(b) = self.broken {
            return Err(b);
        }
        let last = self.last;
        let broken = |at: u64, reason: String| Err(LedgerBreak { at, reason });
        let Some(head) = head else {
            return broken(last + 1, "the workflow has no head record".into());
        };
        if head.seq > last {
            return broken(
                last + 1,
                format!(
                    "the head is at step {} but the chain ends at step {last}: steps were removed",
                    head.seq
                ),
            );
        }
        if head.seq + 1 == last && head.hash == self.before_last {
            return Ok(Some(last));
        }
        if head.seq < last {
            return broken(
                head.seq + 1,
                format!(
                    "the chain goes on to step {last} past its head at step {}: steps were added outside telos",
                    head.seq
                ),
            );
        }
        if head.hash != self.prev {
            return broken(
                last,
                format!("the head hash differs from step {last}'s hash"),
            );
        }
        Ok(None)
    }
}

/// Checks a workflow's whole ledger with [`ChainCheck`]; returns the first
/// problem, or the seq of an interrupted append ([`ChainCheck::finish`]).
pub fn verify_ledger(
    workflow: &Workflow,
    head: Option<&Head>,
    steps: &[StoredStep],
) -> Result<Option<u64>, LedgerBreak> {
    let mut check = ChainCheck::new(workflow);
    for (key_seq, step) in steps {
        check.push(*key_seq, step.as_ref().map_err(String::as_str));
    }
    check.finish(head)
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// MCP `isError` (a blocked step is an error to its caller).
    pub is_error: bool,
    /// The PEP refused the call: it never reached the tool.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blocked: bool,
    /// The tool's result as the PEP reported it (any JSON; the request
    /// body limit bounds it). Read when the step is observed, never stored
    /// or echoed: its typed values and digest are.
    #[serde(default, skip_serializing)]
    pub result: Option<Value>,
    /// Typed values of the result with their places
    /// ([`provenance::digest_result`]), or as the PEP reported them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<FoundValue>,
    /// sha256 of the result's compact JSON, when a result was reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_digest: Option<String>,
    /// The result held more values, or more text, than are kept
    /// ([`provenance::ResultDigest::truncated`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub values_truncated: bool,
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
/// the first broken link. (Without the head this cannot see removed last
/// steps; [`verify_ledger`] can.)
pub fn verify_chain(workflow: &Workflow, steps: &[Step]) -> Result<(), u64> {
    if workflow.genesis_hash() != workflow.genesis {
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
