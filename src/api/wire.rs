//! Request and response bodies of the v1 API, kept apart from the domain
//! types they carry.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{BadEntry, Entry};
use crate::intent::{AuthorizationDetail, Intent, Object, Subject};
use crate::workflow::{Outcome, Reason, Step, StepReport, Verdict};

/// `POST /v1/intents` (and later `/v1/workflows`).
#[derive(Debug, Clone, Deserialize)]
pub struct IntentRequest {
    /// Who the agent acts for.
    pub subject: Subject,
    /// The person's request, as typed.
    pub prompt: String,
    /// A registered catalog's name.
    #[serde(default)]
    pub catalog: Option<String>,
    /// Tools given inline: an MCP `tools` array, or any catalog body.
    #[serde(default)]
    pub tools: Option<Value>,
    /// Extra context, echoed into the RAR request.
    #[serde(default)]
    pub context: Option<Object>,
    /// Workflows only: the agents allowed to act (empty: any).
    #[serde(default)]
    pub agents: Vec<String>,
    /// With inline `tools`: leave invalid tools out (listed in the
    /// answer's `skipped_tools`) instead of answering 400.
    #[serde(default)]
    pub skip_invalid: bool,
}

/// Query of `PUT /v1/catalogs/{name}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CatalogParams {
    /// Leave invalid entries out (listed in the answer's `skipped`)
    /// instead of answering 400.
    #[serde(default)]
    pub skip_invalid: bool,
}

/// The answer to `POST /v1/workflows`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkflowCreated {
    /// The new workflow's id.
    pub workflow_id: String,
    /// The extracted intent.
    pub intent: Intent,
    /// RFC 9396 authorization details; the request's context carries the
    /// workflow id.
    pub authorization_details: Vec<AuthorizationDetail>,
    /// Inline tools left out as invalid (`skip_invalid`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_tools: Vec<BadEntry>,
}

/// `GET /v1/workflows/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkflowView {
    /// Its id.
    pub workflow_id: String,
    /// The person.
    pub subject: Subject,
    /// The intent.
    pub intent: Intent,
    /// Every step with its verdict and reasons.
    pub steps: Vec<Step>,
    /// Whether it is closed.
    pub closed: bool,
    /// When it started.
    pub created_at: String,
    /// When it was closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
    /// Allowed agents (empty: any).
    pub allowed_agents: Vec<String>,
    /// The catalog's name, when registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
    /// Pass as `cursor` for the next page of steps; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Paging of a workflow's steps (`GET /v1/workflows/{id}` and its report).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StepsParams {
    /// Steps per page (1-1000, default 100).
    pub limit: Option<usize>,
    /// Continue from this cursor (a `next_cursor` of an earlier page).
    pub cursor: Option<String>,
}

impl StepsParams {
    /// The first seq and page size, or a message for a bad cursor.
    pub fn page(&self) -> Result<(u64, usize), String> {
        let limit = self.limit.unwrap_or(100).clamp(1, 1000);
        let from = match &self.cursor {
            None => 1,
            Some(c) => c
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| "`cursor` is not a cursor this API returned".to_string())?,
        };
        Ok((from, limit))
    }
}

/// The answer to a step report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecorded {
    /// The step's position in the workflow.
    pub step: u64,
    /// The verdict.
    pub verdict: Verdict,
    /// Why.
    pub reasons: Vec<Reason>,
    /// The step's hash in the workflow's chain.
    pub hash: String,
}

/// Query of `GET /v1/drift`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DriftParams {
    /// RFC 3339 lower bound.
    pub since: Option<String>,
    /// Subject id.
    pub subject: Option<String>,
    /// Actor id.
    pub actor: Option<String>,
    /// Page size (1-1000, default 100).
    pub limit: Option<usize>,
    /// Continue after this cursor.
    pub cursor: Option<String>,
}

/// The answer to an intent request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntentResponse {
    /// The extracted intent.
    pub intent: Intent,
    /// RFC 9396 authorization details for the delegated token.
    pub authorization_details: Vec<AuthorizationDetail>,
    /// Inline tools left out as invalid (`skip_invalid`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_tools: Vec<BadEntry>,
}

/// The answer to a catalog registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogSummary {
    /// The catalog's name.
    pub name: String,
    /// Entries registered.
    pub entries: usize,
    /// Entries that only read.
    pub read_only: usize,
    /// Entries with side effects.
    pub side_effecting: usize,
    /// The model that embedded the entries.
    pub model_sha256: String,
    /// Entries left out as invalid (`?skip_invalid=true`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<BadEntry>,
}

/// `GET /v1/catalogs/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogView {
    /// The catalog's name.
    pub name: String,
    /// Its entries.
    pub entries: Vec<Entry>,
    /// The model that embedded the entries.
    pub model_sha256: String,
}

/// `POST /v1/workflows/{id}/steps`: a step as a PEP reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepInput {
    /// The actor the PEP saw.
    pub actor: Option<Subject>,
    /// The RFC 8693 `act` claim of the delegated token.
    #[serde(default)]
    pub act: Option<Value>,
    /// The delegated JWT itself (`sub` and `act` are read from it).
    #[serde(default)]
    pub token: Option<String>,
    /// The person the token is for, when no token is given.
    #[serde(default)]
    pub sub: Option<String>,
    /// MCP `tools/call` `params.name`.
    #[serde(default)]
    pub tool: Option<String>,
    /// A skill's name.
    #[serde(default)]
    pub skill: Option<String>,
    /// The call's arguments.
    #[serde(default)]
    pub arguments: Object,
    /// The outcome.
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// When it ran (RFC 3339).
    #[serde(default)]
    pub at: Option<String>,
}

impl From<StepInput> for StepReport {
    fn from(input: StepInput) -> Self {
        Self {
            actor: input.actor,
            act: input.act,
            token: input.token,
            sub: input.sub,
            tool: input.tool,
            skill: input.skill,
            arguments: input.arguments,
            outcome: input.outcome,
            at: input.at,
        }
    }
}
