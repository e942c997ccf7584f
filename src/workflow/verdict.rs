//! Verdicts and their reasons: what the drift rules conclude about a step,
//! stored with the step. They sit with the workflow records so that the
//! rules ([`crate::drift`]) and the records both use them without
//! importing each other.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The verdict of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// In the intent, arguments agree.
    Allowed,
    /// Outside the intent but harmless (a related read).
    Tolerated,
    /// Diverges from the intent.
    Divergent,
}

impl Verdict {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Tolerated => "tolerated",
            Self::Divergent => "divergent",
        }
    }
}

/// Why a step got its verdict. Codes are stable; the README lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// The tool is one the intent grants.
    InIntent,
    /// A read-only tool outside the intent, related to it.
    RelatedRead,
    /// A side effect of an open-ended intent, tolerated by policy `warn`.
    OpenEndedWarning,
    /// A side-effecting tool outside the intent.
    ToolOutsideIntent,
    /// A read-only tool outside the intent and unrelated to it.
    ReadOutsideIntent,
    /// The catalog has no such tool or skill.
    UnknownTool,
    /// An argument value contradicts the intent.
    ArgumentOutsideIntent,
    /// A side effect's argument was taken from an earlier result that only
    /// untrusted content the user did not point to held.
    ArgumentFromUntrustedSource,
    /// A side effect's argument was taken from a trusted result or from a
    /// read the user asked for (evidence of where it came from).
    ArgumentProvenance,
    /// A side effect of an open-ended intent under `require_approval`.
    ApprovalRequired,
    /// A side effect of an open-ended intent under `deny_side_effects`.
    OpenEndedSideEffect,
    /// The token's or report's `sub` is not the workflow's subject.
    SubjectMismatch,
    /// An actor outside the allowed agents appeared.
    UnexpectedActor,
    /// The reported actor is not the chain's current actor.
    ActorMismatch,
    /// The delegation chain is deeper than allowed.
    DelegationTooDeep,
    /// The delegation chain is, or closes, a cycle.
    DelegationCycle,
    /// The workflow is closed.
    WorkflowClosed,
    /// The chain came from a token that was not verified.
    UnverifiedToken,
    /// A verified token is required (`--require-verified-chain`) and the
    /// step's chain or `sub` did not come from one.
    UnverifiedChain,
}

impl ReasonCode {
    /// Every code, in declaration order.
    pub const ALL: [ReasonCode; 19] = [
        Self::InIntent,
        Self::RelatedRead,
        Self::OpenEndedWarning,
        Self::ToolOutsideIntent,
        Self::ReadOutsideIntent,
        Self::UnknownTool,
        Self::ArgumentOutsideIntent,
        Self::ArgumentFromUntrustedSource,
        Self::ArgumentProvenance,
        Self::ApprovalRequired,
        Self::OpenEndedSideEffect,
        Self::SubjectMismatch,
        Self::UnexpectedActor,
        Self::ActorMismatch,
        Self::DelegationTooDeep,
        Self::DelegationCycle,
        Self::WorkflowClosed,
        Self::UnverifiedToken,
        Self::UnverifiedChain,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InIntent => "in_intent",
            Self::RelatedRead => "related_read",
            Self::OpenEndedWarning => "open_ended_warning",
            Self::ToolOutsideIntent => "tool_outside_intent",
            Self::ReadOutsideIntent => "read_outside_intent",
            Self::UnknownTool => "unknown_tool",
            Self::ArgumentOutsideIntent => "argument_outside_intent",
            Self::ArgumentFromUntrustedSource => "argument_from_untrusted_source",
            Self::ArgumentProvenance => "argument_provenance",
            Self::ApprovalRequired => "approval_required",
            Self::OpenEndedSideEffect => "open_ended_side_effect",
            Self::SubjectMismatch => "subject_mismatch",
            Self::UnexpectedActor => "unexpected_actor",
            Self::ActorMismatch => "actor_mismatch",
            Self::DelegationTooDeep => "delegation_too_deep",
            Self::DelegationCycle => "delegation_cycle",
            Self::WorkflowClosed => "workflow_closed",
            Self::UnverifiedToken => "unverified_token",
            Self::UnverifiedChain => "unverified_chain",
        }
    }

    /// The verdict this reason forces on its own.
    pub fn verdict(self) -> Verdict {
        match self {
            Self::InIntent | Self::UnverifiedToken | Self::ArgumentProvenance => Verdict::Allowed,
            Self::RelatedRead | Self::OpenEndedWarning => Verdict::Tolerated,
            Self::ToolOutsideIntent
            | Self::ReadOutsideIntent
            | Self::UnknownTool
            | Self::ArgumentOutsideIntent
            | Self::ArgumentFromUntrustedSource
            | Self::ApprovalRequired
            | Self::OpenEndedSideEffect
            | Self::SubjectMismatch
            | Self::UnexpectedActor
            | Self::ActorMismatch
            | Self::DelegationTooDeep
            | Self::DelegationCycle
            | Self::WorkflowClosed
            | Self::UnverifiedChain => Verdict::Divergent,
        }
    }
}

/// One reason of a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable code.
    pub code: ReasonCode,
    /// For a human.
    pub message: String,
    /// What was compared.
    pub evidence: Value,
}

/// A verdict with its reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// The verdict: the worst of the reasons'.
    pub verdict: Verdict,
    /// Every reason found.
    pub reasons: Vec<Reason>,
}
