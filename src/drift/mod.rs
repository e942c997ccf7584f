//! Drift rules: is an observed step what the person asked for? Pure
//! functions, no I/O. Every verdict carries machine-readable reason codes
//! and human-readable evidence (which quad a step was compared with, which
//! values differed, scores).
//!
//! - `allowed`: the tool is in the intent and its arguments agree with it;
//! - `tolerated`: not in the intent, but read-only and related to it (or a
//!   side effect of an open-ended intent whose policy is `warn`);
//! - `divergent`: anything else, see [`ReasonCode`].

mod arguments;
pub mod report;

use serde_json::{Value, json};

use crate::intent::{OpenEndedPolicy, ToolRole};
pub use crate::workflow::verdict::{Judgement, Reason, ReasonCode, Verdict};
use crate::workflow::{DelegationGraph, Observed, ValueSources, Workflow, chain_principals};
pub use arguments::{ArgumentMismatch, Legitimate, Traced, check_arguments, trace_arguments};

/// Drift rule settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftConfig {
    /// Most actors in a delegation chain (the subject not counted).
    pub max_delegation_depth: usize,
    /// Cosine an unrequested read-only tool needs with some clause of the
    /// request to be tolerated as related.
    pub related_read_threshold: f32,
    /// Every step must come with a verified token (its chain and `sub`
    /// signed); otherwise it is divergent (`unverified_chain`).
    pub require_verified_chain: bool,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            max_delegation_depth: 4,
            related_read_threshold: -1.0,
            require_verified_chain: false,
        }
    }
}

fn reason(code: ReasonCode, message: String, evidence: Value) -> Reason {
    Reason {
        code,
        message,
        evidence,
    }
}

/// Judges one observed step of `workflow`, given the delegation graph of
/// the steps before it.
pub fn judge(
    workflow: &Workflow,
    step: &Observed,
    graph: &DelegationGraph,
    sources: &ValueSources,
    config: &DriftConfig,
) -> Judgement {
    let mut reasons = Vec::new();
    if workflow.closed {
        reasons.push(reason(
            ReasonCode::WorkflowClosed,
            "the workflow is closed; no further steps belong to it".into(),
            json!({"closed_at": workflow.closed_at}),
        ));
    }
    delegation_rules(workflow, step, graph, config, &mut reasons);
    tool_rules(workflow, step, sources, config, &mut reasons);
    let verdict = reasons
        .iter()
        .map(|r| r.code.verdict())
        .max()
        .unwrap_or(Verdict::Divergent);
    Judgement { verdict, reasons }
}

fn delegation_rules(
    workflow: &Workflow,
    step: &Observed,
    graph: &DelegationGraph,
    config: &DriftConfig,
    reasons: &mut Vec<Reason>,
) {
    let subject = workflow.subject.id.as_str();
    if let Some(sub) = &step.sub
        && sub != subject
    {
        reasons.push(reason(
            ReasonCode::SubjectMismatch,
            format!("the token is for `{sub}`, the workflow is for `{subject}`"),
            json!({"expected": subject, "observed": sub}),
        ));
    }
    if config.require_verified_chain && !step.token_verified {
        reasons.push(reason(
            ReasonCode::UnverifiedChain,
            match (step.chain.is_empty(), step.sub.is_some()) {
                (false, _) => "the delegation chain is not from a verified token, and one is required",
                (true, true) => "the step's `sub` is not from a verified token, and one is required",
                (true, false) => {
                    "the step names no verified token, so its subject and chain cannot be checked, and one is required"
                }
            }
            .into(),
            json!({"chain": step.chain.len(), "sub": step.sub}),
        ));
    } else if !step.chain.is_empty() && !step.token_verified && step.sub.is_some() {
        reasons.push(reason(
            ReasonCode::UnverifiedToken,
            "the delegation chain comes from a token that was not verified".into(),
            json!({}),
        ));
    }
    if let Some(current) = step.chain.last()
        && current.sub != step.actor.id
    {
        reasons.push(reason(
            ReasonCode::ActorMismatch,
            format!(
                "the PEP reported actor `{}`, the delegation chain's current actor is `{}`",
                step.actor.id, current.sub
            ),
            json!({"reported": step.actor.id, "current_actor": current.sub}),
        ));
    }
    if step.chain.len() > config.max_delegation_depth {
        reasons.push(reason(
            ReasonCode::DelegationTooDeep,
            format!(
                "the delegation chain has {} actors, the limit is {}",
                step.chain.len(),
                config.max_delegation_depth
            ),
            json!({"depth": step.chain.len(), "limit": config.max_delegation_depth}),
        ));
    }
    let principals = chain_principals(subject, step);
    if graph.would_cycle(&principals) {
        reasons.push(reason(
            ReasonCode::DelegationCycle,
            format!("the delegation chain {} is cyclic", principals.join(" → ")),
            json!({"chain": principals}),
        ));
    }
    if !workflow.allowed_agents.is_empty() {
        for p in principals.iter().skip(1) {
            if !workflow.allowed_agents.iter().any(|a| a == p) {
                let seen = graph.knows(p);
                reasons.push(reason(
                    ReasonCode::UnexpectedActor,
                    format!("`{p}` is not one of the workflow's allowed agents"),
                    json!({"actor": p, "allowed": workflow.allowed_agents, "seen_before": seen}),
                ));
            }
        }
    }
}

