//! Workflow and step records shared by the service's unit tests.

use uuid::Uuid;

use crate::workflow::{Observed, Step, StepKind, Verdict, Workflow};

/// Workflow `n` of `tenant` with an empty intent and catalog; the fields of
/// `extra` (allowed agents, context, …) are set before its genesis is
/// computed.
pub fn workflow(n: u128, tenant: &str, extra: serde_json::Value) -> Workflow {
    let mut record = serde_json::json!({
        "id": Uuid::from_u128(n), "tenant": tenant,
        "subject": {"type": "user", "id": "alice"},
        "intent": {"subject": {"type": "user", "id": "alice"}, "evaluations": [], "tools": [], "entities": [],
                   "clauses": [], "speech_act": "question", "model": {"name": "m", "sha256": "s", "grant_threshold": 0.5, "read_threshold": 0.5}},
        "catalog": {"entries": []}, "entry_scores": [],
        "created_at": "2026-01-01T00:00:00Z", "closed": false, "genesis": "", "ledger": 2
    });
    if let (Some(r), Some(e)) = (record.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    let mut w: Workflow = serde_json::from_value(record).unwrap();
    w.genesis = w.genesis_hash();
    w
}

/// Step `seq` after `prev`: agent `fin` called tool `name`, hashed.
pub fn step(seq: u64, prev: &str, name: &str, verdict: Verdict) -> Step {
    let mut s = Step {
        seq,
        observed: Observed {
            actor: crate::intent::Subject::new("agent", "fin"),
            chain: vec![],
            sub: None,
            token_verified: false,
            kind: StepKind::Tool,
            name: name.into(),
            arguments: serde_json::Map::new(),
            outcome: None,
            at: "2026-01-01T00:00:00Z".into(),
        },
        received_at: "2026-01-01T00:00:00Z".into(),
        verdict,
        reasons: vec![],
        prev_hash: prev.into(),
        hash: String::new(),
    };
    s.hash = s.compute_hash();
    s
}
