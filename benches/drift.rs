//! Verdict computation, storage excluded: one step judged against a
//! workflow whose intent grants two tools out of a 16-tool catalog; and a
//! step carrying a 20 kB result observed (its values found and digested)
//! and judged with argument provenance over an earlier 20 kB result.
#![expect(
    clippy::expect_used,
    reason = "a benchmark without its fixture cannot run"
)]
#![expect(
    missing_docs,
    reason = "criterion macros generate undocumented functions"
)]

mod support;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;
use support::{intent, requested};
use telos::catalog::{Limits, parse_catalog};
use telos::drift::{DriftConfig, judge};
use telos::intent::{Action, Evaluation, Object, Resource, Subject};
use telos::workflow::{
    ChainActor, DelegationGraph, Observed, Outcome, StepKind, StepReport, TokenVerifier,
    ValueSources, Workflow, observe,
};

/// A tool result of about `bytes` bytes: an MCP text content of mail-like
/// lines, one in ten carrying an address, an IBAN or a link.
fn result(bytes: usize) -> serde_json::Value {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < bytes {
        text.push_str(&match i % 10 {
            0 => format!("From: sender{i}@mail.example. "),
            3 => "Please pay to GB82 WEST 1234 5698 7654 32 by Friday. ".to_string(),
            6 => format!("Details at https://portal.example/item/{i} for reference. "),
            _ => "The meeting moved to the small room on the second floor. ".to_string(),
        });
        i += 1;
    }
    json!({"content": [{"type": "text", "text": text}], "isError": false})
}

fn workflow() -> Workflow {
    let mut tools: Vec<serde_json::Value> = (0..14)
        .map(|i| json!({"name": format!("tool_{i}"), "description": "Does something.", "annotations": {"readOnlyHint": i % 2 == 0}}))
        .collect();
    tools.push(json!({"name": "transfer_money", "inputSchema": {"type": "object", "properties": {"amount": {}, "iban": {}}}}));
    tools.push(json!({"name": "send_email", "inputSchema": {"type": "object", "properties": {"to": {"format": "email"}}}}));
    let catalog = parse_catalog(&json!({ "tools": tools }), Limits::default()).expect("catalog");
    let mut props = Object::new();
    props.insert("amount".into(), json!("$120"));
    let intent = intent(
        Subject::new("user", "alice"),
        vec![Evaluation {
            action: Action::new("transfer_money"),
            resource: Resource {
                kind: "money".into(),
                id: "$120".into(),
                properties: Some(props),
            },
            context: None,
        }],
        vec![requested("transfer_money"), requested("send_email")],
    );
    let id = uuid::Uuid::nil();
    let subject = Subject::new("user", "alice");
    let mut wf = Workflow {
        genesis: String::new(),
        ledger: telos::workflow::LEDGER_VERSION,
        id,
        tenant: "t".into(),
        subject,
        intent,
        catalog_name: None,
        entry_scores: vec![0.3; catalog.entries.len()],
        catalog,
        allowed_agents: vec!["planner".into(), "runner".into()],
        context: None,
        created_at: String::new(),
        closed: false,
        closed_at: None,
    };
    wf.genesis = wf.genesis_hash();
    wf
}

fn bench(c: &mut Criterion) {
    let wf = workflow();
    let mut graph = DelegationGraph::new("alice");
    graph.record(&["alice", "planner", "runner"]);
    let step = Observed {
        actor: Subject::new("agent", "runner"),
        chain: vec![
            ChainActor {
                sub: "planner".into(),
                iss: None,
            },
            ChainActor {
                sub: "runner".into(),
                iss: None,
            },
        ],
        sub: Some("alice".into()),
        token_verified: true,
        kind: StepKind::Tool,
        name: "transfer_money".into(),
        arguments: json!({"amount": 120, "iban": "DE89370400440532013000"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        outcome: None,
        at: "2026-01-01T00:00:00Z".into(),
    };
    let config = DriftConfig::default();
    let sources = ValueSources::default();
    c.bench_function("drift/judge_granted_step", |b| {
        b.iter(|| judge(black_box(&wf), black_box(&step), &graph, &sources, &config))
    });
    let mut outside = step.clone();
    outside.name = "tool_3".into();
    c.bench_function("drift/judge_outside_intent", |b| {
        b.iter(|| {
            judge(
                black_box(&wf),
                black_box(&outside),
                &graph,
                &sources,
                &config,
            )
        })
    });

    // Provenance: an earlier read returned 20 kB; this step pays an IBAN
    // found in it and itself reports a 20 kB result.
    let read = observe(
        StepReport {
            actor: Some(Subject::new("agent", "runner")),
            tool: Some("tool_0".into()),
            outcome: Some(Outcome {
                result: Some(result(20_000)),
                ..Outcome::default()
            }),
            ..StepReport::default()
        },
        &TokenVerifier::unverified(),
        16,
    )
    .expect("read step");
    let mut traced = ValueSources::default();
    traced.record(&wf, 1, &read);
    let pay = StepReport {
        actor: Some(Subject::new("agent", "runner")),
        tool: Some("transfer_money".into()),
        arguments: json!({"amount": 120, "iban": "GB82WEST12345698765432"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        outcome: Some(Outcome {
            result: Some(result(20_000)),
            ..Outcome::default()
        }),
        ..StepReport::default()
    };
    let verifier = TokenVerifier::unverified();
    c.bench_function("drift/observe_and_judge_20kb_result", |b| {
        b.iter(|| {
            let step = observe(black_box(pay.clone()), &verifier, 16).expect("step");
            judge(&wf, &step, &graph, &traced, &config)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
