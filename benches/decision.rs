//! One AuthZEN access evaluation decided in process: the 100-policy Cedar set
//! of `fixtures/authzen/bench` (90 permits, 10 forbids, conditions on
//! entity attributes, context and arguments) and, for the intent-aware
//! variant, a workflow over the 15-tool travel catalog whose intent grants
//! `book_flight` and `email_itinerary`. The workflow is read once and then
//! served from the tracker's cache, as a running PDP does; nothing is written.
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
use serde_json::{Value, json};
use std::hint::black_box;
use std::sync::Arc;
use support::{intent, requested};
use telos::catalog::{Limits, parse_catalog};
use telos::intent::{Action, Evaluation, Resource, Subject};
use telos::pdp::{BasePolicy, Pdp, request};
use telos::service::tracker::{NewWorkflow, Tracker, TrackerConfig};
use telos::storage::SledStore;
use telos::workflow::TokenVerifier;

fn new_workflow() -> NewWorkflow {
    let raw = std::fs::read("fixtures/intents/travel/catalog.json").expect("travel catalog");
    let body: Value = serde_json::from_slice(&raw).expect("catalog JSON");
    let catalog = parse_catalog(&body, Limits::default()).expect("catalog");
    let subject = Subject::new("user", "alice");
    let intent = intent(
        subject.clone(),
        vec![Evaluation {
            action: Action::new("book_flight"),
            resource: Resource {
                kind: "flight".into(),
                id: "*".into(),
                properties: None,
            },
            context: None,
        }],
        vec![requested("book_flight"), requested("email_itinerary")],
    );
    NewWorkflow {
        tenant: "acme".into(),
        subject,
        intent,
        catalog_name: None,
        entry_scores: vec![0.3; catalog.entries.len()],
        catalog,
        allowed_agents: vec![],
        context: None,
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = BasePolicy::load(std::path::Path::new("fixtures/authzen/bench")).expect("policies");
    assert_eq!(base.count, 100, "the benchmark policy set has 100 policies");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = Arc::new(SledStore::open(&dir.path().join("data")).expect("store"));
    let tracker = rt.block_on(async {
        Tracker::new(store, TokenVerifier::unverified(), TrackerConfig::default())
    });
    let wf = rt
        .block_on(tracker.create(new_workflow()))
        .expect("workflow");
    let body = json!({
        "subject": {"type": "agent", "id": "travel-agent"},
        "action": {"name": "tools/call"},
        "resource": {"type": "tool", "id": "book_flight", "properties": {"arguments": {"destination": "CDG", "date": "2026-12-04", "max_price": 900}}},
        "context": {"workflow_id": wf.id.to_string(), "sub": "alice"}
    });
    let evaluation = request::single(&body).expect("request");

    c.bench_function("decision/cedar_100_policies", |b| {
        b.iter(|| {
            base.decide("default", black_box(&evaluation))
                .expect("decide")
        })
    });
    let pdp = Pdp::new(Some(base), false);
    c.bench_function("decision/policies_and_intent", |b| {
        b.to_async(&rt)
            .iter(|| async { pdp.evaluate(&tracker, "acme", black_box(&evaluation)).await })
    });
    c.bench_function("decision/parse_policies_and_intent", |b| {
        b.to_async(&rt).iter(|| async {
            let e = request::single(black_box(&body)).expect("request");
            pdp.evaluate(&tracker, "acme", &e).await
        })
    });
    // The decision really is a permit (a deny would skip the intent check).
    let outcome = rt.block_on(pdp.evaluate(&tracker, "acme", &evaluation));
    assert!(outcome.allowed, "the benchmarked evaluation must permit");
}

criterion_group!(benches, bench);
criterion_main!(benches);