fn tool_rules(
    workflow: &Workflow,
    step: &Observed,
    sources: &ValueSources,
    config: &DriftConfig,
    reasons: &mut Vec<Reason>,
) {
    let name = step.name.as_str();
    let Some((index, entry)) = workflow
        .catalog
        .entries
        .iter()
        .enumerate()
        .find(|(_, e)| e.name == name)
    else {
        reasons.push(reason(
            ReasonCode::UnknownTool,
            format!("`{name}` is not in the workflow's catalog"),
            json!({"tool": name}),
        ));
        return;
    };
    let grant = workflow.intent.tools.iter().find(|t| t.name == name);
    let relevance = workflow.entry_scores.get(index).copied().unwrap_or(0.0);
    match grant {
        Some(g) if g.role == ToolRole::Requested || entry.read_only => {
            reasons.push(reason(
                ReasonCode::InIntent,
                format!("`{name}` is part of the intent"),
                json!({"tool": name, "role": g.role, "score": g.score, "clause": workflow.intent.clauses.get(g.clause).map(|c| &c.text)}),
            ));
        }
        _ if entry.read_only => {
            if relevance >= config.related_read_threshold {
                reasons.push(reason(
                    ReasonCode::RelatedRead,
                    format!("`{name}` only reads and is related to the request"),
                    json!({"tool": name, "relevance": relevance, "threshold": config.related_read_threshold}),
                ));
            } else {
                reasons.push(reason(
                    ReasonCode::ReadOutsideIntent,
                    format!("`{name}` only reads, but nothing in the request relates to it"),
                    json!({"tool": name, "relevance": relevance, "threshold": config.related_read_threshold}),
                ));
            }
        }
        _ => match &workflow.intent.open_ended {
            Some(oe) => {
                let (code, what) = match oe.enforcement {
                    OpenEndedPolicy::Warn => {
                        (ReasonCode::OpenEndedWarning, "tolerated with a warning")
                    }
                    OpenEndedPolicy::RequireApproval => {
                        (ReasonCode::ApprovalRequired, "needs a human approval")
                    }
                    OpenEndedPolicy::DenySideEffects => {
                        (ReasonCode::OpenEndedSideEffect, "is denied")
                    }
                };
                reasons.push(reason(
                    code,
                    format!("`{name}` has side effects the person did not name: the request delegates to {}, so it {what}", oe.source),
                    json!({"tool": name, "source": oe.source, "policy": oe.enforcement}),
                ));
            }
            None => {
                let granted: Vec<&str> = workflow.intent.granted().collect();
                reasons.push(reason(
                    ReasonCode::ToolOutsideIntent,
                    format!("`{name}` has side effects and is not part of the request"),
                    json!({"tool": name, "granted": granted, "relevance": relevance}),
                ));
            }
        },
    }
    for m in check_arguments(&workflow.intent, entry, &step.arguments) {
        reasons.push(reason(
            ReasonCode::ArgumentOutsideIntent,
            format!(
                "argument `{}` is `{}`, the request said {}",
                m.argument,
                m.observed,
                m.expected.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(" or ")
            ),
            json!({"argument": m.argument, "kind": m.kind, "expected": m.expected, "observed": m.observed, "quad": m.quad}),
        ));
    }
    for t in trace_arguments(&workflow.intent, entry, &step.arguments, sources) {
        let s = t.source;
        let evidence = json!({"argument": t.argument, "kind": t.kind, "observed": t.observed,
            "source": {"seq": s.seq, "tool": s.tool, "trusted": s.trusted, "path": s.value.path,
                       "start": s.value.start, "end": s.value.end},
            "legitimate": t.legitimate});
        match t.legitimate {
            None => reasons.push(reason(
                ReasonCode::ArgumentFromUntrustedSource,
                format!(
                    "argument `{}` is `{}`, which only came from the result of step {} (`{}`), untrusted content the request did not point to",
                    t.argument, t.observed, s.seq, s.tool
                ),
                evidence,
            )),
            Some(why) => reasons.push(reason(
                ReasonCode::ArgumentProvenance,
                format!(
                    "argument `{}` came from the result of step {} (`{}`), {}",
                    t.argument,
                    s.seq,
                    s.tool,
                    match why {
                        Legitimate::TrustedOutput => "a tool whose output is trusted",
                        Legitimate::RequestedRead => "a read the request asked for",
                    }
                ),
                evidence,
            )),
        }
    }
}

#[cfg(test)]
#[path = "drift_tests.rs"]
mod tests;
