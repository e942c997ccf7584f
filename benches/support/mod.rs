//! Intents and workflows the benchmarks judge against, built the same way
//! in each.

use serde_json::json;
use telos::catalog::{Limits, parse_catalog};
use telos::intent::{Evaluation, Intent, ModelInfo, SpeechAct, Subject, ToolGrant, ToolRole};
use telos::service::tracker::NewWorkflow;

/// A side-effecting tool the request asked for.
pub fn requested(name: &str) -> ToolGrant {
    ToolGrant {
        name: name.into(),
        score: 0.9,
        role: ToolRole::Requested,
        side_effecting: true,
        clause: 0,
    }
}

/// An action intent of `subject` with these quads and tools.
pub fn intent(subject: Subject, evaluations: Vec<Evaluation>, tools: Vec<ToolGrant>) -> Intent {
    Intent {
        subject,
        evaluations,
        tools,
        entities: vec![],
        clauses: vec![],
        speech_act: SpeechAct::Action,
        open_ended: None,
        model: ModelInfo {
            name: "m".into(),
            sha256: "s".into(),
            grant_threshold: 0.5,
            read_threshold: 0.5,
            verb_boost: 0.0,
        },
    }
}

/// A workflow of `tenant` for alice's request to send an email, over a
/// two-tool catalog (`send_email`, read-only `search`).
#[allow(
    dead_code,
    reason = "each benchmark compiles this module; not all open workflows"
)]
pub fn email_workflow(tenant: &str) -> NewWorkflow {
    let catalog = parse_catalog(
        &json!({"tools": [{"name": "send_email", "annotations": {"readOnlyHint": false}},
                          {"name": "search", "annotations": {"readOnlyHint": true}}]}),
        Limits::default(),
    )
    .expect("catalog");
    NewWorkflow {
        tenant: tenant.into(),
        subject: Subject::new("user", "alice"),
        intent: intent(
            Subject::new("user", "alice"),
            vec![],
            vec![requested("send_email")],
        ),
        catalog_name: None,
        catalog,
        entry_scores: vec![0.9, 0.5],
        allowed_agents: vec![],
        context: None,
    }
}
