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

/// Longest `actor.type`, `actor.id`, `sub`, and `sub`/`iss` of each `act`
/// level, in characters.
pub const MAX_ID_CHARS: usize = 256;
/// Largest `actor` (with its properties) as compact JSON, in bytes.
pub const MAX_ACTOR_BYTES: usize = 4096;

fn cap(field: &'static str, value: &str) -> Result<(), WorkflowError> {
    if value.chars().count() > MAX_ID_CHARS {
        return Err(WorkflowError::Field {
            field,
            reason: format!("longer than the cap of {MAX_ID_CHARS} characters"),
        });
    }
    Ok(())
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
    cap("actor", &actor.kind)?;
    cap("actor", &actor.id)?;
    if serde_json::to_vec(&actor).map_or(0, |v| v.len()) > MAX_ACTOR_BYTES {
        return Err(WorkflowError::Field {
            field: "actor",
            reason: format!("larger than the cap of {MAX_ACTOR_BYTES} bytes"),
        });
    }
    if let Some(sub) = &sub {
        cap("sub", sub)?;
    }
    for a in &chain {
        cap("act", &a.sub)?;
        if let Some(iss) = &a.iss {
            cap("act", iss)?;
        }
    }
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
        outcome: input.outcome.map(digest_outcome).transpose()?,
        at,
    })
}

/// An observed step with its outcome's result digested, as [`observe`]
/// leaves it (tests build steps by hand).
#[cfg(test)]
pub fn digest_for_tests(mut step: Observed) -> Observed {
    step.outcome = step.outcome.map(|o| digest_outcome(o).unwrap());
    step
}

/// Replaces a reported result by its typed values and digest, or checks
/// the values a PEP reported without the result.
fn digest_outcome(mut outcome: Outcome) -> Result<Outcome, WorkflowError> {
    match outcome.result.take() {
        Some(result) => {
            let d = super::provenance::digest_result(&result)?;
            outcome.values = d.values;
            outcome.result_digest = Some(d.digest);
            outcome.values_truncated = d.truncated;
        }
        None => {
            super::provenance::check_reported_values(&outcome.values)?;
            if let Some(d) = &outcome.result_digest
                && (d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(WorkflowError::Field {
                    field: "outcome.result_digest",
                    reason: "must be a sha256 in hex (64 characters)".into(),
                });
            }
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> StepReport {
        StepReport {
            actor: Some(Subject::new("agent", "fin")),
            tool: Some("t".into()),
            ..StepReport::default()
        }
    }

    #[test]
    fn actor_sub_and_act_are_capped_naming_the_field() {
        let long = "x".repeat(MAX_ID_CHARS + 1);
        let ok = "é".repeat(MAX_ID_CHARS);
        let v = TokenVerifier::unverified();
        let field = |r: StepReport| match observe(r, &v, 16) {
            Err(WorkflowError::Field { field, reason }) => {
                assert!(reason.contains("cap"), "{reason}");
                field
            }
            other => panic!("{other:?}"),
        };
        let mut r = report();
        r.actor = Some(Subject::new("agent", long.clone()));
        assert_eq!(field(r), "actor");
        let mut r = report();
        let mut big = Subject::new("agent", "fin");
        let mut props = serde_json::Map::new();
        props.insert("blob".into(), json!("y".repeat(MAX_ACTOR_BYTES)));
        big.properties = Some(props);
        r.actor = Some(big);
        assert_eq!(field(r), "actor");
        let mut r = report();
        r.sub = Some(long.clone());
        assert_eq!(field(r), "sub");
        let mut r = report();
        r.act = Some(json!({"sub": "fin", "act": {"sub": long}}));
        assert_eq!(field(r), "act");
        // At the cap (in characters, not bytes) everything passes.
        let mut r = report();
        r.actor = Some(Subject::new("agent", ok.clone()));
        r.sub = Some(ok.clone());
        r.act = Some(json!({"sub": ok}));
        assert!(observe(r, &v, 16).is_ok());
    }
}
