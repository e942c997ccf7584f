//! Verdict computation, storage excluded: one step judged against a
//! workflow whose intent grants two tools out of a 16-tool catalog.
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
use telos::workflow::{ChainActor, DelegationGraph, Observed, StepKind, Workflow};

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
    c.bench_function("drift/judge_granted_step", |b| {
        b.iter(|| judge(black_box(&wf), black_box(&step), &graph, &config))
    });
    let mut outside = step.clone();
    outside.name = "tool_3".into();
    c.bench_function("drift/judge_outside_intent", |b| {
        b.iter(|| judge(black_box(&wf), black_box(&outside), &graph, &config))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
