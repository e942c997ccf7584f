//! Intents the benchmarks judge against, built the same way in each.

use telos::intent::{Evaluation, Intent, ModelInfo, SpeechAct, Subject, ToolGrant, ToolRole};

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
